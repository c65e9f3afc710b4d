"""The codecs of a topic: which serializer its keys and values use, and the per-message
encoders and decoders built from it (the serializers themselves are
:mod:`shoal.model.serializers`', re-exported here).

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

Lax decoding (the default) is msgspec's lax mode plus one conversion msgspec never makes: an
``int`` where the type declares a ``str`` becomes its decimal text, as Faust's ``coerce`` does,
so that ``DeviceAction(device_id=1)``, sent as ``{"device_id":1}``, is read back. It is tried
only after the one-call decode has failed, so a valid message costs nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from shoal.exceptions import ConfigError, DecodeError, EncodeError
from shoal.model.recordmeta import RecordMeta
from shoal.model.serializers import (
    _JSON,
    _RAW,
    Codec,
    Dumper,
    Serializer,
    _Raw,
    _split_optional,
    _type_name,
    dumps,
    get,
    loads,
    register,
)
from shoal.model.textfix import ints_as_text

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


def _as_record(tp: Any) -> RecordMeta | None:
    return tp if isinstance(tp, RecordMeta) else None


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


class _Unchanged(Exception):
    """The text pass changed nothing: the first error stands."""


def _text_retry(codec: Codec, value_type: Any) -> Callable[[bytes], Any] | None:
    """Decode again after a lax decode failed: as builtins, ints made text, then converted.

    Raises msgspec.ValidationError if the message is still wrong, and another exception if
    there is nothing the text pass could change. ``None`` if ``value_type`` has no str.
    """
    as_text = ints_as_text(value_type)
    if as_text is None:
        return None
    loads = codec.loads

    def retry(data: bytes) -> Any:
        raw = loads(data)
        fixed = as_text(raw)
        if fixed == raw:
            raise _Unchanged
        return msgspec.convert(fixed, value_type, strict=False)

    return retry


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
    retry = None if strict else _text_retry(codec, value_type)

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
            if retry is not None:
                try:
                    return retry(data)
                except msgspec.ValidationError as again:
                    raise validation_error(again, value_type, source) from again
                except Exception:  # nothing to make text of (or no builtins): exc stands
                    pass
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
    True: msgspec lax mode, and ints read as text where a str is declared). Raises
    :class:`~shoal.exceptions.DecodeError`; a type msgspec cannot handle is a ConfigError
    here, at build time.

    >>> make_decoder('json', Add)(b'{"a": 1, "b": 2}')
    <Add: a=1, b=2>
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
        return codec.raw_dumps
    codec_dumps = codec.raw_dumps
    return lambda obj: codec_dumps(
        obj.to_representation() if isinstance(type(obj), RecordMeta) else obj
    )


def _any_value_encoder(
    codec: Codec, codec_for: Callable[[RecordMeta], Codec]
) -> Callable[[Any], bytes | None]:
    """Encodes any value (None to None); a Record gets ``codec_for(its class)`` and its
    options, once per class. One frame for what runs once per produced value: the None
    check, the Record dispatch and the error handling of :func:`_guarded`."""
    per_class: dict[RecordMeta, Dumper] = {}
    plain = codec.raw_dumps
    source = codec.name

    def encode(obj: Any) -> bytes | None:
        if obj is None:
            return None
        cls: object = type(obj)
        try:
            if isinstance(cls, RecordMeta):
                fn = per_class.get(cls)
                if fn is None:
                    fn = per_class[cls] = _record_dumper(cls, codec_for(cls))
                data: bytes = fn(obj)
                return data
            return plain(obj)
        except EncodeError:
            raise
        except Exception as exc:
            raise EncodeError(f"cannot encode {type(obj).__name__} as {source}: {exc}") from exc

    return encode


def build_encoder(codec: Codec, value_type: Any = None) -> Callable[[Any], bytes | None]:
    """Encoder using exactly ``codec`` (no topic-level resolution); see :func:`make_encoder`."""
    target = _split_optional(value_type)[0]
    record = _as_record(target)
    if record is not None:
        dump = _record_dumper(record, codec)
    elif target is None or target is Any:
        return _any_value_encoder(codec, lambda _cls: codec)
    else:
        dump = codec.raw_dumps
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
        return _any_value_encoder(codec, lambda cls: _resolve(serializer, cls))
    return build_encoder(codec, value_type)
