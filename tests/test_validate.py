"""The whole-column checks of batches (`validate._COLUMN_CHECKS`) accept exactly what the
item-by-item checks accept, return the same values, and leave every refusal, with its
message, to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmdbstore import validate
from lmdbstore.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

CHECKS = [validate.u32, validate.i64, validate.u64, validate.blob]

# Values near every edge of every column check, and of other types.
values = st.one_of(
    st.integers(min_value=-(1 << 64), max_value=1 << 64),
    st.sampled_from(
        [0, -1, validate.U32_MAX, validate.U32_MAX + 1, validate.I64_MAX, validate.I64_MIN]
    ),
    st.booleans(),
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.binary(max_size=8).map(memoryview),
    st.just(bytes(validate.MAX_VALUE + 1)),
    st.text(max_size=3),
    st.none(),
    st.floats(allow_nan=False),
)
items = st.one_of(
    st.tuples(values, values),
    st.lists(values, min_size=0, max_size=3).map(tuple),
    st.lists(values, min_size=2, max_size=2),
    values,
)


def item_by_item(check: Callable[[object, str], object]) -> Callable[[object, str], object]:
    """``check`` wrapped in a function with no column form, so checked item by item."""

    def wrapped(value: object, what: str) -> object:
        return check(value, what)

    return wrapped


def outcome(fn: Callable[[], object]) -> object:
    try:
        return ("ok", fn())
    except ValidationError as exc:
        return ("refused", str(exc))


@given(
    st.lists(items, max_size=6) | st.lists(st.tuples(values, values), max_size=6),
    st.sampled_from(CHECKS),
    st.sampled_from(CHECKS),
)
def test_pairs_by_column_is_pairs_item_by_item(
    batch: list[object],
    left: Callable[[object, str], object],
    right: Callable[[object, str], object],
) -> None:
    by_column = outcome(lambda: validate.pairs(batch, "items", left, right))
    reference = outcome(
        lambda: validate.pairs(batch, "items", item_by_item(left), item_by_item(right))
    )
    assert by_column == reference


@given(st.lists(values, max_size=6), st.sampled_from(CHECKS))
def test_each_by_column_is_each_item_by_item(
    batch: list[object], check: Callable[[object, str], object]
) -> None:
    by_column = outcome(lambda: validate.each(batch, "ids", check))
    assert by_column == outcome(lambda: validate.each(batch, "ids", item_by_item(check)))


def test_a_valid_batch_comes_back_as_a_new_list_of_its_items() -> None:
    batch = [(1, b"a"), (validate.U32_MAX, b"")]
    checked = validate.pairs(batch, "items", validate.u32, validate.blob)
    assert checked == batch
    assert checked is not batch


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([(1, b"a"), (True, b"b")], "items[1][0] must be int, not bool"),
        ([(1, b"a"), (-1, b"b")], "items[1][0] = -1 is outside"),
        ([(1, b"a"), (2, "b")], "items[1][1] must be bytes, not str"),
        ([(1, b"a"), (2, b"b", 3)], "items[1] must be a tuple of 2"),
        ("ab", "items must be a list or tuple, not str"),
    ],
)
def test_a_bad_item_is_named_by_its_place(batch: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate.pairs(batch, "items", validate.u32, validate.blob)
