"""Raw feature rows from a JSON request, checked field by field and turned into columns for the model."""

from __future__ import annotations

import collections
import itertools
import math
import operator
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from recstack.features.columns import DenseFeat, Feature, SparseFeat, VarLenSparseFeat


class RequestError(ValueError):
    """A request field holds a value the service cannot use; ``field`` is its path (``users[3].user_lang``)."""

    def __init__(self, field: str | None, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_CATEGORY = "category"
_NUMBER = "number"
_VECTOR = "vector"
_SEQUENCE = "sequence"
_WEIGHTS = "weights"

_EXPECTED = {
    _CATEGORY: "a string or a 64-bit integer id (or null for a missing value)",
    _NUMBER: "a finite number (or null for a missing value)",
    _SEQUENCE: "a list of string or integer ids, or one string joined by the feature's separator (or null)",
    _WEIGHTS: "a list of finite numbers, one per value of its sequence (or null)",
}


class RowSchema:
    """What each raw feature of a row may hold, from the pipeline's feature declarations.

    ``features``: the features a row may carry; ``required``: those every row must carry (non-null);
    ``lowercase``: match field names case-insensitively, as a pipeline with ``lowercase=True`` does.
    Fields that name no feature are ignored and reported by `columns`.
    """

    def __init__(self, features: Iterable[Feature], required: Sequence[str] = (), lowercase: bool = True) -> None:
        self.lowercase = lowercase
        self.kinds: dict[str, tuple[str, int]] = {}
        for feat in features:
            if isinstance(feat, VarLenSparseFeat):
                self.kinds[self._key(feat.name)] = (_SEQUENCE, 0)
                if feat.weight_name:
                    self.kinds[self._key(feat.weight_name)] = (_WEIGHTS, 0)
            elif isinstance(feat, DenseFeat):
                self.kinds[self._key(feat.name)] = (_NUMBER, 1) if feat.dimension == 1 else (_VECTOR, feat.dimension)
            elif isinstance(feat, SparseFeat):
                self.kinds[self._key(feat.name)] = (_NUMBER, 1) if feat.n_bins is not None else (_CATEGORY, 1)
        self.required = [self._key(name) for name in required]

    def _key(self, name: str) -> str:
        return name.lower() if self.lowercase else name

    def example_row(self) -> dict[str, Any]:
        """A row with a plausible value in every feature (to warm a model up)."""
        values = {_CATEGORY: "warmup", _NUMBER: 0.0, _SEQUENCE: ["warmup"], _WEIGHTS: [1.0]}
        return {name: [0.0] * dim if kind == _VECTOR else values[kind] for name, (kind, dim) in self.kinds.items()}

    def columns(self, rows: Sequence[Mapping[str, Any]], where: str) -> tuple[dict[str, list[Any]], list[str]]:
        """``(columns, ignored)``: one list per feature that some row carries (None where a row lacks it), and
        the sorted names of fields that no feature reads. Raises `RequestError` naming ``where[i].field``.

        Rows of plain numbers and ids are checked column by column in C-level passes; anything else (and any
        bad value) goes through the field-by-field check, which names the field."""
        fast = self._screened_columns(rows)
        if fast is not None:
            return fast
        return self._checked_columns(rows, where)

    def _screened_columns(self, rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, list[Any]], list[str]] | None:
        """`columns` for rows that pass every check, without looking at one field at a time; None otherwise."""
        present = set().union(*rows) if rows else set()
        names = {raw: self._key(raw) for raw in present if isinstance(raw, str)}
        if len(names) != len(present) or len(set(names.values())) != len(names):
            return None
        used = [raw for raw in present if names[raw] in self.kinds]
        ignored = sorted(raw for raw in present if names[raw] not in self.kinds)
        if not used:
            return ({}, ignored) if not self.required else None
        pick = operator.itemgetter(*used)
        try:
            table = [pick(r) for r in rows]
        except KeyError:
            table = [tuple(r.get(raw) for raw in used) for r in rows]
        values = list(zip(*table)) if len(used) > 1 else [tuple(table)]
        cols = {names[raw]: list(col) for raw, col in zip(used, values)}
        numbers = [cols[n] for n in cols if self.kinds[n][0] == _NUMBER]
        categories = [cols[n] for n in cols if self.kinds[n][0] == _CATEGORY]
        if len(numbers) + len(categories) != len(cols):
            return None  # vectors, sequences, weights: field by field
        if numbers:
            flat = list(itertools.chain.from_iterable(numbers))
            kinds = collections.Counter(map(type, flat))
            if not kinds.keys() <= {int, float, type(None)}:
                return None
            try:
                arr = np.array(flat, dtype=np.float64)
            except OverflowError:
                return None
            if int(np.count_nonzero(np.isnan(arr))) != kinds[type(None)] or bool(np.isinf(arr).any()):
                return None
        if categories:
            flat = list(itertools.chain.from_iterable(categories))
            kinds = collections.Counter(map(type, flat))
            if not kinds.keys() <= {int, str, type(None)}:
                return None
            if int in kinds:
                ints = [v for v in flat if type(v) is int]
                if min(ints) < INT64_MIN or max(ints) > INT64_MAX:
                    return None
        for name in self.required:
            if name not in cols or None in cols[name]:
                return None
        return cols, ignored

    def _checked_columns(
        self, rows: Sequence[Mapping[str, Any]], where: str
    ) -> tuple[dict[str, list[Any]], list[str]]:
        cols: dict[str, list[Any]] = {}
        ignored: set[str] = set()
        n = len(rows)
        for i, row in enumerate(rows):
            for raw_name, value in row.items():
                name = self._key(raw_name)
                spec = self.kinds.get(name)
                if spec is None:
                    ignored.add(raw_name)
                    continue
                if value is not None:
                    _check(value, spec, f"{where}[{i}].{raw_name}")
                col = cols.get(name)
                if col is None:
                    col = cols[name] = [None] * n
                elif col[i] is not None and value is not None:
                    raise RequestError(
                        f"{where}[{i}].{raw_name}", f"{where}[{i}] gives feature {name!r} twice (names are not case "
                        "sensitive)"
                    )
                col[i] = value
        for name in self.required:
            col = cols.get(name)
            if col is None:
                raise RequestError(f"{where}[0].{name}", f"{where}[0] lacks the required feature {name!r}")
            for i, value in enumerate(col):
                if value is None:
                    raise RequestError(f"{where}[{i}].{name}", f"{where}[{i}] lacks the required feature {name!r}")
        return cols, sorted(ignored)


