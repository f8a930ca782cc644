"""Request bodies of /swan/api/ checked against their schemas in `openapi.yaml`, the document the
API is published with, so that what the server accepts and what it documents cannot drift apart.

A body that breaks its schema is a 400 whose message names the field and says what it must be.
What a schema cannot say (a date in the past, a rule between two fields) the handlers still
check themselves. The document is read, and jsonschema imported, on the first body checked.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from tornado import web

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

DOCUMENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.yaml")


def request_schema(path: str, method: str) -> str:
    """The JSON pointer of the JSON request body of an operation of the document."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"#/paths/{escaped}/{method}/requestBody/content/application~1json/schema"


NEW_SHARE = "#/components/schemas/NewShare"
SHARE_CHANGES = "#/components/schemas/ShareChanges"
CLONE = request_schema("/swan/api/shared-with-me/{id}/clone", "post")
OPEN = request_schema("/swan/api/open", "post")
LINKS = request_schema("/swan/api/links", "post")
VERSION_RESTORE = request_schema("/swan/api/versions/restore", "post")
TRASH_RESTORE = request_schema("/swan/api/trash/restore", "post")
NOTEBOOK_DIFF = request_schema("/swan/api/diff", "post")
NOTEBOOK_MERGE = request_schema("/swan/api/merge", "post")

#: What a value of each JSON type is, in words.
TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "a list",
    "null": "null",
}
#: Longest value quoted back in a message.
MAX_QUOTED = 60


@functools.cache
def _document() -> dict[str, Any]:
    import yaml

    with open(DOCUMENT, encoding="utf-8") as f:
        return yaml.safe_load(f)


@functools.cache
def _validator(pointer: str) -> Validator:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    uri = "urn:swan-share-ext:openapi"
    document = Resource.from_contents(_document(), default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(uri, document)
    # `$ref`s inside the document ("#/components/…") resolve against the document itself
    return Draft202012Validator({"$ref": f"{uri}{pointer}"}, registry=registry)


def check_body(body: Any, pointer: str, *, left_to_caller: Collection[str] = ()) -> Any:
    """`body`, if it fits the schema at `pointer` of the document; else a 400 that says why.

    A field the schema types as text that is sent as `null` counts as not sent (clients that
    write optional fields as null are common); the body is returned without it. The schema
    keywords in `left_to_caller` are not checked here: the caller checks them itself, in words
    closer to what the user wrote (an open-in link's `kind=`).
    """
    body = _without_null_text(body, _schema_at(pointer))
    errors = [e for e in _validator(pointer).iter_errors(body) if e.validator not in left_to_caller]
    if errors:
        error = _first_error(errors)
        # a value some schema of its field calls write-only (a password) is never quoted back
        secret = any(e.schema.get("writeOnly") and e.path == error.path for e in errors)
        raise web.HTTPError(400, message_of(error, quote=not secret))
    return body


def _schema_at(pointer: str) -> dict[str, Any]:
    node: Any = _document()
    for token in pointer.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    for part in node.get("allOf", ()):
        if "$ref" in part:
            return _schema_at(part["$ref"])
    return _schema_at(node["$ref"]) if "$ref" in node else node


def _without_null_text(body: Any, schema: dict[str, Any]) -> Any:
    if not isinstance(body, dict):
        return body
    properties = schema.get("properties", {})
    return {
        key: value
        for key, value in body.items()
        if value is not None or properties.get(key, {}).get("type") != "string"
    }


def _first_error(errors: list[ValidationError]) -> ValidationError:
    """The error to tell: one about a field that was sent, before one about the body as a
    whole (a missing field, an unknown one), then jsonschema's own order of relevance."""
    from jsonschema.exceptions import best_match, relevance

    found = best_match(errors, key=lambda e: (len(e.absolute_path), *relevance(e)))
    assert found is not None
    return found


def message_of(error: ValidationError, *, quote: bool = True) -> str:
    """One sentence for a person: the field, what it must be, and (with `quote`) what it was."""
    schema, keyword = error.schema, error.validator
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - known)
        return f"Unknown fields: {', '.join(unknown)}"
    if keyword == "required":
        missing = [f for f in error.validator_value if f not in error.instance]
        field = missing[0] if missing else "a field"
        expected = _expected(schema.get("properties", {}).get(field, {}), "")
        return f"{field} must be {expected}" if expected else f"{field} is required"
    if keyword == "minProperties":
        fields = ", ".join(sorted(schema.get("properties", {})))
        return f"Nothing to change: send one of {fields}"
    where = ".".join(str(p) for p in error.absolute_path)
    expected = _expected(schema, keyword)
    if not where:
        return f"The request body must be {expected}"
    if not quote or schema.get("writeOnly"):
        return f"{where} must be {expected}"
    return f"{where} must be {expected}; got {_quoted(error.instance)}"


def _expected(schema: dict[str, Any], keyword: str) -> str:
    """What a value of `schema` must be: its `x-expected` words, else words for `keyword`."""
    if "x-expected" in schema:
        return schema["x-expected"]
    if keyword == "type" or (not keyword and "type" in schema):
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return " or ".join(TYPE_WORDS.get(t, t) for t in types)
    if keyword == "enum":
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if keyword == "const":
        return json.dumps(schema["const"])
    if keyword in ("minimum", "maximum"):
        return f"from {schema.get('minimum', '…')} to {schema.get('maximum', '…')}"
    if keyword == "maxLength":
        return f"text of at most {schema['maxLength']} characters"
    if keyword == "minLength":
        return "text that is not empty" if schema["minLength"] == 1 else "longer text"
    return schema.get("description", "").strip() or "in the documented form"


def _quoted(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"
