"""Approximate (and exact) nearest-neighbour search over item vectors behind one small interface.

    from recstack.index import build_index, load_index
    index = build_index(item_vectors, ids=item_ids, metric="ip", backend="faiss")
    scores, ids = index.search(user_vectors, k=100)
    index.save("item_index"); index = load_index("item_index")

Backends: "exact" (torch), "faiss", "scann", "hnswlib"; the last three import their package only when used.
"""

from recstack.index import exact, faiss_backend, hnswlib_backend, scann_backend  # noqa: F401  (registers them)
from recstack.index.base import BACKENDS, Index, available_backends, build_index, load_index

__all__ = ["BACKENDS", "Index", "available_backends", "build_index", "load_index"]
