"""Running the HTTP service in a subprocess for the tests, and always stopping it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m recstack.serve`` on a free port of 127.0.0.1; `stop` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, path: Path, *args: str, name: str = "test", log: Path, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "recstack.serve", "--name", name, "--path", str(path), "--port", str(self.port)]
        full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
        self.proc = subprocess.Popen(
            cmd + list(args), stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until /health answers 200; fail with the server's log when it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server was not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


USER = ["client_id", "user_lang", "user_os_platform", "user_overall_short_loop", "user_overall_short_like", "latitude"]
ITEM = ["item_id", "item_lang", "creator_id", "video_length", "item_like_uu"]
RANKER = ["client_id", "user_lang", "user_overall_short_like", "item_id", "item_lang", "creator_id", "video_length"]
TASKS = ["click", "like"]


def export_test_bundle(path: Path, seed: int, rows: int = 3_000) -> Path:
    """A small two-tower model with two rankers (tasks click and like) on the short-video data, trained with
    ``seed`` and exported to ``path``."""
    import numpy as np
    import torch

    from recstack.export import export_bundle
    from recstack.features import hash_values
    from recstack.models import DCN, DeepFM, TwoTowerModel
    from two_tower_data import short_video

    df, pipe, train, _, _, _ = short_video(rows=rows, users=80, items=300)
    fc = {f.name: f for f in pipe.feature_columns}
    torch.manual_seed(seed)
    model = TwoTowerModel([fc[n] for n in USER], [fc[n] for n in ITEM], embedding_dim=8, tower_hidden_units=(16,))
    model.fit(train, epochs=1, batch_size=512, verbose=0)
    cols = [fc[n] for n in RANKER]
    x = {n: train[n] for n in RANKER}
    rankers = {}
    for task, cls, y in (("click", DCN, train["label"]), ("like", DeepFM, (train["user_lang"] % 3 == 0))):
        ranker = cls(cols, cols, dnn_hidden_units=(8,), seed=seed + 1)
        ranker.compile("adam", "binary_crossentropy")
        ranker.fit(x, np.asarray(y, dtype=np.float32), epochs=1, batch_size=1024, verbose=0)
        rankers[task] = ranker.eval()
    model.eval()
    items = df.drop_duplicates("item_id").reset_index(drop=True)
    ids = hash_values(items["item_id"], "item_id")
    return export_bundle(
        path, model, pipe, pipe.transform(items), item_ids=ids, ranker=rankers, item_features=items[ITEM]
    )


def sample_users(n: int = 40, rows: int = 3_000) -> list[dict]:
    """``n`` distinct users' raw features (the bundle's user features) as JSON-ready dicts."""
    import json

    from two_tower_data import short_video

    df = short_video(rows=rows, users=80, items=300)[0]
    users = {*USER, *(c for c in RANKER if c not in ITEM)}
    frame = df.drop_duplicates("client_id").head(n)[sorted(users)]
    return json.loads(frame.to_json(orient="records"))
