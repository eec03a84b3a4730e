"""The JSON file written next to an exported track: how it was made, so it can be found and remade.

It sits at `<track path>.json` (e.g. `song.mp3.json`): the full name is kept, so exporting one song as
both WAV and MP3 into one folder gives two sidecars instead of one overwriting the other.
The schema is in docs/EXPORT.md; `track` holds what the caller passes (title, conditioning per section,
lineage, seeds, model, created) unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cocompose.export.errors import ExportError

SCHEMA = "cocompose.export/1"


def sidecar_path_for(track_path: Path) -> Path:
    return track_path.with_name(track_path.name + ".json")


def encode_json(document: Mapping[str, Any], what: str) -> bytes:
    """`document` as UTF-8 JSON, refusing (by key) anything JSON cannot hold faithfully, NaN included."""
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"the {what} cannot be written as JSON: {exc}{locate_problem(document)}") from exc
    return (text + "\n").encode("utf-8")


def locate_problem(value: Any, where: str = "") -> str:
    """' (at key a.b[2])' for the first value json cannot encode, so the caller can find it; '' if none."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f" (key {key!r} under {where or 'the top level'} is not text)"
            found = locate_problem(item, f"{where}.{key}" if where else key)
            if found:
                return found
        return ""
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = locate_problem(item, f"{where}[{index}]")
            if found:
                return found
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return f" (at {where or 'the top level'}: {value})"
    if value is None or isinstance(value, str | int | float | bool):
        return ""
    return f" (at {where or 'the top level'}: a {type(value).__name__})"


def finite_or_none(value: float | None) -> float | None:
    """JSON has no infinity: an undefined loudness or the peak of silence is written as null."""
    return round(value, 3) if value is not None and math.isfinite(value) else None
