"""The Collie-compatible face of recstack: Collie's module names over recstack's code (no logic here).

Port Collie code by replacing ``collie`` with ``recstack.collie`` in its imports: ``interactions``,
``cross_validation``, ``loss``, ``metrics``, ``model``, ``movielens`` and ``utils``.
"""

from recstack.collie import cross_validation, interactions, loss, metrics, model, movielens, utils

__all__ = ["cross_validation", "interactions", "loss", "metrics", "model", "movielens", "utils"]
