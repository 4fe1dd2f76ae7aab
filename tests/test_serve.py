"""The HTTP service: a real uvicorn subprocess serving a small exported bundle, talked to with httpx."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

from recstack.errors import ArgumentError
from recstack.export.bundle import load_bundle
from recstack.serve import create_app
from recstack.serve.batching import BatchQueue, QueueTimeout
from recstack.serve.recommender import Recommender
from serve_helpers import RANKER, ServerProcess, export_test_bundle, sample_users
from two_tower_data import short_video

pytestmark = pytest.mark.filterwarnings("ignore::recstack.errors.DataWarning")

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MAX_ROWS = 32
MAX_BODY = 400_000
MAX_K = 50
K_TOP = 25


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    v1, v2 = export_test_bundle(root / "v1", seed=0), export_test_bundle(root / "v2", seed=1)
    bad = root / "bad"
    shutil.copytree(v1, bad)
    files = [p for p in bad.rglob("*") if p.is_file() and p.name != "manifest.json"]
    damaged = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    users = sample_users(40)
    df = short_video(rows=3_000, users=80, items=300)[0]
    rows = json.loads(df.head(12)[RANKER].to_json(orient="records"))
    expected = {}
    for name, path in (("v1", v1), ("v2", v2)):
        bundle = load_bundle(path)
        rec = Recommender(bundle)
        result = rec.recommend(users, k=K_TOP)
        ranked = rec.recommend(users[:3], k=5, rank=True, candidates=20)
        blended = rec.recommend(users[:3], k=5, rank=True, blend={"weights": {"like": 1.0}, "transform": "logit"})
        expected[bundle.version] = SimpleNamespace(
            items=result.items, scores=result.scores, vectors=rec.embed(users), ranked=ranked, blended=blended,
            predict=rec.predict(rows),
        )
        expected[name] = bundle.version
    assert expected["v1"] != expected["v2"], "the two bundles must have different versions"
    return SimpleNamespace(
        v1=v1, v2=v2, bad=bad, damaged=damaged.name, users=users, rows=rows, expected=expected
    )


@pytest.fixture(scope="module")
def server(bundles, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve_log") / "server.log"
    srv = ServerProcess(
        bundles.v1, "--admin-token", TOKEN, "--max-batch-rows", str(MAX_ROWS), "--max-body-bytes", str(MAX_BODY),
        "--max-k", str(MAX_K), log=log,
    )
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def check_answer(bundles, user_index: int, k: int, answer: dict, version: str) -> None:
    want = bundles.expected[version]
    assert answer["items"] == want.items[user_index, :k].tolist()
    assert np.allclose(answer["scores"], want.scores[user_index, :k], atol=1e-5)


# ---- the batching queue on its own -------------------------------------------------------------------------------


def test_batch_queue_groups_keys_and_isolates_errors():
    seen: list[tuple[str, list]] = []

    def run(key, payloads):
        seen.append((key, list(payloads)))
        return [ValueError(f"bad {p}") if p == "boom" else (key, p) for p in payloads]

    async def main():
        queue = BatchQueue(run, interval_s=0.05, max_rows=3, timeout_s=5)
        queue.start()
        try:
            jobs = [queue.submit("a", 1, i) for i in range(4)]
            jobs += [queue.submit("b", 1, "x"), queue.submit("a", 1, "boom")]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await queue.stop()

    results = asyncio.run(main())
    assert results[:5] == [("a", 0), ("a", 1), ("a", 2), ("a", 3), ("b", "x")]
    assert isinstance(results[5], ValueError) and "boom" in str(results[5])
    assert [len(p) for _, p in seen] == [3, 1, 2] or [len(p) for _, p in seen] == [3, 2, 1]
    assert all(len({k}) == 1 for k, _ in seen) and max(len(p) for _, p in seen) <= 3


def test_batch_queue_runs_a_lone_job_at_once_and_batches_under_load():
    seen: list[list] = []

    def run(key, payloads):
        seen.append(list(payloads))
        time.sleep(0.2)  # a slow model: the next jobs arrive while this batch runs
        return list(payloads)

    async def lone():
        queue = BatchQueue(run, interval_s=30, max_rows=8, timeout_s=60)  # a window nobody should wait out
        queue.start()
        try:
            return await asyncio.wait_for(queue.submit("a", 1, "lone"), 10)
        finally:
            await queue.stop()

    async def loaded():
        queue = BatchQueue(run, interval_s=0.1, max_rows=8, timeout_s=60)
        queue.start()
        try:
            first = asyncio.ensure_future(queue.submit("a", 1, 0))
            await asyncio.sleep(0.05)  # the first batch is running: these three queue behind it
            rest = [queue.submit("a", 1, i) for i in (1, 2, 3)]
            return await asyncio.wait_for(asyncio.gather(first, *rest), 10)
        finally:
            await queue.stop()

    assert asyncio.run(lone()) == "lone"
    assert asyncio.run(loaded()) == [0, 1, 2, 3]
    assert seen == [["lone"], [0], [1, 2, 3]]  # queued during a batch, they ran together


def test_batch_queue_times_out_waiting_jobs():
    def run(key, payloads):
        time.sleep(0.3)
        return list(payloads)

    async def main():
        queue = BatchQueue(run, interval_s=0, max_rows=1, timeout_s=0.1)
        queue.start()
        try:
            return await asyncio.gather(queue.submit("a", 1, 1), queue.submit("a", 1, 2), return_exceptions=True)
        finally:
            await queue.stop()

    first, second = asyncio.run(main())
    assert first == 1
    assert isinstance(second, QueueTimeout) and "queue timeout" in str(second)


# ---- in-process: readiness and the admin switch --------------------------------------------------------------------


def test_health_is_503_until_the_bundle_is_warm(bundles):
    async def main():
        app = create_app(bundles.v1, "inproc")  # no admin token: the reload endpoint does not exist
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inproc", timeout=30) as c:
            before = await c.get("/health")
            refused = await c.post("/recommend", json={"users": bundles.users[:1]})
            async with app.router.lifespan_context(app):
                deadline = time.monotonic() + 60
                while (await c.get("/health")).status_code != 200:
                    assert time.monotonic() < deadline, "the bundle was not ready within 60 s"
                    await asyncio.sleep(0.05)
                after = await c.get("/health")
                answer = await c.post("/recommend", json={"users": bundles.users[:1], "k": 5})
                admin = await c.post("/admin/reload", json={}, headers=ADMIN)
        return before, refused, after, answer, admin

    before, refused, after, answer, admin = asyncio.run(main())
    assert before.status_code == 503 and before.json()["status"] == "unavailable"
    assert refused.status_code == 503 and "no bundle ready" in refused.json()["error"]
    assert after.status_code == 200 and after.json()["bundle"] == bundles.expected["v1"]
    assert answer.status_code == 200
    check_answer(bundles, 0, 5, answer.json()["results"][0], bundles.expected["v1"])
    assert admin.status_code == 404


def test_unloadable_bundle_keeps_health_503(tmp_path):
    async def main():
        app = create_app(tmp_path / "missing", "inproc")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inproc") as c:
            async with app.router.lifespan_context(app):
                deadline = time.monotonic() + 30
                while app.state.service.load_error is None:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                return await c.get("/health")

    health = asyncio.run(main())
    assert health.status_code == 503 and "missing" in health.json()["error"]


# ---- the served API ------------------------------------------------------------------------------------------------


def test_recommend_embed_and_metadata_match_in_process(client, bundles):
    version = bundles.expected["v1"]
    users = bundles.users[:5]
    r = client.post("/recommend", json={"users": users, "k": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bundle"] == version and len(body["results"]) == 5
    for u, answer in enumerate(body["results"]):
        check_answer(bundles, u, 7, answer, version)
        assert "task_scores" not in answer
    top = body["results"][0]["items"]
    r = client.post("/recommend", json={"users": users[:2], "k": 5, "exclude": [top[:2], []]})
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["items"] == top[2:7] and not set(first["items"]) & set(top[:2])
    check_answer(bundles, 1, 5, second, version)
    r = client.post("/embed", json={"users": users})
    assert r.status_code == 200
    assert np.allclose(r.json()["vectors"], bundles.expected[version].vectors[:5], atol=1e-5)
    meta = client.get("/metadata").json()
    assert meta["name"] == "test" and meta["bundle"] == version and meta["manifest"]
    assert meta["settings"]["max_k"] == MAX_K and "admin_token" not in meta["settings"]


def test_unknown_fields_are_ignored_and_listed(client, bundles):
    user = {**bundles.users[0], "favourite_colour": "blue", "zz_other": 1}
    r = client.post("/recommend", json={"users": [user], "k": 3})
    assert r.status_code == 200
    assert r.headers["X-Recstack-Ignored-Fields"] == "favourite_colour,zz_other"
    check_answer(bundles, 0, 3, r.json()["results"][0], bundles.expected["v1"])
    r = client.post("/recommend", json={"users": [{**bundles.users[0], "größe, cm": 180}], "k": 3})
    assert r.status_code == 200 and r.headers["X-Recstack-Ignored-Fields"] == "gr%C3%B6%C3%9Fe%2C%20cm"
    many = {**bundles.users[0], **{f"x{i:03d}": 1 for i in range(80)}}
    r = client.post("/recommend", json={"users": [many], "k": 3})
    shown = r.headers["X-Recstack-Ignored-Fields"].split(",")
    assert r.status_code == 200 and len(shown) == 51 and shown[0] == "x000" and shown[-1] == "..."


def _bad_cases(users):
    u = users[0]
    numeric = next(k for k, v in u.items() if isinstance(v, float))
    required = "client_id"
    return [
        ({"users": [u, {**u, numeric: "high"}]}, 422, f"users[1].{numeric}"),
        ({"users": [u, u, {**u, numeric: True}]}, 422, f"users[2].{numeric}"),
        ({"users": [{**u, "user_lang": 3.5}]}, 422, "users[0].user_lang"),
        ({"users": [{**u, "user_lang": {"a": 1}}]}, 422, "users[0].user_lang"),
        ({"users": [u, u, u, {k: v for k, v in u.items() if k != required}]}, 422, f"users[3].{required}"),
        ({"users": [{**u, required: None}]}, 422, f"users[0].{required}"),
        ({"users": [u], "k": 0}, 422, "k"),
        ({"users": [u], "k": -3}, 422, "k"),
        ({"users": [u], "k": MAX_K + 1}, 422, "k"),
        ({"users": [u], "k": "10"}, 422, "k"),
        ({"users": [u], "k": 2.5}, 422, "k"),
        ({"users": [u], "exclude": [[1], [2]]}, 422, "exclude"),
        ({"users": [u], "exclude": [["x"]]}, 422, "exclude[0][0]"),
        ({"users": [u], "exclude": [1, 2]}, 422, "exclude[0]"),
        ({"users": [u], "rank": "yes"}, 422, "rank"),
        ({"users": [u], "blend": {"weights": {"like": 1.0}}}, 422, "blend"),
        ({"users": [u], "k": 10, "rank": True, "candidates": 5}, 422, "candidates"),
        ({"users": [u], "k": 10, "candidates": 20}, 422, "candidates"),
        ({"users": [u], "rank": True, "blend": {"weights": {}}}, 422, "blend.weights"),
        ({"users": [u], "rank": True, "blend": {"weights": {"like": "x"}}}, 422, "blend.weights.like"),
        ({"users": [u], "rank": True, "blend": {"weights": {"nope": 1.0}}}, 422, "blend.weights.nope"),
        ({"users": [u], "rank": True, "blend": {"weights": {"like": 1}, "transform": "cubic"}}, 422, "blend.transform"),
        ({"users": "everyone"}, 422, "users"),
        ({"users": [1, 2]}, 422, "users[0]"),
        ({"users": []}, 422, "users"),
        ({}, 422, "users"),
        ({"users": [u] * (MAX_ROWS + 1)}, 413, "users"),
    ]


def test_bad_requests_are_4xx_naming_the_field(client, bundles):
    for body, status, field in _bad_cases(bundles.users):
        r = client.post("/recommend", json=body)
        assert r.status_code == status, (field, r.text)
        err = r.json()
        assert err["field"] == field, (field, err)
        assert err["error"] and "Traceback" not in err["error"]
    assert client.get("/health").status_code == 200


def test_nan_and_infinity_are_422(client, bundles):
    u = bundles.users[0]
    numeric = next(k for k, v in u.items() if isinstance(v, float))
    for literal in ("NaN", "Infinity", "-Infinity"):
        text = json.dumps({"users": [u, u]})[:-3] + f', "{numeric}": {literal}' + "}]}"
        r = client.post("/recommend", content=text, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == f"users[1].{numeric}"


def test_malformed_bodies(client, bundles):
    r = client.post("/recommend", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/recommend", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = client.post("/recommend", content=json.dumps({"users": bundles.users[:1]}).encode(),
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    big = json.dumps({"users": [{"client_id": "x" * (MAX_BODY + 10)}]}).encode()
    r = client.post("/recommend", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["error"]

    def chunks():  # no Content-Length: the size is counted as the body arrives
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    r = client.post("/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/nowhere").status_code == 404
    assert client.get("/recommend").status_code == 405
    assert client.get("/health").status_code == 200


def test_rank_blend_and_predict_match_in_process(client, bundles):
    want = bundles.expected[bundles.expected["v1"]]
    r = client.post("/recommend", json={"users": bundles.users[:3], "k": 5, "rank": True, "candidates": 20})
    assert r.status_code == 200, r.text
    for u, answer in enumerate(r.json()["results"]):
        assert answer["items"] == want.ranked.items[u].tolist()
        assert np.allclose(answer["scores"], want.ranked.scores[u], atol=1e-5)
        assert set(answer["task_scores"]) == {"click", "like"}
        for task, values in answer["task_scores"].items():
            assert np.allclose(values, want.ranked.task_scores[task][u], atol=1e-5)
    blend = {"weights": {"like": 1.0}, "transform": "logit"}
    r = client.post("/recommend", json={"users": bundles.users[:3], "k": 5, "rank": True, "blend": blend})
    assert r.status_code == 200, r.text
    for u, answer in enumerate(r.json()["results"]):
        assert answer["items"] == want.blended.items[u].tolist()
        assert np.allclose(answer["scores"], want.blended.scores[u], atol=1e-5)
    r = client.post("/predict", json={"rows": bundles.rows})
    assert r.status_code == 200, r.text
    scores = r.json()["scores"]
    for task in ("click", "like"):
        assert np.allclose(scores[task], want.predict[task], atol=1e-5)
    r = client.post("/predict", json={"rows": [{**bundles.rows[0], "video_length": "long"}]})
    assert r.status_code == 422 and r.json()["field"] == "rows[0].video_length"
    r = client.post("/predict", json={"rows": [bundles.rows[0]] * (MAX_ROWS + 1)})
    assert r.status_code == 413 and r.json()["field"] == "rows"


def test_sixteen_concurrent_clients_get_their_own_answers(server, bundles):
    version = bundles.expected["v1"]
    n_users = len(bundles.users)

    def client_run(t: int) -> list[str]:
        problems = []
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for i in range(50):
                u = (t * 7 + i) % n_users
                k = 1 + (t + i) % K_TOP
                r = c.post("/recommend", json={"users": [bundles.users[u]], "k": k})
                if r.status_code != 200:
                    problems.append(f"{r.status_code} {r.text[:200]}")
                    continue
                try:
                    check_answer(bundles, u, k, r.json()["results"][0], version)
                except AssertionError:
                    problems.append(f"client {t} request {i}: wrong answer for user {u}, k={k}")
        return problems

    with ThreadPoolExecutor(16) as pool:
        problems = [p for ps in pool.map(client_run, range(16), timeout=120) for p in ps]
    assert not problems, problems[:5]
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    batches = _sample(metrics, 'recstack_batch_requests_count{kind="recommend"}')
    requests = _sample(metrics, 'recstack_batch_requests_sum{kind="recommend"}')
    assert requests >= 800 and batches < requests  # some requests ran together


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics:\n{text[:2000]}")


def test_metrics(client, bundles):
    u = {k: v for k, v in bundles.users[0].items() if k != "user_lang"}  # imputed
    assert client.post("/recommend", json={"users": [u], "k": 3}).status_code == 200
    assert client.post("/recommend", json={"users": [u], "k": 0}).status_code == 422
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _sample(text, 'recstack_requests_total{endpoint="/recommend",status="200"}') >= 1
    assert _sample(text, 'recstack_requests_total{endpoint="/recommend",status="422"}') >= 1
    assert _sample(text, 'recstack_request_seconds_count{endpoint="/recommend"}') >= 2
    assert _sample(text, 'recstack_batch_rows_count{kind="recommend"}') >= 1
    for stage in ("features", "user_tower", "retrieval"):
        assert _sample(text, f'recstack_stage_seconds_count{{stage="{stage}"}}') >= 1
    version = bundles.expected["v1"]
    assert _sample(text, f'recstack_bundle_info{{service="test",version="{version}"}}') == 1
    assert _sample(text, "recstack_ready") == 1
    assert _sample(text, 'recstack_imputed_values_total{feature="user_lang"}') >= 1


# ---- admin: reload and its guard ------------------------------------------------------------------------------------


def test_admin_needs_the_token(client, bundles):
    r = client.post("/admin/reload", json={"path": str(bundles.v2)})
    assert r.status_code == 401 and r.json()["error"]
    r = client.post("/admin/reload", json={"path": str(bundles.v2)}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403
    r = client.post("/admin/reload", json={"path": str(bundles.v2)}, headers={"Authorization": TOKEN})
    assert r.status_code == 401
    assert client.get("/health").json()["bundle"] == bundles.expected["v1"]


def test_bad_bundle_is_refused_and_the_old_one_serves(client, bundles):
    r = client.post("/admin/reload", json={"path": str(bundles.bad)}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "path" and bundles.damaged in r.json()["error"]
    r = client.post("/admin/reload", json={"path": str(bundles.bad / "nowhere")},
                    headers=ADMIN)
    assert r.status_code == 422
    assert client.get("/health").json()["bundle"] == bundles.expected["v1"]
    r = client.post("/recommend", json={"users": bundles.users[:1], "k": 4})
    assert r.status_code == 200 and r.json()["bundle"] == bundles.expected["v1"]
    check_answer(bundles, 0, 4, r.json()["results"][0], bundles.expected["v1"])


def test_reload_under_load_switches_versions_without_errors(server, bundles):
    v1, v2 = bundles.expected["v1"], bundles.expected["v2"]
    stop = threading.Event()
    swapped_at: list[float] = []

    def load(t: int) -> tuple[int, list[str], list[tuple[float, str]]]:
        sent, problems, after = 0, [], []
        with httpx.Client(base_url=server.url, timeout=30) as c:
            i = 0
            while not stop.is_set() and i < 400:
                u, k = (t * 5 + i) % len(bundles.users), 1 + i % 10
                started = time.monotonic()
                sent += 1
                r = c.post("/recommend", json={"users": [bundles.users[u]], "k": k})
                i += 1
                if r.status_code != 200:
                    problems.append(f"{r.status_code} {r.text[:200]}")
                    continue
                version = r.json()["bundle"]
                try:
                    check_answer(bundles, u, k, r.json()["results"][0], version)
                except (AssertionError, KeyError):
                    problems.append(f"answer for user {u} does not match bundle {version}")
                after.append((started, version))
        return sent, problems, after

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(load, t) for t in range(6)]
        time.sleep(0.5)
        with httpx.Client(base_url=server.url, timeout=60) as admin:
            r = admin.post("/admin/reload", json={"path": str(bundles.v2)}, headers=ADMIN)
            swapped_at.append(time.monotonic())
            assert r.status_code == 200, r.text
            assert r.json()["bundle"] == v2 and r.json()["previous"] == v1
            time.sleep(0.5)
            stop.set()
            results = [f.result(timeout=60) for f in futures]
            back = admin.post("/admin/reload", json={"path": str(bundles.v1)}, headers=ADMIN)
            assert back.status_code == 200 and back.json()["bundle"] == v1
    problems = [p for _, ps, _ in results for p in ps]
    answered = [a for _, _, a in results]
    assert not problems, problems[:5]
    assert sum(s for s, _, _ in results) == sum(len(a) for a in answered)  # every request got its answer
    versions = [v for a in answered for _, v in a]
    assert v1 in versions and v2 in versions
    late = [v for a in answered for started, v in a if started > swapped_at[0]]
    assert late and set(late) == {v2}


def test_sighup_reloads_the_current_path(server, client, bundles):
    before = _sample(client.get("/metrics").text, 'recstack_reloads_total{outcome="ok"}')
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while _sample(client.get("/metrics").text, 'recstack_reloads_total{outcome="ok"}') < before + 1:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert client.get("/health").json()["bundle"] == bundles.expected["v1"]


# ---- shutdown ------------------------------------------------------------------------------------------------------


def test_sigterm_lets_requests_in_flight_finish(bundles, tmp_path):
    # a long batching interval keeps the requests queued while SIGTERM arrives
    srv = ServerProcess(bundles.v1, "--batch-interval-ms", "700", log=tmp_path / "server.log")
    try:
        srv.wait_ready()

        def ask(u: int) -> httpx.Response:
            return httpx.post(srv.url + "/recommend", json={"users": [bundles.users[u]], "k": 5}, timeout=30)

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(ask, u) for u in range(6)]
            time.sleep(0.35)
            srv.signal(signal.SIGTERM)
            answers = [f.result(timeout=60) for f in futures]
        status = srv.proc.wait(30)
        log = srv.log()
    finally:
        srv.stop()
    # uvicorn re-raises the signal once it has shut down gracefully, so the exit status is that of SIGTERM
    assert status in (0, -signal.SIGTERM), log
    assert "Finished server process" in log
    for u, r in enumerate(answers):
        assert r.status_code == 200, r.text
        check_answer(bundles, u, 5, r.json()["results"][0], bundles.expected["v1"])


def test_unloadable_bundle_exits_1(tmp_path):
    srv = ServerProcess(tmp_path / "missing", log=tmp_path / "server.log")
    try:
        assert srv.proc.wait(60) == 1
    finally:
        srv.stop()
    assert "missing" in srv.log_path.read_text()


def test_flags_of_both_entry_points(monkeypatch):
    import argparse

    from recstack.serve.runner import add_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    monkeypatch.setenv("RECSTACK_ADMIN_TOKEN", "from-env")
    args = parser.parse_args(["--name", "n", "--path", "b", "--max-k", "7", "--batch-interval-ms", "0.5",
                              "--max-batch", "9", "--queue-timeout-ms", "50", "--max-body-bytes", "1000"])
    s = settings_from_args(args)
    assert (s.max_k, s.batch_interval_ms, s.max_batch, s.queue_timeout_ms, s.max_body_bytes) == (7, 0.5, 9, 50, 1000)
    assert s.admin_token == "from-env" and s.batch_interval_ms <= 2 and "admin_token" not in s.public()
    flagged = parser.parse_args(["--name", "n", "--path", "b", "--admin-token", "t"])
    assert settings_from_args(flagged).admin_token == "t"
    with pytest.raises(ArgumentError, match="max_k"):
        settings_from_args(parser.parse_args(["--name", "n", "--path", "b", "--max-k", "0"]))
    from recstack.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["serve", "--help"])
    assert stop.value.code == 0
