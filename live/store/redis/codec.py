"""Records <-> Redis hashes.

A record is one hash of text fields. A field that is None is absent from the hash
(so clearing it is an HDEL), datetimes are `times.to_storage` text (text order is
time order, which the Lua scripts rely on), booleans "1"/"0", dicts and lists JSON,
bytes base64. Fields starting with "_" are the store's own (the insertion sequence)
and are not part of the record.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from live.store.times import from_storage, to_storage

R = TypeVar("R")


def encode_value(value: Any) -> str:
    """One Python value as hash field text (never None: leave the field out)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return to_storage(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def encode_fields(values: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Changes as (fields to set, fields to delete)."""
    to_set = {name: encode_value(v) for name, v in values.items() if v is not None}
    to_delete = [name for name, v in values.items() if v is None]
    return to_set, to_delete


def to_hash(record: Any) -> dict[str, str]:
    return encode_fields({f.name: getattr(record, f.name) for f in dataclasses.fields(record)})[0]


def from_hash(cls: type[R], fields: dict[str, str]) -> R:
    """Build a record from its hash; a missing optional field is None."""
    values: dict[str, Any] = {}
    for name, kind in _field_kinds(cls).items():
        text = fields.get(name)
        if text is not None:
            values[name] = _decode(kind, text)
        elif name in _optional_fields(cls):
            values[name] = None
    return cls(**values)


def pairs_to_dict(flat: list[str]) -> dict[str, str]:
    """HGETALL's flat answer from a Lua script -> dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _decode(kind: type, text: str) -> Any:
    if kind is bool:
        return text == "1"
    if kind is datetime:
        return from_storage(text)
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind in (dict, list):
        return json.loads(text)
    if kind is bytes:
        return base64.b64decode(text)
    return text


@cache
def _field_kinds(cls: type) -> dict[str, type]:
    """Each field's base type: Optional[X] -> X, Literal[...] -> str, dict[...] -> dict."""
    hints = typing.get_type_hints(cls)
    kinds: dict[str, type] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = args[0]
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            kinds[field.name] = str
        else:
            kinds[field.name] = origin or hint
    return kinds


@cache
def _optional_fields(cls: type) -> frozenset[str]:
    hints = typing.get_type_hints(cls)
    return frozenset(
        f.name for f in dataclasses.fields(cls) if type(None) in typing.get_args(hints[f.name])
    )
