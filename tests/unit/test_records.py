"""Records: construction, Faust-compatible methods, decoding rules, key selectors."""

from __future__ import annotations

import datetime
import operator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.exceptions import ConfigError, DecodeError
from shoal.model.records import Record, RecordOptions, field_getter, field_name


class Add(Record):
    a: int
    b: int


class Point(Record):
    x: int
    y: int = 0


class Polygon(Record):
    name: str
    points: list[Point] = []
    labels: dict[str, Point] = {}
    created: datetime.datetime | None = None
    price: Decimal | None = None
    note: str | None = None


class BankTransfer(Record):
    account_id: str
    amount: float


class Strict(Record, coerce=False):
    a: int


class Tagged(Record, serializer="msgpack", include_metadata=True, namespace="faust.Tagged"):
    v: int


class SubTagged(Tagged):
    w: int = 0


# mypy's dataclass_transform support rejects frozen subclasses of a non-frozen base; it works.
class Frozen(Record, frozen=True, kw_only=True):  # type: ignore[misc]
    a: int


class FaustOptions(Record, isodates=True, validation=True, decimals=True):
    a: int


class Mixed(Record):
    i: int
    s: str
    f: float
    nested: list[list[int]]
    points: list[Point]


def test_keyword_positional_and_default_construction() -> None:
    assert Add(a=4, b=4) == Add(4, 4)
    assert Point(1) == Point(x=1, y=0)
    assert Add(1, 2) != Add(2, 1)


def test_records_are_mutable_by_default() -> None:
    add = Add(1, 2)
    add.a = 10
    assert add == Add(10, 2)


def test_mutable_defaults_are_not_shared() -> None:
    first, second = Polygon("p"), Polygon("q")
    first.points.append(Point(1))
    assert second.points == []


def test_frozen_and_kw_only_pass_through_to_msgspec() -> None:
    record = Frozen(a=1)
    with pytest.raises(AttributeError):
        record.a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        Frozen(1)  # type: ignore[call-arg]


def test_unknown_class_option_is_rejected() -> None:
    with pytest.raises(TypeError, match="date_parser"):

        class Bad(Record, date_parser=str):
            a: int


def test_options_are_stored_and_inherited() -> None:
    assert Add._options == RecordOptions(namespace=f"{__name__}.Add")
    assert Tagged._options.serializer == "msgpack"
    assert Tagged._options.include_metadata is True
    assert Tagged._options.namespace == "faust.Tagged"
    assert SubTagged._options.serializer == "msgpack"
    assert SubTagged._options.namespace == f"{__name__}.SubTagged"
    assert Strict._options.coerce is False
    assert FaustOptions.loads(b'{"a": 1}') == FaustOptions(1)


def test_asdict_is_shallow() -> None:
    poly = Polygon("p", [Point(1, 2)])
    assert poly.asdict()["points"] == [Point(1, 2)]
    assert poly.asdict()["name"] == "p"


def test_to_representation_is_json_ready() -> None:
    poly = Polygon(
        "p",
        [Point(1, 2)],
        {"k": Point(3)},
        datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
        Decimal("1.10"),
    )
    assert poly.to_representation() == {
        "name": "p",
        "points": [{"x": 1, "y": 2}],
        "labels": {"k": {"x": 3, "y": 0}},
        "created": "2024-05-01T12:30:00Z",
        "price": "1.10",
        "note": None,
    }


def test_include_metadata_writes_faust_key() -> None:
    assert Tagged(1).to_representation() == {"v": 1, "__faust": {"ns": "faust.Tagged"}}
    assert msgspec.json.decode(Tagged(1).dumps("json")) == {
        "v": 1,
        "__faust": {"ns": "faust.Tagged"},
    }


def test_dumps_and_loads_default_to_json() -> None:
    assert Add(1, 2).dumps() == b'{"a":1,"b":2}'
    assert Add.loads(b'{"a":1,"b":2}') == Add(1, 2)


def test_own_serializer_is_the_default_and_explicit_one_wins() -> None:
    data = Tagged(5).dumps()
    assert msgspec.msgpack.decode(data) == {"v": 5, "__faust": {"ns": "faust.Tagged"}}
    assert Tagged.loads(data) == Tagged(5)
    assert Tagged.loads(b'{"v": 5}', "json") == Tagged(5)


def test_nested_types_round_trip() -> None:
    poly = Polygon(
        "p",
        [Point(1, 2), Point(3)],
        {"a": Point(4, 5)},
        datetime.datetime(2024, 5, 1, 12, 30, 15, 123456),
        Decimal("12.3400"),
        None,
    )
    for serializer in ("json", "msgpack", "json|binary"):
        assert Polygon.loads(poly.dumps(serializer), serializer) == poly


