"""Codecs: registry, composition, and the per-message encoders/decoders."""

from __future__ import annotations

import base64
import datetime
import inspect
import uuid
from decimal import Decimal
from typing import Any, Optional

import msgspec
import pytest

from shoal.exceptions import ConfigError, DecodeError, EncodeError
from shoal.model import codecs, serializers
from shoal.model.codecs import Codec, make_decoder, make_encoder
from shoal.model.records import Record


class Add(Record):
    a: int
    b: int


class Point(Record):
    x: int
    y: int = 0


class Packed(Record, serializer="msgpack"):
    v: int


class WithMeta(Record, include_metadata=True, namespace="app.WithMeta"):
    v: int


class Reversed(Codec):
    """A user codec that only understands builtins (dicts), as Faust codecs do."""

    def dumps(self, obj: Any) -> bytes:
        return msgspec.json.encode(obj)[::-1]

    def loads(self, data: bytes) -> Any:
        return msgspec.json.decode(data[::-1])


@pytest.fixture
def reversed_codec() -> Any:
    codec = Reversed()
    codecs.register("reversed", codec)
    yield codec
    serializers._registry.pop("reversed", None)


def test_builtin_codecs_are_registered_by_name() -> None:
    assert {codecs.get(name).name for name in ("json", "msgpack", "raw", "binary")} == {
        "json",
        "msgpack",
        "raw",
        "binary",
    }


def test_pickle_is_not_registered() -> None:
    with pytest.raises(ConfigError, match=r"'pickle' \(not built in on purpose"):
        codecs.get("pickle")
    with pytest.raises(ConfigError):
        make_decoder("pickle", None)


def test_unknown_serializer_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="registered: binary, json, msgpack, raw"):
        codecs.get("yaml")


def test_json_encodes_records_dates_decimals_and_containers() -> None:
    value = {
        "add": Add(1, 2),
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "price": Decimal("9.99"),
        "ids": [1, 2.5, "x", None, True],
        "id": uuid.UUID(int=1),
    }
    assert msgspec.json.decode(codecs.dumps("json", value)) == {
        "add": {"a": 1, "b": 2},
        "when": "2024-01-02T03:04:05Z",
        "price": "9.99",
        "ids": [1, 2.5, "x", None, True],
        "id": "00000000-0000-0000-0000-000000000001",
    }


def test_json_honours_dunder_json() -> None:
    class Money:
        def __json__(self) -> str:
            return "EUR 1"

    assert codecs.dumps("json", {"m": Money()}) == b'{"m":"EUR 1"}'


def test_unencodable_value_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match="json"):
        codecs.dumps("json", object())


