"""Hypothesis fuzzing of the feature pipeline's inputs.

Random tables with integer, float, text and sequence columns (nulls, NaN, infinities, huge and negative ints,
empty strings, non-BMP and combining characters, lone surrogates) are fitted and transformed. Properties: each
call either works or raises a `RecstackError`; outputs have the documented dtypes and shapes; vocabulary ids lie
in [0, vocabulary_size); transform is deterministic; the vectorised hashing equals the per-value reference.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recstack.errors import RecstackError, SchemaError
from recstack.features import DenseFeat, FeaturePipeline, SparseFeat, VarLenSparseFeat, hash_values
from recstack.features.hashing import reference_hash

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAXLEN = 3
BUCKETS = 97

# Text: ASCII, Latin, CJK, emoji (non-BMP), combining marks, the empty string; lone surrogates on demand.
_CHARS = st.one_of(
    st.characters(min_codepoint=32, max_codepoint=126),
    st.sampled_from(["é", "ß", "漢", "字", "😀", "𝒳", "\u0301", "\u0308", "\u200d", "|", " "]),
)
_TEXT = st.text(_CHARS, max_size=6)
_SURROGATE = st.sampled_from(["\ud800", "a\udfff", "\udc80b"])
_INTS = st.one_of(
    st.integers(-5, 20),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 2**53 + 1, 2**63 - 1, -(2**63)]),
)
_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=False, width=64),
    st.floats(-1e6, 1e6),
    st.sampled_from([0.0, -0.0, 1e16, -2.5, float("nan"), float("inf"), 3.5e38]),
)
_MODEST_FLOATS = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.0, 1e16, -2.5, float("nan")]))


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


@st.composite
def _int_column(draw: st.DrawFn, n: int) -> pd.Series:
    values = draw(st.lists(_maybe(_INTS), min_size=n, max_size=n))
    kind = draw(st.sampled_from(["auto", "Int64", "object", "float"]))
    if kind == "Int64":
        return pd.Series(values, dtype="Int64")
    if kind == "object":
        return pd.Series(values, dtype=object)
    if kind == "float":  # what pandas does to an int column with a missing value
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    try:
        return pd.Series(values)
    except (OverflowError, ValueError):
        return pd.Series(values, dtype=object)


@st.composite
def _text_column(draw: st.DrawFn, n: int, surrogates: bool) -> pd.Series:
    text = st.one_of(_TEXT, _SURROGATE) if surrogates else _TEXT
    values = draw(st.lists(_maybe(text), min_size=n, max_size=n))
    if surrogates or draw(st.booleans()):
        return pd.Series(values, dtype=object)
    return pd.Series(values, dtype="str")


@st.composite
def _sequence_column(draw: st.DrawFn, n: int, surrogates: bool) -> Any:
    item = st.one_of(_TEXT.filter(lambda s: "|" not in s and s != ""), _SURROGATE) if surrogates else _TEXT
    rows = draw(st.lists(_maybe(st.lists(item.filter(lambda s: "|" not in s), max_size=5)), min_size=n, max_size=n))
    if draw(st.booleans()):
        return pd.Series([None if r is None else "|".join(r) for r in rows], dtype=object)
    return pd.Series(rows, dtype=object)


@st.composite
def frames(draw: st.DrawFn, min_rows: int = 0) -> pd.DataFrame:
    n = draw(st.integers(min_rows, 25))
    surrogates = draw(st.integers(0, 9)) == 0
    text = draw(_text_column(n, surrogates))
    floats = _FLOATS if draw(st.integers(0, 4)) == 0 else _MODEST_FLOATS  # most tables fit
    return pd.DataFrame(
        {
            "id": draw(_int_column(n)),
            "txt": text,
            "txt_hashed": text.copy(),
            "num": pd.Series(draw(st.lists(_maybe(floats), min_size=n, max_size=n)), dtype="float64"),
            "seq": draw(_sequence_column(n, surrogates)),
        }
    )


def _pipeline() -> FeaturePipeline:
    return FeaturePipeline(
        [
            SparseFeat("id"),
            SparseFeat("txt", min_freq=1),
            SparseFeat("txt_hashed", BUCKETS, use_hash=True),
            DenseFeat("num", normalization="standard"),
            VarLenSparseFeat(SparseFeat("seq"), maxlen=MAXLEN),
        ]
    )


def _has_surrogate(df: pd.DataFrame) -> bool:
    def bad(v: Any) -> bool:
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
        return isinstance(v, list) and any(bad(x) for x in v)

    return any(bad(v) for col in ("txt", "seq") for v in df[col])


def _attempt(fn: Any, *args: Any) -> Any:
    """Run ``fn``; a recstack error is returned, any other exception fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except RecstackError as err:
        return err
    except Exception as err:  # noqa: BLE001 - the property under test
        pytest.fail(f"{fn.__name__} raised {type(err).__name__} (not a RecstackError): {err}")