def test_faust_metadata_key_and_unknown_fields_are_ignored() -> None:
    faust_json = (
        b'{"account_id": "acc-1", "amount": 12.5, "currency": "EUR",'
        b' "__faust": {"ns": "examples.groupby.BankTransfer"}}'
    )
    assert BankTransfer.loads(faust_json) == BankTransfer("acc-1", 12.5)


def test_nested_faust_metadata_is_ignored() -> None:
    data = (
        b'{"name": "p", "__faust": {"ns": "shapes.Polygon"},'
        b' "points": [{"x": 1, "y": 2, "__faust": {"ns": "shapes.Point"}}]}'
    )
    assert Polygon.loads(data) == Polygon("p", [Point(1, 2)])


def test_faust_style_dates_and_decimals_decode() -> None:
    # Faust writes datetimes with isoformat() and Decimals as strings.
    data = b'{"name": "p", "created": "2024-05-01T12:30:15.123456+00:00", "price": "0.1"}'
    poly = Polygon.loads(data)
    assert poly.created == datetime.datetime(2024, 5, 1, 12, 30, 15, 123456, datetime.UTC)
    assert poly.price == Decimal("0.1")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": "4", "b": 4.0}', Add(4, 4)),
        (b'{"a": "4.0", "b": -1}', Add(4, -1)),
    ],
)
def test_lax_coercion_by_default(data: bytes, expected: Add) -> None:
    assert Add.loads(data) == expected


def test_lax_mode_still_rejects_lossy_values() -> None:
    with pytest.raises(DecodeError) as info:
        Add.loads(b'{"a": 4.5, "b": 1}')
    assert info.value.field == "a"
    with pytest.raises(DecodeError) as info:
        Polygon.loads(b'{"name": 4.5}')
    assert info.value.field == "name"


def test_coerce_false_requires_exact_types() -> None:
    assert Strict.loads(b'{"a": 4}') == Strict(4)
    with pytest.raises(DecodeError, match="Expected `int`, got `str`") as info:
        Strict.loads(b'{"a": "4"}')
    assert info.value.field == "a"


def test_type_error_names_record_field_and_problem() -> None:
    with pytest.raises(DecodeError) as info:
        Add.loads(b'{"a": "four", "b": 1}')
    assert info.value.field == "a"
    message = str(info.value)
    assert "Add" in message
    assert "'a'" in message
    assert "Expected `int`, got `str`" in message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"name": "p", "points": [{"x": 1}, {"x": "q"}]}', "points[1].x"),
        (b'{"name": "p", "points": [{"y": 1}]}', "points[0].x"),
        (b'{"name": "p", "labels": {"k": {"x": []}}}', "labels[...].x"),
        (b"{}", "name"),
    ],
)
def test_nested_error_field_paths(data: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        Polygon.loads(data)
    assert info.value.field == field
    assert repr(field) in str(info.value)


def test_malformed_input_has_no_field() -> None:
    with pytest.raises(DecodeError, match="malformed") as info:
        Add.loads(b'{"a": 1,')
    assert info.value.field is None


def test_from_data_validates_like_loads() -> None:
    assert Add.from_data({"a": "1", "b": 2}) == Add(1, 2)
    with pytest.raises(DecodeError) as info:
        Add.from_data({"a": 1, "b": "x"})
    assert info.value.field == "b"


def test_loads_with_raw_serializer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="raw"):
        Add.loads(b"{}", "raw")


@given(
    st.builds(
        Mixed,
        i=st.integers(min_value=-(2**63), max_value=2**63 - 1),
        s=st.text(),
        f=st.floats(allow_nan=False, allow_infinity=False),
        nested=st.lists(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1))),
        points=st.lists(st.builds(Point, st.integers(-1000, 1000), st.integers(-1000, 1000))),
    ),
    st.sampled_from(["json", "msgpack", "json|binary"]),
)
def test_round_trip_property(record: Mixed, serializer: str) -> None:
    assert Mixed.loads(record.dumps(serializer), serializer) == record


def test_field_getter_on_descriptor_reads_the_field() -> None:
    get = field_getter(BankTransfer.account_id)
    assert get(BankTransfer("acc-9", 1.0)) == "acc-9"
    assert field_getter(Point.y)(Point(1)) == 0  # a field with a default works too


def test_field_getter_passes_callables_through() -> None:
    def key(transfer: BankTransfer) -> str:
        return transfer.account_id.upper()

    assert field_getter(key) is key
    assert field_getter(key)(BankTransfer("a", 1.0)) == "A"


def test_field_name() -> None:
    assert field_name(BankTransfer.account_id) == "account_id"
    assert field_name(operator.attrgetter("amount")) is None


class _Slotted:
    __slots__ = ("a",)


@pytest.mark.parametrize("bad", ["account_id", 42, None, _Slotted.a])  # type: ignore[attr-defined]
def test_bad_selectors_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="key selector"):
        field_getter(bad)
    with pytest.raises(TypeError, match="key selector"):
        field_name(bad)
