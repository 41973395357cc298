"""The recovery endpoints (docs/recovery.md, "HTTP API"): the service's identity and clock, signed
actions, vault state, escrow release, and the simulated clock.

Every route only decodes, calls :mod:`.actions` (which calls the policy through
``Database.transact``) and encodes; refusals become problem details in :mod:`.problems`.
Blocking work (signature checks, the database) runs in the thread pool.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from lifeboat.recovery import messages, policy
from lifeboat.recovery.escrow import MAX_ESCROW_BYTES
from lifeboat.recovery.service import actions, problems

__all__ = ["clock_router", "router"]

_HEX_ID = r"^(0x)?[0-9a-f]{64}$"
VaultId = Annotated[str, Path(pattern=_HEX_ID, description="The vault id: 64 hex digits, 0x optional")]
RequestId = Annotated[str, Path(pattern=_HEX_ID, description="The request id: 64 hex digits, 0x optional")]


class ServiceDomain(BaseModel):
    chainId: int
    verifyingContract: str


class ServiceInfo(BaseModel):
    service: ServiceDomain
    now: int = Field(description="The service clock (Unix seconds): pick notBefore and expiry from it")


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signed: dict[str, Any] = Field(description="A signed message (docs/formats.md, wire JSON)")
    ciphertext: str | None = Field(
        default=None,
        max_length=4 * (MAX_ESCROW_BYTES // 3 + 1),
        description="Base64 of the escrowed ciphertext: with an UploadShare, and only then",
    )


class EventBody(BaseModel):
    kind: str
    at: int
    request: str | None
    actor: str | None
    detail: dict[str, str]


class ActionResultBody(BaseModel):
    vault: str
    version: int
    events: list[EventBody]


class VaultBody(BaseModel):
    vault: str
    version: int
    now: int
    state: dict[str, Any] = Field(description="policy.vault_state_to_json, advanced to now")


class EscrowShare(BaseModel):
    guardian: str
    ciphertext: str = Field(description="Base64 of the armored age ciphertext")


class EscrowBundleBody(BaseModel):
    shares: list[EscrowShare]


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: int = Field(ge=0, le=100 * 365 * 86400)


class ClockBody(BaseModel):
    now: int


def _service(request: Request) -> Any:
    return request.app.state.service


router = APIRouter(tags=["recovery"], responses=problems.responses(413, 422, 429, 500, 503))


@router.get("/v1/service", response_model=ServiceInfo)
async def service_info(request: Request) -> Any:
    """The EIP-712 domain to sign for, and the service clock."""
    service = _service(request)
    now = await run_in_threadpool(service.database.now)
    return {"service": service.identity.to_json(), "now": now}


@router.post(
    "/v1/actions",
    response_model=ActionResultBody,
    responses=problems.responses(400, 403, 404, 409, 410, 429),
)
async def post_action(body: ActionBody, request: Request) -> Any:
    """Apply one signed action (CreateVault included); an UploadShare carries its ciphertext."""
    service = _service(request)

    def run() -> actions.ActionResult:
        signed = messages.signed_from_json(body.signed)
        ciphertext = None if body.ciphertext is None else actions.decode_ciphertext(body.ciphertext)
        return actions.apply_signed(
            service.database, service.identity, signed, ciphertext, admit=request.app.state.key_limit
        )

    result = await run_in_threadpool(run)
    if service.worker is not None and result.deliveries:
        service.worker.wake()
    # built here to the documented shape (ActionResultBody, members in its order), so the
    # busiest endpoint skips the response model's second validation
    return JSONResponse(
        {"vault": result.vault, "version": result.version, "events": actions.event_json(result.events)}
    )


@router.get("/v1/vaults/{vault}", response_model=VaultBody, responses=problems.responses(404))
async def get_vault(vault: VaultId, request: Request) -> Any:
    """A vault's state as of now (time-driven transitions applied for the view)."""
    service = _service(request)
    vault_id = actions.parse_vault_id(vault)
    version, now, state = await run_in_threadpool(actions.view_vault, service.database, vault_id)
    return {
        "vault": "0x" + vault_id.hex(),
        "version": version,
        "now": now,
        "state": _state_object(state),
    }


def _state_object(state: policy.VaultState) -> dict[str, Any]:
    value = json.loads(policy.vault_state_to_json(state))
    assert isinstance(value, dict)
    return value


@router.get(
    "/v1/vaults/{vault}/requests/{request_id}/escrow",
    response_model=EscrowBundleBody,
    responses=problems.responses(404, 409, 410),
)
async def get_escrow(vault: VaultId, request_id: RequestId, request: Request) -> Any:
    """The escrowed ciphertexts of an executed request (409 before execution, 410 once destroyed)."""
    service = _service(request)
    items = await run_in_threadpool(
        actions.escrow_bundle,
        service.database,
        actions.parse_vault_id(vault),
        actions.parse_vault_id(request_id, "request id"),
    )
    return {
        "shares": [
            {"guardian": item.guardian_id, "ciphertext": base64.b64encode(item.ciphertext).decode("ascii")}
            for item in items
        ]
    }


clock_router = APIRouter(tags=["clock"], responses=problems.responses(413, 422, 429, 500, 503))


@clock_router.post("/v1/clock/advance", response_model=ClockBody)
async def advance_clock(body: ClockAdvance, request: Request) -> Any:
    """Move the simulated clock ahead (only with ``lifeboat serve --simulated-clock``), then sweep,
    so the transitions now due are logged before this answers."""
    service = _service(request)
    now = await run_in_threadpool(service.database.advance_clock, body.seconds)
    while await run_in_threadpool(actions.sweep_due, service.database):
        pass
    if service.worker is not None:
        service.worker.wake()
    return {"now": now}
