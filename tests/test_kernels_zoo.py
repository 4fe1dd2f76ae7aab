"""Every ranking model gives the same forward and the same training step with every kernel off on a CPU
without AVX2 (the torch path) as with the kernels (where this CPU has them)."""

import inspect

import numpy as np
import pytest
import torch

import recstack.models.ranking as zoo
from recstack import kernels
from recstack.features import DenseFeat, SparseFeat

ROWS = 1024  # the gemm family's smallest batch: one step of 1024 rows goes through every kernel family
FIELDS = 6
DIM = 8
SMALL = {  # small layers; parameters a model does not take are left out
    "dnn_hidden_units": (16, 8),
    "afn_dnn_hidden_units": (16, 8),
    "ltl_hidden_size": 8,
    "cin_layer_size": (8, 6),
    "conv_kernel_width": (3, 2),
    "conv_filters": (2, 2),
    "att_layer_num": 2,
    "att_head_num": 2,
    "region_num": 2,
    "low_rank": 4,
    "num_experts": 2,
    "init_std": 0.1,  # embeddings large enough that the interaction layers change the output
}


def _columns() -> list:
    sparse = [SparseFeat(f"c{i}", vocabulary_size=40, embedding_dim=DIM) for i in range(FIELDS)]
    return sparse + [DenseFeat(f"d{i}") for i in range(3)]


def _data() -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    x: dict[str, np.ndarray] = {f"c{i}": rng.integers(0, 40, ROWS) for i in range(FIELDS)}
    x.update({f"d{i}": rng.standard_normal(ROWS).astype(np.float32) for i in range(3)})
    y = (rng.random(ROWS) < 0.3).astype(np.float32)
    return x, y


def _build(name: str) -> torch.nn.Module:
    cls = getattr(zoo, name)
    params = inspect.signature(cls).parameters
    options = {k: v for k, v in SMALL.items() if k in params}
    cols = _columns()
    if "linear_feature_columns" in params:
        return cls(cols, cols, **options)
    return cls(cols, **options)


def _forward_and_step(name: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The model's eval output; the loss of one fit step with Adam (a row-sparse training forward: the
    ``unique`` family); and each parameter's change in one fit step of SGD at learning rate 1 (its gradient,
    plus the L2 terms), all over the same rows."""
    x, y = _data()
    model = _build(name)
    batch = {k: torch.as_tensor(v) for k, v in x.items()}
    model.eval()
    with torch.no_grad():
        out = model(batch)
    model.compile("adam", "binary_crossentropy")
    history = model.fit(x, y, batch_size=ROWS, epochs=1, verbose=0, shuffle=False)
    loss = torch.tensor(history.history["loss"])
    model = _build(name)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.compile("sgd", "binary_crossentropy", lr=1.0)
    model.fit(x, y, batch_size=ROWS, epochs=1, verbose=0, shuffle=False)
    steps = {k: v.detach() - before[k] for k, v in model.state_dict().items() if v.is_floating_point()}
    return out, loss, steps


@pytest.fixture(scope="module", autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # two ranges: the parallel kernels run
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", zoo.__all__)
def test_torch_path_matches_kernel_path(name):
    fast_out, fast_loss, fast_steps = _forward_and_step(name)
    with kernels.disabled(), kernels.cpu_features_as(()):
        assert not any(kernels.status().values())
        assert not kernels.simd_supported()
        slow_out, slow_loss, slow_steps = _forward_and_step(name)
    assert fast_out.shape == (ROWS, 1) and torch.isfinite(fast_out).all()
    assert fast_out.std() > 1e-4  # the inputs reach the output: a constant output would compare equal
    torch.testing.assert_close(slow_out, fast_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(slow_loss, fast_loss, rtol=1e-5, atol=1e-6)
    assert slow_steps.keys() == fast_steps.keys()
    scale = max(step.abs().max().item() for step in fast_steps.values())
    assert scale > 1e-4  # the step trains something
    for key, step in fast_steps.items():
        # float32 sums in another order: within 1e-5 of the parameter's largest step, or of a thousandth of
        # the model's (a bias ahead of a batch norm has a gradient that is rounding noise on both paths, and
        # AFN's logarithms scale that noise up)
        atol = 1e-5 * max(1.0, step.abs().max().item(), 1e-3 * scale)
        torch.testing.assert_close(slow_steps[key], step, rtol=1e-4, atol=atol, msg=lambda m, k=key: f"{k}: {m}")
