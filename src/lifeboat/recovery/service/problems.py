"""RFC 9457 problem details: every error the service returns is one ``application/problem+json``.

Plain HTTP errors (404, 405, 413, 429) use ``type: "about:blank"`` with the status's reason
phrase as title, as RFC 9457 section 4.2.1 advises; Lifeboat's own refusals use a
``urn:lifeboat:problem:<slug>`` type a client can switch on. A detail never echoes request
input back (a hostile string stays with its sender) and a 500 never carries an exception's text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from lifeboat.errors import InputError, LifeboatError, RecoveryError
from lifeboat.recovery import refusals
from lifeboat.recovery.db import ConflictError, ReplayError, VaultNotFound

__all__ = ["MEDIA_TYPE", "Problem", "ProblemModel", "install", "problem_response", "responses"]

MEDIA_TYPE: Final = "application/problem+json"
URN: Final = "urn:lifeboat:problem:"
log = logging.getLogger("lifeboat.recovery.service")

#: Lifeboat errors to (status, type slug); the most specific class in an error's MRO wins.
STATUS: dict[type[LifeboatError], tuple[int, str]] = {
    LifeboatError: (400, "bad_request"),
    InputError: (400, "bad_input"),
    RecoveryError: (409, "refused"),
    VaultNotFound: (404, "unknown_vault"),
    ReplayError: (409, "replayed"),
    ConflictError: (503, "busy"),
}

#: Each refusal of the recovery core to its HTTP status; the problem's type ends in its ``code``.
#: 400: the bytes are wrong; 403: the signature or signer may not do this; 404: no such vault,
#: request or policy; 409: the vault's state does not allow it now; 410: the request is closed
#: (its outcome is final); 422: well-formed but not acceptable (a rule broken, outside its lifetime).
REFUSAL_STATUS: dict[type[refusals.Refusal], int] = {
    refusals.Refusal: 409,
    refusals.MalformedKey: 400,
    refusals.MalformedMessage: 400,
    refusals.UnknownVersion: 400,
    refusals.BadSignature: 403,
    refusals.WrongService: 403,
    refusals.WrongVault: 403,
    refusals.NotAuthorized: 403,
    refusals.UnknownVault: 404,
    refusals.UnknownRequest: 404,
    refusals.UnknownPolicy: 404,
    refusals.ReplayedNonce: 409,
    refusals.VaultExists: 409,
    refusals.DuplicateRequest: 409,
    refusals.DuplicateApproval: 409,
    refusals.TooEarly: 409,
    refusals.VaultLocked: 409,
    refusals.NoPendingChange: 409,
    refusals.EscrowRefused: 409,
    refusals.TooManyRequests: 409,
    refusals.NotLocked: 409,
    refusals.RequestClosed: 410,
    refusals.Expired: 422,
    refusals.NotYetValid: 422,
    refusals.LifetimeTooLong: 422,
    refusals.InvalidConfig: 422,
    refusals.RequestMismatch: 422,
    refusals.EscrowUnreadable: 422,
}


class ProblemModel(BaseModel):
    """The problem-details object, for the OpenAPI document."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Problem(HTTPException):
    """An HTTP error the handlers turn into problem details."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(status, detail, dict(headers) if headers else None)
        self.slug = slug
        self.title = title
        self.extra = dict(extra or {})


def problem_response(
    request: Request | None,
    status: int,
    *,
    detail: str | None = None,
    slug: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": URN + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    if slug:
        body["code"] = slug  # the type's last part, for clients that switch on it
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


def safe_detail(text: str, limit: int = 500) -> str:
    """A refusal's message made inert: a refusal may quote a few characters of its input (a
    policy name), so anything but printable ASCII, and markup characters, become ``?``."""
    return "".join(c if " " <= c <= "~" and c not in _MARKUP else "?" for c in text[:limit])


_MARKUP: Final = frozenset('<>&"`\\')


def _status_of(exc: LifeboatError) -> tuple[int, str]:
    if isinstance(exc, refusals.Refusal):
        for cls in type(exc).__mro__:
            if cls in REFUSAL_STATUS:
                return REFUSAL_STATUS[cls], exc.code
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return STATUS[LifeboatError]


def install(app: FastAPI) -> None:
    """Register the handlers that make every error a problem-details response."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if isinstance(exc, Problem):
            return problem_response(
                request,
                exc.status_code,
                detail=exc.detail,
                slug=exc.slug,
                title=exc.title,
                headers=exc.headers,
                extra=exc.extra,
            )
        phrase = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        return problem_response(request, exc.status_code, detail=detail, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "location": [str(part) for part in error.get("loc", ())],
                "message": str(error.get("msg", ""))[:200],
            }
            for error in exc.errors()[:20]
        ]
        return problem_response(
            request,
            422,
            detail="the request does not match the API",
            slug="validation",
            title="Invalid request",
            extra={"errors": errors},
        )

    async def lifeboat_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LifeboatError)
        status, slug = _status_of(exc)
        headers = {"Retry-After": "1"} if status == 503 else None
        return problem_response(request, status, detail=safe_detail(str(exc)), slug=slug, headers=headers)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return problem_response(
            request, 500, detail="the service failed; the error is logged", slug="internal"
        )

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(LifeboatError, lifeboat_error)
    app.add_exception_handler(Exception, internal_error)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses a route may return."""
    return {
        status: {"model": ProblemModel, "content": {MEDIA_TYPE: {}}, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
