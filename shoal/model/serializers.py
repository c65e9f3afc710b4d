"""Serializers ("codecs") by name: what turns a value into bytes and back.

Built in: ``json`` and ``msgpack`` (msgspec; Records, datetimes, Decimals, UUIDs, containers
and primitives), ``raw`` (bytes pass through, ``str`` is UTF-8 encoded) and ``binary``
(base64). Codecs compose with ``|`` as in Faust: ``'json|binary'`` dumps with json then base64,
and loads in reverse; ``get('json') | get('binary')`` is the same codec.

No pickle codec is registered, on purpose: unpickling executes code chosen by whoever can
write to the topic. A user who trusts every producer may ``register('pickle', ...)`` their own
at their own risk.

Which codec a topic uses, and the per-message encoders and decoders built from it, are
:mod:`shoal.model.codecs`'.
"""

from __future__ import annotations

import base64
import binascii
import operator
import types
from collections.abc import Callable
from decimal import Decimal
from functools import reduce
from typing import Any, TypeAlias, Union, get_args, get_origin

import msgspec

from shoal.exceptions import ConfigError, DecodeError, EncodeError

__all__ = ["Codec", "dumps", "get", "loads", "register"]

Loader = Callable[[bytes], Any]
Dumper = Callable[[Any], bytes]


