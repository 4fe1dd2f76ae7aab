"""Item frequency for the logQ correction: from counts, or streaming-estimated during training.

Both give, per item bucket, the expected number of times the item appears in one training batch
(``batch_size * p_item``), so ``log`` of it is the in-batch part of the correction.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from recstack.errors import SchemaError


class CountFrequency(nn.Module):
    """Item probabilities from training counts (``Vocabulary.counts()`` or counts per hash bucket)."""

    def __init__(self, num_buckets: int) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.register_buffer("log_p", torch.full((num_buckets,), -float(np.log(max(num_buckets, 1)))))

    def set_counts(self, counts: np.ndarray | Tensor, smoothing: float = 1.0) -> None:
        """Probabilities ``(count + smoothing) / total`` per bucket (``counts`` has one entry per bucket)."""
        c = torch.as_tensor(np.asarray(counts, dtype=np.float64)).reshape(-1)
        if c.numel() != self.num_buckets:
            raise SchemaError(f"item counts: expected {self.num_buckets} entries (one per item id), got {c.numel()}")
        if (c < 0).any() or not torch.isfinite(c).all():
            raise SchemaError("item counts must be finite and >= 0")
        c = c + smoothing
        self.log_p.copy_(torch.log(c / c.sum()).to(self.log_p.dtype))

    def log_expected_count(self, buckets: Tensor, batch_size: int) -> Tensor:
        return self.log_p[buckets] + float(np.log(batch_size))

    def update(self, buckets: Tensor) -> None:
        """Counts are fixed: nothing to learn from a batch."""


class StreamingFrequency(nn.Module):
    """Streaming frequency estimation (Yi et al. 2019): per bucket, the moving average of steps between sightings.

    After each batch, a bucket seen at step ``t`` updates ``gap = (1 - alpha) * gap + alpha * (t - last)``
    and ``last = t``; its expected count per batch is ``1 / gap``. Unseen buckets keep ``initial_gap``.
    """

    def __init__(self, num_buckets: int, alpha: float = 0.01, initial_gap: float | None = None) -> None:
        super().__init__()
        if not 0.0 < alpha <= 1.0:
            raise SchemaError(f"streaming frequency: alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("last", torch.zeros(num_buckets, dtype=torch.int64))
        gap = float(initial_gap) if initial_gap is not None else float(num_buckets)
        self.register_buffer("gap", torch.full((num_buckets,), gap, dtype=torch.float32))

    def log_expected_count(self, buckets: Tensor, batch_size: int) -> Tensor:
        return -torch.log(self.gap[buckets].clamp(min=1.0))

    @torch.no_grad()
    def update(self, buckets: Tensor) -> None:
        self.step += 1
        seen = torch.unique(buckets)
        last = self.last[seen]
        first = last == 0
        elapsed = (self.step - last).to(torch.float32)
        new_gap = (1.0 - self.alpha) * self.gap[seen] + self.alpha * elapsed
        self.gap[seen] = torch.where(first, self.gap[seen], new_gap)
        self.last[seen] = self.step
