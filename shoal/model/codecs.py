"""Serializers ("codecs") by name, and the per-message encoders/decoders built from them.

Built-in codecs: ``json`` and ``msgpack`` (msgspec; Records, datetimes, Decimals, UUIDs,
containers and primitives), ``raw`` (bytes pass through, ``str`` is UTF-8 encoded) and
``binary`` (base64). Codecs compose with ``|`` as in Faust: ``'json|binary'`` dumps with json
then base64, and loads in reverse; ``get('json') | get('binary')`` is the same codec.

No pickle codec is registered, on purpose: unpickling executes code chosen by whoever can
write to the topic. A user who trusts every producer may ``register('pickle', ...)`` their
own at their own risk.

The hot path does not call :meth:`Codec.loads`: :func:`make_decoder` builds once, per topic,
a function that turns message bytes into the declared type. For json/msgpack and a typed
value that function is one ``msgspec`` ``Decoder.decode`` call inside a ``try``.

How the codec is chosen for a topic (:func:`make_decoder`, :func:`make_encoder`):

* A Record class declared with its own ``serializer=`` uses it, whatever the topic says
  (Faust: a model's own serializer wins).
* A Record type with the ``raw`` serializer (Faust's default for keys) uses ``json``: raw
  bytes cannot carry a record, and json is what Faust's default model serializer writes.
* ``serializer=None`` means ``raw`` for ``str``/``bytes`` types and ``json`` otherwise.
* ``raw`` (and ``binary``) decode to ``bytes``, ``str`` (UTF-8), or parse the text as ``int``,
  ``float`` or ``Decimal`` like Faust does for raw keys; other types are a ConfigError.
"""

from __future__ import annotations

import base64
import binascii
import operator
import re
import types
from collections.abc import Callable
from decimal import Decimal
from functools import reduce
from typing import Any, TypeAlias, Union, get_args, get_origin

import msgspec

from shoal.exceptions import ConfigError, DecodeError, EncodeError
from shoal.model.recordmeta import RecordMeta

__all__ = [
    "Codec",
    "build_decoder",
    "build_encoder",
    "dumps",
    "get",
    "loads",
    "make_decoder",
    "make_encoder",
    "register",
]

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


def _as_record(tp: Any) -> RecordMeta | None:
    return tp if isinstance(tp, RecordMeta) else None


def _type_name(tp: Any) -> str:
    if tp is None:
        return "a value"
    return tp.__qualname__ if isinstance(tp, type) else repr(tp).replace("typing.", "")


def _resolve(serializer: Serializer, target: Any) -> Codec:
    """The codec used for a topic whose type (None removed) is ``target``."""
    record = _as_record(target)
    if record is not None:
        if record._options.serializer:
            return get(record._options.serializer)
        codec = _JSON if serializer is None else get(serializer)
        return _JSON if isinstance(codec, _Raw) else codec
    if serializer is None:
        return _RAW if target in (str, bytes) else _JSON
    return get(serializer)


_AT_PATH = re.compile(r"(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]*)`")


def validation_error(exc: msgspec.ValidationError, value_type: Any, source: str) -> DecodeError:
    """Turn msgspec's "Expected `int`, got `str` - at `$.a`" into a DecodeError with ``field``.

    Internal to shoal (used by Record.from_data too).
    """
    match = _AT_PATH.fullmatch(str(exc))
    assert match is not None  # the pattern matches any string
    problem = match["problem"]
    path = (match["path"] or "").removeprefix(".")
    missing = _MISSING.fullmatch(problem)
    if missing:
        path = f"{path}.{missing['name']}" if path else missing["name"]
    field = path or None
    where = f"field {field!r}: " if field else ""
    return DecodeError(
        f"cannot decode {_type_name(value_type)} from {source}: {where}{problem}", field=field
    )


def build_decoder(
    codec: Codec, value_type: Any = None, *, strict: bool = False
) -> Callable[[bytes | None], Any]:
    """Decoder using exactly ``codec`` (no topic-level resolution); see :func:`make_decoder`."""
    type_name = _type_name(value_type)
    try:
        load = codec.typed_loader(value_type, strict=strict)
    except TypeError as exc:  # msgspec rejects types it cannot decode into
        raise ConfigError(f"cannot decode {type_name} from {codec.name}: {exc}") from exc
    allows_none = _split_optional(value_type)[1]
    source = codec.name

    def decode(data: bytes | None) -> Any:
        if data is None:
            if allows_none:
                return None
            raise DecodeError(
                f"cannot decode {type_name} from {source}: message has no value (a tombstone?); "
                f"declare the type Optional[{type_name}] to receive None"
            )
        try:
            return load(data)
        except DecodeError:
            raise
        except msgspec.ValidationError as exc:
            raise validation_error(exc, value_type, source) from exc
        except Exception as exc:
            problem = "malformed input: " if isinstance(exc, msgspec.DecodeError) else ""
            raise DecodeError(f"cannot decode {type_name} from {source}: {problem}{exc}") from exc

    return decode


