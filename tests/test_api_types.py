"""The labextension's REST types (`js/src/api.ts`) agree with `swan_share_ext/openapi.yaml`: each
interface has its schema's field names and types, the browser handles every value an answer may
hold, and a request sends only what the server accepts. Owns that check; reads no server."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
API_TS = ROOT / "js" / "src" / "api.ts"
OPENAPI = ROOT / "swan_share_ext" / "openapi.yaml"

SCHEMAS = "#/components/schemas/"


JSON = "/content/application~1json/schema"


def operation(path: str, method: str) -> str:
    return f"#/paths/{path.replace('/', '~1')}/{method}"


def answer(path: str, method: str, status: int) -> str:
    """The pointer to the JSON answer of an operation of the document."""
    return f"{operation(path, method)}/responses/{status}{JSON}"


def request(path: str, method: str) -> str:
    """The pointer to the JSON request body of an operation of the document."""
    return f"{operation(path, method)}/requestBody{JSON}"


CLONE = "/swan/api/shared-with-me/{id}/clone"

#: What the server answers: (interface, schema, whether the interface has every field of it).
#: A partial interface names only what the browser reads of a larger model.
ANSWERS = [
    ("IShare", SCHEMAS + "Share", True),
    ("ISharee", SCHEMAS + "Sharee", True),
    ("IInvite", SCHEMAS + "Invite", True),
    ("IVersion", SCHEMAS + "Version", True),
    ("IVersions", answer("/swan/api/versions", "get", 200), True),
    ("ITrashItem", SCHEMAS + "TrashItem", True),
    ("ITrash", answer("/swan/api/trash", "get", 200), True),
    ("ILinks", answer("/swan/api/links", "post", 200), True),
    ("IContentsModel", SCHEMAS + "Model", False),
    ("IContentsModel", answer(CLONE, "post", 201), False),
    ("ISwanModel", SCHEMAS + "Model", False),
    ("IFilesForCode", SCHEMAS + "FilesForCode", True),
    ("IRefusedUpload", SCHEMAS + "RefusedUpload", True),
    ("ICutUpload", SCHEMAS + "CutUpload", True),
    ("IRefusedUploads", answer("/swan/api/refused-uploads", "get", 200), True),
    ("IUploadOffer", SCHEMAS + "UploadOffer", True),
    ("IServerInfo", answer("/swan/api/info", "get", 200), False),
    ("IDiffCell", SCHEMAS + "DiffCell", True),
    ("INotebookDiff", answer("/swan/api/diff", "post", 200), True),
    ("IMergeCell", SCHEMAS + "MergeCell", True),
    ("INotebookMerge", answer("/swan/api/merge", "post", 200), True),
]
#: What the browser sends: (interface, schema, whether the interface has every field of it).
REQUESTS = [
    ("INewShare", SCHEMAS + "NewShare", True),
    ("IShareChanges", SCHEMAS + "ShareChanges", True),
    ("ICloneRequest", request(CLONE, "post"), True),
    ("IVersionRestore", request("/swan/api/versions/restore", "post"), True),
    ("ITrashRestore", request("/swan/api/trash/restore", "post"), True),
    ("ILinkQuery", SCHEMAS + "LinkQuery", True),
    ("ISaveFields", SCHEMAS + "SaveModel", False),
    ("IDiffRequest", request("/swan/api/diff", "post"), True),
    ("IMergeRequest", request("/swan/api/merge", "post"), True),
]

INTERFACE = re.compile(r"^export interface (\w+)(?: extends [\w.]+)? \{\n(.*?)^\}", re.M | re.S)
FIELD = re.compile(r"^\s+(?:readonly )?(\w+)(\??): (.+);$", re.M)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)

#: A type as a set of alternatives: "string", "number", "boolean", "null", ("literal", value),
#: ("ref", interface name) or ("array", alternatives of the items).
Alternatives = frozenset


@dataclass(frozen=True)
class Field:
    """A field of an interface: whether it may be absent (`name?:`), and its type."""

    optional: bool
    alternatives: Alternatives


def ts_alternatives(text: str) -> Alternatives:
    """The alternatives of a TypeScript type made of primitives, literals, names and arrays."""
    alternatives = set()
    for part in (p.strip() for p in text.split("|")):
        if part.endswith("[]"):
            alternatives.add(("array", ts_alternatives(part[:-2])))
        elif part[0] == "'" and part[-1] == "'":
            alternatives.add(("literal", part[1:-1]))
        elif part in ("string", "number", "boolean", "null"):
            alternatives.add(part)
        elif part == "Record<string, unknown>":
            alternatives.add("object")
        elif re.fullmatch(r"I[A-Z]\w*", part):
            alternatives.add(("ref", part))
        else:
            raise AssertionError(f"api.ts: no rule to compare the type {part!r}")
    return frozenset(alternatives)


def interfaces(source: str) -> dict[str, dict[str, Field]]:
    """The exported interfaces of a TypeScript module, by name, with their own fields."""
    found = {}
    for name, body in INTERFACE.findall(COMMENT.sub("", source)):
        found[name] = {
            field: Field(optional == "?", ts_alternatives(text))
            for field, optional, text in FIELD.findall(body)
        }
    return found


def resolve(document: dict, pointer: str) -> Any:
    node: Any = document
    for token in pointer.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def schema_alternatives(document: dict, schema: dict, named: dict[str, str]) -> Alternatives:
    """The alternatives of a schema; a schema that has an interface is that interface."""
    if "$ref" in schema:
        if schema["$ref"] in named:
            return frozenset({("ref", named[schema["$ref"]])})
        return schema_alternatives(document, resolve(document, schema["$ref"]), named)
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            parts = [schema_alternatives(document, s, named) for s in schema[combined]]
            return frozenset().union(*parts)
    if "const" in schema:
        return frozenset({("literal", schema["const"])})
    if "enum" in schema:
        return frozenset("null" if v is None else ("literal", v) for v in schema["enum"])
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    alternatives = set()
    for kind in types:
        if kind == "array":
            alternatives.add(("array", schema_alternatives(document, schema["items"], named)))
        else:
            alternatives.add({"integer": "number"}.get(kind, kind))
    return frozenset(alternatives)


def covered(values: Alternatives, by: Alternatives) -> bool:
    """Whether every value of `values` is a value of `by` (a string literal is a string)."""
    return all(
        value in by or (isinstance(value, tuple) and value[0] == "literal" and "string" in by)
        for value in values
    )


def mismatches(
    fields: dict[str, Field],
    schema: dict,
    document: dict,
    named: dict[str, str],
    *,
    answer: bool,
    complete: bool,
) -> list[str]:
    """What keeps an interface from describing a schema, in words; empty when it does."""
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    found = [f"{name}: not in the schema" for name in fields if name not in properties]
    if complete:
        found += [f"{name}: missing" for name in properties if name not in fields]
    for name, field in fields.items():
        if name not in properties:
            continue
        spec = schema_alternatives(document, properties[name], named)
        if answer:
            if not field.optional and name not in required:
                found.append(f"{name}: the server may leave it out, mark it optional")
            if not covered(spec, field.alternatives):
                found.append(f"{name}: the server may send {sorted(map(str, spec))}")
        else:
            if field.optional and name in required:
                found.append(f"{name}: the server requires it")
            if not covered(field.alternatives, spec):
                found.append(f"{name}: the server accepts only {sorted(map(str, spec))}")
    return found


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(OPENAPI.read_text())


@pytest.fixture(scope="module")
def declared() -> dict[str, dict[str, Field]]:
    return interfaces(API_TS.read_text())


@pytest.fixture(scope="module")
def named() -> dict[str, str]:
    """Schemas that have an interface, so a reference to one is a reference to the other."""
    return {schema: name for name, schema, _ in ANSWERS if schema.startswith(SCHEMAS)}


@pytest.mark.parametrize(("interface", "pointer", "complete"), ANSWERS)
def test_an_answer_type_of_the_front_end_matches_its_schema(
    interface, pointer, complete, document, declared, named
):
    schema = resolve(document, pointer)
    found = mismatches(declared[interface], schema, document, named, answer=True, complete=complete)
    assert found == [], f"{interface} vs {pointer}"


@pytest.mark.parametrize(("interface", "pointer", "complete"), REQUESTS)
def test_a_request_type_of_the_front_end_matches_its_schema(
    interface, pointer, complete, document, declared, named
):
    schema = resolve(document, pointer)
    found = mismatches(
        declared[interface], schema, document, named, answer=False, complete=complete
    )
    assert found == [], f"{interface} vs {pointer}"


def test_every_interface_of_the_api_module_is_held_to_a_schema(declared):
    checked = {name for name, _, _ in ANSWERS + REQUESTS}
    assert set(declared) == checked


def test_the_check_notices_a_renamed_field_a_wrong_type_and_a_missing_null(document, named):
    source = (
        "export interface ITrashItem {\n"
        "  id: string;\n  title: string;\n  path: string;\n"
        "  deleted: string;\n  size: number;\n  type: 'file' | 'directory';\n}\n"
    )
    schema = resolve(document, SCHEMAS + "TrashItem")
    found = mismatches(
        interfaces(source)["ITrashItem"], schema, document, named, answer=True, complete=True
    )
    assert sorted(found) == [
        "deleted: the server may send ['number']",
        "name: missing",
        "size: the server may send ['null', 'number']",
        "title: not in the schema",
    ]
