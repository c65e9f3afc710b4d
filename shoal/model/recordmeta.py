"""The metaclass of :class:`~shoal.model.records.Record` and its Faust-level options.

Apart from records so that the codecs can recognise a record class (``isinstance(cls,
RecordMeta)``) and read its options without importing the records module, which imports
them for ``Record.dumps``/``loads``.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass, replace
from typing import Any, Optional

import msgspec

# Faust options that need no code: msgspec always parses ISO dates, always validates and
# always decodes Decimals; "abstract" only kept Faust's registry clean, and we have none.
_ALWAYS_ON = frozenset({"isodates", "validation", "decimals", "abstract"})


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """Faust-level options of a Record class, read as ``MyRecord._options``."""

    serializer: str | None = None
    """Codec name of the record itself; ``None`` means "the topic's, or json"."""
    namespace: str = ""
    """Name written in Faust's ``"__faust": {"ns": ...}`` metadata."""
    include_metadata: bool = False
    """Write the ``"__faust"`` key on encode (Faust's default is True; shoal's is False
    because no shoal consumer needs it and it costs encode speed)."""
    coerce: bool = True
    """Decode with msgspec's lax mode (see the module docstring)."""


class RecordMeta(msgspec.StructMeta):
    """Metaclass of :class:`Record`: takes Faust's class options, passes the rest to msgspec."""

    _options: RecordOptions

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        /,
        **kwargs: Any,
    ) -> RecordMeta:
        inherited = next((b._options for b in bases if isinstance(b, RecordMeta)), RecordOptions())
        changes: dict[str, Any] = {}
        for option in ("serializer", "include_metadata", "coerce"):
            if option in kwargs:
                changes[option] = kwargs.pop(option)
        own_namespace = kwargs.pop("namespace", None)
        for option in _ALWAYS_ON & kwargs.keys():
            del kwargs[option]
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        changes["namespace"] = own_namespace or f"{cls.__module__}.{cls.__qualname__}"
        cls._options = replace(inherited, **changes)
        _none_default_is_optional(cls)
        return cls


if sys.version_info >= (3, 14):
    import annotationlib

    def _own_annotations(cls: type) -> dict[str, Any]:
        # FORWARDREF: a class named in an annotation may not exist yet.
        return annotationlib.get_annotations(cls, format=annotationlib.Format.FORWARDREF)

else:

    def _own_annotations(cls: type) -> dict[str, Any]:
        return inspect.get_annotations(cls)


def _none_default_is_optional(cls: RecordMeta) -> None:
    """Make ``date: datetime = None`` mean ``date: datetime | None``, as in Faust.

    Faust puts a field whose default is None among the optional ones and never validates
    None against its type; msgspec would reject the None it encoded itself. Rewriting the
    annotation once, here, keeps decoding one msgspec call, and the JSON schema, the
    signature and ``typing.get_type_hints`` all say the same. Only this class's own fields
    are rewritten: inherited ones were rewritten with their class.
    """
    fields: tuple[str, ...] = cls.__struct_fields__
    defaults: tuple[Any, ...] = cls.__struct_defaults__
    none_default = {
        name
        for name, default in zip(fields[len(fields) - len(defaults) :], defaults, strict=True)
        if default is None
    }
    annotations = _own_annotations(cls)
    optional = {
        # A string annotation (``from __future__ import annotations``) is evaluated later,
        # by msgspec, in the class's module; a ForwardRef inside Optional keeps it so.
        name: Optional[typing.ForwardRef(ann) if isinstance(ann, str) else ann]  # noqa: UP045
        for name, ann in annotations.items()
        if name in none_default
    }
    if optional:
        cls.__annotations__ = annotations | optional