def _check_batch(pipe: FeaturePipeline, df: pd.DataFrame, out: dict[str, np.ndarray]) -> None:
    n = len(df)
    sizes = {f.name: f.vocabulary_size for f in pipe.feature_columns if not isinstance(f, DenseFeat)}
    assert set(out) == {"id", "txt", "txt_hashed", "num", "seq", "seq_length"}
    for name in ("id", "txt"):
        assert out[name].dtype == np.int64 and out[name].shape == (n,)
        assert ((out[name] >= 0) & (out[name] < sizes[name])).all()
    assert out["txt_hashed"].dtype == np.int64 and out["txt_hashed"].shape == (n,)
    assert np.array_equal(out["txt_hashed"], hash_values(df["txt_hashed"], "txt_hashed"))
    assert out["num"].dtype == np.float32 and out["num"].shape == (n,)
    assert np.isfinite(out["num"]).all()
    seq, lengths = out["seq"], out["seq_length"]
    assert seq.dtype == np.int64 and seq.shape == (n, MAXLEN)
    assert lengths.dtype == np.int64 and lengths.shape == (n,)
    assert ((lengths >= 0) & (lengths <= MAXLEN)).all()
    assert ((seq >= 0) & (seq < sizes["seq"])).all()
    padding = np.arange(MAXLEN)[None, :] >= lengths[:, None]
    assert (seq[padding] == 0).all() and (seq[~padding] > 0).all()


_PLAIN = pd.DataFrame(
    {"id": [1, 2], "txt": ["a", "b"], "txt_hashed": ["a", "b"], "num": [0.5, 1.0], "seq": ["a|b", "c"]}
)
_SURROGATE_SEQUENCE_AND_INF = pd.DataFrame(
    {"id": [1], "txt": ["x"], "txt_hashed": ["x"], "num": [np.inf], "seq": pd.Series(["\ud800"], dtype=object)}
)


@SETTINGS
@given(train=frames(), serve=frames())
@example(train=_PLAIN, serve=_SURROGATE_SEQUENCE_AND_INF)
def test_fit_and_transform_work_or_raise_recstack_errors(train: pd.DataFrame, serve: pd.DataFrame) -> None:
    pipe = _pipeline()
    fitted = _attempt(pipe.fit, train)
    if len(train) == 0 or _has_surrogate(train):
        assert isinstance(fitted, SchemaError)
        return
    if isinstance(fitted, RecstackError):  # only "num" may be refused: infinite or beyond float32
        assert isinstance(fitted, SchemaError) and "DenseFeat 'num'" in str(fitted), fitted
        return
    for df in (train, serve):
        out = _attempt(pipe.transform, df)
        if _has_surrogate(df):  # the first bad column in declaration order is named: a bad "num" comes before "seq"
            assert isinstance(out, SchemaError) and ("valid Unicode" in str(out) or "DenseFeat 'num'" in str(out))
            continue
        if isinstance(out, RecstackError):
            assert isinstance(out, SchemaError) and "DenseFeat 'num'" in str(out), out
            continue
        _check_batch(pipe, df, out)
        again = _attempt(pipe.transform, df)
        assert all(np.array_equal(out[k], again[k]) for k in out)


@SETTINGS
@given(df=frames(min_rows=1))
def test_partial_fit_matches_fit_on_the_concatenation(df: pd.DataFrame) -> None:
    if _has_surrogate(df) or not (df["num"].fillna(0).abs() <= np.finfo(np.float32).max).all():
        return
    whole = _attempt(_pipeline().fit, df)
    half = len(df) // 2
    parts = _pipeline()
    _attempt(parts.partial_fit, df.iloc[: max(half, 1)])
    if half:
        _attempt(parts.partial_fit, df.iloc[half:].iloc[max(half, 1) - half :])
    assert not isinstance(whole, RecstackError)
    for name in ("id", "txt", "seq"):
        assert set(whole.vocabularies[name].keys) == set(parts.vocabularies[name].keys)


_HASH_VALUES = st.one_of(
    st.lists(_maybe(_TEXT), max_size=20),
    st.lists(_maybe(_INTS), max_size=20),
    st.lists(_maybe(_FLOATS), max_size=20),
    st.lists(st.one_of(_TEXT, _INTS, _FLOATS, st.booleans(), st.none()), max_size=20),
)


@SETTINGS
@given(values=_HASH_VALUES, container=st.sampled_from(["list", "object", "series", "arrow"]))
def test_vectorised_hashing_equals_the_reference(values: list, container: str) -> None:
    if container == "object":
        data: Any = np.empty(len(values), dtype=object)
        data[:] = values
    elif container == "series":
        data = pd.Series(values, dtype=object)
    elif container == "arrow":
        try:
            data = pa.array(values, from_pandas=True)
        except (pa.ArrowException, OverflowError):
            return
    else:
        data = values
    assert np.array_equal(hash_values(data, "Col"), reference_hash(data, "Col"))


@SETTINGS
@given(values=st.lists(_maybe(st.one_of(_TEXT, _SURROGATE)), min_size=1, max_size=20))
def test_surrogates_are_rejected_by_both_hashings(values: list) -> None:
    def encodes(v: Any) -> bool:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    bad = [i for i, v in enumerate(values) if isinstance(v, str) and not encodes(v)]
    for fn in (hash_values, reference_hash):
        result = _attempt(fn, values, "c")
        if bad:
            assert isinstance(result, SchemaError) and f"row {bad[0]}" in str(result), result
        else:
            assert isinstance(result, np.ndarray)
