"""recstack.index: exact search equals brute force, ANN defaults reach a recall floor, save/load round trips, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from artifacts import current, reseal
from recstack.data import make_clustered_vectors, make_noisy_queries
from recstack.errors import (
    ArtifactError,
    FormatVersionError,
    IntegrityError,
    MissingDependencyError,
    NotFittedError,
    OverwriteError,
    SchemaError,
)
from recstack.index import BACKENDS, Index, available_backends, build_index, load_index

ANN_BACKENDS = ("faiss", "scann", "hnswlib")
AVAILABLE = set(available_backends())


def needs(backend: str):
    return pytest.mark.skipif(
        backend not in AVAILABLE, reason=f"the {backend!r} package is not installed (pip install 'recstack[index]')"
    )


def each_backend(backends=("exact", *ANN_BACKENDS)):
    return pytest.mark.parametrize("backend", [pytest.param(b, marks=needs(b)) for b in backends])


@pytest.fixture(autouse=True)
def one_thread():
    """Every backend follows torch's thread count; one thread keeps these small builds quick on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def brute_force_scores(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """float64 [Q, N] scores, larger is better."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        x64 = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
    if metric == "l2":
        return -((q64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=2)
    return q64 @ x64.T


def brute_force(x: np.ndarray, q: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """float64 scores and rows of the k best items per query."""
    scores = brute_force_scores(x, q, metric)
    rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, rows, axis=1), rows


def recall_at(found: np.ndarray, truth: np.ndarray, r: int) -> float:
    return float((found[:, :r, None] == truth[:, None, :r]).any(axis=2).mean())


@pytest.fixture(scope="module")
def data():
    x = make_clustered_vectors(12_000, 24, n_clusters=64, rank=4)
    ids = np.random.default_rng(5).permutation(10**6)[:12_000].astype(np.int64) * 7 - 3
    return x, make_noisy_queries(x, 300, seed=1), ids


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    return rng.standard_normal((700, 12)).astype(np.float32), rng.standard_normal((40, 12)).astype(np.float32)


# ----- exact -----


def assert_same_top_k(scores, found, want_scores, want_ids):
    """``found`` is the exact top-k up to the order of near-ties: ``want_*`` hold the top k+1 (float32 rounding
    may swap items whose scores differ by less than it); scores agree, and ids agree wherever they are clearly apart."""
    k = found.shape[1]
    np.testing.assert_allclose(scores, want_scores[:, :k], rtol=1e-5, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 0).all()
    to_next = want_scores[:, :k] - want_scores[:, 1 : k + 1]
    to_previous = np.concatenate([np.full((len(found), 1), np.inf), to_next[:, : k - 1]], axis=1)
    clear = np.minimum(to_next, to_previous) > 1e-4 * np.maximum(1.0, np.abs(want_scores[:, :k]))
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(found[clear], want_ids[:, :k][clear])
    assert all(len(set(row)) == k for row in found)


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_exact_equals_numpy_brute_force(small, metric):
    x, q = small
    ids = np.arange(len(x), dtype=np.int64)[::-1] * 11 + 1000
    index = build_index(x, ids=ids, metric=metric, backend="exact")
    scores, found = index.search(q, 25)
    assert scores.dtype == np.float32 and found.dtype == np.int64 and found.shape == (40, 25)
    want_scores, want_rows = brute_force(x, q, 26, metric)
    assert_same_top_k(scores, found, want_scores, ids[want_rows])
    # each found item's float64 score is the float64 score at its rank (ties may be swapped, nothing else)
    order = np.argsort(ids)
    rows = order[np.searchsorted(ids[order], found)]
    assert (ids[rows] == found).all()
    found_scores = np.take_along_axis(brute_force_scores(x, q, metric), rows, axis=1)
    np.testing.assert_allclose(found_scores, want_scores[:, :25], rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_exact_chunked_equals_unchunked(small, metric):
    x, q = small
    want_scores, want_rows = brute_force(x, q, 31, metric)
    for query_chunk, corpus_chunk in [(7, 50), (3, 11), (40, 699), (1, 700)]:
        # (3, 11): chunks smaller than k, each contributes all its rows to the merge
        index = build_index(x, metric=metric, backend="exact", query_chunk=query_chunk, corpus_chunk=corpus_chunk)
        assert_same_top_k(*index.search(q, 30), want_scores, want_rows)


def test_torch_input_and_single_query(small):
    x, q = small
    index = build_index(torch.from_numpy(x).to(torch.float64), ids=torch.arange(len(x)), backend="exact")
    scores, found = index.search(torch.from_numpy(q[0]), 5)
    assert found.shape == (1, 5)
    np.testing.assert_array_equal(found[0], brute_force(x, q[:1], 5, "ip")[1][0])
    empty_scores, empty_ids = index.search(np.zeros((0, 12), np.float32), 5)
    assert empty_scores.shape == (0, 5) and empty_ids.shape == (0, 5)


# ----- approximate backends -----

# recall@10 of each backend's defaults on `data` (12,000 x 24 clustered, 300 noisy item queries, 1 thread), measured:
#   faiss   (ivf_flat, nlist 307, nprobe 24): ip 0.958, cosine 0.998, l2 0.995
#   scann   (tree of 120 leaves, 16 searched, AH 2 dims/block, reorder 256): ip 0.965, cosine 0.989, l2 0.999
#   hnswlib (M 16, ef_construction 128, ef 128): ip 0.997, cosine 1.000, l2 1.000
# Inner product is the hard case: the best items are the large-norm ones, spread over many partitions.
RECALL_FLOOR = {
    "faiss": {"ip": 0.94, "cosine": 0.97, "l2": 0.97},
    "scann": {"ip": 0.93, "cosine": 0.96, "l2": 0.97},
    "hnswlib": {"ip": 0.97, "cosine": 0.97, "l2": 0.97},
}


@each_backend(ANN_BACKENDS)
@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_ann_default_recall_floor(data, backend, metric):
    x, q, ids = data
    truth = build_index(x, ids=ids, metric=metric, backend="exact").search(q, 10)[1]
    index = build_index(x, ids=ids, metric=metric, backend=backend)
    scores, found = index.search(q, 10)
    recall = recall_at(found, truth, 10)
    assert recall >= RECALL_FLOOR[backend][metric], f"{backend} {metric} recall@10 {recall:.3f} {index.params}"
    assert np.isin(found, ids).all()
    assert (np.diff(scores, axis=1) <= 1e-5).all()


@needs("faiss")
def test_faiss_search_params_trade_speed_for_recall(data):
    x, q, ids = data
    truth = build_index(x, ids=ids, backend="exact").search(q, 10)[1]
    index = build_index(x, ids=ids, backend="faiss", index_type="ivf_flat", nprobe=1)
    low = recall_at(index.search(q, 10)[1], truth, 10)
    high = recall_at(index.set_search_params(nprobe=index.params["nlist"]).search(q, 10)[1], truth, 10)
    assert high == 1.0 and low < high
    with pytest.raises(SchemaError, match="cannot change after build"):
        index.set_search_params(nlist=4)


# ----- padding -----


@each_backend()
def test_padding_when_k_exceeds_count(backend):
    x = make_clustered_vectors(6, 8, n_clusters=2, rank=4)
    scores, found = build_index(x, ids=np.arange(100, 106), backend=backend).search(x[:3], 9)
    assert found.shape == scores.shape == (3, 9)
    assert (found[:, 6:] == -1).all() and np.isneginf(scores[:, 6:]).all()
    assert (np.sort(found[:, :6], axis=1) == np.arange(100, 106)).all()
    assert np.isfinite(scores[:, :6]).all()


@needs("faiss")
def test_padding_when_an_ann_finds_too_few():
    x = make_clustered_vectors(400, 8, n_clusters=4, rank=4)
    index = build_index(x, backend="faiss", index_type="ivf_flat", nlist=8, nprobe=1)
    scores, found = index.search(x[:20], 300)
    missing = found == -1
    assert missing.any()
    assert np.isneginf(scores[missing]).all() and np.isfinite(scores[~missing]).all()
    assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in found)


# ----- save / load -----

ROUND_TRIPS = [
    ("exact", {}),
    ("exact", {"query_chunk": 5}),
    ("faiss", {}),
    ("faiss", {"index_type": "ivf_pq"}),
    ("faiss", {"index_type": "ivf_pq", "pq_bits": 8, "refine_k": 0}),
    ("faiss", {"index_type": "ivf_flat"}),
    ("faiss", {"index_type": "hnsw"}),
    ("scann", {}),
    ("scann", {"brute_force": False}),
    ("hnswlib", {}),
]


@pytest.mark.parametrize(
    ("backend", "params"), [pytest.param(b, p, marks=needs(b) if b != "exact" else ()) for b, p in ROUND_TRIPS]
)
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_save_load_round_trip(tmp_path, backend, params, metric):
    x = make_clustered_vectors(3000, 16, n_clusters=64, rank=4, seed=2)
    q = make_noisy_queries(x, 50, seed=1)
    ids = np.arange(3000, dtype=np.int64) * 3 + 1
    index = build_index(x, ids=ids, metric=metric, backend=backend, **params)
    before = index.search(q, 20)
    index.save(tmp_path / "idx")
    meta = json.loads((current(tmp_path / "idx") / "index.json").read_text())
    assert meta["format"] == "recstack.Index" and meta["format_version"] == 1
    assert (meta["backend"], meta["metric"], meta["dim"], meta["count"]) == (backend, metric, 16, 3000)
    loaded = load_index(tmp_path / "idx")
    assert type(loaded) is type(index) and loaded.params == index.params and len(loaded) == 3000
    assert (loaded.dim, loaded.metric, loaded.backend) == (16, metric, backend)
    after = loaded.search(q, 20)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])
    assert type(index).load(tmp_path / "idx").search(q, 5)[1].shape == (50, 5)


