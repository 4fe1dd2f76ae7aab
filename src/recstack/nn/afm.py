"""AFM's attention-weighted pairwise interaction layer (DeepCTR-Torch's ``AFMLayer``)."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AFMLayer(nn.Module):
    """Attentional FM pairwise term without linear term and bias: ``[B, F, D] -> [B, 1]``.

    Every pair of fields ``i < j`` gives the element-wise product ``e_i * e_j``; an attention net
    (``relu(x W + b) h``, softmax over the pairs) weights them, and ``p`` projects the weighted sum
    to a logit. ``l2_reg_w`` is the L2 strength on ``attention_W`` (added to the training loss).
    """

    def __init__(
        self,
        in_features: int,
        attention_factor: int = 4,
        l2_reg_w: float = 0.0,
        dropout_rate: float = 0.0,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"AFMLayer: in_features must be a positive integer, got {in_features}")
        if attention_factor < 1:
            raise ValueError(f"AFMLayer: attention_factor must be a positive integer, got {attention_factor}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"AFMLayer: dropout_rate must be in [0, 1), got {dropout_rate}")
        self.attention_factor = attention_factor
        self.l2_reg_w = l2_reg_w
        self.dropout_rate = dropout_rate
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        self.attention_W = nn.Parameter(torch.empty(in_features, attention_factor))
        self.attention_b = nn.Parameter(torch.zeros(attention_factor))
        self.projection_h = nn.Parameter(torch.empty(attention_factor, 1))
        self.projection_p = nn.Parameter(torch.empty(in_features, 1))
        for tensor in (self.attention_W, self.projection_h, self.projection_p):
            nn.init.xavier_normal_(tensor, generator=generator)
        self.dropout: nn.Module = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        num_fields = inputs.shape[1]
        pairs = torch.triu_indices(num_fields, num_fields, 1, device=inputs.device)
        # laid out [D, F, B] so that the attention net is one wide GEMM ([A, D] @ [D, P * B])
        x = inputs.permute(2, 1, 0).contiguous()
        bi = x.index_select(1, pairs[0]) * x.index_select(1, pairs[1])  # [D, P, B]: e_i * e_j for i < j
        dim, num_pairs, batch = bi.shape
        hidden = F.relu(
            torch.addmm(self.attention_b.unsqueeze(1), self.attention_W.t(), bi.reshape(dim, num_pairs * batch))
        )  # [A, P * B]
        score = torch.softmax(torch.mm(self.projection_h.t(), hidden).reshape(num_pairs, batch), dim=0)  # [P, B]
        pooled = self.dropout((bi * score).sum(1).t())  # [B, D]
        return torch.mm(pooled, self.projection_p)

    @torch.jit.unused
    def l2_penalty(self) -> Tensor:
        """``l2_reg_w * sum(attention_W ** 2)`` (0 when l2_reg_w is 0)."""
        if self.l2_reg_w > 0:
            return self.l2_reg_w * self.attention_W.pow(2).sum()
        return torch.zeros((), device=self.attention_W.device)
