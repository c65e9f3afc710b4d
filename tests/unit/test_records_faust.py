"""Records, the Faust way: Faust's repr, a None default makes a field optional, an int sent
in a str field is read back as text where nothing is lost (Faust's coerce)."""

from __future__ import annotations

import datetime
import inspect
import typing
from typing import ClassVar

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.exceptions import DecodeError
from shoal.model.codecs import make_decoder
from shoal.model.records import Record
from tests.unit.test_records import Add, BankTransfer, Point, Polygon


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
