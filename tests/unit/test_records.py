"""Records: construction, Faust-compatible methods, decoding rules, key selectors."""

from __future__ import annotations

import datetime
import inspect
import operator
import typing
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.exceptions import ConfigError, DecodeError
from shoal.model.codecs import make_decoder
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


class Withdrawal(Record):
    """Faust's examples/withdrawals.py model: a default of None makes the field optional."""

    user: str
    amount: float = 0.0
    date: datetime.datetime = None  # type: ignore[assignment]
    limit: ClassVar[int] = None  # type: ignore[assignment]  # not a field, stays a ClassVar


class Node(Record):
    name: str
    children: list[Node] = []
    parent: Node = None  # type: ignore[assignment]  # a forward reference, optional by default


class LateWithdrawal(Withdrawal):
    late: bool = False


class DeviceAction(Record):
    device_id: str


class DeadLetter(Record):
    """faust-streaming's examples/bound_agent.py sends DeviceAction(device_id=i), i an int."""

    stage: str
    record: DeviceAction
    tags: list[str] = []
    by_key: dict[str, str] = {}
    reason: str | None = None


class IdOrName(Record):
    v: int | str


class StrictName(Record, coerce=False):
    name: str


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


def test_repr_is_fausts() -> None:
    # Faust: f"<{type(self).__name__}: {self._humanize()}>", fields as k=v!r in field order.
    assert repr(Add(1, 2)) == "<Add: a=1, b=2>"
    assert str(BankTransfer("x", 1.0)) == "<BankTransfer: account_id='x', amount=1.0>"
    assert repr(Polygon("p", [Point(1)])) == (
        "<Polygon: name='p', points=[<Point: x=1, y=0>], labels={}, created=None, price=None,"
        " note=None>"
    )


def test_repr_of_a_record_inside_itself_does_not_recurse() -> None:
    node = Node("a")
    node.children.append(node)
    assert repr(node) == "<Node: name='a', children=[...], parent=None>"


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


def test_field_with_none_default_accepts_none() -> None:
    record = Withdrawal("u")
    assert record.date is None
    for serializer in ("json", "msgpack"):
        assert Withdrawal.loads(record.dumps(serializer), serializer) == record
    assert Withdrawal.loads(b'{"user": "u", "date": null}') == record
    assert Withdrawal.from_data({"user": "u", "date": None}) == record
    assert make_decoder("json", Withdrawal)(b'{"user": "u", "date": null}') == record
    assert LateWithdrawal.loads(b'{"user": "u", "date": null}') == LateWithdrawal("u")
    when = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)
    assert Withdrawal.loads(b'{"user": "u", "date": "2024-05-01T00:00:00Z"}').date == when
    assert Node.loads(b'{"name": "a", "parent": {"name": "b", "parent": null}}') == Node(
        "a", parent=Node("b")
    )
    assert Withdrawal.__struct_fields__ == ("user", "amount", "date")


def test_only_a_none_default_makes_a_field_optional() -> None:
    assert Withdrawal.loads(b'{"user": "u", "date": null}').date is None
    for data, field in [
        (b'{"user": null}', "user"),
        (b'{"user": "u", "amount": null}', "amount"),
        (b'{"user": "u", "date": 1.5e300}', "date"),
    ]:
        with pytest.raises(DecodeError) as info:
            Withdrawal.loads(data)
        assert info.value.field == field
    assert typing.get_type_hints(Withdrawal)["amount"] is float


def test_none_default_is_optional_in_schema_and_signature() -> None:
    schema = msgspec.json.schema(Withdrawal)["$defs"]["Withdrawal"]["properties"]
    assert {"type": "null"} in schema["date"]["anyOf"]
    assert schema["amount"] == {"type": "number", "default": 0.0}
    assert typing.get_type_hints(Withdrawal)["date"] == datetime.datetime | None
    date = inspect.signature(Withdrawal).parameters["date"]
    assert date.default is None
    assert date.annotation == datetime.datetime | None


def test_int_is_read_back_as_str_where_a_str_is_declared() -> None:
    sent = DeadLetter(1, DeviceAction(2), [3, "x"], {"k": 4}, 5)  # type: ignore[arg-type]
    assert sent.record.device_id == 2  # the constructor does not validate, as in Faust
    expected = DeadLetter("1", DeviceAction("2"), ["3", "x"], {"k": "4"}, "5")
    for serializer in ("json", "msgpack", "json|binary"):
        assert DeadLetter.loads(sent.dumps(serializer), serializer) == expected
        assert make_decoder(serializer, DeadLetter)(sent.dumps(serializer)) == expected
    assert DeadLetter.from_data(msgspec.to_builtins(sent)) == expected
    assert make_decoder("json", list[DeviceAction])(b'[{"device_id": 7}]') == [DeviceAction("7")]
    assert make_decoder("json", DeviceAction | None)(b'{"device_id": 7}') == DeviceAction("7")
    big = 2**70
    assert DeviceAction.loads(DeviceAction(big).dumps()) == DeviceAction(str(big))  # type: ignore[arg-type]
    assert DeviceAction.loads(DeviceAction(-3).dumps("msgpack"), "msgpack").device_id == "-3"  # type: ignore[arg-type]


def test_int_for_a_union_with_int_stays_an_int() -> None:
    assert IdOrName.loads(b'{"v": 1}').v == 1
    assert IdOrName.loads(b'{"v": "1"}').v == "1"
    assert DeviceAction.loads(b'{"device_id": 1}').device_id == "1"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"device_id": 1.5}', "device_id"),  # str(1.5) is not what the producer wrote
        (b'{"device_id": true}', "device_id"),  # nor is "True"
        (b'{"device_id": [1]}', "device_id"),
        (b'{"device_id": null}', "device_id"),
    ],
)
def test_what_cannot_be_read_back_exactly_still_fails_naming_the_field(
    data: bytes, field: str
) -> None:
    assert DeviceAction.loads(b'{"device_id": 1}') == DeviceAction("1")
    with pytest.raises(DecodeError, match="Expected `str`") as info:
        DeviceAction.loads(data)
    assert info.value.field == field


def test_after_the_int_to_str_coercion_the_next_bad_field_is_named() -> None:
    assert DeadLetter.loads(b'{"stage": 1, "record": {"device_id": 2}}').stage == "1"
    with pytest.raises(DecodeError) as info:
        DeadLetter.loads(b'{"stage": 1, "record": {"device_id": 2.5}}')
    assert info.value.field == "record.device_id"
    with pytest.raises(DecodeError) as info:
        DeadLetter.from_data({"stage": 1, "record": {"device_id": []}})
    assert info.value.field == "record.device_id"


def test_coerce_false_reads_no_int_as_str() -> None:
    assert DeviceAction.loads(b'{"device_id": 1}') == DeviceAction("1")
    with pytest.raises(DecodeError, match="Expected `str`, got `int`") as info:
        StrictName.loads(b'{"name": 1}')
    assert info.value.field == "name"
    with pytest.raises(DecodeError):
        make_decoder("json", DeviceAction, coerce=False)(b'{"device_id": 1}')


@given(st.integers(), st.sampled_from(["json", "json|binary"]))
def test_int_in_str_field_round_trip_property(value: int, serializer: str) -> None:
    sent = DeadLetter("s", DeviceAction(value), [value])  # type: ignore[arg-type, list-item]
    got = DeadLetter.loads(sent.dumps(serializer), serializer)
    assert got == DeadLetter("s", DeviceAction(str(value)), [str(value)])
