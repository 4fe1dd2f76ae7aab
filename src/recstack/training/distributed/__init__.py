"""Distributed training on Ray Train: ``Trainer(..., strategy="ray")`` and ``model.fit(..., strategy="ray")``.

Each worker runs the usual training loop on its own shard of the data; the model is not wrapped in DDP:
`GradientSync` adds up the dense gradients with one all-reduce and the touched rows of the row-sparse embedding
tables with all-gathers (gloo on CPU, NCCL on GPU), so every worker takes the same optimizer step. Metrics are
computed over all workers' predictions. Checkpoints are recstack checkpoints kept by Ray.
"""

from recstack.training.distributed.options import RayOptions
from recstack.training.distributed.ray_env import INSTALL_HINT, ray_session, require_ray
from recstack.training.distributed.shards import RayDataInput
from recstack.training.distributed.sync import GradientSync

__all__ = ["INSTALL_HINT", "GradientSync", "RayDataInput", "RayOptions", "ray_session", "require_ray"]
