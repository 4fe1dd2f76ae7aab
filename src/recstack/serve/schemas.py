"""Request and response bodies of the HTTP service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt


class BlendSpec(BaseModel):
    """How to fold the ranker's per-task scores into one score."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, StrictFloat] = Field(description="weight per task name")
    transform: Literal["probit", "logit", "identity"] = "probit"


class RecommendRequest(BaseModel):
    """Top-k items for each user. Each user is an object of raw user features (name: value)."""

    users: list[dict[str, Any]] = Field(description="raw user features, one object per user")
    k: StrictInt | None = Field(None, description="items per user, 1 to --max-k (default 100, or --max-k if smaller)")
    exclude: list[list[StrictInt]] | None = Field(
        None, description="item ids each user must not get (one list per user, [] for none)"
    )
    rank: StrictBool = Field(False, description="re-score the retrieved candidates with the bundle's ranker")
    candidates: StrictInt | None = Field(
        None, description="with rank: items retrieved per user for the ranker to re-score (k to --max-k; default k)"
    )
    blend: BlendSpec | None = Field(None, description="fold the ranker's task scores into the final score")


class RecommendResult(BaseModel):
    """One user's items, best first, with their scores (and per-task scores when ranked)."""

    items: list[int]
    scores: list[float | None]
    task_scores: dict[str, list[float | None]] | None = None


class RecommendResponse(BaseModel):
    results: list[RecommendResult]
    bundle: str


class PredictRequest(BaseModel):
    """Per-task scores of (user, item) rows: each row holds raw user and item features."""

    rows: list[dict[str, Any]]


class PredictResponse(BaseModel):
    scores: dict[str, list[float | None]]
    bundle: str


class EmbedRequest(BaseModel):
    """User vectors from raw user features."""

    users: list[dict[str, Any]]


class EmbedResponse(BaseModel):
    vectors: list[list[float]]
    bundle: str


class ReloadRequest(BaseModel):
    """Load, verify and warm the bundle at ``path`` (default: the one being served), then serve it."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None


class ReloadResponse(BaseModel):
    bundle: str
    previous: str
    path: str
    seconds: float


class ErrorResponse(BaseModel):
    """Every error answer: what went wrong, and the request field at fault (null when none is)."""

    error: str
    field: str | None = None
