"""CCPM's convolution stack (DeepCTR-Torch's ``ConvLayer``) and ``KMaxPooling``."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class KMaxPooling(nn.Module):
    """The ``k`` largest values along ``axis``, in descending order (``torch.topk``, as DeepCTR-Torch)."""

    def __init__(self, k: int, axis: int, device: str = "cpu") -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"KMaxPooling: k must be a positive integer, got {k}")
        self.k = k
        self.axis = axis

    def forward(self, inputs: Tensor) -> Tensor:
        if self.axis < 0 or self.axis >= inputs.dim():
            raise ValueError(f"KMaxPooling: axis must be in 0..{inputs.dim() - 1}, got {self.axis}")
        if self.k > inputs.shape[self.axis]:
            raise ValueError(f"KMaxPooling: k must be in 1..{inputs.shape[self.axis]}, got {self.k}")
        return torch.topk(inputs, self.k, dim=self.axis, sorted=True).values


class FieldConv(nn.Module):
    """A ``(width, 1)`` convolution over the field axis, channels last: ``[B, F, D, C_in] -> [B, F, D, C_out]``.

    TensorFlow 'same' padding of ``width - 1`` fields, the extra one at the end for even widths (DeepCTR's
    ``Conv2dSame``); ``weight`` is shaped like ``nn.Conv2d``'s, ``[C_out, C_in, width, 1]``. Computed as
    one GEMM over the ``width`` shifted windows of the input.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, generator: torch.Generator) -> None:
        super().__init__()
        self.width = width
        self.pad_top = (width - 1) // 2
        self.pad_bottom = width - 1 - self.pad_top
        weight = torch.empty(out_channels, in_channels, width, 1)
        nn.init.xavier_uniform_(weight, generator=generator)
        bound = 1.0 / (in_channels * width) ** 0.5  # nn.Conv2d's default bias init
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound, generator=generator))

    def forward(self, x: Tensor) -> Tensor:
        batch, fields, dim, channels = x.shape
        padded = F.pad(x, [0, 0, 0, 0, self.pad_top, self.pad_bottom])
        # [B, F, D, C_in, width]: window j of output field f reads input field f + j - pad_top
        windows = padded.unfold(1, self.width, 1).reshape(batch * fields * dim, channels * self.width)
        weight = self.weight.reshape(self.weight.shape[0], channels * self.width)
        out = torch.addmm(self.bias, windows, weight.t())
        return out.reshape(batch, fields, dim, weight.shape[0])


class ConvLayer(nn.Module):
    """CCPM's stack of (field convolution -> tanh -> k-max pooling over fields): ``[B, 1, F, D] -> [B, C, k, D]``.

    Layer ``i`` of ``l`` keeps ``k_i = max(1, int((1 - (i / l) ** (l - i)) * F))`` fields and the last keeps 3
    (DeepCTR's dynamic k-max schedule), each capped at the fields it receives. The convolutions use 'same'
    padding, so any field count works. ``filed_shape`` is the final field count (DeepCTR-Torch's spelling).
    """

    def __init__(
        self,
        field_size: int,
        conv_kernel_width: Sequence[int],
        conv_filters: Sequence[int],
        device: str = "cpu",
        seed: int = 1024,
    ) -> None:
        super().__init__()
        check_conv_params(conv_kernel_width, conv_filters)
        if field_size < 1:
            raise ValueError(f"ConvLayer: field_size must be a positive integer, got {field_size}")
        n, layers = int(field_size), len(conv_filters)
        generator = torch.Generator().manual_seed(seed)
        modules: list[nn.Module] = []
        field_shape = n
        for i in range(1, layers + 1):
            in_channels = 1 if i == 1 else conv_filters[i - 2]
            k = max(1, int((1 - pow(i / layers, layers - i)) * n)) if i < layers else 3
            modules.append(FieldConv(in_channels, conv_filters[i - 1], conv_kernel_width[i - 1], generator))
            modules.append(nn.Tanh())
            modules.append(KMaxPooling(min(k, field_shape), axis=1))  # fields are axis 1 channels-last
            field_shape = min(k, field_shape)
        self.conv_layer = nn.Sequential(*modules)
        self.filed_shape = field_shape
        self.out_channels = int(conv_filters[-1])
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        out = self.conv_layer(inputs.permute(0, 2, 3, 1))  # channels last inside: [B, F, D, C]
        return out.permute(0, 3, 1, 2)


def check_conv_params(conv_kernel_width: Sequence[int], conv_filters: Sequence[int]) -> None:
    """Raise ValueError unless the two lists are non-empty, of equal length and of positive integers."""
    if len(conv_kernel_width) != len(conv_filters):
        raise ValueError(
            f"conv_kernel_width and conv_filters must have the same length, got {len(conv_kernel_width)} "
            f"and {len(conv_filters)}"
        )
    if len(conv_filters) == 0:
        raise ValueError("conv_kernel_width and conv_filters are empty: CCPM needs at least one conv layer")
    for name, values in (("conv_kernel_width", conv_kernel_width), ("conv_filters", conv_filters)):
        if any(int(v) != v or v < 1 for v in values):
            raise ValueError(f"{name} must hold positive integers, got {list(values)}")
