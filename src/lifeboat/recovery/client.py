"""A typed client for the recovery service's HTTP API (docs/recovery.md, "HTTP API").

Signing stays with the caller: build a :class:`~lifeboat.recovery.messages.Message` with times
from :meth:`Client.service`, sign it locally, and :meth:`Client.act` it. A problem-details answer
is raised as a :class:`~lifeboat.errors.RecoveryError`: the core's own refusal class when the
problem names a refusal code (so ``except refusals.TooEarly`` works on both sides of the wire),
else :class:`ServiceProblem`; either carries ``status`` and ``problem`` (the whole document).

>>> # with Client("http://127.0.0.1:8750") as client:
>>> #     info = client.service()
>>> #     message = messages.Message(vault, messages.Lock(), nonce, info.now - 60, info.now + 600)
>>> #     client.act(messages.sign(info.service, message, guardian_key))
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import httpx

from lifeboat.errors import RecoveryError, UsageError
from lifeboat.recovery import messages, policy, refusals
from lifeboat.recovery.keys import PrivateKey, PublicKey

__all__ = [
    "ActionOutcome",
    "Client",
    "EscrowedCiphertext",
    "ServiceInfo",
    "ServiceProblem",
    "ServiceUnavailable",
    "VaultView",
]

PROBLEM_URN: Final = "urn:lifeboat:problem:"
DEFAULT_TIMEOUT: Final = 30.0
#: How long a message :meth:`Client.sign_and_act` signs stays valid (seconds).
DEFAULT_LIFETIME: Final = 3600


class ServiceProblem(RecoveryError):
    """A problem-details answer that is not one of the core's refusals (404 route, 429, 5xx...)."""

    status: int = 0
    problem: Mapping[str, Any] = {}


class ServiceUnavailable(ServiceProblem):
    """The service could not be reached, or answered something that is not the API."""


def _refusal_classes() -> dict[str, type[refusals.Refusal]]:
    found: dict[str, type[refusals.Refusal]] = {}
    for value in vars(refusals).values():
        if isinstance(value, type) and issubclass(value, refusals.Refusal):
            found[value.code] = value
    found["replayed"] = refusals.ReplayedNonce  # the database's replay guard (a nonce used on any vault)
    return found


#: Refusal code -> class, so a client raises what the service raised.
_REFUSALS: Final = _refusal_classes()


@dataclass(frozen=True)
class ServiceInfo:
    """The EIP-712 domain to sign for, and the service's clock when asked."""

    service: messages.Service
    now: int


@dataclass(frozen=True)
class ActionOutcome:
    vault: str
    version: int
    events: tuple[Mapping[str, Any], ...]

    @property
    def kinds(self) -> list[str]:
        return [str(e["kind"]) for e in self.events]


@dataclass(frozen=True)
class VaultView:
    vault: str
    version: int
    now: int
    state: policy.VaultState
    #: The state as the service sent it (JSON), for printing.
    document: Mapping[str, Any]


@dataclass(frozen=True)
class EscrowedCiphertext:
    guardian: PublicKey
    ciphertext: bytes


def _hex_id(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value.removeprefix("0x")


def error_from_problem(status: int, body: object) -> RecoveryError:
    """The exception a problem-details answer stands for."""
    problem: Mapping[str, Any] = body if isinstance(body, dict) else {}
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    kind = str(problem.get("type", ""))
    code = kind.removeprefix(PROBLEM_URN) if kind.startswith(PROBLEM_URN) else ""
    cls = _REFUSALS.get(code)
    label = f" ({code})" if code else f" (HTTP {status})"
    message = " ".join(f"the service refused{label}: {detail}".split())[:400]
    error: RecoveryError = cls(message) if cls is not None else ServiceProblem(message)
    error.status = status  # type: ignore[attr-defined]
    error.problem = problem  # type: ignore[attr-defined]
    return error


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn a body of the wrong shape into one clear error instead of a KeyError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, refusals.Refusal) as error:
        detail = f" ({error})" if isinstance(error, refusals.Refusal) else ""
        raise ServiceUnavailable(f"the service sent {what} this Lifeboat cannot read{detail}") from None


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    return value


