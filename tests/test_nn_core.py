import pytest
import torch
import torch.nn.functional as F

from recstack.nn.core import linear_of_concat


def test_linear_of_concat_equals_linear_over_the_concatenation() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(37, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(37, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 8, generator=g, dtype=torch.float64, requires_grad=True)
    got = linear_of_concat([a, b], w)
    want = F.linear(torch.cat([a, b], 1), w)
    assert got.shape == (37, 1)
    torch.testing.assert_close(got, want)
    upstream = torch.randn(37, 1, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad(got, (a, b, w), upstream)
    want_grads = torch.autograd.grad(want, (a, b, w), upstream)
    for x, y in zip(grads, want_grads):
        torch.testing.assert_close(x, y)
    assert grads[0].is_contiguous() and grads[1].is_contiguous()
    torch.autograd.gradcheck(lambda a, b, w: linear_of_concat([a, b], w), (a, b, w))


def test_linear_of_concat_scripts_and_checks_widths() -> None:
    scripted = torch.jit.script(linear_of_concat)
    a, b, w = torch.randn(4, 2), torch.randn(4, 3), torch.randn(1, 5)
    torch.testing.assert_close(scripted([a, b], w), linear_of_concat([a, b], w))
    with pytest.raises(ValueError, match="6 columns in all, the weight 5"):
        linear_of_concat([a, b, torch.randn(4, 1)], w)
