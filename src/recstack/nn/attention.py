"""Self-attention over field embeddings (AutoInt's InteractingLayer), DeepCTR-Torch signature."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recstack.kernels import attention as attention_kernels


class InteractingLayer(nn.Module):
    """Multi-head self-attention across fields with a residual connection: ``[B, F, E] -> [B, F, E]``.

    ``embedding_size`` must be divisible by ``head_num``; ``scaling`` divides scores by sqrt(E / heads).
    """

    def __init__(
        self,
        embedding_size: int,
        head_num: int = 2,
        use_res: bool = True,
        scaling: bool = False,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if head_num <= 0 or embedding_size % head_num != 0:
            raise ValueError(
                f"InteractingLayer: embedding_size {embedding_size} is not divisible by head_num {head_num}"
            )
        self.att_embedding_size = embedding_size // head_num
        self.head_num = head_num
        self.use_res = use_res
        self.scaling = scaling
        # float32 CPU inputs go through the fused kernels (recstack.kernels.attention) while the registry's
        # ``attention`` family is enabled; False keeps the op-by-op path for this layer
        self.fused = True
        generator = torch.Generator().manual_seed(seed)
        # Q, K, V (and the residual projection) as one [E, 4E] matrix: one GEMM per forward.
        self.W = nn.Parameter(torch.empty(embedding_size, 4 * embedding_size).normal_(0.0, 0.05, generator=generator))
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        if not torch.jit.is_scripting() and self._use_fused(inputs):
            return self._fused(inputs)
        b, f, e = inputs.shape
        proj = inputs @ self.W  # [B, F, 4E]
        q, k, v, res = proj.split(e, dim=2)
        h, d = self.head_num, self.att_embedding_size
        q = q.reshape(b, f, h, d).transpose(1, 2)  # [B, H, F, d]
        k = k.reshape(b, f, h, d).transpose(1, 2)
        v = v.reshape(b, f, h, d).transpose(1, 2)
        scores = q @ k.transpose(2, 3)
        if self.scaling:
            scores = scores / (d**0.5)
        out = F.softmax(scores, dim=-1) @ v  # [B, H, F, d]
        out = out.transpose(1, 2).reshape(b, f, e)
        if self.use_res:
            out = out + res
        return F.relu(out)

    @torch.jit.unused
    def _use_fused(self, inputs: Tensor) -> bool:
        if not (self.fused and attention_kernels.supported(inputs, self.W)):
            return False
        return attention_kernels.ready(inputs.shape[1], inputs.shape[2], self.head_num)

    @torch.jit.unused
    def _fused(self, inputs: Tensor) -> Tensor:
        scale = self._scale()
        return attention_kernels.InteractingFunction.apply(
            inputs, self.W, self.head_num, scale, self.use_res, inputs.shape[0]
        )

    @torch.jit.unused
    def _scale(self) -> float:
        return 1.0 / self.att_embedding_size**0.5 if self.scaling else 1.0


def interacting_layers(layers: Sequence[InteractingLayer], inputs: Tensor) -> Tensor:
    """``inputs`` through ``layers`` in order (AutoInt's stack), ``[B, F, E] -> [B, F, E]``.

    When every layer takes the fused kernels and they share heads, scaling and residual, the activations
    between layers stay in the kernels' blocked layout (``recstack.kernels.attention.interacting_stack``).
    """
    out = _fused_stack(layers, inputs, blocked_output=False)
    return out if out is not None else _layer_by_layer(layers, inputs)


def interacting_logit(layers: Sequence[InteractingLayer], inputs: Tensor, weight: Tensor) -> Tensor:
    """``interacting_layers(layers, inputs).reshape(B, -1) @ weight``, ``[B]``, for a ``[F * E]`` ``weight``.

    On the fused path the product reads the last layer's blocked output, so that output is never transposed
    back to ``[B, F, E]`` (nor its gradient into the blocked layout).
    """
    blocked = _fused_stack(layers, inputs, blocked_output=True)
    if blocked is None:
        out = _layer_by_layer(layers, inputs)
        return torch.mv(out.reshape(out.shape[0], -1), weight)
    blocks, fields, emb, lanes = blocked.shape
    # bmm on an expanded weight: matmul's broadcasting path would fold this into a transposed mm and copy
    # the blocked output (and its gradient) in backward, about 3x slower forward plus backward at 4096
    per_lane = torch.bmm(weight.view(1, 1, fields * emb).expand(blocks, 1, -1), blocked.view(blocks, -1, lanes))
    return per_lane.reshape(-1)[: inputs.shape[0]]


def _fused_stack(layers: Sequence[InteractingLayer], inputs: Tensor, blocked_output: bool) -> Tensor | None:
    """The fused stack's output, or None unless every layer takes the kernels with shared heads, scaling and
    residual."""
    if len(layers) == 0:
        return None
    first = layers[0]
    config = (first.head_num, first.scaling, first.use_res)
    for layer in layers:
        if not layer._use_fused(inputs) or (layer.head_num, layer.scaling, layer.use_res) != config:
            return None
    weights = [layer.W for layer in layers]
    return attention_kernels.interacting_stack(
        inputs, weights, first.head_num, first._scale(), first.use_res, blocked_output=blocked_output
    )


def _layer_by_layer(layers: Sequence[InteractingLayer], inputs: Tensor) -> Tensor:
    for layer in layers:
        inputs = layer(inputs)
    return inputs
