"""Serving: the Retriever (user features -> top-K items); the HTTP service builds on it."""

from recstack.serve.retriever import Retriever

__all__ = ["Retriever"]
