"""Segment properties: a user's table to Neuroglancer's ``neuroglancer_segment_properties`` info.

The table is in *column form*, a mapping of equal-length columns (plain Python, or anything with
``.tolist()`` such as a NumPy array; no pandas needed)::

    {
        "ids": [12, 40, 7],                        # required: segment ids, ints (or decimal strings)
        "label": ["soma", "axon", "glia"],         # optional: strings, shown next to the id
        "description": ["...", "...", "..."],      # optional: strings
        "tags": [["big"], [], ["big", "odd"]],     # optional: any one column of lists of strings
        "volume_um3": [1.5, 0.25, 3.0],            # numbers -> a "number" property
        "cell_type": ["a", "b", "c"],              # other strings -> a "string" property
    }

Columns become properties in the table's order.  A column named ``label`` or ``description`` has
that type; a column of lists of strings is the (single) ``tags`` property; a column of numbers is a
``number`` property (``int32`` if every value is an integer that fits, ``uint32`` if they fit that,
``float32`` if any is a float); any other column of strings is a ``string`` property.  The same
table, as JSON, is what ``ngshow convert --segment-properties FILE.json`` reads.

See https://github.com/google/neuroglancer/blob/master/src/datasource/precomputed/segment_properties.md
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConvertError

__all__ = ["check_segment_properties", "load_table", "segment_properties_info"]

SEGMENT_PROPERTIES_TYPE = "neuroglancer_segment_properties"
_TYPES = ("label", "description", "string", "tags", "number")
_UNIQUE_TYPES = ("label", "description", "tags")
_NUMBER_TYPES = {
    "uint8": (0, 2**8 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "uint16": (0, 2**16 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint32": (0, 2**32 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "float32": None,
}
_FLOAT32_MAX = 3.4028234663852886e38
_UINT64_MAX = 2**64 - 1


def _column(name: str, values: Any) -> list[Any]:
    if hasattr(values, "tolist") and not isinstance(values, (str, bytes)):
        values = values.tolist()
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ConvertError(
            f"segment_properties[{name!r}] must be a list of values, got {type(values).__name__}"
        )
    # NumPy scalars (a list of np.int64, say) become the Python numbers they hold.
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _segment_id(value: Any, i: int) -> int:
    if isinstance(value, bool):
        raise ConvertError(f"segment_properties ids[{i}] is a bool; ids are integers")
    if isinstance(value, int):
        out = value
    elif isinstance(value, str) and value.isdecimal() and value.isascii():
        out = int(value)
    else:
        raise ConvertError(
            f"segment_properties ids[{i}] is {value!r} ({type(value).__name__}); ids are "
            "non-negative integers or their decimal strings"
        )
    if not 0 <= out <= _UINT64_MAX:
        raise ConvertError(f"segment_properties ids[{i}] = {out} is not a uint64")
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_property(name: str, values: list[Any]) -> dict[str, Any]:
    for i, v in enumerate(values):
        if isinstance(v, float) and not math.isfinite(v):
            raise ConvertError(f"segment_properties[{name!r}][{i}] is {v}; numbers must be finite")
        if abs(v) > _FLOAT32_MAX:
            raise ConvertError(
                f"segment_properties[{name!r}][{i}] = {v} is beyond float32's range"
            )
    if all(isinstance(v, int) for v in values):
        for data_type in ("int32", "uint32"):
            lo, hi = _NUMBER_TYPES[data_type]  # type: ignore[misc]
            if all(lo <= v <= hi for v in values):
                break
        else:
            raise ConvertError(
                f"segment_properties[{name!r}] has integers beyond int32/uint32; "
                "give them as floats to store them as float32"
            )
    else:
        data_type = "float32"
    return {"id": name, "type": "number", "data_type": data_type, "values": values}


def _tags_property(name: str, values: list[Any]) -> dict[str, Any]:
    vocabulary: dict[str, str] = {}  # lower case -> the spelling used
    for i, row in enumerate(values):
        for tag in row:
            if not tag or tag.startswith("#") or any(ch.isspace() for ch in tag):
                raise ConvertError(
                    f"segment_properties[{name!r}][{i}] has tag {tag!r}; tags are non-empty, "
                    "without spaces or a leading '#'"
                )
            seen = vocabulary.setdefault(tag.lower(), tag)
            if seen != tag:
                raise ConvertError(
                    f"segment_properties[{name!r}] has tags {seen!r} and {tag!r}, which "
                    "Neuroglancer matches case-insensitively as one tag"
                )
    tags = sorted(vocabulary.values())
    index = {t: k for k, t in enumerate(tags)}
    rows = [sorted({index[t] for t in row}) for row in values]
    return {"id": name, "type": "tags", "tags": tags, "values": rows}


def segment_properties_info(table: Mapping[str, Any]) -> dict[str, Any]:
    """The ``segment_properties/info`` document of a column-form ``table`` (see the module).

    Raises
    ------
    ConvertError
        If the table is not a mapping with an ``ids`` column, a column's length differs from the
        ids', ids repeat or are not uint64s, a number is not finite, or a column mixes types.
    """
    if not isinstance(table, Mapping):
        raise ConvertError(
            "segment_properties must be a mapping of columns {'ids': [...], 'label': [...], ...}, "
            f"got {type(table).__name__}"
        )
    if "ids" not in table:
        raise ConvertError("segment_properties needs an 'ids' column")
    ids = [_segment_id(v, i) for i, v in enumerate(_column("ids", table["ids"]))]
    if not ids:
        raise ConvertError("segment_properties has no ids")
    seen: set[int] = set()
    for i in ids:
        if i in seen:
            raise ConvertError(f"segment_properties ids repeat segment {i}")
        seen.add(i)
    properties: list[dict[str, Any]] = []
    has_tags = False
    for name, raw in table.items():
        if name == "ids":
            continue
        if not isinstance(name, str) or not name:
            raise ConvertError(f"segment_properties column names are strings, got {name!r}")
        values = _column(name, raw)
        if len(values) != len(ids):
            raise ConvertError(
                f"segment_properties[{name!r}] has {len(values)} values for {len(ids)} ids"
            )
        if all(isinstance(v, str) for v in values):
            kind = name if name in ("label", "description") else "string"
            properties.append({"id": name, "type": kind, "values": values})
        elif name in ("label", "description"):
            bad = next(v for v in values if not isinstance(v, str))
            raise ConvertError(
                f"segment_properties[{name!r}] holds {bad!r}; {name} values are strings"
            )
        elif all(_is_number(v) for v in values):
            properties.append(_number_property(name, values))
        elif all(
            isinstance(v, (list, tuple)) and all(isinstance(t, str) for t in v) for v in values
        ):
            if has_tags:
                raise ConvertError(
                    f"segment_properties[{name!r}] is a second tags column; Neuroglancer "
                    "allows one"
                )
            has_tags = True
            properties.append(_tags_property(name, values))
        else:
            raise ConvertError(
                f"segment_properties[{name!r}] must hold only strings, only numbers, or only "
                "lists of tag strings"
            )
    return {
        "@type": SEGMENT_PROPERTIES_TYPE,
        "inline": {"ids": [str(i) for i in ids], "properties": properties},
    }


def load_table(path: str) -> dict[str, Any]:
    """Read a column-form table from a JSON file (for the CLI)."""
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"cannot read segment properties {path}: {e}") from e
    if not isinstance(table, dict):
        raise ConvertError(f"{path} must hold a JSON object of columns, got {type(table).__name__}")
    return table


def check_segment_properties(doc: Any) -> list[str]:
    """What is wrong with a parsed ``segment_properties/info`` document (empty if nothing)."""
    if not isinstance(doc, dict):
        return ["must be a JSON object"]
    problems: list[str] = []
    if doc.get("@type") != SEGMENT_PROPERTIES_TYPE:
        problems.append(f"@type is {doc.get('@type')!r}, expected {SEGMENT_PROPERTIES_TYPE!r}")
    inline = doc.get("inline")
    if inline is None:
        return problems
    if not isinstance(inline, dict):
        return problems + ["inline must be an object"]
    ids = inline.get("ids")
    if not isinstance(ids, list) or not all(
        isinstance(i, str) and i.isdecimal() and i.isascii() and int(i) <= _UINT64_MAX for i in ids
    ):
        return problems + ["inline ids must be a list of decimal uint64 strings"]
    if len(set(int(i) for i in ids)) != len(ids):
        problems.append("inline ids are not unique")
    props = inline.get("properties")
    if not isinstance(props, list):
        return problems + ["inline properties must be a list"]
    names: set[str] = set()
    types: list[str] = []
    for k, prop in enumerate(props):
        where = f"property {k}"
        if not isinstance(prop, dict):
            problems.append(f"{where} must be an object")
            continue
        name, kind, values = prop.get("id"), prop.get("type"), prop.get("values")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: id is {name!r}, expected a string")
        elif name in names:
            problems.append(f"{where}: id {name!r} is used twice")
        else:
            names.add(name)
            where = f"property {name!r}"
        if kind not in _TYPES:
            problems.append(f"{where}: type is {kind!r}, expected one of {', '.join(_TYPES)}")
            continue
        types.append(kind)
        if not isinstance(values, list):
            problems.append(f"{where}: values must be a list")
            continue
        if len(values) != len(ids):
            problems.append(f"{where}: {len(values)} values for {len(ids)} ids")
        if kind in ("label", "description", "string"):
            if not all(isinstance(v, str) for v in values):
                problems.append(f"{where}: {kind} values must be strings")
        elif kind == "number":
            data_type = prop.get("data_type")
            if data_type not in _NUMBER_TYPES:
                problems.append(f"{where}: data_type is {data_type!r}, expected one of "
                                f"{', '.join(_NUMBER_TYPES)}")
            if not all(_is_number(v) and math.isfinite(v) for v in values):
                problems.append(f"{where}: values must be finite numbers")
        else:
            tags = prop.get("tags")
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                problems.append(f"{where}: tags must be a list of strings")
                continue
            if not all(
                isinstance(v, list)
                and all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < len(tags)
                        for t in v)
                and v == sorted(set(v))
                for v in values
            ):
                problems.append(f"{where}: values must be increasing lists of tag indices")
    for kind in _UNIQUE_TYPES:
        if types.count(kind) > 1:
            problems.append(f"{types.count(kind)} properties of type {kind!r}; at most one allowed")
    return problems