def make_decoder(
    serializer: str | Codec | None, value_type: Any = None, *, coerce: bool | None = None
) -> Callable[[bytes | None], Any]:
    """Build the function decoding one message value (or key) of a topic.

    ``value_type`` is a Record class, any type msgspec decodes (``int``, ``list[Point]``,
    ``Optional[Add]``...), or ``None`` for plain Python objects; like Faust's ``value_type``
    it may also be a serializer name or Codec. ``None`` input (a tombstone) decodes to
    ``None`` only if the type allows it. ``coerce`` overrides the Record's option (default
    True: msgspec lax mode). Raises :class:`~shoal.exceptions.DecodeError`; a type msgspec
    cannot handle is a ConfigError here, at build time.

    >>> make_decoder('json', Add)(b'{"a": 1, "b": 2}')
    Add(a=1, b=2)
    """
    if isinstance(value_type, str | Codec):
        serializer, value_type = value_type, None
    target = _split_optional(value_type)[0]
    if coerce is None:
        record = _as_record(target)
        coerce = record._options.coerce if record is not None else True
    return build_decoder(_resolve(serializer, target), value_type, strict=not coerce)


def _record_dumper(record: RecordMeta, codec: Codec) -> Dumper:
    if codec.accepts_records and not record._options.include_metadata:
        return codec.dumps
    codec_dumps = codec.dumps
    return lambda obj: codec_dumps(
        obj.to_representation() if isinstance(type(obj), RecordMeta) else obj
    )


def _any_value_dumper(codec: Codec, codec_for: Callable[[RecordMeta], Codec]) -> Dumper:
    """Dumps any value; a Record gets ``codec_for(its class)`` and its options, once per class."""
    per_class: dict[RecordMeta, Dumper] = {}
    plain = codec.dumps

    def dump(obj: Any) -> bytes:
        cls: object = type(obj)
        if isinstance(cls, RecordMeta):
            fn = per_class.get(cls)
            if fn is None:
                fn = per_class[cls] = _record_dumper(cls, codec_for(cls))
            data: bytes = fn(obj)
            return data
        return plain(obj)

    return dump


def build_encoder(codec: Codec, value_type: Any = None) -> Callable[[Any], bytes | None]:
    """Encoder using exactly ``codec`` (no topic-level resolution); see :func:`make_encoder`."""
    target = _split_optional(value_type)[0]
    record = _as_record(target)
    if record is not None:
        dump = _record_dumper(record, codec)
    elif target is None or target is Any:
        dump = _any_value_dumper(codec, lambda _cls: codec)
    else:
        dump = codec.dumps
    return _guarded(dump, codec.name)


def _guarded(dump: Dumper, source: str) -> Callable[[Any], bytes | None]:
    def encode(obj: Any) -> bytes | None:
        if obj is None:
            return None
        try:
            return dump(obj)
        except EncodeError:
            raise
        except Exception as exc:
            raise EncodeError(f"cannot encode {type(obj).__name__} as {source}: {exc}") from exc

    return encode


def make_encoder(
    serializer: str | Codec | None, value_type: Any = None
) -> Callable[[Any], bytes | None]:
    """Build the function encoding one message value (or key); ``None`` encodes to ``None``.

    Codec choice is the same as :func:`make_decoder`'s, so what a topic writes it can read.
    With no ``value_type``, Record values still get their own class's serializer and
    ``include_metadata``. Raises :class:`~shoal.exceptions.EncodeError`.
    """
    if isinstance(value_type, str | Codec):
        serializer, value_type = value_type, None
    target = _split_optional(value_type)[0]
    codec = _resolve(serializer, target)
    if target is None or target is Any:
        return _guarded(_any_value_dumper(codec, lambda cls: _resolve(serializer, cls)), codec.name)
    return build_encoder(codec, value_type)
