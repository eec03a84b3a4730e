"""`--set key=value` on frozen dataclass configs: values are parsed by the field's declared type, and
an unknown key or a value of the wrong type is a ValueError naming what is accepted."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_scalar(kind: str, text: str) -> Any:
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        return _parse_bool(text)
    if kind == "str":
        return text
    raise ValueError(f"cannot set a field of type {kind}")


def parse_value(type_text: str, text: str) -> Any:
    """Parse `text` as the annotation `type_text` (`int`, `float | None`, `tuple[int, ...]`, ...)."""
    options = [part.strip() for part in type_text.split("|")]
    if "None" in options and text.strip().lower() in ("none", "null", ""):
        return None
    options = [o for o in options if o != "None"]
    if len(options) != 1:
        raise ValueError(f"cannot set a field of type {type_text}")
    kind = options[0]
    if kind.startswith("tuple["):
        item = kind[len("tuple[") :].split(",")[0].strip()
        parts = [p for p in text.strip().strip("()[]").split(",") if p.strip()]
        return tuple(_parse_scalar(item, p.strip()) for p in parts)
    return _parse_scalar(kind, text)


def split_assignment(assignment: str) -> tuple[str, str]:
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects key=value, got {assignment!r}")
    return key.strip(), value.strip()


def apply_overrides(configs: Iterable[Any], assignments: Iterable[str]) -> list[Any]:
    """Return `configs` with every `key=value` applied to the one config that has field `key`."""
    configs = list(configs)
    field_types = [{f.name: str(f.type) for f in dataclasses.fields(c)} for c in configs]
    changes: list[dict[str, Any]] = [{} for _ in configs]
    for assignment in assignments:
        key, text = split_assignment(assignment)
        owner = next((i for i, types in enumerate(field_types) if key in types), None)
        if owner is None:
            known = sorted(name for types in field_types for name in types)
            raise ValueError(f"unknown setting {key!r}; settings are: {', '.join(known)}")
        try:
            changes[owner][key] = parse_value(field_types[owner][key], text)
        except ValueError as exc:
            raise ValueError(
                f"bad value for {key}: {text!r} ({exc}; expected {field_types[owner][key]})"
            ) from None
    result = []
    for config, change in zip(configs, changes, strict=True):
        try:
            result.append(dataclasses.replace(config, **change) if change else config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid settings {change}: {exc}") from None
    return result
