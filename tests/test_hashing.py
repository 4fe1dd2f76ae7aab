"""hash_values must be bit-identical to reference_hash (xxh64 column hashing, the production V1 rule) on every input."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recstack.features.hashing import (
    NULL_TOKEN,
    bucketize_hashes,
    column_seed,
    hash_values,
    reference_hash,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOLDEN = [
    ("user_connection", "4G", 5006279549153002971),
    ("user_os_platform", "android", -2189599060188726840),
    ("user_lang", "or", -5502504947823469636),
    ("creator_level", None, 5324351509709555386),
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
SPECIAL_FLOATS = [
    np.nan,
    np.inf,
    -np.inf,
    -0.0,
    0.0,
    1e16,
    -1e16,
    1e15,
    9999999999999998.0,
    123456789012345.0,
    5.0,
    -5.0,
    0.1,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    2.0**63,
    -(2.0**63),
    1e-5,
    1e-4,
]
EMOJI = ["😀", "👩‍👩‍👧", "🇫🇷", "a😀b", "é", "日本語", "\x00", "a\x00", "\u200b"]


def assert_same(values, column="col"):
    fast = hash_values(values, column)
    ref = reference_hash(values, column)
    assert fast.dtype == np.int64 and ref.dtype == np.int64
    assert fast.shape == (len(ref),)
    np.testing.assert_array_equal(fast, ref)
    return fast


# ------------------------------------------------------------------------------------------ golden vectors


@pytest.mark.parametrize("column,value,expected", GOLDEN)
def test_golden_vectors(column, value, expected):
    assert reference_hash([value], column).tolist() == [expected]
    assert hash_values([value], column).tolist() == [expected]
    assert hash_values(pd.Series([value], dtype=object), column).tolist() == [expected]
    assert hash_values(pd.Series([value], dtype="str"), column).tolist() == [expected]
    assert hash_values(pa.array([value], type=pa.string()), column).tolist() == [expected]
    assert hash_values(pa.array([value], type=pa.large_string()), column).tolist() == [expected]


def test_golden_vectors_in_one_column():
    values = ["4G", None, "android", "or"]
    expected_null = GOLDEN[3][2]
    assert hash_values(values, "creator_level")[1] == expected_null
    for col, (value, expected) in {"user_connection": ("4G", GOLDEN[0][2])}.items():
        assert hash_values(values, col)[values.index(value)] == expected


def test_column_seed_and_case():
    assert column_seed("User_Lang") == column_seed("user_lang")
    values = ["or", "en", None, "hi"]
    np.testing.assert_array_equal(hash_values(values, "User_Lang"), hash_values(values, "user_lang"))
    assert hash_values(["or"], "USER_LANG").tolist() == [GOLDEN[2][2]]
    assert NULL_TOKEN == "NA"
    # a null and the string "NA" are the same token
    np.testing.assert_array_equal(hash_values([None], "c"), hash_values(["NA"], "c"))


# ------------------------------------------------------------------------------------------ strings

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=127), min_size=0, max_size=40),
    st.text(min_size=1000, max_size=1300),
    st.sampled_from(EMOJI + ["", "NA", "None", "nan"]),
)


@SETTINGS
@given(st.lists(st.one_of(texts, st.none()), max_size=40))
def test_strings_property(values):
    assert_same(values)
    assert_same(pd.Series(values, dtype=object))
    assert_same(pd.Series(values, dtype="str"))
    assert_same(pa.array(values, type=pa.string()))
    assert_same(pa.array(values, type=pa.large_string()))


@SETTINGS
@given(st.lists(texts, max_size=40))
def test_strings_without_nulls_property(values):
    assert_same(values)
    assert_same(np.array(values, dtype=object))
    assert_same(np.array(values, dtype=str))
    assert_same(pd.Series(values, dtype="string"))


def test_every_length_0_to_70():
    """Each length hits a different mix of 32-byte stripes and 8-, 4- and 1-byte tails."""
    values = [
        "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*()_+-=ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:k] for k in range(71)
    ]
    values += ["é" * k for k in range(36)]
    assert_same(values)
    assert_same(pa.array(values))


def test_string_view():
    values = ["a", None, "a much longer string than twelve bytes", "", "😀"]
    try:
        arr = pa.array(values, type=pa.string_view())
    except (pa.ArrowNotImplementedError, AttributeError):
        pytest.skip("string_view not supported by this pyarrow")
    assert_same(arr)
    np.testing.assert_array_equal(hash_values(arr, "c"), hash_values(values, "c"))


@SETTINGS
@given(
    st.lists(st.one_of(texts, st.none()), min_size=1, max_size=40),
    st.data(),
)
def test_sliced_arrow_strings(values, data):
    start = data.draw(st.integers(0, len(values)))
    stop = data.draw(st.integers(start, len(values)))
    for typ in (pa.string(), pa.large_string()):
        arr = pa.array(values, type=typ).slice(start, stop - start)
        assert arr.offset == start
        fast = assert_same(arr)
        np.testing.assert_array_equal(fast, hash_values(values[start:stop], "col"))


def test_arrow_buffers_with_large_offset():
    arr = pa.array([f"id_{i}" if i % 7 else None for i in range(1000)])
    for start in (0, 1, 7, 8, 9, 63, 64, 65, 500):
        sl = arr.slice(start, 100)
        np.testing.assert_array_equal(hash_values(sl, "c"), reference_hash(sl.to_pylist(), "c"))


def test_surrogates_raise_value_error():
    with pytest.raises(ValueError):
        hash_values(["\ud800"], "c")
    with pytest.raises(ValueError):
        reference_hash(["\ud800"], "c")


# ------------------------------------------------------------------------------------------ integers

int64_arrays = hnp.arrays(
    np.int64,
    st.integers(0, 60),
    elements=st.one_of(st.integers(INT64_MIN, INT64_MAX), st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 1])),
)


@SETTINGS
@given(int64_arrays)
def test_int64_property(arr):
    fast = assert_same(arr)
    assert_same(arr.tolist())
    assert_same(pd.Series(arr))
    assert_same(pa.array(arr))
    # the decimal text, not the binary value, is hashed
    np.testing.assert_array_equal(fast, hash_values([str(v) for v in arr.tolist()], "col"))


def test_int64_extremes():
    arr = np.array([INT64_MIN, INT64_MIN + 1, -(10**18), -1, 0, 1, 9, 10, 10**18, INT64_MAX], dtype=np.int64)
    fast = assert_same(arr)
    np.testing.assert_array_equal(fast, hash_values([str(v) for v in arr.tolist()], "col"))


@SETTINGS
@given(
    hnp.arrays(
        np.uint64,
        st.integers(0, 60),
        elements=st.one_of(st.integers(0, UINT64_MAX), st.sampled_from([0, 2**63, UINT64_MAX])),
    )
)
def test_uint64_property(arr):
    assert_same(arr)
    assert_same(pa.array(arr))
    assert_same(pd.Series(arr))


def test_uint64_max():
    fast = assert_same(np.array([UINT64_MAX, 2**63, 0], dtype=np.uint64))
    np.testing.assert_array_equal(fast, hash_values([str(UINT64_MAX), str(2**63), "0"], "col"))


@SETTINGS
@given(st.sampled_from([np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32]), st.data())
def test_small_int_dtypes_property(dtype, data):
    arr = data.draw(hnp.arrays(dtype, st.integers(0, 40)))
    assert_same(arr)
    assert_same(pa.array(arr))
    np.testing.assert_array_equal(hash_values(arr, "col"), hash_values(arr.astype(np.int64), "col"))


@SETTINGS
@given(st.lists(st.one_of(st.integers(INT64_MIN, INT64_MAX), st.none()), max_size=40))
def test_nullable_ints_property(values):
    assert_same(values)
    assert_same(pd.Series(values, dtype="Int64"))
    assert_same(pa.array(values, type=pa.int64()))
    assert_same(pa.array(values, type=pa.int64()).slice(min(3, len(values))))


def test_nullable_int_hashes_ints_not_floats():
    s = pd.Series([5, None, -7], dtype="Int64")
    np.testing.assert_array_equal(hash_values(s, "c"), hash_values(["5", None, "-7"], "c"))
    a = pa.array([5, None, -7])
    np.testing.assert_array_equal(hash_values(a, "c"), hash_values(["5", None, "-7"], "c"))


# ------------------------------------------------------------------------------------------ floats

floats64 = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.sampled_from(SPECIAL_FLOATS),
    st.integers(-(2**60), 2**60).map(float),
)


@SETTINGS
@given(st.lists(floats64, max_size=40))
def test_float64_property(values):
    arr = np.array(values, dtype=np.float64)
    assert_same(arr)
    assert_same(values)
    assert_same(pd.Series(arr))
    assert_same(pa.array(arr))


def test_float64_specials():
    arr = np.array(SPECIAL_FLOATS, dtype=np.float64)
    fast = assert_same(arr)
    expected = ["NA" if np.isnan(v) else str(v) for v in arr]
    np.testing.assert_array_equal(fast, hash_values(expected, "col"))
    assert hash_values([-0.0], "c")[0] != hash_values([0.0], "c")[0]


@SETTINGS
@given(
    hnp.arrays(
        np.float32,
        st.integers(0, 40),
        elements=st.one_of(st.floats(width=32), st.sampled_from([0.1, -0.0, 5.0, 1e16, np.nan])),
    )
)
def test_float32_property(arr):
    fast = assert_same(arr)
    assert_same(pa.array(arr))
    assert_same(pd.Series(arr))
    np.testing.assert_array_equal(fast, hash_values(["NA" if np.isnan(v) else str(v) for v in arr], "col"))


def test_float32_prints_as_float32():
    assert hash_values(np.array([0.1], np.float32), "c")[0] == hash_values(["0.1"], "c")[0]
    assert hash_values(np.array([5.0], np.float16), "c")[0] == hash_values(["5.0"], "c")[0]


@SETTINGS
@given(st.lists(st.one_of(floats64, st.none()), max_size=40))
def test_nullable_floats_property(values):
    assert_same(pa.array(values, type=pa.float64()))
    assert_same(pa.array(values, type=pa.float32()))
    assert_same(pd.Series(values, dtype="Float64"))


# ------------------------------------------------------------------------------------------ booleans, mixed


@SETTINGS
@given(st.lists(st.one_of(st.booleans(), st.none()), max_size=40))
def test_bools_property(values):
    assert_same(values)
    assert_same(pd.Series(values, dtype="boolean"))
    assert_same(pa.array(values, type=pa.bool_()))
    plain = [bool(v) for v in values]
    assert_same(np.array(plain, dtype=bool))
    np.testing.assert_array_equal(hash_values(plain, "col"), hash_values([str(v) for v in plain], "col"))


mixed_scalars = st.one_of(
    st.integers(),
    st.integers(INT64_MIN, INT64_MAX),
    st.text(max_size=12),
    floats64,
    st.none(),
    st.booleans(),
    st.sampled_from(
        [pd.NA, pd.NaT, np.nan, np.int32(7), np.float32(0.1), np.uint64(UINT64_MAX), np.bool_(True)]
    ),
)


@SETTINGS
@given(st.lists(mixed_scalars, max_size=30))
def test_mixed_objects_property(values):
    assert_same(values)
    obj = np.empty(len(values), dtype=object)
    obj[:] = values
    fast = assert_same(obj)
    assert_same(pd.Series(obj, dtype=object))
    # object arrays keep each value's own type: str(v), "NA" for nulls
    expected = ["NA" if (v is None or v is pd.NA or v is pd.NaT or v != v) else str(v) for v in values]
    np.testing.assert_array_equal(fast, hash_values(expected, "col"))


def test_one_one_point_zero_and_true_differ_in_object_arrays():
    obj = np.array([1, 1.0, True, "1", 1.5, None], dtype=object)
    fast = assert_same(obj)
    np.testing.assert_array_equal(fast, hash_values(["1", "1.0", "True", "1", "1.5", "NA"], "col"))


def test_other_object_types():
    import datetime
    import decimal

    class Color(str):
        def __str__(self):
            return "Color.RED"

    obj = np.array(
        [
            decimal.Decimal("1.10"),
            decimal.Decimal("1.1"),
            datetime.date(2024, 1, 2),
            b"raw",
            Color("red"),
            2**80,
            -(2**80),
            np.datetime64("NaT"),
            pd.Timestamp("2024-01-02"),
            np.str_("b\x00"),
        ],
        dtype=object,
    )
    fast = assert_same(obj)
    assert fast[4] == hash_values(["Color.RED"], "col")[0]
    assert fast[7] == hash_values([None], "col")[0]


def test_datetimes_and_timedeltas():
    arr = np.array(["2024-01-01", "NaT", "1970-01-01T00:00:01"], dtype="datetime64[s]")
    assert_same(arr)
    assert_same(pd.Series(arr))
    assert_same(np.array([1, -2, "NaT"], dtype="timedelta64[ms]"))
    assert_same(pa.array([1, None, 3], type=pa.timestamp("ms")))


def test_complex_and_bytes():
    assert_same(np.array([1 + 2j, -0.0 + 0j, 0j, complex("nan+1j")]))
    assert_same(np.array([b"a", b"", b"a\x00b"], dtype="S3"))


# ------------------------------------------------------------------------------------------ pandas


@SETTINGS
@given(st.lists(st.one_of(st.text(max_size=10), st.none()), max_size=40))
def test_pandas_categorical_property(values):
    s = pd.Series(values, dtype="category")
    fast = assert_same(s)
    np.testing.assert_array_equal(fast, hash_values(values, "col"))
    assert_same(pd.Categorical(values))


def test_pandas_categorical_kinds():
    cat = pd.Series([1, 2, None, 2], dtype="category")  # int categories: hashed as ints, NaN -> NA
    np.testing.assert_array_equal(hash_values(cat, "c"), hash_values(["1", "2", None, "2"], "c"))
    assert_same(cat)
    assert_same(pd.Series([0.5, np.nan, 0.5], dtype="category"))
    assert_same(pd.Series([None, None], dtype="category"))
    assert_same(pd.Series(pd.Categorical([], categories=[])))
    assert_same(pd.Series(pd.Categorical(["b", "a", None], categories=["a", "b", "unused"])))


def test_pandas_index_and_arrow_dtypes():
    assert_same(pd.Index(["a", None, "b"]))
    assert_same(pd.Index([3, 4, 5]))
    assert_same(pd.Series([1, None, 3], dtype="int64[pyarrow]"))
    assert_same(pd.Series(["a", None], dtype=pd.ArrowDtype(pa.string())))
    assert_same(pd.Series(["a", None, "b"], dtype="string[python]"))
    assert_same(pd.Series(["a", None, "b"], dtype="string[pyarrow]"))
    sliced = pd.Series(["a", None, "b", "cc", "d"], dtype="str").iloc[2:]
    assert_same(sliced)
    np.testing.assert_array_equal(hash_values(sliced, "c"), hash_values(["b", "cc", "d"], "c"))


def test_pandas_str_from_parquet_like_table():
    table = pa.table({"s": pa.chunked_array([["a", None, "b"], ["c"], [], ["d", None]])})
    s = table.to_pandas()["s"]
    fast = assert_same(s)
    np.testing.assert_array_equal(fast, hash_values(table.column("s"), "col"))


# ------------------------------------------------------------------------------------------ Arrow containers


@SETTINGS
@given(
    st.lists(st.lists(st.one_of(st.text(max_size=20), st.none()), max_size=15), max_size=5),
)
def test_chunked_arrays_property(chunks):
    chunked = pa.chunked_array(chunks, type=pa.string())
    flat = [v for c in chunks for v in c]
    fast = assert_same(chunked)
    np.testing.assert_array_equal(fast, hash_values(flat, "col"))
    assert_same(pa.chunked_array(chunks, type=pa.large_string()))


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(["x", "y", "zz", "", "😀"]), st.none()), max_size=40), st.data())
def test_dictionary_encoded_property(values, data):
    arr = pa.array(values, type=pa.string()).dictionary_encode()
    fast = assert_same(arr)
    np.testing.assert_array_equal(fast, hash_values(values, "col"))
    start = data.draw(st.integers(0, len(values)))
    sliced = arr.slice(start)
    np.testing.assert_array_equal(hash_values(sliced, "col"), fast[start:])
    assert_same(sliced)


def test_dictionary_with_null_in_dictionary_and_int_values():
    dictionary = pa.array(["a", None, "c"])
    indices = pa.array([0, 1, None, 2, 1], type=pa.int32())
    arr = pa.DictionaryArray.from_arrays(indices, dictionary)
    fast = assert_same(arr)
    np.testing.assert_array_equal(fast, hash_values(["a", None, None, "c", None], "col"))
    ints = pa.array([5, None, 5, -1]).dictionary_encode()
    np.testing.assert_array_equal(hash_values(ints, "col"), hash_values(["5", None, "5", "-1"], "col"))
    assert_same(pa.chunked_array([ints, ints.slice(1)]))


def test_arrow_misc_types():
    assert_same(pa.array([None, None], type=pa.null()))
    assert_same(pa.array([1, None, 255], type=pa.uint8()))
    assert_same(pa.array([UINT64_MAX, None], type=pa.uint64()))
    assert_same(pa.array([True, None, False]).slice(1))
    assert_same(pa.array([1.5, None], type=pa.float16()) if hasattr(pa, "float16") else pa.array([1.5]))
    assert_same(pa.array([b"ab", None], type=pa.binary()))
    assert_same(pa.array([1, 2], type=pa.int16()).slice(1))


def test_empty_inputs():
    for values in (
        [],
        np.array([], dtype=np.int64),
        pa.array([], type=pa.string()),
        pd.Series([], dtype="str"),
    ):
        out = hash_values(values, "c")
        assert out.dtype == np.int64 and out.shape == (0,)
        assert reference_hash(values, "c").shape == (0,)
    assert hash_values(pa.chunked_array([], type=pa.string()), "c").shape == (0,)


# ------------------------------------------------------------------------------------------ buckets, errors


@SETTINGS
@given(
    st.lists(st.one_of(st.text(max_size=10), st.none()), max_size=40),
    st.integers(1, 2**63 - 1) | st.sampled_from([1, 2, 7, 1000, 2**20]),
)
def test_num_buckets_property(values, n):
    full = hash_values(values, "col")
    bucketed = hash_values(values, "col", num_buckets=n)
    assert bucketed.dtype == np.int64
    assert ((bucketed >= 0) & (bucketed < n)).all()
    np.testing.assert_array_equal(bucketed, np.mod(full, n))
    np.testing.assert_array_equal(bucketize_hashes(full, n), bucketed)


@pytest.mark.parametrize("bad", [0, -1, 2**63, 1.5, "10", True])
def test_bad_num_buckets(bad):
    with pytest.raises(ValueError, match="my_col"):
        hash_values(["a"], "my_col", num_buckets=bad)
    with pytest.raises(ValueError):
        bucketize_hashes(np.array([1, 2]), bad)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 2), dtype=np.int64),
        [[1, 2], [3, 4]],
        [[1], [2, 3]],
        [["a"], ["b"]],
        np.array([[1, 2]], dtype=object),
        pd.DataFrame({"a": [1]}),
        "just a string",
        5,
    ],
)
def test_bad_shapes_raise(bad):
    with pytest.raises(ValueError, match="my_col"):
        hash_values(bad, "my_col")
    with pytest.raises(ValueError, match="my_col"):
        reference_hash(bad, "my_col")


def test_nested_objects_raise():
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = [1, 2], "a"
    with pytest.raises(ValueError, match="my_col"):
        hash_values(obj, "my_col")
    with pytest.raises(ValueError, match="my_col"):
        reference_hash(obj, "my_col")
    with pytest.raises(ValueError, match="my_col"):
        hash_values(pa.array([[1, 2], [3]]), "my_col")


# ------------------------------------------------------------------------------------------ threads, imports


def test_one_and_two_threads_agree():
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    n = 200_000
    lengths = rng.integers(0, 70, size=n)
    pool = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789é😀"))
    text = "".join(pool[rng.integers(0, len(pool), size=n + 100)])
    starts = rng.integers(0, n, size=n)
    values = [text[s : s + k] if k != 3 else None for s, k in zip(starts.tolist(), lengths.tolist())]
    arr = pa.array(values)
    ids = rng.integers(INT64_MIN, INT64_MAX, size=n, dtype=np.int64)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = hash_values(arr, "c"), hash_values(ids, "c")
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = hash_values(arr, "c"), hash_values(ids, "c")
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    sample = slice(0, n, 97)
    np.testing.assert_array_equal(one[0][sample], reference_hash(values[sample], "c"))
    np.testing.assert_array_equal(one[1][sample], reference_hash(ids[sample], "c"))


def test_import_does_not_load_numba_and_works_after_torch_and_fork():
    pytest.importorskip("torch")
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    code = textwrap.dedent(
        """
        import sys
        import recstack.features.hashing as h
        assert "numba" not in sys.modules, "importing hashing must not import numba"
        import torch  # noqa: F401  (brings its own threading runtime)
        import numba
        import numpy as np
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        vals = np.arange(-50_000, 50_000, dtype=np.int64)
        strs = [f"s{i}" for i in range(100_000)]
        assert np.array_equal(h.hash_values(vals, "c"), h.reference_hash(vals, "c"))
        assert np.array_equal(h.hash_values(strs, "c"), h.reference_hash(strs, "c"))
        t = torch.arange(5)
        assert h.hash_values(t.numpy(), "c").shape == (5,)
        # a child forked after the parent ran a parallel kernel (e.g. a DataLoader worker) must still work
        import os
        expected = h.hash_values(vals, "c")
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(h.hash_values(vals, "c"), expected)
            ok = ok and np.array_equal(h.hash_values(strs, "c"), h.reference_hash(strs, "c"))
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        print("ok", numba.threading_layer())
        """
    )
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")


def test_parallel_path_on_small_and_sliced_inputs(monkeypatch):
    """Force the multi-chunk kernels on tiny inputs (chunk bounds, offsets, bitmaps), whatever the size."""
    from recstack.kernels import xxh64

    numba = pytest.importorskip("numba")
    monkeypatch.setattr(xxh64, "_PARALLEL_MIN_ROWS", 0)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        strs = pa.array([None if i % 5 == 0 else "x" * (i % 41) for i in range(101)])
        for sl in (strs, strs.slice(1), strs.slice(9, 3), strs.slice(100)):
            assert_same(sl)
            assert_same(pa.array(sl.to_pylist(), type=pa.large_string()))
        assert_same(np.array([INT64_MIN, -1, 0, 7, INT64_MAX], dtype=np.int64))
        assert_same(pa.array([1, None, -3]).slice(1))
        assert_same(np.array([UINT64_MAX, 0, 1], dtype=np.uint64))
        assert_same(np.array([1.0, -2.0, 0.5, np.nan, -0.0]))
    finally:
        numba.set_num_threads(before)


def test_object_strings_with_nan_and_na_for_missing():
    values = ["a", np.nan, pd.NA, None, "b", "nan"]
    fast = assert_same(pd.Series(values, dtype=object))
    np.testing.assert_array_equal(fast, hash_values(["a", None, None, None, "b", "nan"], "col"))
    # a real float among strings is hashed as its str(), not as a null
    fast = assert_same(np.array(["a", 1.5, np.nan], dtype=object))
    np.testing.assert_array_equal(fast, hash_values(["a", "1.5", None], "col"))


def test_small_inputs_hash_as_the_kernels_do():
    """Up to SMALL values are hashed one call each, more by the compiled kernels: the same hashes either way."""
    from recstack.features.hashing.vectorised import SMALL

    rng = np.random.default_rng(0)
    words = ["", "a", "ü", "日本", None, "NA", "x" * 70] + [str(v) for v in rng.integers(-(10**12), 10**12, 300)]
    ints = rng.integers(-(2**63), 2**63 - 1, 300, dtype=np.int64)
    for values in (words, ints):
        whole = hash_values(values, "creator_id")  # more than SMALL: the kernels
        assert len(values) > SMALL
        parts = np.concatenate([hash_values(values[i : i + 5], "creator_id") for i in range(0, len(values), 5)])
        np.testing.assert_array_equal(whole, parts)
        np.testing.assert_array_equal(whole, reference_hash(values, "creator_id"))
