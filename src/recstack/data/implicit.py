"""Implicit-feedback interactions as per-user item lists (CSR), their text format, and the ML-1M LCFN split.

A `CSR` holds, for each user (row), the sorted ids of the items they interacted with; an `ImplicitSplit`
holds the train / valid / test CSRs of one dataset over the same users and items. The text format is the
one of the LCFN / LightGCN / UltraGCN repositories: one line per user, ``user item item ...``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recstack.errors import SchemaError

ML1M_LCFN = "ml-1m-lcfn"


@dataclass(frozen=True)
class CSR:
    """Per-row id lists: row ``r`` holds ``indices[indptr[r]:indptr[r + 1]]`` (int64, sorted, unique)."""

    indptr: np.ndarray
    indices: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def lengths(self) -> np.ndarray:
        """Number of ids in each row."""
        return np.diff(self.indptr)

    def row(self, r: int) -> np.ndarray:
        """The ids of row ``r``."""
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def with_rows(self, n_rows: int) -> CSR:
        """The same lists with empty rows appended up to ``n_rows`` rows."""
        if n_rows < self.n_rows:
            raise SchemaError(f"CSR: cannot shrink from {self.n_rows} to {n_rows} rows")
        tail = np.full(n_rows - self.n_rows, self.indptr[-1], dtype=np.int64)
        return CSR(np.concatenate([self.indptr, tail]), self.indices)

    @classmethod
    def from_pairs(cls, rows: np.ndarray, cols: np.ndarray, n_rows: int | None = None) -> CSR:
        """The CSR of (row, col) pairs: duplicates dropped, each row's ids sorted; ``n_rows`` defaults to max + 1."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        cols = np.asarray(cols, dtype=np.int64).reshape(-1)
        if len(rows) != len(cols):
            raise SchemaError(f"CSR.from_pairs: {len(rows)} rows but {len(cols)} cols")
        if len(rows) and (rows.min() < 0 or cols.min() < 0):
            raise SchemaError("CSR.from_pairs: row and col ids must be >= 0")
        needed = int(rows.max()) + 1 if len(rows) else 0
        n_rows = needed if n_rows is None else n_rows
        if n_rows < needed:
            raise SchemaError(f"CSR.from_pairs: n_rows={n_rows} but row ids go up to {needed - 1}")
        width = int(cols.max()) + 1 if len(cols) else 1
        keys = np.unique(rows * width + cols)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // width, minlength=n_rows), out=indptr[1:])
        return cls(indptr, keys % width)


def pairs(csr: CSR) -> tuple[np.ndarray, np.ndarray]:
    """The (users, items) int64 arrays of every pair in ``csr``, row by row."""
    users = np.repeat(np.arange(csr.n_rows, dtype=np.int64), np.diff(csr.indptr))
    return users, np.asarray(csr.indices, dtype=np.int64)


@dataclass(frozen=True)
class ImplicitSplit:
    """Train / valid / test interactions of one dataset: CSRs of ``n_users`` rows with item ids < ``n_items``."""

    n_users: int
    n_items: int
    train: CSR
    valid: CSR | None
    test: CSR

    def summary(self) -> dict[str, int]:
        """Users, items and pair counts of each part."""
        out = {"n_users": self.n_users, "n_items": self.n_items, "train": self.train.nnz, "test": self.test.nnz}
        if self.valid is not None:
            out["valid"] = self.valid.nnz
        return out


