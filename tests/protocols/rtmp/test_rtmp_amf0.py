"""AMF0 encoding and decoding, byte for byte, plus round trips."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.protocols.rtmp import amf0
from live.protocols.rtmp.amf0 import UNDEFINED, AmfDate, EcmaArray
from live.protocols.rtmp.errors import AmfError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (1.0, "00 3ff0000000000000"),
        (0, "00 0000000000000000"),
        (-2.5, "00 c004000000000000"),
        (True, "01 01"),
        (False, "01 00"),
        ("ab", "02 0002 6162"),
        ("", "02 0000"),
        ("é", "02 0002 c3a9"),
        (None, "05"),
        (UNDEFINED, "06"),
        ({"a": 1.0}, "03 0001 61 00 3ff0000000000000 000009"),
        ({}, "03 000009"),
        (EcmaArray(a="x"), "08 00000001 0001 61 02 0001 78 000009"),
        ([1.0, None], "0a 00000002 00 3ff0000000000000 05"),
        (AmfDate(1000.0, -60), "0b 408f400000000000 ffc4"),
    ],
)
def test_exact_encodings(value: Any, encoded: str) -> None:
    assert amf0.encode(value) == h(encoded)
    decoded, end = amf0.decode(h(encoded))
    assert end == len(h(encoded))
    assert decoded == value
    assert isinstance(decoded, EcmaArray) == isinstance(value, EcmaArray)


def test_long_string() -> None:
    text = "x" * 70000
    encoded = amf0.encode(text)
    assert encoded[:5] == h("0c 00011170")
    assert amf0.decode(encoded) == (text, len(encoded))


def test_xml_document_and_typed_object_decode() -> None:
    assert amf0.decode_all(h("0f 00000003 3c612f")) == ["<a/"]
    typed = h("10 0003 466f6f 0001 62 01 01 000009")
    assert amf0.decode_all(typed) == [{"b": True}]


def test_decode_all_reads_a_command() -> None:
    body = amf0.encode_all("connect", 1, {"app": "live"})
    assert amf0.decode_all(body) == ["connect", 1.0, {"app": "live"}]


def test_decode_at_offset() -> None:
    data = h("05 02 0001 41")
    assert amf0.decode(data, 1) == ("A", 5)


@pytest.mark.parametrize("declared", [0, 1, 99, 0xFFFFFFFF])
def test_ecma_array_count_is_ignored(declared: int) -> None:
    data = (
        h("08")
        + declared.to_bytes(4, "big")
        + h("0008 6475726174696f6e 00 4024000000000000")  # duration: 10.0
        + h("0005 7769647468 00 4094000000000000")  # width: 1280.0
        + h("000009")
    )
    value, end = amf0.decode(data)
    assert value == {"duration": 10.0, "width": 1280.0}
    assert isinstance(value, EcmaArray)
    assert end == len(data)


def test_ecma_array_without_end_marker_at_end_of_data() -> None:
    data = h("08 00000001 0001 61 00 3ff0000000000000")
    assert amf0.decode_all(data) == [{"a": 1.0}]
    assert amf0.decode_all(data + h("0000")) == [{"a": 1.0}]


def test_object_without_end_marker_is_an_error() -> None:
    with pytest.raises(AmfError):
        amf0.decode_all(h("03 0001 61 00 3ff0000000000000"))


def test_empty_key_that_is_not_the_end_marker_is_a_property() -> None:
    assert amf0.decode_all(h("03 0000 05 000009")) == [{"": None}]


@pytest.mark.parametrize(
    "data",
    [
        "",  # nothing
        "00 3ff0",  # short number
        "02 0005 6162",  # short string
        "0c 00000010 61",  # short long string
        "0a 00000010 05",  # strict array longer than the data
        "0a ffffffff",  # absurd count
        "07 0001",  # reference
        "11 01",  # AMF3 switch
        "09",  # stray object end
        "0d",  # unsupported
        "0b 0000",  # short date
        "03 0001",  # truncated key
    ],
)
def test_malformed_input_raises_amf_error(data: str) -> None:
    with pytest.raises(AmfError):
        amf0.decode(h(data))


def test_nesting_limit() -> None:
    deep = h("0a 00000001") * 40 + h("05")
    with pytest.raises(AmfError, match="deep"):
        amf0.decode(deep)
    shallow = h("0a 00000001") * 10 + h("05")
    assert amf0.decode(shallow)[1] == len(shallow)


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert amf0.decode(h("02 0001 ff"))[0] == "\ufffd"


def test_unencodable_value() -> None:
    with pytest.raises(AmfError):
        amf0.encode(b"bytes")


# -- round trips ------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.just(UNDEFINED)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.builds(AmfDate, st.floats(allow_nan=False), st.integers(-32768, 32767))
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4).map(EcmaArray)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return type(a) is type(b) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or (math.isnan(a) and math.isnan(b)))
    return a == b


@settings(max_examples=200, deadline=None)
@given(st.lists(_values, min_size=1, max_size=4))
def test_round_trip(values: list[Any]) -> None:
    encoded = amf0.encode_all(*values)
    assert _same(amf0.decode_all(encoded), values)
