"""Behaviour-sequence layers of DIN and DIEN, with DeepCTR-Torch's names and constructor parameters.

* `LocalActivationUnit`, `AttentionSequencePoolingLayer`: DIN's attention of a candidate over a history.
* `AGRUCell`, `AUGRUCell`, `DynamicGRU`: GRUs whose update is steered by attention scores (DIEN).
* `InterestExtractor`, `InterestEvolving`: DIEN's two recurrent layers.

Every layer takes padded ``[B, T, E]`` histories with their true lengths ``[B]`` (or ``[B, 1]``); positions at or
past a row's length never change its output, so a batch padded to any ``T`` gives the same result. Only the valid
items are scored by the attention net; `DynamicGRU` runs one vectorised step per time step up to the longest
history in the batch (input projections of all steps are one matrix product), the plain GRUs are
``torch.nn.GRU``; nothing loops over rows.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.errors import ArgumentError
from recstack.nn.core import DNN, Dice, activation_layer

GRU_TYPES = ("GRU", "AIGRU", "AGRU", "AUGRU")


def sequence_mask(lengths: Tensor, maxlen: int) -> Tensor:
    """``[B, maxlen]`` bool: True at the positions before each row's length."""
    return torch.arange(maxlen, device=lengths.device).unsqueeze(0) < lengths.reshape(-1, 1)


class _TokenBatchNorm(nn.Module):
    """BatchNorm1d over the last dimension of ``[B, T, H]`` (every position is a sample)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(size)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class _TokenDice(nn.Module):
    """`Dice` over the last dimension of ``[B, T, H]``: the same statistics as ``Dice(H, dim=3)`` (per channel, over
    every row and position), computed on the contiguous ``[B * T, H]`` view without transposes."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.dice = Dice(size, dim=2)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        p = torch.sigmoid(self.dice.bn(flat))
        alpha = self.dice.alpha
        return (flat * torch.addcmul(alpha, 1.0 - alpha, p)).reshape(x.shape)  # alpha (1 - p) x + p x


def _activation(name: str, size: int, dice_dim: int) -> nn.Module:
    if isinstance(name, str) and name.lower() == "dice" and dice_dim == 3:
        return _TokenDice(size)
    return activation_layer(name, size, dice_dim)