class Client:
    """The recovery service at ``base_url`` (``http://127.0.0.1:8750``); a context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"the recovery service {base_url[:60]!r} is not an http:// or https:// URL")
        self.url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as error:
            reason = f": {str(error)[:120]}" if str(error) else ""
            raise ServiceUnavailable(
                f"cannot reach the recovery service at {self.url}: {type(error).__name__}{reason}"
            ) from None
        if not response.is_success:
            try:
                value = response.json()
            except (ValueError, UnicodeDecodeError):
                value = None
            raise error_from_problem(response.status_code, value)
        return response

    def _call(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        response = self._send(method, path, body)
        try:
            value = response.json()
        except (ValueError, UnicodeDecodeError):
            value = None
        if not isinstance(value, dict):
            raise ServiceUnavailable(
                f"{self.url}{path} answered {response.status_code} with something that is not a JSON object"
            )
        return value

    # -- the endpoints ---------------------------------------------------------------------------

    def service(self) -> ServiceInfo:
        """``GET /v1/service``: the domain to sign for and the service clock."""
        body = self._call("GET", "/v1/service")
        with _reading("a service description"):
            return ServiceInfo(messages.Service.from_json(body["service"]), _int(body["now"]))

    def act(self, signed: messages.SignedMessage, ciphertext: bytes | None = None) -> ActionOutcome:
        """``POST /v1/actions``: apply one signed action (an UploadShare with its ciphertext)."""
        body: dict[str, Any] = {"signed": messages.signed_to_json(signed)}
        if ciphertext is not None:
            body["ciphertext"] = base64.b64encode(ciphertext).decode("ascii")
        answer = self._call("POST", "/v1/actions", body=body)
        with _reading("an answer to an action"):
            events = answer["events"]
            if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                raise TypeError("events is not a list of objects")
            return ActionOutcome(str(answer["vault"]), _int(answer["version"]), tuple(events))

    def sign_and_act(
        self,
        key: PrivateKey,
        vault: bytes,
        action: messages.Action,
        *,
        lifetime: int = DEFAULT_LIFETIME,
        ciphertext: bytes | None = None,
    ) -> ActionOutcome:
        """Sign ``action`` on ``vault`` with ``key`` for this service, valid ``lifetime`` seconds
        from the service's clock (:func:`~lifeboat.recovery.messages.new_message`), and apply it."""
        info = self.service()
        message = messages.new_message(vault, action, now=info.now, lifetime=lifetime)
        return self.act(messages.sign(info.service, message, key), ciphertext)

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: answers once the service and its database are ready."""
        return self._call("GET", "/healthz")

    def vault(self, vault: bytes | str) -> VaultView:
        """``GET /v1/vaults/{vault}``: the state as of the service's now."""
        body = self._call("GET", f"/v1/vaults/{_hex_id(vault)}")
        with _reading("a vault state"):
            state = policy.vault_state_from_json(json.dumps(body["state"]).encode())
            return VaultView(
                str(body["vault"]), _int(body["version"]), _int(body["now"]), state, body["state"]
            )

    def escrow(self, vault: bytes | str, request: bytes | str) -> list[EscrowedCiphertext]:
        """``GET .../requests/{request}/escrow``: the released ciphertexts (after execution only)."""
        body = self._call("GET", f"/v1/vaults/{_hex_id(vault)}/requests/{_hex_id(request)}/escrow")
        with _reading("an escrow bundle"):
            return [
                EscrowedCiphertext(
                    PublicKey.parse(s["guardian"]), base64.b64decode(s["ciphertext"], validate=True)
                )
                for s in body["shares"]
            ]

    def audit_head(self) -> dict[str, Any]:
        """``GET /v1/audit/head``: the signed head (check with ``audit.verify_head``)."""
        return dict(self._call("GET", "/v1/audit/head"))

    def audit_export(self) -> bytes:
        """``GET /v1/audit/export``: the JSON Lines export (check with ``audit.verify``)."""
        return self._send("GET", "/v1/audit/export").content

    def advance_clock(self, seconds: int) -> int:
        """``POST /v1/clock/advance`` (a ``--simulated-clock`` service only): the new now."""
        body = self._call("POST", "/v1/clock/advance", body={"seconds": seconds})
        with _reading("a clock"):
            return _int(body["now"])
