"""xDeepFM's Compressed Interaction Network (CIN), DeepCTR-Torch signature."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from recstack.kernels import cin as cin_kernels
from recstack.kernels import gemm, registry
from recstack.kernels.cin import outer_grads
from recstack.nn.core import activation_layer

# Outer-product block per chunk. With the weight gradient through MKL's addmm, xDeepFM at batch 4096 fits
# 1.06-1.12x faster at 32-64 MB than at 16 MB (paired runs); 16 MB in the forward alone is no faster.
CHUNK_BYTES = 48 << 20


def _chunks(n: int, width: int, group: int = 1) -> list[tuple[int, int]]:
    """Row ranges of about ``CHUNK_BYTES`` of ``width`` floats each, every one a multiple of ``group`` rows."""
    step = max(group, CHUNK_BYTES // (4 * width) // group * group)
    return [(s, min(s + step, n)) for s in range(0, n, step)]


class _CINLayerFunction(torch.autograd.Function):
    """One CIN layer, split and sum-pooled: ``out = act(z @ weight.T + bias)`` with ``z = outer(xk, x0)`` rows
    (``act`` ReLU or none), returned as ``(out[:, :split], out[:, pool_from:] summed over each run of d rows)``.

    ``z`` (``[B*D, H_k*F0]``, hundreds of MB at batch 4096) is never materialized beyond one ``CHUNK_BYTES``
    chunk: each chunk's products are formed in one reused buffer, used by the GEMM and overwritten, and the
    backward recomputes them chunk by chunk. The buffer is field-major (``z[n, m, h]``, the weight's
    columns permuted to match) so that the broadcast multiply runs along the contiguous ``H_k`` maps. The
    split and the pooling happen while a chunk is in cache too: as torch ops, the pooled half's gradient
    comes back as a stride-0 expansion that the split's backward concatenates at under 1 GB/s here.
    """

    @staticmethod
    def forward(  # noqa: PLR0913
        ctx: Any,  # noqa: ANN401
        xk: Tensor,
        x0: Tensor,
        weight: Tensor,
        bias: Tensor,
        relu: bool,
        split: int,
        pool_from: int,
        d: int,
    ) -> tuple[Tensor, Tensor]:
        n, h = xk.shape
        f = x0.shape[1]
        o = weight.shape[0]
        wf = weight.view(o, h, f).transpose(1, 2).reshape(o, f * h)  # columns in z's field-major order
        nxt = xk.new_empty(n, split)
        tail = xk.new_empty(n, o - split) if relu else None  # with nxt, the output the ReLU's mask needs
        pooled = xk.new_empty(n // d, o - pool_from)
        chunks = _chunks(n, h * f, d)
        zbuf = xk.new_empty(chunks[0][1], f, h)
        for s, e in chunks:
            z = zbuf[: e - s]
            torch.mul(x0[s:e].unsqueeze(2), xk[s:e].unsqueeze(1), out=z)
            out = gemm.matmul_t(z.view(e - s, f * h), wf, bias, relu=relu)
            nxt[s:e] = out[:, :split]
            if tail is not None:
                tail[s:e] = out[:, split:]
            torch.sum(out[:, pool_from:].view(-1, d, o - pool_from), 1, out=pooled[s // d : e // d])
        ctx.save_for_backward(xk, x0, wf, nxt if relu else None, tail)
        ctx.split, ctx.pool_from, ctx.d = split, pool_from, d
        return nxt, pooled

    @staticmethod
    def backward(ctx: Any, grad_next: Tensor | None, grad_pooled: Tensor | None) -> tuple[Tensor | None, ...]:  # noqa: ANN401
        xk, x0, wf, nxt, tail = ctx.saved_tensors
        split, pool_from, d = ctx.split, ctx.pool_from, ctx.d
        n, h = xk.shape
        f = x0.shape[1]
        o = wf.shape[0]
        need_xk, need_x0, need_w, need_b = ctx.needs_input_grad[:4]
        # both input gradients come from one pass over g @ W, so both are formed when either is needed
        grad_xk = torch.empty_like(xk)
        grad_x0 = torch.empty_like(x0)
        grad_wf = torch.zeros_like(wf) if need_w else None
        grad_b = torch.zeros(o, dtype=xk.dtype, device=xk.device) if need_b else None
        chunks = _chunks(n, h * f, d)
        rows = chunks[0][1]
        zbuf = xk.new_empty(rows, f, h) if need_w else None
        gbuf = xk.new_empty(rows, o)
        for s, e in chunks:
            g = gbuf[: e - s]  # the gradient at the layer's output: next part, pooled part (expanded over d)
            pooled_grad = None if grad_pooled is None else grad_pooled[s // d : e // d].unsqueeze(1)
            if pooled_grad is not None and pool_from == split:
                g[:, split:].view(-1, d, o - split).copy_(pooled_grad)
            else:
                g[:, split:].zero_()
            if grad_next is None:
                g[:, :split].zero_()
            else:
                g[:, :split].copy_(grad_next[s:e])
            if pooled_grad is not None and pool_from != split:
                g[:, pool_from:].view(-1, d, o - pool_from).add_(pooled_grad)
            if nxt is not None and tail is not None:  # through the ReLU
                _relu_grad_(g[:, :split], nxt[s:e])
                _relu_grad_(g[:, split:], tail[s:e])
            if grad_b is not None:
                grad_b += g.sum(0)
            if zbuf is not None and grad_wf is not None:
                z = zbuf[: e - s]
                torch.mul(x0[s:e].unsqueeze(2), xk[s:e].unsqueeze(1), out=z)
                # MKL (1.2-1.5x oneDNN's rate for this product); addmm with out=, not addmm_, which torch's
                # FLOP counter does not count
                torch.addmm(grad_wf, g.t(), z.view(e - s, f * h), out=grad_wf)
            if need_xk or need_x0:
                gz = gemm.matmul_t(g, wf.t()).view(e - s, f, h)
                outer_grads(gz, x0[s:e], xk[s:e], grad_xk[s:e], grad_x0[s:e])
        grad_w = grad_wf.view(o, f, h).transpose(1, 2).reshape(o, h * f) if grad_wf is not None else None
        xk_grad = grad_xk if need_xk else None
        return xk_grad, grad_x0 if need_x0 else None, grad_w, grad_b, None, None, None, None


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _flat(t: Tensor) -> np.ndarray:
    return t.detach().view(-1).numpy()


class _FusedLayerFunction(torch.autograd.Function):
    """One CIN layer through ``recstack.kernels.cin``, on map-major activations: ``xk`` ``[H_k, rp]``, ``x0``
    ``[F0, rp]``, row ``r = d * B + b`` for ``r < rows``, zero rows up to ``rp`` (a multiple of the kernels'
    tile). Returns ``(out[:split], out[pool_from:] summed over d)``, ``[split, rp]`` and ``[B, O - pool_from]``,
    with ``out = act(z @ weight.T + bias)`` as in ``_CINLayerFunction``; ``act`` is ReLU or none.
    """

    @staticmethod
    def forward(  # noqa: PLR0913
        ctx: Any,  # noqa: ANN401
        xk: Tensor,
        x0: Tensor,
        weight: Tensor,
        bias: Tensor,
        relu: bool,
        split: int,
        pool_from: int,
        d: int,
        rows: int,
    ) -> tuple[Tensor, Tensor]:
        h, rp = xk.shape
        f = x0.shape[0]
        o = weight.shape[0]
        op = _round_up(o, cin_kernels.OUTS)
        kp = _round_up(f * h, cin_kernels.KSTEP)
        wpad = weight.new_zeros(op, kp)  # product k = m * H_k + h, zero-padded to the kernels' tiles
        wpad[:o, : f * h] = weight.detach().reshape(o, h, f).transpose(1, 2).reshape(o, f * h)
        bpad = bias.new_zeros(op)
        bpad[:o] = bias.detach()
        wp = wpad.view(op // cin_kernels.OUTS, cin_kernels.OUTS, kp).transpose(1, 2).contiguous()
        out = xk.new_empty(op, rp)
        arrays = (_flat(x0), _flat(xk), _flat(wp), _flat(bpad), _flat(out))
        cin_kernels.run("forward", *arrays, rp, f, h, op, kp, relu, rows=rp)
        pooled = out[pool_from:o, :rows].view(o - pool_from, d, rows // d).sum(1).t()
        ctx.save_for_backward(xk, x0, wpad, out)
        ctx.config = (relu, split, pool_from, d, rows, o)
        return out[:split], pooled

    @staticmethod
    def backward(ctx: Any, grad_next: Tensor | None, grad_pooled: Tensor | None) -> tuple[Tensor | None, ...]:  # noqa: ANN401
        xk, x0, wpad, out = ctx.saved_tensors
        relu, split, pool_from, d, rows, o = ctx.config
        h, rp = xk.shape
        f = x0.shape[0]
        op, kp = wpad.shape
        g = torch.empty_like(out)  # the gradient at the layer's output, zero in the padding
        g[split:].zero_()
        if grad_next is None:
            g[:split].zero_()
        else:
            g[:split, :rows].copy_(grad_next[:, :rows])
            g[:split, rows:].zero_()
        if grad_pooled is not None:
            g[pool_from:o, :rows].view(o - pool_from, d, rows // d).add_(grad_pooled.t().unsqueeze(1))
        if relu:
            _relu_grad_(g, out)
        need_w, need_b = ctx.needs_input_grad[2:4]
        grad_b = g[:o, :rows].sum(1) if need_b else None
        grad_x0 = torch.empty_like(x0)
        grad_xk = torch.empty_like(xk)
        wt = wpad.view(op, kp // cin_kernels.OUTS, cin_kernels.OUTS).permute(1, 0, 2).contiguous()
        sizes = (rp, f, h, op, kp)
        arrays = (_flat(x0), _flat(xk), _flat(wt), _flat(g), _flat(grad_x0), _flat(grad_xk))
        cin_kernels.run("input_grads", *arrays, *sizes, rows=rp)
        grad_w = None
        if need_w:
            parts = torch.zeros(torch.get_num_threads(), op * kp)  # a partial sum per thread's range
            used = cin_kernels.run("weight_grad", _flat(x0), _flat(xk), _flat(g), parts.numpy(), *sizes, rows=rp)
            grad_w = parts[:used].sum(0).view(op, kp)[:o, : f * h].view(o, f, h).transpose(1, 2).reshape(o, h * f)
        return grad_xk, grad_x0, grad_w, grad_b, None, None, None, None, None


def fused_applies(inputs: Tensor, weight: Tensor) -> bool:
    """Whether the CIN runs through ``recstack.kernels.cin``: the ``cin`` family is enabled, float32 CPU
    tensors, outside any dispatch mode (e.g. FLOP counting, which sees the torch ops' GEMMs instead), and the
    kernels compiled (until then the torch ops run; see `recstack.kernels.registry.when_compiled`)."""
    return (
        registry.enabled("cin")
        and inputs.device.type == "cpu"
        and inputs.dtype == torch.float32
        and weight.dtype == torch.float32
        and _get_current_dispatch_mode() is None
        and cin_kernels.ready()
    )


def _relu_grad_(grad: Tensor, out: Tensor) -> None:
    """``grad[out <= 0] = 0`` in place, in one pass (a bool mask times float costs a conversion copy)."""
    if grad.numel():
        torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)


class CIN(nn.Module):
    """Compressed Interaction Network: ``[B, field_size, D] -> [B, featuremap_num]``.

    Layer ``k+1`` takes the outer product of ``x^k`` (``H_k`` maps) and ``x^0`` (``field_size`` maps) along
    each embedding dimension, compresses the ``H_k * field_size`` products into ``layer_size[k]`` maps
    (DeepCTR-Torch's 1x1 Conv1d, with bias), applies ``activation`` and sum-pools over D. With
    ``split_half`` every layer but the last sends half of its maps on and half to the output, so
    ``featuremap_num = sum(layer_size[:-1]) // 2 + layer_size[-1]``; otherwise ``sum(layer_size)``.
    ``filters[k].weight`` is ``[layer_size[k], H_k * field_size]`` (product index ``h * field_size + m`` as in
    DeepCTR-Torch's Conv1d); ``l2_reg`` applies to the filter weights. On float32 CPU tensors the eager
    forward and backward (ReLU or no activation) run through ``recstack.kernels.cin``, which never store
    the outer products, while the ``cin`` kernel family is enabled (`recstack.kernels.registry`).
    """

    layer_size: list[int]
    field_nums: list[int]

    def __init__(
        self,
        field_size: int,
        layer_size: Sequence[int] = (128, 128),
        activation: str = "relu",
        split_half: bool = True,
        l2_reg: float = 1e-5,
        seed: int = 1024,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if field_size <= 0:
            raise ValueError(f"CIN: field_size must be positive, got {field_size}")
        if len(layer_size) == 0:
            raise ValueError("CIN: layer_size is empty")
        if any(int(s) <= 0 for s in layer_size):
            raise ValueError(f"CIN: layer_size must hold positive integers, got {tuple(layer_size)}")
        if split_half and any(int(s) % 2 for s in list(layer_size)[:-1]):
            raise ValueError(
                f"CIN: with split_half=True every layer_size but the last must be even, got {tuple(layer_size)}"
            )
        self.layer_size = [int(s) for s in layer_size]
        self.split_half = split_half
        self.l2_reg = l2_reg
        self.activation = activation_layer(activation)
        self.field_nums = [field_size]
        filters: list[nn.Module] = []
        generator = torch.Generator().manual_seed(seed)
        for i, size in enumerate(self.layer_size):
            fan_in = self.field_nums[-1] * field_size
            linear = nn.Linear(fan_in, size)
            bound = 1.0 / fan_in**0.5  # Conv1d's (and Linear's) default init, from the seeded generator
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.uniform_(-bound, bound, generator=generator)
            filters.append(linear)
            last = i == len(self.layer_size) - 1
            self.field_nums.append(size // 2 if split_half and not last else size)
        self.filters = nn.ModuleList(filters)
        if split_half:
            self.featuremap_num = sum(self.layer_size[:-1]) // 2 + self.layer_size[-1]
        else:
            self.featuremap_num = sum(self.layer_size)
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            return self._chunked(inputs)
        b, f0, d = inputs.shape
        # work dimension-major, [B, D, maps]: each layer is then ONE [B*D, H_k*F0] x [H_k*F0, H_{k+1}] GEMM
        x0 = inputs.transpose(1, 2).unsqueeze(2)  # [B, D, 1, F0]
        xk = inputs.transpose(1, 2)  # [B, D, H_k]
        pooled: list[Tensor] = []
        n = len(self.layer_size)
        i = 0
        for layer in self.filters:
            z = (xk.unsqueeze(3) * x0).reshape(b * d, -1)  # outer product [B*D, H_k*F0]
            out = self.activation(layer(z)).view(b, d, -1)  # [B, D, H_{k+1}]
            if self.split_half and i < n - 1:
                half = self.layer_size[i] // 2
                parts = torch.split(out, [half, half], dim=2)
                xk = parts[0]
                pooled.append(parts[1].sum(1))
            else:
                xk = out
                pooled.append(out.sum(1))
            i += 1
        return torch.cat(pooled, 1)

    @torch.jit.unused
    def _chunked(self, inputs: Tensor) -> Tensor:
        """The eager forward: through `recstack.kernels.cin` where `fused_applies` (ReLU or no activation), else through
        `_CINLayerFunction`, a ReLU (or no activation), the split and the pooling fused into each layer, other
        activations as torch ops on the layer's output."""
        b, f0, d = inputs.shape
        relu = type(self.activation) is nn.ReLU
        fused = relu or type(self.activation) is nn.Identity
        if fused and fused_applies(inputs, self.filters[0].weight):
            return self._fused(inputs, relu)
        x0 = inputs.transpose(1, 2).reshape(b * d, f0)  # [B*D, F0]
        xk = x0
        pooled: list[Tensor] = []
        last = len(self.filters) - 1
        for i, layer in enumerate(self.filters):
            split, pool_from = self._split(i, last)
            if fused:
                xk, part = _CINLayerFunction.apply(xk, x0, layer.weight, layer.bias, relu, split, pool_from, d)
                pooled.append(part)
                continue
            _, pre = _CINLayerFunction.apply(xk, x0, layer.weight, layer.bias, False, 0, 0, 1)
            out = self.activation(pre)  # [B*D, size]
            pooled.append(out[:, pool_from:].reshape(b, d, -1).sum(1))
            xk = out[:, :split].contiguous()
        return torch.cat(pooled, 1)

    @torch.jit.unused
    def _split(self, i: int, last: int) -> tuple[int, int]:
        """Layer ``i``'s ``(split, pool_from)``: its first ``split`` maps go on, those from ``pool_from`` are pooled."""
        size = self.layer_size[i]
        if i == last:
            return 0, 0
        if self.split_half:
            return size // 2, size // 2
        return size, 0

    @torch.jit.unused
    def _fused(self, inputs: Tensor, relu: bool) -> Tensor:
        """The forward through `_FusedLayerFunction`, activations map-major from the input on."""
        b, f0, d = inputs.shape
        rows = b * d
        rp = _round_up(rows, cin_kernels.ROWS)
        x0 = F.pad(inputs.permute(1, 2, 0).reshape(f0, rows), (0, rp - rows))  # [F0, rp], row d * B + b
        xk = x0
        pooled: list[Tensor] = []
        last = len(self.filters) - 1
        for i, layer in enumerate(self.filters):
            split, pool_from = self._split(i, last)
            xk, part = _FusedLayerFunction.apply(xk, x0, layer.weight, layer.bias, relu, split, pool_from, d, rows)
            pooled.append(part)
        return torch.cat(pooled, 1)

    @torch.jit.unused
    def l2_penalty(self) -> Tensor:
        """``l2_reg * sum of squared filter weights`` (biases are not regularized)."""
        total = torch.zeros(())
        if self.l2_reg > 0:
            for m in self.filters:
                total = total + m.weight.pow(2).sum()
        return total * self.l2_reg