class Codec:
    """A serializer: ``dumps(obj) -> bytes`` and ``loads(bytes) -> obj``.

    Subclass it and :func:`register` an instance to add a serializer. ``loads`` and
    ``dumps`` raise :class:`~shoal.exceptions.DecodeError` / ``EncodeError``. Override
    :meth:`typed_loader` when the format can decode straight into a type faster than
    ``loads`` followed by :func:`msgspec.convert`.
    """

    name: str = ""
    #: ``dumps`` takes Record instances as they are; if False it is given
    #: ``record.to_representation()`` (builtins), as Faust does for every codec.
    accepts_records: bool = False

    def dumps(self, obj: Any) -> bytes:
        """Serialize ``obj`` to bytes."""
        raise NotImplementedError

    def loads(self, data: bytes) -> Any:
        """Deserialize ``data`` into Python objects."""
        raise NotImplementedError

    @property
    def raw_dumps(self) -> Dumper:
        """``dumps``, or a faster function that may raise any exception instead of
        EncodeError (the encoders that call it once per message say what failed)."""
        return self.dumps

    def typed_loader(self, value_type: Any, *, strict: bool) -> Loader:
        """Return a function decoding bytes into ``value_type`` (``None``: no conversion).

        The function may raise :class:`msgspec.ValidationError` or any other exception;
        :func:`build_decoder` turns them into DecodeError. ``strict=False`` allows msgspec's
        lax coercions (see :mod:`shoal.model.records`).
        """
        if value_type is None or value_type is Any:
            return self.loads
        loads = self.loads
        return lambda data: msgspec.convert(loads(data), value_type, strict=strict)

    def __or__(self, other: Codec | str) -> Codec:
        return _Chain(self, get(other))

    def __ror__(self, other: str) -> Codec:
        return _Chain(get(other), self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


Serializer: TypeAlias = str | Codec | None


class _Chain(Codec):
    """``first | then``: dumps through ``first`` then ``then``; loads the other way round."""

    def __init__(self, first: Codec, then: Codec) -> None:
        self.first = first
        self.then = then
        self.name = f"{first.name}|{then.name}"
        self.accepts_records = first.accepts_records

    def dumps(self, obj: Any) -> bytes:
        return self.then.dumps(self.first.dumps(obj))

    def loads(self, data: bytes) -> Any:
        return self.first.loads(self.then.loads(data))

    def typed_loader(self, value_type: Any, *, strict: bool) -> Loader:
        outer = self.first.typed_loader(value_type, strict=strict)
        inner = self.then.loads
        return lambda data: outer(inner(data))


def _enc_hook(obj: Any) -> Any:
    # Faust's JSON encoder honours a ``__json__()`` method; keep that for user types.
    to_json = getattr(obj, "__json__", None)
    if to_json is None:
        raise TypeError(f"objects of type {type(obj).__name__} are not serializable")
    return to_json()


class _MsgspecCodec(Codec):
    """json and msgpack: msgspec encoders/decoders, typed decoding without Python per field."""

    accepts_records = True

    def __init__(
        self, name: str, encode: Dumper, decode: Loader, typed: Callable[[Any, bool], Loader]
    ) -> None:
        self.name = name
        self._encode = encode
        self._decode = decode
        self._typed = typed

    @property
    def raw_dumps(self) -> Dumper:
        return self._encode

    def dumps(self, obj: Any) -> bytes:
        try:
            return self._encode(obj)
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
            raise EncodeError(f"cannot encode {type(obj).__name__} as {self.name}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        try:
            return self._decode(data)
        except msgspec.DecodeError as exc:
            problem = f"malformed input: {exc}"
            raise DecodeError(f"cannot decode a value from {self.name}: {problem}") from exc

    def typed_loader(self, value_type: Any, *, strict: bool) -> Loader:
        if value_type is None or value_type is Any:
            return self._decode
        return self._typed(value_type, strict)


def _json_typed(value_type: Any, strict: bool) -> Loader:
    return msgspec.json.Decoder(value_type, strict=strict).decode


def _msgpack_typed(value_type: Any, strict: bool) -> Loader:
    return msgspec.msgpack.Decoder(value_type, strict=strict).decode


# Text forms a raw key can be parsed into, as Faust does for raw keys typed int/float/Decimal.
_PARSED_FROM_TEXT: tuple[type, ...] = (int, float, Decimal)


class _BytesCodec(Codec):
    """Codecs whose payload is opaque bytes (raw, binary); ``str`` is UTF-8."""

    def _wrap(self, data: bytes) -> bytes:
        return data

    def _unwrap(self, data: bytes) -> bytes:
        return data

    def dumps(self, obj: Any) -> bytes:
        if isinstance(obj, bytes):
            payload = obj
        elif isinstance(obj, str):
            payload = obj.encode()
        elif isinstance(obj, bytearray | memoryview):
            payload = bytes(obj)
        elif isinstance(obj, _PARSED_FROM_TEXT) and not isinstance(obj, bool):
            payload = str(obj).encode()
        else:
            raise EncodeError(
                f"cannot encode {type(obj).__name__} as {self.name}: it takes bytes or str; "
                "use the 'json' serializer for structured values"
            )
        return self._wrap(payload)

    def loads(self, data: bytes) -> Any:
        return self._unwrap(data)

    def typed_loader(self, value_type: Any, *, strict: bool) -> Loader:
        target, _ = _split_optional(value_type)
        unwrap = self._unwrap
        if target is None or target is Any or target is bytes:
            return unwrap
        if target is str:
            return lambda data: unwrap(data).decode()
        if target in _PARSED_FROM_TEXT:
            parse: Callable[[str], Any] = target
            return lambda data: parse(unwrap(data).decode())
        raise ConfigError(
            f"the {self.name!r} serializer carries bytes and cannot decode "
            f"{_type_name(value_type)}; use bytes, str, int, float or Decimal, or 'json'"
        )


class _Binary(_BytesCodec):
    name = "binary"

    def _wrap(self, data: bytes) -> bytes:
        return base64.b64encode(data)

    def _unwrap(self, data: bytes) -> bytes:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise DecodeError(f"cannot decode a value from binary: invalid base64: {exc}") from exc


class _Raw(_BytesCodec):
    name = "raw"


_JSON = _MsgspecCodec(
    "json",
    msgspec.json.Encoder(enc_hook=_enc_hook).encode,
    msgspec.json.Decoder().decode,
    _json_typed,
)
_MSGPACK = _MsgspecCodec(
    "msgpack",
    msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode,
    msgspec.msgpack.Decoder().decode,
    _msgpack_typed,
)
_RAW = _Raw()
_registry: dict[str, Codec] = {c.name: c for c in (_JSON, _MSGPACK, _RAW, _Binary())}


def register(name: str, codec: Codec) -> None:
    """Make ``codec`` available as ``name`` (replacing any codec of that name)."""
    if not name or "|" in name:
        raise ValueError(f"invalid codec name {name!r}: non-empty, without '|'")
    if not isinstance(codec, Codec):
        raise TypeError(f"register() takes a Codec instance, not {codec!r}")
    if not codec.name:
        codec.name = name
    _registry[name] = codec


def _lookup(name: str) -> Codec:
    try:
        return _registry[name]
    except KeyError:
        hint = " (not built in on purpose: see shoal.model.codecs)" if name == "pickle" else ""
        known = ", ".join(sorted(_registry))
        raise ConfigError(f"unknown serializer {name!r}{hint}; registered: {known}") from None


def get(codec: str | Codec) -> Codec:
    """Return the codec for a name such as ``'json'`` or ``'json|binary'``, or ``codec``."""
    if isinstance(codec, Codec):
        return codec
    return reduce(operator.or_, (_lookup(part.strip()) for part in codec.split("|")))


def dumps(serializer: str | Codec | None, obj: Any) -> bytes:
    """Serialize ``obj``; with ``serializer=None`` bytes pass through and str is UTF-8."""
    return (_RAW if serializer is None else get(serializer)).dumps(obj)


def loads(serializer: str | Codec | None, data: bytes) -> Any:
    """Deserialize ``data``; with ``serializer=None`` it is returned unchanged."""
    return data if serializer is None else get(serializer).loads(data)


def _split_optional(tp: Any) -> tuple[Any, bool]:
    """``(the type without None, whether None is allowed)``; the type is kept if a Union."""
    if tp is None or tp is type(None):
        return None, True
    if tp is Any:
        return tp, True
    if get_origin(tp) in (Union, types.UnionType):
        args = get_args(tp)
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args):
            return (rest[0] if len(rest) == 1 else tp), True
    return tp, False


def _type_name(tp: Any) -> str:
    if tp is None:
        return "a value"
    return tp.__qualname__ if isinstance(tp, type) else repr(tp).replace("typing.", "")
