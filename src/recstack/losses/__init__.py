"""Losses: sampled softmax for retrieval (logQ, mixed negatives) and pairwise ranking losses (Collie names)."""

from recstack.losses.pairwise import bpr_loss, hinge_loss
from recstack.losses.softmax import in_batch_hit_rates, sampled_softmax_loss

__all__ = ["sampled_softmax_loss", "in_batch_hit_rates", "bpr_loss", "hinge_loss"]
