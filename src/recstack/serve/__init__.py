"""Serving: the Retriever (user features -> top-K items) and the HTTP service built on the bundle.

The names are imported on first use, so that ``recstack serve --help`` stays light; `create_app` needs the
serve extra (``pip install 'recstack[serve]'``)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Retriever", "ServeSettings", "create_app"]

_HOMES = {
    "Retriever": "recstack.serve.retriever",
    "ServeSettings": "recstack.serve.settings",
    "create_app": "recstack.serve.app",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'recstack.serve' has no attribute {name!r}")
