"""The OpenAPI document of /swan/api/ is a valid OpenAPI 3.1 document and describes exactly the
routes the server extension registers, no more and no fewer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

DOCUMENT = Path(__file__).resolve().parent.parent / "swan_share_ext" / "openapi.yaml"


def load() -> dict:
    return yaml.safe_load(DOCUMENT.read_text())


@pytest.fixture
def manager() -> str:
    return "swan"


def registered_routes(web_app) -> set[str]:
    """The /swan/api/ routes of a running server, with each path argument written `{id}`."""
    base = web_app.settings["base_url"].rstrip("/")
    routes = set()
    for host_rule in web_app.default_router.rules:
        for rule in getattr(host_rule.target, "rules", []):
            pattern = rule.matcher.regex.pattern.rstrip("$")
            if pattern.startswith(base + "/swan/api/"):
                routes.add(re.sub(r"\([^)]*\)", "{id}", pattern[len(base) :]))
    return routes


def test_the_document_is_valid_openapi():
    validate(load())


def test_every_route_of_the_extension_is_documented_and_nothing_else(jp_serverapp):
    # path arguments by position: `{path}` of the document is the route's `{id}`
    documented = {
        re.sub(r"\{[^}]*\}", "{id}", p) for p in load()["paths"] if p.startswith("/swan/api/")
    }
    assert registered_routes(jp_serverapp.web_app) == documented


def test_conditional_saves_on_the_contents_api_are_documented():
    put = load()["paths"]["/api/contents/{path}"]["put"]
    assert {"If-Match", "If-None-Match"} <= {p["name"] for p in put["parameters"]}
    assert "409" in put["responses"]
    fields = load()["components"]["schemas"]["SaveModel"]["properties"]
    assert {"etag", "if_none_match", "on_conflict"} <= set(fields)
