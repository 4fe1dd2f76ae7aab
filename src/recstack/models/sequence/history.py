"""The columns of a behaviour-sequence model: candidates, their histories and what else the DNN reads.

For each name ``f`` in ``history_feature_list`` the candidate is the `SparseFeat` ``f`` and its history the
`VarLenSparseFeat` ``hist_f`` (DIEN's negative history: ``neg_hist_f``), DeepCTR-Torch's naming. A history looks up
the candidate's embedding table (``embedding_name=f``), or, DeepCTR-Torch style, a table of its own of the same
``embedding_dim``. The histories' true lengths are read from the first history's length column (``length_name``);
without one in the batch, a history's non-zero ids are counted.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from recstack.errors import SchemaError
from recstack.features.columns import Feature, SparseFeat, VarLenSparseFeat


@dataclass
class HistoryColumns:
    """The resolved columns: ``pooled`` (embedded and flattened into the DNN input), ``raw`` (looked up
    unpooled: candidates, histories, negative histories), the names in query order and the attention width."""

    pooled: list[Feature]
    raw: list[Feature]
    candidates: list[str]
    histories: list[str]
    negatives: list[str]
    length_key: str
    interest_dim: int
    maxlen: int


def resolve_history_columns(
    feature_columns: Sequence[Feature], history_feature_list: Sequence[str], model: str, negatives: bool = False
) -> HistoryColumns:
    """Check and split ``feature_columns`` for ``history_feature_list``; `SchemaError` naming the column otherwise."""
    if isinstance(history_feature_list, str) or len(history_feature_list) == 0:
        raise SchemaError(
            f"{model}: history_feature_list must be a non-empty list of candidate feature names (e.g. ['item_id']), "
            f"got {history_feature_list!r}"
        )
    by_name = {f.name: f for f in feature_columns}
    sequences = [f.name for f in feature_columns if isinstance(f, VarLenSparseFeat)]
    candidates: list[SparseFeat] = []
    histories: list[VarLenSparseFeat] = []
    neg_histories: list[VarLenSparseFeat] = []
    for name in history_feature_list:
        cand = by_name.get(name)
        if not isinstance(cand, SparseFeat):
            found = "missing" if cand is None else f"a {type(cand).__name__}"
            raise SchemaError(
                f"{model}: history_feature_list names {name!r}, which must be a SparseFeat of dnn_feature_columns "
                f"(the candidate); it is {found}"
            )
        candidates.append(cand)
        histories.append(_history(by_name, cand, "hist_" + name, model, sequences))
        if negatives:
            neg_histories.append(_history(by_name, cand, "neg_hist_" + name, model, sequences))
    maxlens = {h.name: h.maxlen for h in histories + neg_histories}
    if len(set(maxlens.values())) > 1:
        raise SchemaError(f"{model}: the history columns must share one maxlen, found {maxlens}")
    taken = {h.name for h in histories} | {"neg_hist_" + name for name in history_feature_list}
    pooled = [f for f in feature_columns if f.name not in taken]
    return HistoryColumns(
        pooled=pooled,
        raw=[*candidates, *histories, *neg_histories],
        candidates=[c.name for c in candidates],
        histories=[h.name for h in histories],
        negatives=[h.name for h in neg_histories],
        length_key=histories[0].length_key,
        interest_dim=sum(int(c.embedding_dim) for c in candidates),
        maxlen=histories[0].maxlen,
    )


def _history(
    by_name: dict[str, Feature], cand: SparseFeat, name: str, model: str, sequences: list[str]
) -> VarLenSparseFeat:
    hist = by_name.get(name)
    if not isinstance(hist, VarLenSparseFeat):
        found = "missing" if hist is None else f"a {type(hist).__name__}"
        raise SchemaError(
            f"{model}: candidate {cand.name!r} needs its behaviour sequence, a VarLenSparseFeat {name!r} in "
            f"dnn_feature_columns sharing its embedding "
            f"(SparseFeat({name!r}, ..., embedding_name={cand.embedding_name!r})); "
            f"it is {found} (sequences present: {sequences})"
        )
    table = hist.embedding_name
    if table != cand.embedding_name:
        if table != hist.name:
            raise SchemaError(
                f"{model}: history {name!r} looks up embedding table {table!r}, but its candidate {cand.name!r} uses "
                f"{cand.embedding_name!r}; declare it with embedding_name={cand.embedding_name!r}"
            )
        if hist.embedding_dim != cand.embedding_dim:
            raise SchemaError(
                f"{model}: history {name!r} has its own embedding table of dim {hist.embedding_dim}, but its "
                f"candidate {cand.name!r} has dim {cand.embedding_dim}; share the candidate's table with "
                f"embedding_name={cand.embedding_name!r}"
            )
    return hist


def history_lengths(batch: dict[str, Tensor], length_key: str, first_history: str, maxlen: int) -> Tensor:
    """Each row's history length ``[B]`` (int64, at most ``maxlen``, the padded width): the length column, else
    the number of non-zero ids."""
    if length_key in batch:
        lengths = batch[length_key].reshape(-1).long()
    else:
        lengths = (batch[first_history] != 0).sum(1)
    return lengths.clamp(0, maxlen)