def read_user_item_lists(path: str | os.PathLike) -> CSR:
    """Read a ``user item item ...`` per line file into a CSR (rows up to the largest user id; blank lines skipped).

    A user may appear on several lines (their items are merged) or on a line of its own with no items;
    repeated (user, item) pairs count once.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found (expected 'user item item ...' lines)") from None
    buf = np.frombuffer(raw, dtype=np.uint8)
    space = (buf == ord(" ")) | (buf == ord("\t")) | (buf == ord("\n")) | (buf == ord("\r"))
    starts = ~space
    starts[1:] &= space[:-1]
    n_tokens = int(starts.sum())
    try:
        values = np.fromstring(raw.decode("ascii"), dtype=np.int64, sep=" ") if n_tokens else np.zeros(0, np.int64)
    except (ValueError, UnicodeDecodeError):
        values = None
    if values is None or len(values) != n_tokens:
        raise SchemaError(f"{path}: expected lines of whitespace-separated non-negative integer ids ('user item ...')")
    if n_tokens and values.min() < 0:
        raise SchemaError(f"{path}: negative id {int(values.min())}; user and item ids must be >= 0")
    newline = buf == ord("\n")
    line_of_token = (np.cumsum(newline) - newline)[starts]
    first = np.ones(n_tokens, dtype=bool)
    first[1:] = line_of_token[1:] != line_of_token[:-1]
    head = np.maximum.accumulate(np.where(first, np.arange(n_tokens), 0))
    users, items = values[head][~first], values[~first]
    n_rows = int(values[first].max()) + 1 if n_tokens else 0
    return CSR.from_pairs(users, items, n_rows)


def default_data_root() -> Path:
    """``$RECSTACK_DATA`` if set, else ``shared/data`` beside the repository checkout."""
    env = os.environ.get("RECSTACK_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def load_ml1m_lcfn(root: str | os.PathLike | None = None) -> ImplicitSplit:
    """MovieLens-1M implicit feedback, the LCFN / UltraGCN split (train.txt, valid.txt, test.txt).

    ``root`` is the folder that holds the three files (or its parent holding ``ml-1m-lcfn/``); by default
    ``default_data_root() / "ml-1m-lcfn"``. Every ML-1M rating counts as an interaction (20-core filter);
    per user 10% valid and 10% test; evaluate with full ranking, training items masked.
    """
    folder = Path(root) if root is not None else default_data_root() / ML1M_LCFN
    if not (folder / "train.txt").is_file() and (folder / ML1M_LCFN / "train.txt").is_file():
        folder = folder / ML1M_LCFN
    missing = [name for name in ("train.txt", "valid.txt", "test.txt") if not (folder / name).is_file()]
    if missing:
        raise SchemaError(
            f"ML-1M LCFN split not found: {folder} lacks {missing} (pass root= or set RECSTACK_DATA to the folder "
            f"that holds {ML1M_LCFN}/)"
        )
    return split_from_files(folder / "train.txt", folder / "valid.txt", folder / "test.txt")


def split_from_files(
    train: str | os.PathLike, valid: str | os.PathLike | None, test: str | os.PathLike
) -> ImplicitSplit:
    """An `ImplicitSplit` from three ``user item ...`` files; raises if any two parts share a (user, item) pair."""
    paths = {"train": Path(train), "valid": None if valid is None else Path(valid), "test": Path(test)}
    parts = {name: read_user_item_lists(p) for name, p in paths.items() if p is not None}
    n_users = max(c.n_rows for c in parts.values())
    n_items = max((int(c.indices.max()) + 1 for c in parts.values() if c.nnz), default=0)
    parts = {name: c.with_rows(n_users) for name, c in parts.items()}
    keys = {}
    for name, csr in parts.items():
        u, i = pairs(csr)
        keys[name] = u * max(n_items, 1) + i
    names = list(parts)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            both = np.intersect1d(keys[names[a]], keys[names[b]], assume_unique=True)
            if len(both):
                u, i = divmod(int(both[0]), max(n_items, 1))
                raise SchemaError(
                    f"{paths[names[b]]}: {len(both)} (user, item) pair(s) also in {paths[names[a]]} "
                    f"(first: user {u}, item {i}); {names[a]} and {names[b]} must not overlap"
                )
    return ImplicitSplit(n_users, n_items, parts["train"], parts.get("valid"), parts["test"])
