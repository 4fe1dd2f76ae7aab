"""PNN's product layers (DeepCTR-Torch's ``InnerProductLayer`` and ``OutterProductLayer``).

Both take the field embeddings as one ``[B, F, D]`` tensor and produce one value per field pair
``i < j`` (pairs in row-major order: (0,1), (0,2), ..., (F-2,F-1)).
"""

import torch
from torch import Tensor, nn

KERNEL_TYPES = ("mat", "vec", "num")


class InnerProductLayer(nn.Module):
    """Pairwise inner products ``[B, P, 1]`` (``reduce_sum=True``) or element-wise products ``[B, P, D]``."""

    def __init__(self, reduce_sum: bool = True, device: str = "cpu") -> None:
        super().__init__()
        self.reduce_sum = reduce_sum

    def forward(self, inputs: Tensor) -> Tensor:
        num_fields = inputs.shape[1]
        pairs = torch.triu_indices(num_fields, num_fields, 1, device=inputs.device)
        if self.reduce_sum:
            # one Gram matrix per row, then its upper triangle
            gram = torch.bmm(inputs, inputs.transpose(1, 2)).reshape(inputs.shape[0], num_fields * num_fields)
            return gram.index_select(1, pairs[0] * num_fields + pairs[1]).unsqueeze(2)
        return inputs.index_select(1, pairs[0]) * inputs.index_select(1, pairs[1])


class OutterProductLayer(nn.Module):
    """Kernel products of field pairs, ``[B, F, D] -> [B, P]`` (PNN's outer-product part, product-nets code).

    ``kernel_type='mat'``: ``e_i^T W_ij e_j`` with a ``D x D`` matrix per pair; ``'vec'``: ``sum(e_i * w_ij * e_j)``
    with a ``D`` vector per pair; ``'num'``: ``w_ij * <e_i, e_j>`` with a scalar per pair.
    """

    def __init__(
        self, field_size: int, embedding_size: int, kernel_type: str = "mat", seed: int = 1024, device: str = "cpu"
    ) -> None:
        super().__init__()
        if kernel_type not in KERNEL_TYPES:
            raise ValueError(f"OutterProductLayer: kernel_type must be one of {KERNEL_TYPES}, got {kernel_type!r}")
        if field_size < 2:
            raise ValueError(f"OutterProductLayer: field_size must be at least 2 (pairs of fields), got {field_size}")
        if embedding_size < 1:
            raise ValueError(f"OutterProductLayer: embedding_size must be a positive integer, got {embedding_size}")
        self.kernel_type = kernel_type
        self.field_size = field_size
        num_pairs = field_size * (field_size - 1) // 2
        self.num_pairs = num_pairs
        if kernel_type == "mat":
            kernel = torch.empty(embedding_size, num_pairs, embedding_size)  # [D_out(j), P, D_in(i)], as DeepCTR
        elif kernel_type == "vec":
            kernel = torch.empty(num_pairs, embedding_size)
        else:
            kernel = torch.empty(num_pairs, 1)
        nn.init.xavier_uniform_(kernel, generator=torch.Generator().manual_seed(seed))
        self.kernel = nn.Parameter(kernel)
        pairs = torch.triu_indices(field_size, field_size, 1)
        self.register_buffer("row", pairs[0].clone(), persistent=False)
        self.register_buffer("col", pairs[1].clone(), persistent=False)
        self.register_buffer("flat_pairs", pairs[0] * field_size + pairs[1], persistent=False)
        self.to(device)

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.shape[1] != self.field_size:
            raise ValueError(f"OutterProductLayer: built for {self.field_size} fields, got {inputs.shape[1]}")
        batch = inputs.shape[0]
        if self.kernel_type == "num":
            gram = torch.bmm(inputs, inputs.transpose(1, 2)).reshape(batch, self.field_size * self.field_size)
            return gram.index_select(1, self.flat_pairs) * self.kernel.t()
        # laid out [F, D, B] so that each pair's kernel product is a wide GEMM ([D, D] @ [D, B])
        x = inputs.permute(1, 2, 0).contiguous()
        p = x.index_select(0, self.row)  # [P, D, B]
        q = x.index_select(0, self.col)
        if self.kernel_type == "mat":
            t = torch.bmm(self.kernel.permute(1, 0, 2), p)  # [P, D, B]: W_pr p for every pair
            return (t * q).sum(1).t()
        return (p * q * self.kernel.unsqueeze(2)).sum(1).t()
