import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artifacts import current, reseal
from recstack.errors import ArtifactError, FormatVersionError, IntegrityError, LabelError, NotFittedError, SchemaError
from recstack.features import (
    OOV_ID,
    DenseFeat,
    FeaturePipeline,
    SparseFeat,
    VarLenSparseFeat,
    hash_values,
)


def _frame(n=1_000, seed=0):
    rng = np.random.default_rng(seed)
    lang = rng.choice(["hi", "en", "or", None], n, p=[0.5, 0.3, 0.15, 0.05])
    return pd.DataFrame(
        {
            "User_Lang": lang,
            "user_lang_hashed": lang,
            "item_id": rng.integers(0, 50, n),
            "Watch": rng.exponential(10, n),
            "hist": ["|".join(map(str, rng.integers(0, 20, rng.integers(0, 6)))) for _ in range(n)],
            "label": rng.integers(0, 2, n).astype(float),
        }
    )


def _columns():
    return [
        SparseFeat("user_lang", embedding_dim=4),
        SparseFeat("item_id", embedding_dim=4),
        SparseFeat("user_lang_hashed", 1000, use_hash=True),
        DenseFeat("watch", normalization="standard"),
        VarLenSparseFeat(SparseFeat("hist", embedding_dim=4), maxlen=4),
    ]


def test_vocabulary_ids_pad_oov_and_frequency_order():
    df = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 1})
    pipe = FeaturePipeline([SparseFeat("c", min_freq=2)])
    out = pipe.fit_transform(df)
    assert out["c"].dtype == np.int64
    # 0 padding, 1 OOV, then by frequency: a=2, b=3; "c" is below min_freq -> OOV.
    assert list(out["c"]) == [2] * 5 + [3] * 3 + [OOV_ID]
    assert pipe.feature_columns[0].vocabulary_size == 4
    unseen = pipe.transform(pd.DataFrame({"c": ["zzz", "a", None]}))["c"]
    assert list(unseen) == [OOV_ID, 2, OOV_ID]
    assert list(pipe.vocabularies["c"].counts()) == [0, 0, 5, 3]


def test_dynamic_vocabulary_appends_and_reports_what_changed():
    pipe = FeaturePipeline([SparseFeat("c", min_freq=2)])
    pipe.fit(pd.DataFrame({"c": ["a", "a", "b", "b", "x"]}))
    before = pipe.transform(pd.DataFrame({"c": ["a", "b"]}))["c"].copy()
    updates = pipe.partial_fit(pd.DataFrame({"c": ["new", "new", "new", "x", "a"]}))
    after = pipe.transform(pd.DataFrame({"c": ["a", "b", "new", "x"]}))["c"]
    np.testing.assert_array_equal(after[:2], before)  # old ids never move
    assert updates["c"].old_size == 4 and updates["c"].new_size == 6 and updates["c"].added == 2
    # "new" (3 times) comes before "x" (once before, once now: reaches min_freq 2)
    assert list(after[2:]) == [4, 5]
    assert pipe.feature_columns[0].vocabulary_size == 6


def test_vocabulary_max_size_keeps_most_frequent():
    df = pd.DataFrame({"c": list("aaaabbbcc d")})
    pipe = FeaturePipeline([SparseFeat("c", vocabulary_size=4)])
    out = pipe.fit_transform(df)["c"]
    assert out.max() == 3 and pipe.feature_columns[0].vocabulary_size == 4
    assert set(out[df.c.isin(["c", " ", "d"]).to_numpy()]) == {OOV_ID}


def test_hashed_feature_outputs_the_raw_xxh64_hash():
    df = pd.DataFrame({"user_connection": ["4G", None], "creator_level": [None, "3"]})
    pipe = FeaturePipeline(
        [SparseFeat("user_connection", 1000, use_hash=True), SparseFeat("creator_level", 10, use_hash=True)]
    )
    out = pipe.fit_transform(df)
    assert out["user_connection"][0] == 5006279549153002971
    assert out["creator_level"][0] == 5324351509709555386  # a null hashes as "NA"
    np.testing.assert_array_equal(
        out["user_connection"], hash_values(df["user_connection"], "user_connection")
    )


def test_column_names_are_lowercased_in_and_out():
    df = _frame()
    cols = [SparseFeat("User_Lang"), DenseFeat("WATCH")]
    out = FeaturePipeline(cols).fit_transform(df)
    assert set(out) == {"user_lang", "watch"}


