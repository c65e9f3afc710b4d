"""Records: Faust-style typed messages built on :class:`msgspec.Struct`.

A Record declares its fields with annotations, exactly like ``faust.Record``::

    class Add(Record):
        a: int
        b: int = 0

    Add(a=4, b=4) == Add(4, 4)          # positional and keyword construction
    Add.loads(b'{"a": 4, "b": 4}')      # decode + validate
    Add(1, 2).dumps()                   # b'{"a":1,"b":2}'

Decoding (``loads``, ``from_data`` and the topic decoders of :mod:`shoal.model.codecs`) validates
every field against its annotation and, by default, *coerces* what msgspec's lax mode allows:
numeric strings to ``int``/``float`` (``"4"`` -> 4, ``"4.0"`` -> 4, ``"nan"`` -> nan), integral
floats to ``int`` (``4.0`` -> 4, but ``4.5`` is an error), ``"true"``/``"false"``/``"1"``/``"0"``
and ``1``/``0`` to ``bool``, unix timestamps (numbers or numeric strings) to ``datetime``, and
the string ``"null"`` to ``None`` for Optional fields; and, as Faust's ``coerce`` does, an
``int`` to its text for a ``str`` field (``4`` -> ``"4"``, also in lists, dicts and nested
records; not for ``int | str``, where 4 is valid as it is). Nothing else becomes a ``str``:
``4.5`` or ``true`` for a ``str`` field is an error naming the field, since ``"4.5"`` or
``"True"`` need not be what the producer meant. Declare ``class X(Record, coerce=False)`` to
accept only exact JSON types. The constructor does not validate, as with a dataclass (and
Faust's default): ``DeviceAction(device_id=1)`` keeps the int, is sent as ``1`` and read back
as ``"1"``.

A field whose default is ``None`` is optional, as in Faust: ``date: datetime = None`` is read
as ``date: datetime | None`` (decoding, JSON schema, signature, ``typing.get_type_hints``).
Any other default leaves the type as declared, so ``amount: float = 0.0`` rejects ``null``.

Records print as Faust's do: ``<Add: a=4, b=4>``.

Unknown fields are ignored (forward compatible), which is also how the ``"__faust"`` metadata
key written by Faust producers is skipped. Records are mutable, like Faust's; ``frozen=True``
is available (measured: it does not change decode speed, see ``bench/bench_decode.py``).
``gc=False`` does: about 20% faster decoding, safe for records that never take part in a
reference cycle (msgspec then leaves them out of the cycle collector).

Class keyword arguments: ``serializer`` (the record's own codec name, which wins over a
topic's, as in Faust), ``namespace`` and ``include_metadata`` (write Faust's ``"__faust"`` key
so Faust consumers can rebuild the model), ``coerce`` (above). Faust's ``isodates``,
``validation`` and ``decimals`` are accepted and always on; ``abstract`` is accepted and
ignored (shoal keeps no model registry). Every other keyword goes to msgspec (``frozen``,
``kw_only``, ``omit_defaults``, ``rename``, ``array_like``, ``gc`` ...), which rejects
unknown ones, such as Faust's ``date_parser``, with a TypeError. ``forbid_unknown_fields``
would also reject Faust's ``"__faust"`` key. Subclassing ``msgspec.StructMeta`` needs
msgspec >= 0.20.
"""

from __future__ import annotations

import operator
import reprlib
import types
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, ClassVar, Self

import msgspec

from shoal.model.codecs import (
    Codec,
    build_decoder,
    build_encoder,
    get,
    validation_error,
)
from shoal.model.recordmeta import RecordMeta, RecordOptions
from shoal.model.textfix import ints_as_text

__all__ = ["Record", "RecordOptions", "field_getter", "field_name"]