def test_loads_helpers_and_malformed_input() -> None:
    assert codecs.loads("json", b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert codecs.loads("msgpack", codecs.dumps("msgpack", [1, "x"])) == [1, "x"]
    with pytest.raises(DecodeError, match="json: malformed") as info:
        codecs.loads("json", b"{nope")
    assert info.value.field is None


def test_none_serializer_passes_bytes_through() -> None:
    assert codecs.dumps(None, b"\x00\x01") == b"\x00\x01"
    assert codecs.dumps(None, "é") == "é".encode()
    assert codecs.loads(None, b"\xff") == b"\xff"


def test_raw_codec() -> None:
    assert codecs.dumps("raw", b"abc") == b"abc"
    assert codecs.dumps("raw", "é") == b"\xc3\xa9"
    assert codecs.dumps("raw", 42) == b"42"
    assert codecs.loads("raw", b"abc") == b"abc"
    with pytest.raises(EncodeError, match="bytes or str"):
        codecs.dumps("raw", {"a": 1})
    with pytest.raises(EncodeError):
        codecs.dumps("raw", True)


def test_binary_is_base64() -> None:
    assert codecs.dumps("binary", b"hi") == base64.b64encode(b"hi")
    assert codecs.loads("binary", b"aGk=") == b"hi"
    with pytest.raises(DecodeError, match="base64"):
        codecs.loads("binary", b"not base64!")


def test_composition_by_name_and_operator() -> None:
    by_name = codecs.get("json|binary")
    by_operator = codecs.get("json") | codecs.get("binary")
    mixed = "json" | codecs.get("binary")
    assert by_name.name == by_operator.name == mixed.name == "json|binary"
    data = by_name.dumps({"a": 1})
    assert data == base64.b64encode(b'{"a":1}')
    assert by_operator.loads(data) == mixed.loads(data) == {"a": 1}
    assert codecs.get("json | binary | binary").loads(
        base64.b64encode(base64.b64encode(b"[1]"))
    ) == [1]


def test_register_user_codec(reversed_codec: Reversed) -> None:
    assert reversed_codec.name == "reversed"
    assert codecs.get("reversed") is reversed_codec
    assert codecs.loads("reversed", codecs.dumps("reversed", [1, 2])) == [1, 2]
    with pytest.raises(ValueError, match=r"without '\|'"):
        codecs.register("a|b", Reversed())
    with pytest.raises(TypeError):
        codecs.register("thing", object())  # type: ignore[arg-type]


def test_user_codec_gets_record_representation_and_typed_decoding(
    reversed_codec: Reversed,
) -> None:
    encode = make_encoder("reversed", Add)
    data = encode(Add(1, 2))
    assert data == b'{"a":1,"b":2}'[::-1]
    assert make_decoder("reversed", Add)(data) == Add(1, 2)
    assert make_encoder("reversed")(Point(3)) == b'{"x":3,"y":0}'[::-1]
    with pytest.raises(DecodeError) as info:
        make_decoder("reversed", Add)(b'{"a":1,"b":"x"}'[::-1])
    assert info.value.field == "b"


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_typed_decoder_is_one_msgspec_decode(serializer: str) -> None:
    decode = make_decoder(serializer, Add)
    assert decode(codecs.dumps(serializer, {"a": 1, "b": 2})) == Add(1, 2)
    # No Python layer between the wrapper and msgspec: the wrapper calls Decoder.decode.
    load = inspect.getclosurevars(decode).nonlocals["load"]
    assert isinstance(load.__self__, (msgspec.json.Decoder, msgspec.msgpack.Decoder))
    assert load.__self__.type is Add


@pytest.mark.parametrize(
    ("value_type", "data", "expected"),
    [
        (int, b"42", 42),
        (int, b'"42"', 42),  # lax mode by default
        (float, b"1.5", 1.5),
        (str, b'"hi"', "hi"),
        (list[int], b"[1, 2]", [1, 2]),
        (dict[str, Point], b'{"p": {"x": 1}}', {"p": Point(1)}),
        (None, b'{"a": [1]}', {"a": [1]}),
    ],
)
def test_json_typed_decoding(value_type: Any, data: bytes, expected: Any) -> None:
    assert make_decoder("json", value_type)(data) == expected


def test_coerce_false_is_strict() -> None:
    with pytest.raises(DecodeError, match="Expected `int`, got `str`"):
        make_decoder("json", int, coerce=False)(b'"42"')


def test_type_error_names_field_and_codec() -> None:
    with pytest.raises(DecodeError) as info:
        make_decoder("json", Add)(b'{"a": 1, "b": "two"}')
    assert info.value.field == "b"
    assert str(info.value) == ("cannot decode Add from json: field 'b': Expected `int`, got `str`")
    with pytest.raises(DecodeError) as info:
        make_decoder("msgpack", list[Point])(codecs.dumps("msgpack", [{"x": 1}, {"x": "q"}]))
    assert info.value.field == "[1].x"


def test_malformed_input_names_codec() -> None:
    with pytest.raises(DecodeError, match="from json: malformed input") as info:
        make_decoder("json", Add)(b"\xff")
    assert info.value.field is None
    with pytest.raises(DecodeError, match="from msgpack: malformed input"):
        make_decoder("msgpack", Add)(b"\xc1")


def test_wrong_top_level_shape_has_no_field() -> None:
    with pytest.raises(DecodeError, match="Expected `object`, got `array`") as info:
        make_decoder("json", Add)(b"[1, 2]")
    assert info.value.field is None


@pytest.mark.parametrize(
    "value_type",
    [None, Any, Optional[Add], Add | None, type(None), int | None],  # noqa: UP045
)
def test_none_decodes_to_none_when_type_allows(value_type: Any) -> None:
    assert make_decoder("json", value_type)(None) is None


@pytest.mark.parametrize("value_type", [Add, int, str, list[int]])
def test_none_raises_when_type_forbids(value_type: Any) -> None:
    with pytest.raises(DecodeError, match="message has no value") as info:
        make_decoder("json", value_type)(None)
    assert info.value.field is None


def test_optional_record_decodes_json_null() -> None:
    decode = make_decoder("json", Add | None)
    assert decode(b"null") is None
    assert decode(b'{"a": 1, "b": 2}') == Add(1, 2)


def test_encoders_return_none_for_none() -> None:
    assert make_encoder("json")(None) is None
    assert make_encoder("raw", bytes)(None) is None


def test_raw_decoders() -> None:
    assert make_decoder("raw", None)(b"\x00k") == b"\x00k"
    assert make_decoder("raw", bytes)(b"\x00k") == b"\x00k"
    assert make_decoder("raw", str)("é".encode()) == "é"
    assert make_decoder("raw", str | None)(None) is None
    assert make_decoder("raw", int)(b"17") == 17
    assert make_decoder("raw", Decimal)(b"1.50") == Decimal("1.50")
    with pytest.raises(DecodeError, match="from raw"):
        make_decoder("raw", str)(b"\xff")
    with pytest.raises(DecodeError, match="from raw"):
        make_decoder("raw", int)(b"seventeen")
    with pytest.raises(ConfigError, match="raw"):
        make_decoder("raw", list[int])


def test_raw_with_record_type_uses_json() -> None:
    assert make_decoder("raw", Add)(b'{"a": 1, "b": 2}') == Add(1, 2)
    assert make_encoder("raw", Add)(Add(1, 2)) == b'{"a":1,"b":2}'
    # and without a declared type, a Record value is still written as json
    assert make_encoder("raw")(Add(1, 2)) == b'{"a":1,"b":2}'


def test_records_own_serializer_wins_over_topics() -> None:
    data = make_encoder("json", Packed)(Packed(7))
    assert data == msgspec.msgpack.encode({"v": 7})
    assert make_decoder("json", Packed)(data) == Packed(7)
    assert make_encoder("json")(Packed(7)) == data


def test_include_metadata_on_topic_encoders() -> None:
    expected = {"v": 1, "__faust": {"ns": "app.WithMeta"}}
    typed, untyped = make_encoder("json", WithMeta)(WithMeta(1)), make_encoder("json")(WithMeta(1))
    assert typed is not None and untyped is not None
    assert msgspec.json.decode(typed) == msgspec.json.decode(untyped) == expected
    assert make_decoder("json", WithMeta)(untyped) == WithMeta(1)


def test_any_typed_encoder_still_honours_record_options() -> None:
    assert make_encoder("json", Any)(Packed(7)) == msgspec.msgpack.encode({"v": 7})


def test_default_serializer() -> None:
    assert make_encoder(None, Add)(Add(1, 2)) == b'{"a":1,"b":2}'
    assert make_decoder(None, str)(b"plain") == "plain"
    assert make_decoder(None, bytes)(b"plain") == b"plain"
    assert make_decoder(None, None)(b"[1]") == [1]


def test_value_type_may_name_a_serializer_or_be_a_codec() -> None:
    assert make_decoder(None, "raw")(b"x") == b"x"
    assert make_decoder(None, codecs.get("json"))(b"[1]") == [1]
    assert make_encoder(None, "binary")(b"hi") == b"aGk="


def test_json_binary_typed_round_trip_and_errors() -> None:
    encode, decode = make_encoder("json|binary", Add), make_decoder("json|binary", Add)
    data = encode(Add(3, 4))
    assert data == base64.b64encode(b'{"a":3,"b":4}')
    assert decode(data) == Add(3, 4)
    with pytest.raises(DecodeError, match="base64"):
        decode(b"{}")
    with pytest.raises(DecodeError) as info:
        decode(base64.b64encode(b'{"a": 3, "b": []}'))
    assert info.value.field == "b"
    assert "json|binary" in str(info.value)


def test_unsupported_type_is_a_config_error_at_build_time() -> None:
    with pytest.raises(ConfigError, match="cannot decode 3 from json"):
        make_decoder("json", 3)


def test_encode_error_names_type_and_codec() -> None:
    with pytest.raises(EncodeError, match="cannot encode object as json"):
        make_encoder("json")(object())
    with pytest.raises(EncodeError, match="as raw"):
        make_encoder("raw", bytes)([1])