def test_sequences_from_delimited_strings_lists_and_arrow_agree():
    strings = ["3|1|2|9|9", "", None, "7"]
    lists = [[3, 1, 2, 9, 9], [], None, [7]]
    feat = VarLenSparseFeat(SparseFeat("h"), maxlen=3)
    by_str = FeaturePipeline([feat]).fit_transform(pd.DataFrame({"h": strings}))
    np.testing.assert_array_equal(by_str["h_length"], [3, 0, 0, 1])
    seq = by_str["h"]
    assert seq.shape == (4, 3) and seq.dtype == np.int64
    assert (seq[1] == 0).all() and (seq[2] == 0).all() and list(seq[3][1:]) == [0, 0]
    assert seq[0][0] != seq[0][1] and (seq[0] > 1).all()  # first three kept in order, all known
    # ints in lists hash as str(int), so they meet the same vocabulary as the strings
    pipe = FeaturePipeline([feat]).fit(pd.DataFrame({"h": strings}))
    np.testing.assert_array_equal(
        pipe.transform(pd.DataFrame({"h": pd.Series(lists, dtype=object)}))["h"], seq
    )
    arrow = pa.table({"h": pa.array(lists, type=pa.list_(pa.int64()))})
    np.testing.assert_array_equal(pipe.transform(arrow)["h"], seq)


def test_sequence_truncation_keeps_first_maxlen_in_given_order():
    pipe = FeaturePipeline([VarLenSparseFeat(SparseFeat("h", use_hash=True, vocabulary_size=100), maxlen=2)])
    out = pipe.fit_transform(pd.DataFrame({"h": ["c|b|a", "x"]}))
    expect = hash_values(["c", "b", "x"], "h")
    np.testing.assert_array_equal(out["h"], [[expect[0], expect[1]], [expect[2], 0]])


def test_sequence_weights_align_and_mismatch_is_named():
    feat = VarLenSparseFeat(SparseFeat("h"), maxlen=3, weight_name="h_w")
    df = pd.DataFrame({"h": ["a|b", "c|d|e|f"], "h_w": ["0.5|2", "1|2|3|4"]})
    out = FeaturePipeline([feat]).fit_transform(df)
    np.testing.assert_allclose(out["h_w"], [[0.5, 2, 0], [1, 2, 3]])
    assert out["h_w"].dtype == np.float32
    bad = pd.DataFrame({"h": ["a|b", "c"], "h_w": ["0.5", "1"]})
    with pytest.raises(SchemaError, match=r"'h_w'.*1 values at row 0.*sequence has 2"):
        FeaturePipeline([feat]).fit(bad).transform(bad)


def test_dense_vector_feature():
    df = pd.DataFrame({"v": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]})
    out = FeaturePipeline([DenseFeat("v", dimension=2, normalization="minmax")]).fit_transform(df)
    np.testing.assert_allclose(out["v"], [[0, 0], [0.5, 0.5], [1, 1]])
    with pytest.raises(SchemaError, match="row 1 has 1 values, expected 2"):
        FeaturePipeline([DenseFeat("v", dimension=2)]).fit(pd.DataFrame({"v": [[1.0, 2.0], [3.0]]}))


def test_inputs_dataframe_arrow_dict_parquet_csv_give_identical_batches(tmp_path):
    df = _frame()
    pipe = FeaturePipeline(_columns_for_files(), label_columns="label").fit(df)
    ref = pipe.transform(df)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, tmp_path / "part.parquet", row_group_size=300)
    df.to_csv(tmp_path / "part.csv", index=False)
    for data in (
        table,
        {k: df[k].to_numpy() for k in df.columns},
        tmp_path / "part.parquet",
        str(tmp_path / "part.csv"),
    ):
        out = pipe.transform(data)
        assert set(out) == set(ref)
        for key in ref:
            np.testing.assert_allclose(out[key], ref[key], rtol=1e-6, err_msg=f"{key} from {type(data)}")
    # fitting from files (read in chunks) equals fitting in memory
    from_file = FeaturePipeline(_columns_for_files(), label_columns="label").fit(tmp_path / "part.parquet")
    for key, val in from_file.transform(df).items():
        np.testing.assert_allclose(val, ref[key], rtol=1e-6)


def _columns_for_files():
    # CSV round-trips ints as ints and "" as null, so use features that survive it.
    return [
        SparseFeat("item_id"),
        SparseFeat("user_lang", 100, use_hash=True),
        DenseFeat("watch", normalization="minmax"),
        VarLenSparseFeat(SparseFeat("hist"), maxlen=4),
    ]