class Record(msgspec.Struct, metaclass=RecordMeta):
    """Base class of typed messages; subclass it and annotate the fields.

    Equality and ``__match_args__`` work as for a dataclass; ``repr`` is Faust's
    (``<Add: a=4, b=4>``). Field defaults may be mutable containers (``tags: list[str] = []``):
    msgspec copies them per instance.
    """

    _options: ClassVar[RecordOptions]

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__)
        return f"<{type(self).__name__}: {fields}>"

    def asdict(self) -> dict[str, Any]:
        """Return the fields as a dict (shallow: nested records stay records)."""
        return msgspec.structs.asdict(self)

    def to_representation(self) -> Any:
        """Return a JSON-ready copy: builtins only, nested records as dicts.

        Datetimes become ISO 8601 strings, Decimals strings, bytes base64; with
        ``include_metadata`` Faust's ``"__faust"`` key is added. (A list for
        ``array_like`` records.)
        """
        data = msgspec.to_builtins(self)
        if self._options.include_metadata and isinstance(data, dict):
            data["__faust"] = {"ns": self._options.namespace}
        return data

    def dumps(self, serializer: str | Codec | None = None) -> bytes:
        """Serialize with ``serializer``, else the record's own, else json."""
        data = _encoder(type(self), serializer or self._options.serializer or "json")(self)
        assert data is not None  # only None encodes to None
        return data

    @classmethod
    def loads(cls, data: bytes, serializer: str | Codec | None = None) -> Self:
        """Decode and validate ``data``; raises :class:`~shoal.exceptions.DecodeError`."""
        decoded: Self = _decoder(cls, serializer or cls._options.serializer or "json")(data)
        return decoded

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build a record from already-decoded builtins (a dict), validating as ``loads``."""
        coerce = cls._options.coerce
        try:
            return msgspec.convert(data, cls, strict=not coerce)
        except msgspec.ValidationError as exc:
            error = exc
        as_text = _ints_as_text(cls) if coerce else None
        fixed = as_text(data) if as_text is not None else data
        if fixed != data:
            try:
                return msgspec.convert(fixed, cls, strict=False)
            except msgspec.ValidationError as exc:
                error = exc
        raise validation_error(error, cls, "data") from error


# Building a msgspec Decoder costs microseconds: cache them so repeated Record.loads and
# dumps calls pay only for the work itself. An explicit serializer is used as given: only
# topic-level codec choice (shoal.model.codecs.make_decoder) lets a record's own one win.
@lru_cache(maxsize=256)
def _decoder(cls: type[Record], serializer: str | Codec) -> Callable[[bytes | None], Any]:
    return build_decoder(get(serializer), cls, strict=not cls._options.coerce)


@lru_cache(maxsize=256)
def _ints_as_text(cls: type[Record]) -> Callable[[Any], Any] | None:
    return ints_as_text(cls)


@lru_cache(maxsize=256)
def _encoder(cls: type[Record], serializer: str | Codec) -> Callable[[Any], bytes | None]:
    return build_encoder(get(serializer), cls)


def _record_field(selector: object) -> str | None:
    """The field name if ``selector`` is a Record class attribute such as ``Add.a``."""
    if isinstance(selector, types.MemberDescriptorType):
        owner = selector.__objclass__
        name = selector.__name__
        if isinstance(owner, msgspec.StructMeta) and name in owner.__struct_fields__:
            return name
    return None


def _reject(selector: object) -> TypeError:
    return TypeError(
        f"cannot use {selector!r} as a key selector: pass a Record field "
        "(e.g. BankTransfer.account_id) or a callable taking the value and returning the key"
    )


def field_getter(selector: object) -> Callable[[Any], Any]:
    """Turn a key selector into a key function, as ``Stream.group_by`` does.

    ``selector`` is a Record field accessed on the class (``BankTransfer.account_id``),
    giving a getter of that attribute, or any callable, returned unchanged. Anything else
    (field names as strings included) raises :class:`TypeError`.
    """
    name = _record_field(selector)
    if name is not None:
        return operator.attrgetter(name)
    if callable(selector):
        return selector
    raise _reject(selector)


def field_name(selector: object) -> str | None:
    """The field name of a Record field selector (``"account_id"``), ``None`` for a callable.

    Used to name repartition topics; raises :class:`TypeError` for anything that
    :func:`field_getter` would reject.
    """
    name = _record_field(selector)
    if name is not None:
        return name
    if callable(selector):
        return None
    raise _reject(selector)
