"""docs/openapi.yaml documents every /swan/api/ storage endpoint we register, and reads as
OpenAPI 3."""

from __future__ import annotations

from pathlib import Path

import yaml

from swan_share_ext.storage_api import storage_handlers

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"


def test_every_storage_endpoint_is_documented():
    spec = yaml.safe_load(OPENAPI.read_text())
    assert spec["openapi"].startswith("3.")
    ours = [pattern for pattern, _ in storage_handlers("/") if "/swan/api/" in pattern]
    assert ours
    for pattern in ours:
        assert pattern in spec["paths"], pattern
    assert "If-Match" in str(spec["paths"]["/api/contents/{path}"]["put"])


def test_every_reference_in_the_document_resolves():
    spec = yaml.safe_load(OPENAPI.read_text())
    refs = []

    def walk(node):
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    for ref in refs:
        name = ref.removeprefix("#/components/schemas/")
        assert name in spec["components"]["schemas"], ref
