"""Request rows: the column-wise screen gives exactly what the field-by-field check gives, or defers to it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recstack.features import DenseFeat, SparseFeat, VarLenSparseFeat
from recstack.serve.rows import RequestError, RowSchema

FEATURES = [
    DenseFeat("age"),
    DenseFeat("score"),
    SparseFeat("lang", 10),
    SparseFeat("client_id", 10),
    SparseFeat("length", n_bins=4),
    VarLenSparseFeat(SparseFeat("tags", 10), maxlen=3),
]

value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(0, 5), max_size=2),
)
name = st.sampled_from(["age", "AGE", "score", "lang", "Lang", "client_id", "length", "tags", "other"])
row = st.dictionaries(name, value, max_size=6)


def _outcome(fn, rows):
    try:
        return fn(rows, "users")
    except RequestError as err:
        return ("error", err.field, err.message)


@pytest.mark.parametrize("required", [(), ("client_id",)])
@settings(max_examples=300, deadline=None)
@given(rows=st.lists(row, max_size=5))
def test_screen_agrees_with_the_field_by_field_check(rows, required):
    schema = RowSchema(FEATURES, required)
    assert _outcome(schema.columns, rows) == _outcome(schema._checked_columns, rows)


def test_plain_rows_take_the_screen():
    schema = RowSchema(FEATURES, ["client_id"])
    rows = [{"age": 31, "score": 0.5, "lang": "en", "client_id": 7, "length": 12.0, "x": 1}, {"client_id": "u2"}]
    cols, ignored = schema._screened_columns(rows)
    assert cols == {"age": [31, None], "score": [0.5, None], "lang": ["en", None], "client_id": [7, "u2"],
                    "length": [12.0, None]}
    assert ignored == ["x"]


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"age": 1.0}, {"age": "31"}], "users[1].age"),
        ([{"age": float("inf")}], "users[0].age"),
        ([{"age": float("nan")}], "users[0].age"),
        ([{"lang": True}], "users[0].lang"),
        ([{"client_id": 2**64}], "users[0].client_id"),
        ([{"age": 1.0}], "users[0].client_id"),
    ],
)
def test_bad_fields_are_named(rows, field):
    with pytest.raises(RequestError) as err:
        RowSchema(FEATURES, ["client_id"]).columns(rows, "users")
    assert err.value.field == field
