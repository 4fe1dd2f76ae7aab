"""Collie's ``collie.loss``: BPR, hinge, adaptive and WARP losses with partial credit from item metadata."""

from recstack.losses import (
    adaptive_bpr_loss,
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    ideal_difference_from_metadata,
    warp_loss,
)

__all__ = [
    "adaptive_bpr_loss",
    "adaptive_hinge_loss",
    "bpr_loss",
    "hinge_loss",
    "ideal_difference_from_metadata",
    "warp_loss",
]
