"""The spawn form: software environments, CPU, memory and an optional GPU from one config.

This module owns the form's config (YAML or JSON, checked against spawn_form.schema.json),
rendering the form from it, and validating a user's choice against the same config, whichever way
it arrives (form POST, ``opt-`` URL query, REST API). It must not start anything nor know which
spawner applies the choice, nor import jsonschema before a config is loaded (the hub's start).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from jupyterhub.traitlets import ByteSpecification

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

OPTION_NAMES = ("environment", "cpu", "memory", "gpu")
SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "spawn_form.schema.json")


class FormConfigError(ValueError):
    """The form config (written by the admin) is not valid."""


class InvalidChoice(ValueError):
    """A user's spawn options do not match what the form offers; the message is for the user."""


@dataclass(frozen=True)
class Environment:
    """One software environment: an image (Docker, Kubernetes) and/or a software stack."""

    id: str
    display_name: str
    description: str = ""
    image: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    kubespawner_override: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    """How much of a resource (CPU cores or memory bytes) a user may ask for.

    Either a list of ``choices`` (a drop-down) or a ``minimum``..``maximum`` range (a number
    field); ``default`` is what an empty choice gets.
    """

    default: float
    choices: tuple[float, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def allows(self, value: float) -> bool:
        if self.choices:
            return any(math.isclose(value, c) for c in self.choices)
        return (self.minimum is None or value >= self.minimum) and (
            self.maximum is None or value <= self.maximum
        )


@dataclass(frozen=True)
class Choice:
    """A validated choice: what the spawner applies."""

    environment: Environment
    cpu: float
    memory: int
    gpu: bool

    def as_query(self) -> str:
        """The ``opt-`` URL query that starts a server with this choice."""
        return urlencode(
            {
                "opt-environment": self.environment.id,
                "opt-cpu": format_cpu(self.cpu),
                "opt-memory": format_bytes(self.memory),
                "opt-gpu": "yes" if self.gpu else "no",
            }
        )

    def as_user_options(self) -> dict[str, Any]:
        """The JSON form kept in JupyterHub's database (and sent back by the REST API)."""
        return {
            "environment": self.environment.id,
            "cpu": self.cpu,
            "memory": format_bytes(self.memory),
            "gpu": self.gpu,
        }


_UNITS = (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024))