def test_save_overwrites_atomically(tmp_path, small):
    x, q = small
    first = build_index(x, backend="exact")
    second = build_index(x[::-1].copy(), ids=np.arange(700) + 10_000, backend="exact")
    target = tmp_path / "idx"
    first.save(target)
    second.save(target)
    np.testing.assert_array_equal(load_index(target).search(q, 5)[1], second.search(q, 5)[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]

    # a save that fails half way leaves the earlier index as it was and no temporary directory behind
    class Broken(type(first)):
        def _save(self, directory):
            (directory / "vectors.npy").write_bytes(b"partial")
            raise OSError("disk full")

    broken = Broken().build(x)
    with pytest.raises(OSError, match="disk full"):
        broken.save(target)
    np.testing.assert_array_equal(load_index(target).search(q, 5)[1], second.search(q, 5)[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_save_refuses_to_replace_other_things(tmp_path, small):
    x, _ = small
    index = build_index(x, backend="exact")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(OverwriteError, match=r"notes: it is a non-empty directory that holds no saved recstack\.Index"):
        index.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OverwriteError, match="it is a file"):
        index.save(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_format_version_mismatch(tmp_path, small):
    build_index(small[0], backend="exact").save(tmp_path / "idx")
    meta_path = current(tmp_path / "idx") / "index.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 2
    meta_path.write_text(json.dumps(meta))
    reseal(tmp_path / "idx")
    with pytest.raises(FormatVersionError, match="format_version 2"):
        load_index(tmp_path / "idx")


@pytest.mark.parametrize(
    ("backend", "name", "damage"),
    [
        ("exact", "index.json", "delete"),
        ("exact", "index.json", "garbage"),
        ("exact", "ids.npy", "delete"),
        ("exact", "ids.npy", "garbage"),
        ("exact", "vectors.npy", "delete"),
        ("exact", "vectors.npy", "truncate"),
        pytest.param("faiss", "faiss.index", "delete", marks=needs("faiss")),
        pytest.param("faiss", "faiss.index", "truncate", marks=needs("faiss")),
        pytest.param("hnswlib", "hnswlib.bin", "delete", marks=needs("hnswlib")),
        pytest.param("hnswlib", "hnswlib.bin", "truncate", marks=needs("hnswlib")),
        pytest.param("scann", "scann/scann_assets.pbtxt", "delete", marks=needs("scann")),
        pytest.param("scann", "scann/dataset.npy", "truncate", marks=needs("scann")),
    ],
)
def test_missing_or_corrupt_file_names_it(tmp_path, small, backend, name, damage):
    build_index(small[0], backend=backend).save(tmp_path / "idx")
    expected = "scann" if name == "scann/dataset.npy" else os.path.basename(name)  # ScaNN names its directory
    path = current(tmp_path / "idx") / name
    if damage == "delete":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"\x00not what it should be")
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IntegrityError, match=os.path.basename(name).replace(".", r"\.")):
        load_index(tmp_path / "idx")
    reseal(tmp_path / "idx")  # a damaged file that the manifest vouches for is still refused by the backend
    with pytest.raises(SchemaError, match=expected.replace(".", r"\.")):
        load_index(tmp_path / "idx")


def test_load_errors(tmp_path, small):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_index(tmp_path / "nothing")
    build_index(small[0], backend="exact").save(tmp_path / "idx")
    meta_path = current(tmp_path / "idx") / "index.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "backend": "annoy"}))
    reseal(tmp_path / "idx")
    with pytest.raises(SchemaError, match="unknown index backend 'annoy'"):
        load_index(tmp_path / "idx")
    meta_path.write_text(json.dumps({**meta, "count": 5}))
    reseal(tmp_path / "idx")
    with pytest.raises(SchemaError, match="ids.npy"):
        load_index(tmp_path / "idx")
    meta_path.write_text(json.dumps(meta))
    reseal(tmp_path / "idx")
    if "hnswlib" in AVAILABLE:
        with pytest.raises(SchemaError, match="use load_index"):
            BACKENDS["hnswlib"].load(tmp_path / "idx")


# ----- input errors -----


def test_input_errors(small):
    x, q = small
    with pytest.raises(SchemaError, match=r"embeddings must be a 2-D array"):
        build_index(x[0], backend="exact")
    with pytest.raises(SchemaError, match="empty"):
        build_index(np.zeros((0, 12), np.float32), backend="exact")
    bad = x.copy()
    bad[5, 3] = np.nan
    with pytest.raises(SchemaError, match=r"embeddings holds NaN or inf in 1 row\(s\) \(first rows: \[5\]\)"):
        build_index(bad, backend="exact")
    with pytest.raises(SchemaError, match="must hold real numbers"):
        build_index(np.array([["a", "b"]]), backend="exact")
    with pytest.raises(SchemaError, match="ids must be unique"):
        build_index(x, ids=np.zeros(700, np.int64), backend="exact")
    with pytest.raises(SchemaError, match="ids has 3 entries but embeddings has 700 rows"):
        build_index(x, ids=[1, 2, 3], backend="exact")
    with pytest.raises(SchemaError, match="ids must hold integers"):
        build_index(x, ids=np.arange(700) + 0.5, backend="exact")
    with pytest.raises(SchemaError, match="must not contain -1"):
        build_index(x, ids=np.arange(700) - 1, backend="exact")
    with pytest.raises(SchemaError, match=r"unknown metric 'dot': expected one of \['ip', 'cosine', 'l2'\]"):
        build_index(x, metric="dot", backend="exact")
    with pytest.raises(SchemaError, match=r"unknown index backend 'annoy': expected one of \['exact', 'faiss'"):
        build_index(x, backend="annoy")
    with pytest.raises(SchemaError, match=r"unknown parameter\(s\) \['nprobe'\] .* accepted are \['corpus_chunk'"):
        build_index(x, backend="exact", nprobe=3)
    with pytest.raises(SchemaError, match="query_chunk must be an integer >= 1"):
        build_index(x, backend="exact", query_chunk=0)

    index = build_index(x, backend="exact")
    with pytest.raises(SchemaError, match="queries has width D = 5, but the index holds vectors of width 12"):
        index.search(q[:, :5], 3)
    with pytest.raises(SchemaError, match="queries must be a 2-D array"):
        index.search(q[None], 3)
    bad_q = q.copy()
    bad_q[0, 0] = np.inf
    with pytest.raises(SchemaError, match="queries holds NaN or inf"):
        index.search(bad_q, 3)
    for k in (0, -2, 2.5, True, "3"):
        with pytest.raises(SchemaError, match="k must be an integer >= 1"):
            index.search(q, k)
    with pytest.raises(NotFittedError):
        BACKENDS["exact"]().search(q, 3)
    with pytest.raises(NotFittedError):
        BACKENDS["exact"]().save("/nonexistent/never")
    with pytest.raises(TypeError, match="abstract"):
        Index()


@needs("faiss")
def test_faiss_param_errors(small):
    x, _ = small
    with pytest.raises(SchemaError, match=r"accepted are \[.*'ef_search'.*'nprobe'"):
        build_index(x, backend="faiss", efSearch=10)
    with pytest.raises(SchemaError, match="index_type must be one of"):
        build_index(x, backend="faiss", index_type="lsh")
    with pytest.raises(SchemaError, match="pq_m = 5 must divide the vector width D = 12"):
        build_index(x, backend="faiss", index_type="ivf_pq", pq_m=5)
    with pytest.raises(SchemaError, match="nlist = 5000 exceeds the 700 vectors"):
        build_index(x, backend="faiss", index_type="ivf_flat", nlist=5000)
    index = build_index(x, backend="faiss", index_type="ivf_pq", refine_k=0)
    with pytest.raises(SchemaError, match="rebuild the ivf_pq index with refine_k > 0"):
        index.set_search_params(refine_k=64)


# ----- optional packages -----


@pytest.mark.parametrize(("backend", "module"), [("faiss", "faiss"), ("scann", "scann"), ("hnswlib", "hnswlib")])
def test_missing_package_raises_missing_dependency(monkeypatch, tmp_path, small, backend, module):
    x, q = small
    saved = None
    if backend in AVAILABLE:
        saved = tmp_path / "idx"
        build_index(x, backend=backend).save(saved)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    assert backend not in available_backends() and "exact" in available_backends()
    with pytest.raises(MissingDependencyError, match=r"pip install 'recstack\[index\]'"):
        build_index(x, backend=backend)
    if saved is not None:
        with pytest.raises(MissingDependencyError, match=module):
            load_index(saved)


def test_backend_packages_are_imported_lazily():
    code = textwrap.dedent(
        """
        import sys
        import recstack.index
        print(sorted(m for m in ("faiss", "scann", "hnswlib") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@each_backend(ANN_BACKENDS)
def test_results_do_not_depend_on_search_threads(backend):
    x = make_clustered_vectors(3000, 16, n_clusters=64, rank=4, seed=4)
    q = make_noisy_queries(x, 64, seed=1)
    params = {"brute_force": False} if backend == "scann" else {"index_type": "ivf_pq"} if backend == "faiss" else {}
    index = build_index(x, backend=backend, **params)
    one = index.search(q, 10)
    torch.set_num_threads(2)  # the multi-threaded search paths (ScaNN's search_batched_parallel among them)
    two = index.search(q, 10)
    np.testing.assert_array_equal(two[1], one[1])
    np.testing.assert_array_equal(two[0], one[0])


@needs("faiss")
def test_threads_follow_torch(small):
    import faiss

    x, q = small
    index = build_index(x, backend="faiss", index_type="hnsw")
    for threads in (2, 1):
        torch.set_num_threads(threads)
        index.search(q, 3)
        assert faiss.omp_get_max_threads() == threads
