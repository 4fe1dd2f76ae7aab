"""Self-attention over field embeddings (AutoInt's InteractingLayer), DeepCTR-Torch signature."""

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode


def _heads(t: Tensor, b: int, f: int, groups: int, d: int) -> Tensor:
    """``[B*F, groups*d]`` columns -> ``[groups, B, F, d]``, each head's matrices contiguous (one copy)."""
    return t.reshape(b, f, groups, d).permute(2, 0, 1, 3).contiguous()


class _InteractingFunction(torch.autograd.Function):
    """InteractingLayer's forward and backward with the per-sample ``[F, d] x [d, F]`` products in numpy.

    Each head multiplies B tiny matrices (26 x 8 at AutoInt's defaults). torch's CPU ``bmm`` spends about
    0.85 us per matrix on them here; numpy's batched matmul (OpenBLAS small-matrix kernels) 0.3-0.5 us
    on contiguous operands, so the layer keeps every head's Q, K, V and gradients contiguous and hands the
    products to numpy, zero-copy. Everything else stays in torch.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, head_num: int, use_res: bool, scale: float) -> Tensor:  # noqa: ANN401
        b, f, e = x.shape
        h, d = head_num, e // head_num
        x2 = x.reshape(b * f, e)
        proj = x2 @ weight  # [B*F, 4E]: q | k | v | res, head-major inside each block
        qkv = _heads(proj[:, : 3 * e], b, f, 3 * h, d)  # [3H, B, F, d]
        n = qkv.numpy()
        probs = torch.empty(h, b, f, f, dtype=x.dtype)
        att = torch.empty(h, b, f, d, dtype=x.dtype)
        for i in range(h):
            s = probs[i]
            np.matmul(n[i], n[h + i].transpose(0, 2, 1), out=s.numpy())
            if scale != 1.0:
                s.mul_(scale)
            torch.softmax(s, -1, out=s)
            np.matmul(s.numpy(), n[2 * h + i], out=att[i].numpy())
        att = att.permute(1, 2, 0, 3)  # [B, F, H, d]
        if use_res:
            out = torch.add(proj[:, 3 * e :].view(b, f, h, d), att).view(b, f, e)
        else:
            out = att.reshape(b, f, e)
        out.relu_()
        ctx.save_for_backward(x2, weight, qkv, probs, out)
        ctx.head_num, ctx.use_res, ctx.scale = head_num, use_res, scale
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN401
        x2, weight, qkv, probs, out = ctx.saved_tensors
        h, use_res, scale = ctx.head_num, ctx.use_res, ctx.scale
        b, f, e = out.shape
        d = e // h
        gm = grad * (out > 0)  # through the ReLU
        go = _heads(gm, b, f, h, d).numpy()  # [H, B, F, d]
        n = qkv.numpy()
        gqkv = torch.empty(3 * h, b, f, d, dtype=out.dtype)
        gn = gqkv.numpy()
        for i in range(h):
            p = probs[i]
            pn = p.numpy()
            np.matmul(pn.transpose(0, 2, 1), go[i], out=gn[2 * h + i])  # dV = P^T dO
            dp = torch.empty(b, f, f, dtype=out.dtype)
            np.matmul(go[i], n[2 * h + i].transpose(0, 2, 1), out=dp.numpy())  # dP = dO V^T
            dp.sub_((dp * p).sum(-1, keepdim=True)).mul_(p)  # dS, through the softmax
            if scale != 1.0:
                dp.mul_(scale)
            ds = dp.numpy()
            np.matmul(ds, n[h + i], out=gn[i])  # dQ = dS K
            np.matmul(ds.transpose(0, 2, 1), n[i], out=gn[h + i])  # dK = dS^T Q
        gproj = torch.empty(b * f, 4 * e, dtype=out.dtype)
        gproj[:, : 3 * e].view(b, f, 3 * h, d).copy_(gqkv.permute(1, 2, 0, 3))
        if use_res:
            gproj[:, 3 * e :] = gm.view(b * f, e)
        else:
            gproj[:, 3 * e :] = 0.0
        need_x, need_w = ctx.needs_input_grad[:2]
        grad_x = (gproj @ weight.t()).view(b, f, e) if need_x else None
        grad_w = x2.t() @ gproj if need_w else None
        return grad_x, grad_w, None, None, None


def _numpy_path_applies(x: Tensor) -> bool:
    # Modes (torch's FLOP counter, fake tensors) and compilers must see plain torch ops; numpy needs CPU memory.
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and _get_current_dispatch_mode() is None
        and not torch.compiler.is_compiling()
    )


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
        generator = torch.Generator().manual_seed(seed)
        # Q, K, V (and the residual projection) as one [E, 4E] matrix: one GEMM per forward.
        self.W = nn.Parameter(torch.empty(embedding_size, 4 * embedding_size).normal_(0.0, 0.05, generator=generator))
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            if _numpy_path_applies(inputs):
                scale = self.att_embedding_size**-0.5 if self.scaling else 1.0
                return _InteractingFunction.apply(inputs, self.W, self.head_num, self.use_res, scale)
        return self.reference_forward(inputs)

    def reference_forward(self, inputs: Tensor) -> Tensor:
        """The layer in plain torch ops: what TorchScript compiles, and what the fast path is tested against."""
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