def parse_bytes(value: Any) -> int:
    """Bytes in ``value``: a number, or a string such as ``512M`` or ``4G`` (powers of 1024,
    as JupyterHub's ``mem_limit``)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount of memory")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip().upper().removesuffix("I").removesuffix("B")
    try:
        return int(ByteSpecification().validate(None, text))
    except Exception:
        raise ValueError(f"{value!r} is not an amount of memory such as 512M or 4G") from None


def format_bytes(amount: int) -> str:
    """``amount`` in the largest unit that divides it, e.g. 4G, 1536M."""
    for suffix, size in _UNITS:
        if amount % size == 0:
            return f"{amount // size}{suffix}"
    return str(amount)


def format_cpu(cores: float) -> str:
    return f"{cores:g}"


@functools.cache
def _schema_validator() -> Validator:
    # Imported here, not at the top: the hub, the drive and the links service start without
    # jsonschema; only a configured form loads it.
    from jsonschema import Draft202012Validator, validators

    # An inline config (form_config in Python) may hold tuples and other mappings.
    types = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "array": lambda _, value: isinstance(value, list | tuple),
            "object": lambda _, value: isinstance(value, Mapping),
        }
    )
    with open(SCHEMA_FILE, encoding="utf-8") as f:
        schema = json.load(f)
    return validators.extend(Draft202012Validator, type_checker=types)(schema)


def _where(error: ValidationError) -> str:
    """The path of the bad key, e.g. ``environments[1].env``."""
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return where or "the form config"


def _problem(error: ValidationError) -> str:
    """What an admin reads: where the bad key is and what was expected there."""
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = sorted(str(key) for key in error.instance if key not in allowed)
        return (
            f"{_where(error)}: unknown keys {', '.join(unknown)} (expected: {', '.join(allowed)})"
        )
    expected = error.schema.get("description")
    if not expected:
        return f"{_where(error)}: {error.message}"
    got = json.dumps(error.instance, default=str)
    if len(got) > 80:
        got = got[:77] + "..."
    return f"{_where(error)}: expected {expected}, got {got}"


def check_config(config: Any) -> None:
    """Raise FormConfigError naming every key of ``config`` that does not fit the schema."""
    errors = sorted(_schema_validator().iter_errors(config), key=lambda e: list(map(str, e.path)))
    if errors:
        raise FormConfigError("; ".join(dict.fromkeys(_problem(e) for e in errors)))


def _resource(raw: Mapping[str, Any], what: str, parse: Any) -> Resource:
    try:
        choices = tuple(parse(c) for c in raw.get("choices", ()))
        minimum = parse(raw["minimum"]) if "minimum" in raw else None
        maximum = parse(raw["maximum"]) if "maximum" in raw else None
        default = parse(raw["default"]) if "default" in raw else None
    except ValueError as e:
        raise FormConfigError(f"{what}: {e}") from None
    if default is None:
        default = choices[0] if choices else minimum
    resource = Resource(default=default, choices=choices, minimum=minimum, maximum=maximum)
    if not resource.allows(default):
        raise FormConfigError(f"{what}: the default is not one of the offered values")
    return resource


def _environment(raw: Mapping[str, Any]) -> Environment:
    return Environment(
        id=raw["id"],
        display_name=str(raw.get("display_name", raw["id"])),
        description=str(raw.get("description", "")),
        image=str(raw.get("image", "")),
        env={str(k): str(v) for k, v in raw.get("env", {}).items()},
        kubespawner_override=dict(raw.get("kubespawner_override", {})),
    )


def _one(values: Any) -> Any:
    # Form posts and URL queries give lists of strings; the REST API gives plain JSON values.
    if isinstance(values, list):
        if len(values) != 1:
            raise InvalidChoice(f"expected one value, got {len(values)}")
        return values[0]
    return values


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no", ""):
        return False
    raise InvalidChoice(f"GPU: {value!r} is not yes or no")


class SpawnForm:
    """The form of one config: renders it and validates choices against it."""

    def __init__(
        self,
        environments: Sequence[Environment],
        cpu: Resource,
        memory: Resource,
        gpu_available: bool = False,
        default_environment: str = "",
    ) -> None:
        if not environments:
            raise FormConfigError("environments: offer at least one")
        ids = [e.id for e in environments]
        if len(set(ids)) != len(ids):
            raise FormConfigError(f"environments: ids must be unique, got {ids}")
        self.environments = {e.id: e for e in environments}
        self.default_environment = default_environment or ids[0]
        if self.default_environment not in self.environments:
            raise FormConfigError(f"default_environment {default_environment!r} is not offered")
        self.cpu = cpu
        self.memory = memory
        self.gpu_available = gpu_available

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SpawnForm:
        """Build the form from the parsed config (the format is in docs/admin-docker.md, the
        schema in spawn_form.schema.json)."""
        check_config(config)
        return cls(
            environments=[_environment(e) for e in config.get("environments", [])],
            cpu=_resource(config.get("cpu", {"choices": [1]}), "cpu", float),
            memory=_resource(config.get("memory", {"choices": ["2G"]}), "memory", parse_bytes),
            gpu_available=config.get("gpu", {}).get("available", False),
            default_environment=str(config.get("default_environment", "")),
        )

    @classmethod
    def load(cls, path: str) -> SpawnForm:
        """Read a YAML or JSON config file (JSON is YAML; ``.json`` files are read as JSON)."""
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            if os.path.splitext(path)[1].lower() == ".json":
                config = json.loads(text)
            else:
                import yaml

                config = yaml.safe_load(text)
        except ValueError as e:
            raise FormConfigError(f"{path}: {e}") from None
        try:
            return cls.from_config(config)
        except FormConfigError as e:
            raise FormConfigError(f"{path}: {e}") from None

    def validate(self, options: Mapping[str, Any]) -> Choice:
        """The choice in ``options``, or InvalidChoice saying what is wrong and what is allowed.

        Missing options take the defaults; options the form does not have are refused, so a
        tampered request cannot set anything the admin did not offer.
        """
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise InvalidChoice(f"Unknown spawn option(s): {', '.join(unknown)}.")
        env_id = options.get("environment")
        env_id = self.default_environment if env_id is None else str(_one(env_id))
        if env_id not in self.environments:
            offered = ", ".join(self.environments)
            raise InvalidChoice(
                f"Software environment {env_id!r} is not offered; choose one of: {offered}."
            )
        cpu = self._resource_value(options, "cpu", self.cpu, float, format_cpu, "CPU cores")
        memory = int(
            self._resource_value(
                options, "memory", self.memory, parse_bytes, format_bytes, "Memory"
            )
        )
        gpu = _as_bool(_one(options.get("gpu", False)))
        if gpu and not self.gpu_available:
            raise InvalidChoice("GPUs are not offered here; start without a GPU.")
        return Choice(self.environments[env_id], cpu, int(memory), gpu)

    @staticmethod
    def _resource_value(
        options: Mapping[str, Any],
        name: str,
        resource: Resource,
        parse: Any,
        show: Any,
        label: str,
    ) -> float:
        raw = options.get(name)
        if raw is None or raw == "" or raw == [""]:
            return resource.default
        raw = _one(raw)
        try:
            value = parse(raw)
        except ValueError:
            raise InvalidChoice(f"{label}: {raw!r} is not a number.") from None
        if not math.isfinite(value) or not resource.allows(value):
            if resource.choices:
                allowed = "one of " + ", ".join(show(c) for c in resource.choices)
            else:
                allowed = f"from {show(resource.minimum)} to {show(resource.maximum)}"
            raise InvalidChoice(f"{label}: {show(value)} is not offered; choose {allowed}.")
        return value

    def render(
        self, prefill: Mapping[str, Any] | None = None, error: str = "", limits_note: str = ""
    ) -> str:
        """The form's HTML, pre-filled from ``prefill`` (e.g. the ``opt-`` URL query) where
        those values are valid; invalid ones fall back to the defaults. ``limits_note`` says,
        under CPU and memory, where the spawner does not enforce them."""
        selected = self._prefilled_choice(prefill or {})
        return (
            _templates()
            .get_template("spawn_form.html")
            .render(
                form=self,
                selected=selected,
                error=error,
                limits_note=limits_note,
                format_cpu=format_cpu,
                format_bytes=format_bytes,
            )
        )

    def _prefilled_choice(self, prefill: Mapping[str, Any]) -> Choice:
        default = self.validate({})
        values = {}
        for name in OPTION_NAMES:
            if name in prefill:
                with contextlib.suppress(InvalidChoice):
                    values[name] = getattr(self.validate({name: prefill[name]}), name)
        return Choice(
            environment=values.get("environment", default.environment),
            cpu=values.get("cpu", default.cpu),
            memory=values.get("memory", default.memory),
            gpu=values.get("gpu", default.gpu),
        )


_jinja: jinja2.Environment | None = None


def _templates() -> jinja2.Environment:
    global _jinja
    if _jinja is None:
        _jinja = jinja2.Environment(
            loader=jinja2.PackageLoader("swan_hub", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
    return _jinja
