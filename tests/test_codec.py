"""Property tests of the key codec and the record codec."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmdbstore import codec, keys, validate
from lmdbstore.errors import SerializationError, ValidationError
from lmdbstore.kinds import BY_NAME
from lmdbstore.types import AppStateSyncKey, HashState

key_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)
u32s = st.integers(0, validate.U32_MAX)
i64s = st.integers(validate.I64_MIN, validate.I64_MAX)
components = st.tuples(key_text, u32s, i64s, st.binary(max_size=20))


def encode(parts: tuple[str, int, int, bytes]) -> bytes:
    text, number, signed, tail = parts
    return keys.make(
        keys.device_prefix(1),
        7,
        keys.s(validate.text(text, "t")),
        keys.u32(number),
        keys.i64(signed),
        tail,
    )


@given(components, components)
def test_key_order_is_tuple_order(a, b):
    assert (encode(a) < encode(b)) == (a < b)
    assert (encode(a) == encode(b)) == (a == b)


@given(components)
def test_key_components_decode(parts):
    key = encode(parts)
    got_text, offset = keys.read_str(key, 5)
    got_number, offset = keys.read_u32(key, offset)
    got_signed, offset = keys.read_i64(key, offset)
    assert (got_text, got_number, got_signed, key[offset:]) == parts


@given(st.integers(0, validate.U32_MAX), st.integers(0, validate.U32_MAX))
def test_device_prefix_orders_devices(a, b):
    assert (keys.device_prefix(a) < keys.device_prefix(b)) == (a < b)


@given(st.binary(min_size=1, max_size=8))
def test_prefix_end_bounds_every_extension(prefix):
    end = keys.prefix_end(prefix)
    if end is None:
        assert set(prefix) == {0xFF}
    else:
        assert prefix < end
        assert prefix + b"\xff" * 8 < end


def test_key_over_the_limit_is_refused():
    with pytest.raises(ValidationError):
        keys.make(keys.device_prefix(1), 1, b"x" * 507)
    assert len(keys.make(keys.device_prefix(1), 1, b"x" * 506)) == validate.MAX_KEY


sync_keys = st.builds(AppStateSyncKey, st.binary(max_size=64), st.binary(max_size=16), i64s)
hash_states = st.builds(
    HashState,
    st.integers(0, validate.I64_MAX),
    st.binary(min_size=128, max_size=128),
    st.dictionaries(st.text(max_size=20), st.binary(max_size=40), max_size=5),
    st.booleans(),
)


@given(sync_keys)
def test_sync_key_round_trip(key):
    assert codec.load("appsync", b"k", codec.dump_sync_key(key), codec.read_sync_key) == key


@given(hash_states)
def test_hash_state_round_trip(state):
    raw = codec.dump_hash_state(state)
    assert codec.load("appsync", b"k", raw, codec.read_hash_state) == state


@given(st.binary(max_size=200), st.booleans())
def test_blob_records_round_trip(value, flag):
    assert codec.load("signal", b"k", codec.dump_blob(value), codec.read_blob) == value
    raw = codec.dump_prekey(value, flag)
    assert codec.load("signal", b"k", raw, codec.read_prekey) == (value, flag)
    raw = codec.dump_mutation_mac(value, 3)
    assert codec.load("appsync", b"k", raw, codec.read_mutation_mac) == value
    assert codec.load("appsync", b"k", codec.dump_key_id(value), codec.read_key_id) == value


@given(st.binary(max_size=64))
def test_garbage_raises_serialization_error_or_decodes(raw):
    for decoder in (codec.read_blob, codec.read_sync_key, codec.read_hash_state):
        try:
            codec.load("signal", b"\x01\x02", raw, decoder)
        except SerializationError as exc:
            assert exc.domain == "signal"
            assert exc.key == b"\x01\x02"
            assert "0102" in str(exc)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff",
        cbor2.dumps([1, 2]),
        cbor2.dumps({"r": "text"}),
        cbor2.dumps({}),
        cbor2.dumps({"h": b"short", "v": 1}),
        b"\x81" * 100,
    ],
)
def test_malformed_records_name_domain_and_key(raw):
    with pytest.raises(SerializationError, match="appsync record at key 6b6579"):
        codec.load("appsync", b"key", raw, codec.read_hash_state)
    with pytest.raises(SerializationError):
        codec.load("appsync", b"key", raw, codec.read_blob)


@given(st.one_of(st.binary(max_size=300), st.sampled_from([bytes(70_000), bytes(300)])))
def test_blob_form_written_by_hand_is_cbor2s(value):
    assert codec.dump_blob(value) == cbor2.dumps({"r": value})
    assert codec.load_blob("signal", b"k", codec.dump_blob(value)) == value


@given(st.binary(max_size=40))
def test_blob_fast_path_agrees_with_cbor2(raw):
    """On any bytes, the hand-written reader returns what the strict cbor2 path returns, or
    raises the same SerializationError."""
    try:
        expected: object = codec.load("signal", b"k", raw, codec.read_blob)
    except SerializationError as exc:
        expected = type(exc)
    try:
        got: object = codec.load_blob("signal", b"k", raw)
    except SerializationError as exc:
        got = type(exc)
    assert got == expected


@given(st.binary(max_size=40))
def test_blob_fast_path_agrees_on_prefixed_garbage(tail):
    for head in (b"\xa1\x61r", b"\xa1\x61r\x59", b"\xa1\x61r\x58", b"\xa1\x61r\x5a"):
        test_blob_fast_path_agrees_with_cbor2.hypothesis.inner_test(head + tail)  # type: ignore[attr-defined]


def test_every_tag_is_below_the_tag_limit():
    for tags in (keys.SignalTag, keys.AppSyncTag, keys.ProtocolTag, keys.MsgSecretTag):
        assert max(tags) < keys.TAG_LIMIT
    assert max(keys.DeviceTag) < keys.TAG_LIMIT


def _outcome(load: Any) -> object:
    try:
        return load()
    except SerializationError:
        return SerializationError


@given(
    st.one_of(
        st.binary(max_size=40),
        st.builds(codec.dump_prekey, st.binary(max_size=300), st.booleans()),
        st.builds(codec.dump_blob, st.binary(max_size=300)),
        st.builds(lambda v, tail: codec.dump_prekey(v, True)[:-1] + tail, st.binary(), st.binary()),
    )
)
def test_fast_decoders_agree_with_the_strict_one(raw):
    # load_blob and load_prekey read the forms we write by hand; on any other bytes they
    # must give exactly what cbor2's strict decoding gives.
    strict_prekey = _outcome(lambda: codec.load("signal", b"k", raw, codec.read_prekey))
    assert _outcome(lambda: codec.load_prekey("signal", b"k", raw)) == strict_prekey
    strict_blob = _outcome(lambda: codec.load("signal", b"k", raw, codec.read_blob))
    assert _outcome(lambda: codec.load_blob("signal", b"k", raw)) == strict_blob


@pytest.mark.parametrize("size", [0, 23, 24, 255, 256, 65535, 65536, 70000])
def test_fast_decoders_read_every_length_form(size):
    value = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert codec.load_blob("signal", b"k", codec.dump_blob(value)) == value
    for flag in (True, False):
        assert codec.load_prekey("signal", b"k", codec.dump_prekey(value, flag)) == (value, flag)


@given(st.binary(max_size=70_000), st.booleans())
def test_hand_written_encodings_are_what_cbor2_writes(value, flag):
    assert codec.dump_blob(value) == cbor2.dumps({"r": value})
    assert codec.dump_prekey(value, flag) == cbor2.dumps({"r": value, "u": flag})


@pytest.mark.parametrize(
    ("kind", "fields", "stored"),
    [
        ("sender_key_device", (True,), "a1616bf5"),
        ("sender_key_device", (False,), "a1616bf4"),
        ("tc_token", (b"tok", 5, None), "a3617443746f6b627473056173f6"),
        ("tc_token", (b"", -3, 7), "a361744062747322617307"),
        ("sent_message", (b"p", 9), "a26172417062617409"),
        ("pending_inbound", (b"m", -1), "a26172416d62617420"),
        (
            "msg_secret",
            (bytes(32), 0, 5),
            "a3617358200000000000000000000000000000000000000000000000000000000000000000616500617405",
        ),
        ("msg_secret", (b"s", 10**12, -2), "a36173417361651b000000e8d4a51000617421"),
        ("contact", ("a", "b", "c", "d", "e"), "a561666161616e6162617061636162616461726165"),
        ("contact", ("", "", "", "", ""), "a5616660616e60617060616260617260"),
        ("buffered_event", (None, 1, 2), "a36170f6617301616902"),
        ("buffered_event", (b"x", 3, 4), "a361704178617303616904"),
        ("outgoing_event", ("f", b"p", 7), "a36166616661704170617407"),
        ("chat_settings", (-1, True, False), "a3616d206170f56161f4"),
        ("chat_settings", (5, False, True), "a3616d056170f46161f5"),
        ("cache_entry", (b"v", None), "a2617641766165f6"),
        ("cache_entry", (b"v", 123), "a2617641766165187b"),
    ],
)
def test_a_kind_kept_as_a_map_writes_the_bytes_of_format_3(
    kind: str, fields: tuple[object, ...], stored: str
) -> None:
    """The kinds whose codec comes from their declaration (`lmdbstore.codec.dump_map`)
    write, byte for byte, what their hand-written encoders wrote (the hex strings were
    taken from those), and read it back."""
    declared = BY_NAME[kind]
    raw = declared.dump(*fields)  # type: ignore[misc]
    assert raw.hex() == stored
    assert declared.load_fields(b"k", raw) == tuple(fields)


def test_a_stored_field_the_write_path_refuses_is_a_corrupt_record() -> None:
    settings = BY_NAME["chat_settings"]
    raw = cbor2.dumps({"m": -5, "p": False, "a": False})
    with pytest.raises(SerializationError, match="muted_until"):
        settings.load_fields(b"k", raw)
