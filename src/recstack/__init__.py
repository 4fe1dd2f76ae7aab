"""recstack: from raw interaction logs to a served recommender."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``recstack.blend`` on first use, so that ``import recstack`` stays light."""
    if name == "blend":
        import importlib

        return importlib.import_module("recstack.blend")
    raise AttributeError(f"module 'recstack' has no attribute {name!r}")
