"""Wide & Deep with crossed features (Cheng et al., 2016): a wide part of one-hot and crossed features plus a DNN.

The wide part is linear over the one-hot (sparse) and dense values of ``linear_feature_columns`` and over the
crossed features ``cross_features``: each cross (a pair, or a longer tuple, of sparse features) is one
categorical feature whose id is the combination of its members' ids, looked up in a weight table of
``cross_hash_size`` rows. The wide part learns per-combination effects (memorization) that the deep part sees only
through its embeddings (generalization); the logits of both parts are added.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from recstack.errors import ArgumentError
from recstack.features.columns import Feature, SparseFeat
from recstack.models.base import ZeroLogit
from recstack.models.ranking.wdl import WDL
from recstack.nn.embedding import EmbeddingCollection

# Cross ids that do not fit the table exactly are hashed modulo this prime, each step staying below 2**62.
HASH_PRIME = 2_147_483_647
HASH_MULTIPLIER = 1_000_003


class CrossedFeatures(nn.Module):
    """The wide weights of crossed sparse features: ``batch -> [B, 1]``, the sum of one weight per cross.

    A cross of features with vocabulary sizes ``V_1 .. V_k`` gets the id ``((id_1 * V_2 + id_2) * V_3 + ...)``
    when ``V_1 * ... * V_k <= hash_size`` (every combination its own weight), else the hash
    ``((id_1 * M + id_2) * M + ...) mod P`` reduced modulo ``hash_size`` (combinations may share a weight). All
    crosses live in one fused table of width 1, looked up with one call per batch.
    """

    cross_names: list[str]
    members: list[list[str]]
    exact: list[bool]
    multipliers: list[list[int]]

    def __init__(
        self,
        crosses: Sequence[Sequence[str]],
        columns: Sequence[Feature],
        hash_size: int,
        init_std: float,
        seed: int,
        l2_reg: float,
        device: str,
    ) -> None:
        super().__init__()
        sparse = {f.name: f for f in columns if isinstance(f, SparseFeat)}
        others = {f.name for f in columns} - set(sparse)
        self.cross_names = []
        self.members = []
        self.exact = []
        self.multipliers = []
        self.prime = HASH_PRIME
        feats: list[SparseFeat] = []
        for cross in crosses:
            if isinstance(cross, str) or len(cross) < 2:
                raise ArgumentError(
                    f"WideAndDeep: each of cross_features must list 2 or more sparse feature names, got {cross!r}"
                )
            names = [str(n) for n in cross]
            for name in names:
                if name not in sparse:
                    what = "is not a SparseFeat" if name in others else "is not a feature of the model"
                    raise ArgumentError(
                        f"WideAndDeep: cross_features {names}: {name!r} {what}; crosses combine the ids of sparse "
                        f"features among {sorted(sparse)}"
                    )
            if len(set(names)) != len(names):
                raise ArgumentError(f"WideAndDeep: cross_features {names} names a feature twice")
            sizes = [int(sparse[n].vocabulary_size) for n in names]
            product = 1
            for size in sizes:
                product *= size
            exact = product <= hash_size
            name = "_x_".join(names)
            if name in self.cross_names:
                raise ArgumentError(f"WideAndDeep: cross_features lists the cross {names} twice")
            self.cross_names.append(name)
            self.members.append(names)
            self.exact.append(exact)
            self.multipliers.append(sizes[1:] if exact else [HASH_MULTIPLIER] * (len(sizes) - 1))
            feats.append(SparseFeat(name, hash_size, embedding_dim=1, use_hash=True))
        self.table = EmbeddingCollection(feats, init_std=init_std, seed=seed, dim=1, device=device, l2_reg=l2_reg)

    def cross_ids(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The non-negative int64 id of every cross, ``[B]`` each, by cross name."""
        out: dict[str, Tensor] = {}
        for i, name in enumerate(self.cross_names):
            names = self.members[i]
            ids = batch[names[0]].reshape(-1).long()
            if not self.exact[i]:
                ids = torch.remainder(ids, self.prime)
            for j in range(1, len(names)):
                nxt = batch[names[j]].reshape(-1).long()
                if self.exact[i]:
                    ids = ids * self.multipliers[i][j - 1] + nxt
                else:
                    ids = torch.remainder(
                        ids * self.multipliers[i][j - 1] + torch.remainder(nxt, self.prime), self.prime
                    )
            out[name] = ids
        return out

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.table.flat(self.cross_ids(batch)).sum(1, keepdim=True)


class WideAndDeep(WDL):
    """Wide & Deep whose wide part also holds crossed features; DeepCTR-Torch's WDL parameters plus
    ``cross_features`` (pairs or tuples of sparse feature names) and ``cross_hash_size`` (rows per cross).

    ``logit = linear(one-hot and dense values) + sum of the crosses' weights + Linear(DNN(embeddings))``. Without
    ``cross_features`` it is DeepCTR-Torch's WDL. The cross weights are regularized by ``l2_reg_linear``.
    """

    def __init__(
        self,
        linear_feature_columns: Sequence[Feature],
        dnn_feature_columns: Sequence[Feature],
        cross_features: Sequence[Sequence[str]] = (),
        cross_hash_size: int = 100_000,
        dnn_hidden_units: Sequence[int] = (256, 128),
        l2_reg_linear: float = 1e-5,
        l2_reg_embedding: float = 1e-5,
        l2_reg_dnn: float = 0.0,
        init_std: float = 1e-4,
        seed: int = 1024,
        dnn_dropout: float = 0.0,
        dnn_activation: str = "relu",
        dnn_use_bn: bool = False,
        task: str = "binary",
        device: str = "cpu",
        gpus: Sequence[int] | None = None,
    ) -> None:
        if isinstance(cross_hash_size, bool) or not isinstance(cross_hash_size, int) or cross_hash_size < 1:
            raise ArgumentError(f"WideAndDeep: cross_hash_size must be a positive int, got {cross_hash_size!r}")
        if isinstance(cross_features, str):
            raise ArgumentError(
                f"WideAndDeep: cross_features must be a list of feature-name pairs, got the string {cross_features!r}"
            )
        super().__init__(
            linear_feature_columns,
            dnn_feature_columns,
            dnn_hidden_units=dnn_hidden_units,
            l2_reg_linear=l2_reg_linear,
            l2_reg_embedding=l2_reg_embedding,
            l2_reg_dnn=l2_reg_dnn,
            init_std=init_std,
            seed=seed,
            dnn_dropout=dnn_dropout,
            dnn_activation=dnn_activation,
            dnn_use_bn=dnn_use_bn,
            task=task,
            device=device,
            gpus=gpus,
        )
        self.cross_features = [list(c) if not isinstance(c, str) else c for c in cross_features]
        self.has_crosses = len(self.cross_features) > 0
        self.crosses: nn.Module = (
            CrossedFeatures(
                self.cross_features, self.feature_columns, cross_hash_size, init_std, seed + 7, l2_reg_linear, device
            )
            if self.has_crosses
            else ZeroLogit()
        )
        self.to(device)

    def compute_logits(self, batch: dict[str, Tensor]) -> Tensor:
        logit = self.linear_logit(batch)
        if self.has_crosses:
            logit = logit + self.crosses(batch)
        if self.use_dnn:
            logit = logit + self.dnn_linear(self.dnn(self.dnn_input(batch)))
        return logit
