"""Ints read back as text: the one lax conversion msgspec never makes, and Faust's ``coerce``
does. Where a type declares a ``str`` and the message holds an int (``{"device_id": 1}``
for ``device_id: str``), the int becomes its decimal text; nothing else changes.

:mod:`shoal.model.codecs` runs it only after a typed decode failed, so a valid message costs
nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec.inspect as mi

# The lax pass that reads an int as text where a str is declared works on builtins, with a
# function per type built once (a few hundred ns a message, against microseconds for walking
# msgspec's type tree each time). It only runs after a typed decode failed.
_Fix = Callable[[Any], Any]

# Types an int may already be valid for (in lax mode): in a union with one, an int stays.
_TAKE_INTS = (
    mi.IntType,
    mi.FloatType,
    mi.DecimalType,
    mi.BoolType,
    mi.DateTimeType,
    mi.TimeDeltaType,
    mi.EnumType,
    mi.LiteralType,
    mi.AnyType,
    mi.CustomType,
    mi.RawType,
)
_OBJECTS = (mi.StructType, mi.DataclassType, mi.TypedDictType)
_ARRAYS = (mi.CollectionType, mi.TupleType, mi.NamedTupleType)


def _same(value: Any) -> Any:
    return value


def _int_as_text(value: Any) -> Any:
    if type(value) is not int:  # not bool either: "True" is not what the producer wrote
        return value
    try:
        return str(value)
    except ValueError:  # more digits than sys.int_max_str_digits: left for msgspec to reject
        return value


def _members(tp: mi.Type) -> tuple[mi.Type, ...]:
    """The types a value of ``tp`` may be: a union's members, else ``tp``; constraints dropped."""
    while isinstance(tp, mi.Metadata):
        tp = tp.type
    if isinstance(tp, mi.UnionType):
        return tuple(m for member in tp.types for m in _members(member))
    return (tp,)


def _array_like(tp: mi.Type) -> bool:
    return isinstance(tp, _ARRAYS) or (isinstance(tp, mi.StructType) and tp.array_like)


def _text_fix(tp: mi.Type, memo: dict[int, _Fix | None]) -> _Fix | None:
    """The pass for a value of ``tp``; ``None`` where ``tp`` declares no str at all."""
    members = _members(tp)
    int_as_text = any(isinstance(m, mi.StrType) for m in members) and not any(
        isinstance(m, _TAKE_INTS) for m in members
    )
    objects = [m for m in members if isinstance(m, (*_OBJECTS, mi.DictType))]
    fix_object = _one_of([m for m in objects if not _array_like(m)], memo)
    fix_array = _one_of([m for m in members if _array_like(m)], memo)
    if not (int_as_text or fix_object or fix_array):
        return None
    fix_int = _int_as_text if int_as_text else _same
    fix_dict = fix_object or _same
    fix_list = fix_array or _same

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            return fix_dict(value)
        if isinstance(value, list):
            return fix_list(value)
        return fix_int(value)

    return fix


def _one_of(shapes: list[mi.Type], memo: dict[int, _Fix | None]) -> _Fix | None:
    """The pass for the one object (or array) type of a union; a tagged union goes by tag."""
    if len(shapes) == 1:
        return _shape_fix(shapes[0], memo)
    tagged = [s for s in shapes if isinstance(s, mi.StructType) and s.tag_field is not None]
    by_tag = {s.tag: f for s in tagged if (f := _shape_fix(s, memo)) is not None}
    if not by_tag or len(tagged) < len(shapes):  # none, or not told apart: left to msgspec
        return None
    tag_field = tagged[0].tag_field

    def fix(value: Any) -> Any:
        tag = value.get(tag_field) if isinstance(value, dict) else value[0] if value else None
        return by_tag.get(tag, _same)(value) if isinstance(tag, str | int) else value

    return fix


def _shape_fix(shape: mi.Type, memo: dict[int, _Fix | None]) -> _Fix | None:
    """:func:`_text_fix` of an object or array type; a recursive record reaches itself."""
    key = id(shape)
    if key in memo:
        return memo[key]
    bound: list[_Fix] = []
    memo[key] = lambda value: bound[0](value)  # used by the record's own fields, if recursive
    fix = _build_shape_fix(shape, memo)
    bound.append(fix or _same)
    memo[key] = fix
    return fix


def _build_shape_fix(shape: mi.Type, memo: dict[int, _Fix | None]) -> _Fix | None:
    if isinstance(shape, _OBJECTS) and not _array_like(shape):
        fields = tuple(
            (field.encode_name, fix)
            for field in shape.fields
            if (fix := _text_fix(field.type, memo)) is not None
        )
        if not fields:
            return None

        def fix_fields(value: dict[str, Any]) -> dict[str, Any]:
            fixed = dict(value)
            for name, fix in fields:
                if name in fixed:
                    fixed[name] = fix(fixed[name])
            return fixed

        return fix_fields
    if isinstance(shape, mi.DictType):
        key_fix, value_fix = _text_fix(shape.key_type, memo), _text_fix(shape.value_type, memo)
        if key_fix is None and value_fix is None:
            return None
        fix_key, fix_value = key_fix or _same, value_fix or _same
        return lambda value: {fix_key(k): fix_value(v) for k, v in value.items()}
    if isinstance(shape, mi.CollectionType):
        item_fix = _text_fix(shape.item_type, memo)
        if item_fix is None:
            return None
        return lambda value: [item_fix(v) for v in value]
    if isinstance(shape, mi.TupleType):
        item_types = list(shape.item_types)
    elif isinstance(shape, mi.NamedTupleType | mi.StructType):  # a struct here is array_like
        tag = [mi.AnyType()] if isinstance(shape, mi.StructType) and shape.tag_field else []
        item_types = tag + [field.type for field in shape.fields]
    else:
        return None
    fixes = [_text_fix(t, memo) for t in item_types]
    if not any(fixes):
        return None
    by_position = [f or _same for f in fixes]
    return lambda value: (
        [f(v) for f, v in zip(by_position, value, strict=False)] + value[len(by_position) :]
    )


def ints_as_text(value_type: Any) -> Callable[[Any], Any] | None:
    """The lax-mode pass turning ints into text where ``value_type`` declares a ``str``.

    Internal to shoal (used by Record.from_data too). Returns a function from builtins to
    builtins, or ``None`` when ``value_type`` declares no ``str`` at all.
    """
    if value_type is None or value_type is Any:
        return None
    return _text_fix(mi.type_info(value_type), {})