def test_save_load_round_trip_transforms_identically(tmp_path):
    df = _frame()
    cols = _columns() + [SparseFeat("watch_bin", n_bins=5)]
    df["watch_bin"] = df["Watch"]
    pipe = FeaturePipeline(cols, label_columns="label").fit(df)
    pipe.save(tmp_path / "pipe")
    loaded = FeaturePipeline.load(tmp_path / "pipe")
    a, b = pipe.transform(df), loaded.transform(df)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert loaded.feature_columns == pipe.feature_columns
    # the loaded one keeps learning exactly like the original
    more = _frame(seed=5)
    more["watch_bin"] = more["Watch"]
    assert pipe.partial_fit(more) == loaded.partial_fit(more)
    np.testing.assert_array_equal(pipe.transform(more)["hist"], loaded.transform(more)["hist"])
    assert not list(tmp_path.glob(".pipe.*")), "temporary directories left behind"
    saved = json.loads((current(tmp_path / "pipe") / "pipeline.json").read_text())
    assert saved["format_version"] == 1


def test_save_overwrites_atomically_and_keeps_old_on_failure(tmp_path, monkeypatch):
    df = _frame()
    pipe = FeaturePipeline(_columns()).fit(df)
    pipe.save(tmp_path / "p")
    before = (current(tmp_path / "p") / "pipeline.json").read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        pipe.save(tmp_path / "p")
    assert (current(tmp_path / "p") / "pipeline.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    assert len(list((tmp_path / "p").iterdir())) == 2, "the failed save left files behind"


def test_load_rejects_other_versions_naming_the_file(tmp_path):
    pipe = FeaturePipeline([DenseFeat("watch")]).fit(_frame())
    pipe.save(tmp_path / "p")
    cfg_path = current(tmp_path / "p") / "pipeline.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["format_version"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(IntegrityError, match=r"pipeline\.json: \d+ bytes, the manifest says \d+"):
        FeaturePipeline.load(tmp_path / "p")
    reseal(tmp_path / "p")  # as if a later recstack had written it
    with pytest.raises(FormatVersionError, match=r"pipeline\.json.*format_version 99"):
        FeaturePipeline.load(tmp_path / "p")
    with pytest.raises(ArtifactError, match="does not exist"):
        FeaturePipeline.load(tmp_path / "nothing")


def test_errors_name_the_column():
    df = _frame()
    with pytest.raises(SchemaError, match=r"missing column 'nope' \(needed by SparseFeat 'nope'\)"):
        FeaturePipeline([SparseFeat("nope")]).fit(df)
    with pytest.raises(SchemaError, match=r"DenseFeat 'user_lang'.*expected a numeric column"):
        FeaturePipeline([DenseFeat("user_lang")]).fit(df)
    with pytest.raises(SchemaError, match=r"DenseFeat 'x'.*non-numeric value 'b' at row 1"):
        FeaturePipeline([DenseFeat("x")]).fit(pd.DataFrame({"x": pd.Series([1, "b"], dtype=object)}))
    with pytest.raises(SchemaError, match="infinite"):
        FeaturePipeline([DenseFeat("x")]).fit(pd.DataFrame({"x": [1.0, np.inf]}))
    with pytest.raises(NotFittedError):
        FeaturePipeline([DenseFeat("x")]).transform(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(SchemaError, match="produced twice"):
        FeaturePipeline([DenseFeat("x"), SparseFeat("X")])


def test_label_nan_and_inf_are_rejected_with_the_column_name():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, np.nan, 1.0]})
    pipe = FeaturePipeline([DenseFeat("x")], label_columns="y").fit(df)
    with pytest.raises(
        LabelError, match=r"label column 'y' has 1 NaN or infinite value\(s\) \(first at row 1\)"
    ):
        pipe.transform(df)
    df["y"] = [0.0, 1.0, -np.inf]
    with pytest.raises(LabelError, match="row 2"):
        pipe.transform(df)


def test_summary_lists_every_feature():
    pipe = FeaturePipeline(_columns()).fit(_frame())
    text = pipe.summary()
    for name in ("user_lang", "item_id", "user_lang_hashed", "watch", "hist"):
        assert name in text
    assert "vocabulary" in text and "xxh64 hash" in text and "sequence[4]" in text