def _check(value: Any, spec: tuple[str, int], field: str) -> None:  # noqa: ANN401
    kind, dim = spec
    if kind == _CATEGORY:
        if not _category(value):
            _wrong(field, value, _EXPECTED[kind])
    elif kind == _NUMBER:
        if not _finite_number(value):
            _wrong(field, value, _EXPECTED[kind])
    elif kind == _VECTOR:
        if not isinstance(value, list) or len(value) != dim or not all(_finite_number(v) for v in value):
            _wrong(field, value, f"a list of {dim} finite numbers (or null for a missing value)")
    elif kind == _SEQUENCE:
        if isinstance(value, str):
            return
        if not isinstance(value, list):
            _wrong(field, value, _EXPECTED[kind])
        for j, v in enumerate(value):
            if not _category(v):
                _wrong(f"{field}[{j}]", v, "a string or an integer id")
    elif kind == _WEIGHTS:
        if not isinstance(value, list):
            _wrong(field, value, _EXPECTED[kind])
        for j, v in enumerate(value):
            if not _finite_number(v):
                _wrong(f"{field}[{j}]", v, "a finite number")


def _category(value: Any) -> bool:  # noqa: ANN401
    if isinstance(value, str):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


def _finite_number(value: Any) -> bool:  # noqa: ANN401
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) <= sys.float_info.max
    return math.isfinite(value)


def _wrong(field: str, value: Any, expected: str) -> None:  # noqa: ANN401
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise RequestError(field, f"{field} is {shown} ({_json_type(value)}); expected {expected}")


def _json_type(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_exclude(exclude: Sequence[Sequence[int]], users: int) -> None:
    """`RequestError` unless ``exclude`` holds one list of 64-bit item ids per user."""
    if len(exclude) != users:
        raise RequestError(
            "exclude", f"exclude holds {len(exclude)} lists for {users} users: send one list per user ([] for a user "
            "with none)"
        )
    for u, ids in enumerate(exclude):
        if ids and (min(ids) < INT64_MIN or max(ids) > INT64_MAX):
            j = next(j for j, i in enumerate(ids) if not INT64_MIN <= i <= INT64_MAX)
            raise RequestError(f"exclude[{u}][{j}]", f"exclude[{u}][{j}] is {ids[j]}, outside the 64-bit item ids")


def concat_columns(parts: Sequence[tuple[dict[str, list[Any]], int]]) -> dict[str, list[Any]]:
    """The columns of several requests one after another; ``parts`` holds ``(columns, rows)`` per request, and a
    feature one request lacks is None over its rows."""
    names: dict[str, None] = {}
    for cols, _ in parts:
        names.update(dict.fromkeys(cols))
    out: dict[str, list[Any]] = {name: [] for name in names}
    for cols, rows in parts:
        for name in names:
            col = cols.get(name)
            out[name].extend(col if col is not None else [None] * rows)
    return out