class LocalActivationUnit(nn.Module):
    """DIN's local activation unit: a score per history item, ``MLP([q, k, q - k, q * k])`` -> ``[B, T, 1]``.

    ``query`` is ``[B, 1, E]`` (or ``[B, E]``), ``user_behavior`` ``[B, T, E]``. The first layer is applied without
    building the ``[B, T, 4E]`` input: the query's share is computed once per row, not once per item.
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = (64, 32),
        embedding_dim: int = 4,
        activation: str = "sigmoid",
        dropout_rate: float = 0.0,
        dice_dim: int = 3,
        l2_reg: float = 0.0,
        use_bn: bool = False,
        init_std: float = 1e-4,
    ) -> None:
        super().__init__()
        if len(hidden_units) == 0:
            raise ArgumentError("LocalActivationUnit: hidden_units is empty; the attention net needs a layer")
        self.embedding_dim = embedding_dim
        self.l2_reg = l2_reg
        sizes = [4 * embedding_dim, *hidden_units]
        linears = [nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(hidden_units))]
        with torch.no_grad():
            for linear in linears:
                linear.weight.normal_(0.0, init_std)
        self.first = linears[0]
        blocks: list[nn.Module] = []
        for i in range(len(hidden_units)):
            if i > 0:
                blocks.append(linears[i])
            if use_bn:
                blocks.append(_TokenBatchNorm(sizes[i + 1]))
            blocks.append(_activation(activation, sizes[i + 1], dice_dim))
            if dropout_rate > 0:
                blocks.append(nn.Dropout(dropout_rate))
        self.rest = nn.Sequential(*blocks)
        self.dense = nn.Linear(sizes[-1], 1)

    def forward(self, query: Tensor, user_behavior: Tensor) -> Tensor:
        if query.dim() == 2:
            query = query.unsqueeze(1)
        w_row, w_item = self._split_first()
        # [q, k, q - k, q * k] @ W.T == q @ (W_q + W_d).T + [k, q * k] @ [W_k - W_d, W_p].T
        per_row = F.linear(query, w_row, self.first.bias)  # [B, 1, H]
        per_item = F.linear(torch.cat([user_behavior, query * user_behavior], 2), w_item)
        hidden = self.rest(per_item + per_row)
        return self.dense(hidden)

    def valid_scores(self, query: Tensor, user_behavior: Tensor, valid: Tensor) -> Tensor:
        """The scores ``[B, T, 1]`` of the items where ``valid`` (``[B, T]``) holds, 0 elsewhere.

        Only the valid items go through the attention net, so padding costs nothing and never enters the batch
        statistics of a `Dice` or BatchNorm in training.
        """
        batch, max_length, e = user_behavior.shape
        flat = valid.reshape(-1).nonzero().squeeze(1)  # [N] positions in the [B * T] grid
        rows = torch.div(flat, max_length, rounding_mode="floor")
        q = query.reshape(batch, e)
        k = user_behavior.reshape(-1, e).index_select(0, flat)  # [N, E]
        q_items = q.index_select(0, rows)
        w_row, w_item = self._split_first()
        per_row = F.linear(q, w_row, self.first.bias).index_select(0, rows)  # [N, H]
        per_item = F.linear(torch.cat([k, q_items * k], 1), w_item)
        scores = self.dense(self.rest(per_item + per_row))  # [N, 1]
        out = torch.zeros(batch * max_length, 1, dtype=scores.dtype, device=scores.device)
        return out.index_copy(0, flat, scores).reshape(batch, max_length, 1)

    def _split_first(self) -> tuple[Tensor, Tensor]:
        """The first layer's weight as the query's share ``W_q + W_d`` and the items' ``[W_k - W_d, W_p]``."""
        e = self.embedding_dim
        w = self.first.weight
        w_q, w_k, w_d, w_p = w[:, :e], w[:, e : 2 * e], w[:, 2 * e : 3 * e], w[:, 3 * e :]
        return w_q + w_d, torch.cat([w_k - w_d, w_p], 1)

    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared weights`` of the attention net (0 when l2_reg is 0)."""
        total = torch.zeros(())
        if self.l2_reg > 0:
            total = total + self.first.weight.pow(2).sum()
            for m in self.rest:
                if isinstance(m, nn.Linear):
                    total = total + m.weight.pow(2).sum()
        return total * self.l2_reg


class AttentionSequencePoolingLayer(nn.Module):
    """Attention pooling of a history by a candidate (DIN, DIEN): ``[B, 1, E]`` pooled, or the scores ``[B, 1, T]``.

    Only the valid items are scored (`LocalActivationUnit.valid_scores`).

    ``forward(query [B, 1, E], keys [B, T, E], keys_length [B, 1] or [B], mask=None)``. Without
    ``weight_normalization`` the raw scores weight the items (0 past each length); with it they are a softmax
    over the valid items. A row with an empty history pools to zeros. ``supports_masking=True`` reads the valid
    positions from ``mask`` (``[B, T]``) instead of the lengths.
    """

    def __init__(
        self,
        att_hidden_units: Sequence[int] = (80, 40),
        att_activation: str = "sigmoid",
        weight_normalization: bool = False,
        return_score: bool = False,
        supports_masking: bool = False,
        embedding_dim: int = 4,
        **kwargs: object,
    ) -> None:
        super().__init__()
        self.return_score = return_score
        self.weight_normalization = weight_normalization
        self.supports_masking = supports_masking
        self.local_att = LocalActivationUnit(
            hidden_units=att_hidden_units,
            embedding_dim=embedding_dim,
            activation=att_activation,
            dropout_rate=0.0,
            use_bn=False,
        )

    def forward(self, query: Tensor, keys: Tensor, keys_length: Tensor, mask: Tensor | None = None) -> Tensor:
        max_length = keys.shape[1]
        if self.supports_masking:
            if mask is None:
                raise ValueError("AttentionSequencePoolingLayer: supports_masking=True needs a mask [B, T]")
            valid = mask.reshape(keys.shape[0], max_length).to(torch.bool)
        else:
            valid = sequence_mask(keys_length, max_length)
        scores = self.local_att.valid_scores(query, keys, valid).transpose(1, 2)  # [B, 1, T]
        valid = valid.unsqueeze(1)
        if self.weight_normalization:
            scores = torch.softmax(scores.masked_fill(~valid, -1e9), dim=-1)
        scores = scores * valid.to(scores.dtype)
        if self.return_score:
            return scores
        return torch.bmm(scores, keys)


class AGRUCell(nn.Module):
    """GRU with attentional update (AGRU): ``h' = (1 - a) h + a * h~``, the attention score ``a`` replacing the
    update gate."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        bound = 1.0 / hidden_size**0.5
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, -bound, bound)
        if bias:
            self.bias_ih = nn.Parameter(torch.zeros(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.zeros(3 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def forward(self, inputs: Tensor, hx: Tensor, att_score: Tensor) -> Tensor:
        """One step: ``inputs`` ``[B, I]``, ``hx`` ``[B, H]``, ``att_score`` ``[B]`` or ``[B, 1]`` -> ``[B, H]``."""
        return self.step(F.linear(inputs, self.weight_ih, self.bias_ih), hx, att_score)

    def step(self, gi: Tensor, hx: Tensor, att_score: Tensor | None) -> Tensor:
        """One step from the input projection ``gi`` (``inputs @ weight_ih.T + bias_ih``); a score of 0 keeps
        ``hx`` exactly."""
        if att_score is None:
            raise ValueError("AGRUCell needs attention scores")
        gh = F.linear(hx, self.weight_hh, self.bias_hh)
        i_r, _, i_n = gi.chunk(3, 1)
        h_r, _, h_n = gh.chunk(3, 1)
        reset = torch.sigmoid(i_r + h_r)
        new_state = torch.tanh(i_n + reset * h_n)
        return torch.addcmul(hx, att_score.reshape(-1, 1), new_state - hx)  # (1 - a) h + a h~

    def _gates(self, gi: Tensor, hx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The reset and update gates and the candidate state of a full GRU step."""
        size = self.hidden_size
        gh = F.linear(hx, self.weight_hh, self.bias_hh)
        i_rz, i_n = gi.split([2 * size, size], 1)
        h_rz, h_n = gh.split([2 * size, size], 1)
        reset, update = torch.sigmoid(i_rz + h_rz).chunk(2, 1)
        return reset, update, torch.tanh(i_n + reset * h_n)


class AUGRUCell(AGRUCell):
    """GRU with attentional update gate (AUGRU): the update gate is scaled by the attention score."""

    def step(self, gi: Tensor, hx: Tensor, att_score: Tensor | None) -> Tensor:
        if att_score is None:
            raise ValueError("AUGRUCell needs attention scores")
        reset, update, new_state = self._gates(gi, hx)
        return torch.addcmul(hx, att_score.reshape(-1, 1) * update, new_state - hx)  # (1 - a u) h + a u h~


class GRUStepCell(AGRUCell):
    """The plain GRU step (``torch.nn.GRUCell``'s equations) with the cells' interface; scores are ignored."""

    def step(self, gi: Tensor, hx: Tensor, att_score: Tensor | None) -> Tensor:
        reset, update, new_state = self._gates(gi, hx)
        return torch.addcmul(new_state, update, hx - new_state)  # (1 - z) h~ + z h


_CELLS = {"GRU": GRUStepCell, "AGRU": AGRUCell, "AUGRU": AUGRUCell}


class DynamicGRU(nn.Module):
    """A GRU (``gru_type`` 'GRU', 'AGRU' or 'AUGRU') over padded sequences that honours their true lengths.

    ``forward(inputs [B, T, I], lengths [B], att_scores [B, T] (AGRU, AUGRU), hx [B, H])`` returns every state,
    ``[B, T, H]`` (zeros at and past each length), and the last valid state ``[B, H]`` (``hx``, or zeros, for an
    empty sequence). A row's state stops changing at its length, so padding never changes the result.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, gru_type: str = "AGRU") -> None:
        super().__init__()
        if gru_type not in _CELLS:
            raise ArgumentError(f"DynamicGRU: gru_type must be one of {sorted(_CELLS)}, got {gru_type!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.gru_type = gru_type
        self.rnn = _CELLS[gru_type](input_size, hidden_size, bias)

    def forward(
        self, inputs: Tensor, lengths: Tensor, att_scores: Tensor | None = None, hx: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        batch, max_length, _ = inputs.shape
        lengths = lengths.reshape(-1).clamp(0, max_length)
        h = torch.zeros(batch, self.hidden_size, dtype=inputs.dtype, device=inputs.device) if hx is None else hx
        steps = int(lengths.max()) if batch > 0 else 0
        if steps == 0:
            return torch.zeros(batch, max_length, self.hidden_size, dtype=inputs.dtype, device=inputs.device), h
        valid = sequence_mask(lengths, steps)  # [B, steps]
        gi = F.linear(inputs[:, :steps], self.rnn.weight_ih, self.rnn.bias_ih)  # every step's input share at once
        states: list[Tensor] = []
        if att_scores is not None:
            # a zero score keeps the state exactly, so past its length a row's state no longer moves
            scores = (att_scores[:, :steps] * valid.to(att_scores.dtype)).unbind(1)
            # unbind, not gi[:, t]: a slice's backward would zero-fill the whole [B, steps, 3H] tensor every step
            for t, gi_t in enumerate(gi.unbind(1)):
                h = self.rnn.step(gi_t, h, scores[t])
                states.append(h)
        else:
            keep = valid.unsqueeze(2).unbind(1)
            for t, gi_t in enumerate(gi.unbind(1)):
                h = torch.where(keep[t], self.rnn.step(gi_t, h, None), h)
                states.append(h)
        outputs = torch.stack(states, 1) * valid.unsqueeze(2).to(h.dtype)
        if steps < max_length:
            outputs = F.pad(outputs, (0, 0, 0, max_length - steps))
        return outputs, h


class MaskedGRU(nn.Module):
    """A plain ``torch.nn.GRU`` over padded sequences, with `DynamicGRU`'s interface and guarantees.

    A GRU is causal, so the state at a valid position never depends on the padding after it: the GRU runs up to
    the longest history of the batch, the outputs past each length are zeroed and the last valid state is read
    at ``length - 1``. ``att_scores`` is accepted and ignored.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.rnn = nn.GRU(input_size, hidden_size, bias=bias, batch_first=True)

    def forward(
        self, inputs: Tensor, lengths: Tensor, att_scores: Tensor | None = None, hx: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        batch, max_length, _ = inputs.shape
        lengths = lengths.reshape(-1).clamp(0, max_length)
        h = torch.zeros(batch, self.hidden_size, dtype=inputs.dtype, device=inputs.device) if hx is None else hx
        steps = int(lengths.max()) if batch > 0 else 0
        if steps == 0:
            return torch.zeros(batch, max_length, self.hidden_size, dtype=inputs.dtype, device=inputs.device), h
        outputs, _ = self.rnn(inputs[:, :steps].contiguous(), h.unsqueeze(0).contiguous())
        valid = sequence_mask(lengths, steps).unsqueeze(2)
        outputs = outputs * valid.to(outputs.dtype)
        last_index = (lengths - 1).clamp(min=0).reshape(-1, 1, 1).expand(batch, 1, self.hidden_size)
        last = torch.where(lengths.reshape(-1, 1) > 0, outputs.gather(1, last_index).squeeze(1), h)
        if steps < max_length:
            outputs = F.pad(outputs, (0, 0, 0, max_length - steps))
        return outputs, last


class InterestExtractor(nn.Module):
    """DIEN's interest extractor: a GRU over the history, ``[B, T, H]`` interests (zeros past each length).

    With ``use_neg`` and negative histories it also returns the auxiliary loss: each interest state must tell the
    next clicked item from a sampled negative (a small sigmoid MLP, binary cross-entropy over the valid steps).
    """

    def __init__(self, input_size: int, use_neg: bool = False, init_std: float = 0.001, device: str = "cpu") -> None:
        super().__init__()
        self.use_neg = use_neg
        self.gru = MaskedGRU(input_size, input_size)
        with torch.no_grad():
            for name, tensor in self.gru.named_parameters():
                if "weight" in name:
                    tensor.normal_(0.0, init_std)
        self.auxiliary_net = DNN(input_size * 2, [100, 50, 1], "sigmoid", init_std=init_std) if use_neg else None
        self.to(device)

    def forward(self, keys: Tensor, keys_length: Tensor, neg_keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(interests [B, T, H], auxiliary loss (a 0-dim tensor, 0 without negatives))``."""
        lengths = keys_length.reshape(-1)
        interests, _ = self.gru(keys, lengths)
        aux = torch.zeros((), dtype=keys.dtype, device=keys.device)
        if not torch.jit.is_scripting() and self.use_neg and neg_keys is not None and keys.shape[1] > 1:
            aux = self._auxiliary_loss(interests, keys, neg_keys, lengths)
        return interests, aux

    @torch.jit.unused
    def _auxiliary_loss(self, states: Tensor, keys: Tensor, neg_keys: Tensor, lengths: Tensor) -> Tensor:
        net = self.auxiliary_net
        steps = keys.shape[1] - 1
        valid = sequence_mask(lengths - 1, steps)  # state t predicts item t + 1
        if not bool(valid.any()):
            return torch.zeros((), dtype=keys.dtype, device=keys.device)
        state = states[:, :steps][valid]
        click = torch.cat([state, keys[:, 1:][valid]], 1)
        noclick = torch.cat([state, neg_keys[:, 1:][valid]], 1)
        prob = net(torch.cat([click, noclick], 0)).reshape(-1)
        target = torch.cat(
            [torch.ones(state.shape[0], device=prob.device), torch.zeros(state.shape[0], device=prob.device)]
        )
        return F.binary_cross_entropy(prob, target.to(prob.dtype))


class InterestEvolving(nn.Module):
    """DIEN's interest evolving layer: the candidate-relevant final interest ``[B, H]``.

    ``gru_type``: 'GRU' (GRU, then attention pooling), 'AIGRU' (attention-scaled inputs to a GRU), 'AGRU' or
    'AUGRU' (attention steers the update). ``forward(query [B, H], keys [B, T, H], keys_length [B])``; an empty
    history gives zeros.
    """

    def __init__(
        self,
        input_size: int,
        gru_type: str = "GRU",
        use_neg: bool = False,
        init_std: float = 0.001,
        att_hidden_size: Sequence[int] = (64, 16),
        att_activation: str = "sigmoid",
        att_weight_normalization: bool = False,
    ) -> None:
        super().__init__()
        if gru_type not in GRU_TYPES:
            raise ArgumentError(f"InterestEvolving: gru_type must be one of {list(GRU_TYPES)}, got {gru_type!r}")
        self.gru_type = gru_type
        self.use_neg = use_neg
        self.attention = AttentionSequencePoolingLayer(
            embedding_dim=input_size,
            att_hidden_units=att_hidden_size,
            att_activation=att_activation,
            weight_normalization=att_weight_normalization,
            return_score=gru_type != "GRU",
        )
        self.interest_evolution: nn.Module = (
            DynamicGRU(input_size, input_size, gru_type=gru_type)
            if gru_type in ("AGRU", "AUGRU")
            else MaskedGRU(input_size, input_size)
        )
        with torch.no_grad():
            for name, tensor in self.interest_evolution.named_parameters():
                if "weight" in name:
                    tensor.normal_(0.0, init_std)

    def forward(self, query: Tensor, keys: Tensor, keys_length: Tensor, mask: Tensor | None = None) -> Tensor:
        lengths = keys_length.reshape(-1).clamp(0, keys.shape[1])
        q = query.unsqueeze(1) if query.dim() == 2 else query
        if self.gru_type == "GRU":
            interests, _ = self.interest_evolution(keys, lengths)
            return self.attention(q, interests, lengths).squeeze(1)
        scores = self.attention(q, keys, lengths)  # [B, 1, T]
        if self.gru_type == "AIGRU":
            _, last = self.interest_evolution(keys * scores.transpose(1, 2), lengths)
            return last
        _, last = self.interest_evolution(keys, lengths, scores.squeeze(1))
        return last
