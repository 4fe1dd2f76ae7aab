"""``POST /admin/reload``: swap in a new bundle without stopping the service (only with an admin token)."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from recstack.serve.rows import RequestError
from recstack.serve.schemas import ErrorResponse, ReloadRequest, ReloadResponse

if TYPE_CHECKING:
    from recstack.serve.app import Service


def check_token(request: Request, token: str) -> None:
    """`RequestError` 401 when the request carries no ``Authorization: Bearer TOKEN`` header, 403 when its token
    is not ``token`` (compared in constant time)."""
    header = request.headers.get("authorization")
    if not header:
        raise RequestError(None, "admin endpoints need an 'Authorization: Bearer TOKEN' header", 401)
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise RequestError(None, "the Authorization header must be 'Bearer TOKEN'", 401)
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise RequestError(None, "the admin token is wrong", 403)


def add_admin_routes(app: FastAPI, service: Service, token: str) -> None:
    """Add ``POST /admin/reload`` to ``app``, guarded by ``token``."""
    errors = {code: {"model": ErrorResponse} for code in (401, 403, 409, 422, 500)}

    def authorized(request: Request) -> None:
        check_token(request, token)

    @app.post("/admin/reload", response_model=ReloadResponse, responses=errors, dependencies=[Depends(authorized)])
    async def reload(body: ReloadRequest | None = None) -> JSONResponse:
        """Load and verify the bundle at ``path`` (default: the current one) off the request path, warm it, then
        serve it; requests already accepted finish on the old bundle. A bundle that fails is refused with the
        reason, and the old one keeps serving."""
        if service.settings.workers > 1:
            raise RequestError(
                None, f"this service runs {service.settings.workers} worker processes and a request reaches only one "
                "of them: send SIGHUP to the main process instead, which restarts every worker on --path", 409
            )
        new, old, seconds = await service.reload(body.path if body is not None else None)
        return JSONResponse({
            "bundle": new.version,
            "previous": old.version if old is not None else None,
            "path": str(new.path),
            "seconds": round(seconds, 4),
        })
