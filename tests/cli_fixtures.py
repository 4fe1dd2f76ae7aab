"""The small data fixtures of the CLI tests, written once per test process into a temporary directory.

cli_ml1m/: train.txt, valid.txt, test.txt in the ML-1M LCFN split's ``user item item ...`` format: 80 users, 60
items, two interest clusters (even users mostly interact with even items), 18 items per user of which 2 go to
valid and 2 to test.

cli_ml100k/: ml-100k.inter, .user, .item in RecBole's atomic-file format (MovieLens-100K's shape): 60 users, 40
movies, 1,200 ratings; a rating is high (mean 4.2) when the user's gender matches the movie's group, else low
(mean 2.6).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np


@functools.cache
def data_dir() -> Path:
    """A directory holding ``cli_ml1m/`` and ``cli_ml100k/`` (removed when the process exits)."""
    root = Path(tempfile.mkdtemp(prefix="recstack-cli-data-"))
    atexit.register(shutil.rmtree, root, True)
    _write(root)
    return root


def _write(root: Path) -> None:
    rng = np.random.default_rng(7)
    n_users, n_items = 80, 60
    out = root / "cli_ml1m"
    out.mkdir(exist_ok=True)
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        c = u % 2
        own, other = np.arange(c, n_items, 2), np.arange(1 - c, n_items, 2)
        chosen = np.concatenate([rng.choice(own, 16, replace=False), rng.choice(other, 2, replace=False)])
        rng.shuffle(chosen)
        parts["valid"].append(chosen[:2])
        parts["test"].append(chosen[2:4])
        parts["train"].append(chosen[4:])
    for name, rows in parts.items():
        text = "".join(f"{u} " + " ".join(map(str, items)) + "\n" for u, items in enumerate(rows))
        (out / f"{name}.txt").write_text(text)

    out = root / "cli_ml100k"
    out.mkdir(exist_ok=True)
    n_users, n_items = 60, 40
    genres = ["Action", "Comedy", "Drama", "Romance"]
    occupations = ["student", "engineer", "artist", "other"]
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    gender = {}
    for u in range(1, n_users + 1):
        gender[u] = "M" if u % 2 else "F"
        users.append(f"{u}\t{rng.integers(18, 60)}\t{gender[u]}\t{occupations[u % 4]}\t{10000 + u % 7}")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    group = {}
    for i in range(1, n_items + 1):
        names = [genres[i % 4]] + ([genres[(i + 1) % 4]] if i % 3 == 0 else [])
        group[i] = i % 2
        items.append(f"{i}\tMovie {i}\t{1980 + i % 20}\t{' '.join(names)}")
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    seen = set()
    while len(inter) < 1201:
        u, i = int(rng.integers(1, n_users + 1)), int(rng.integers(1, n_items + 1))
        if (u, i) in seen:
            continue
        seen.add((u, i))
        match = (gender[u] == "M") == (group[i] == 0)
        rating = int(np.clip(round(rng.normal(4.2 if match else 2.6, 0.8)), 1, 5))
        inter.append(f"{u}\t{i}\t{rating}\t{880000000 + len(inter)}")
    for name, rows in (("ml-100k.user", users), ("ml-100k.item", items), ("ml-100k.inter", inter)):
        (out / name).write_text("\n".join(rows) + "\n")
