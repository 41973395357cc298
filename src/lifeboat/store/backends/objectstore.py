"""A backend over ``obstore`` (Rust ``object_store``): S3-compatible stores first, GCS and Azure too.

S3 and S3-compatible servers (SeaweedFS, MinIO, Ceph RGW, Garage) are tested, against
SeaweedFS; Google Cloud Storage and Azure Blob Storage go through obstore's own constructors
and are **untested** here.

obstore's own retries are turned off by default (``max_retries=0``): retrying is the job of
:class:`lifeboat.store.backends.wrappers.RetryingBackend`, which sees every failure and
applies one policy to every backend. obstore exceptions are mapped to the store errors:

* not found (HTTP 404 on an object) → :class:`ObjectNotFound` from ``get`` (``stat`` returns
  None, ``delete`` succeeds);
* no answer within ``timeout`` (30 s unless ``lifeboat --store-timeout`` or the URL's
  ``timeout=SECONDS`` option says otherwise) → :class:`StoreTimeout`, which names the store and
  the limit and is not retried;
* connection refused or reset, HTTP 5xx and 429 → :class:`BackendUnavailable`;
* no credentials anywhere (obstore then asks the cloud instance-metadata service at
  169.254.169.254, which answers no) → :class:`StoreError` saying "no S3 credentials" and
  where to set them;
* everything else (403, a missing bucket, bad configuration) → :class:`StoreError`.

Messages keep only the first line of obstore's message, with any configured secret blanked.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, NoReturn, cast
from urllib.parse import parse_qsl, urlsplit

import obstore
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import AzureStore, GCSStore, S3Store

from lifeboat.errors import UsageError
from lifeboat.store.backends.base import (
    BackendUnavailable,
    InvalidKey,
    ObjectNotFound,
    StoreError,
    StoreTimeout,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from obstore.store import AzureConfig, ClientConfig, GCSConfig, ObjectStore, RetryConfig, S3Config

#: Query options of an ``s3://`` URL (see :meth:`ObjectStoreBackend.from_url`).
S3_URL_OPTIONS = (
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "allow_http",
    "virtual_hosted_style",
    "skip_signature",
    "timeout",
    "connect_timeout",
    "max_retries",
)

_TRANSIENT = re.compile(
    r"error sending request|timed? ?out|connection (refused|reset|closed|aborted)|broken pipe"
    r"|incomplete message|body error|error decoding response|status code: (5\d\d|429)"
    r"|SlowDown|ServiceUnavailable|InternalError|RequestTimeout",
    re.IGNORECASE,
)
# obstore appends a "Debug source:" dump (with fields such as retry_timeout); only its
# error kinds are trusted there.
_TRANSIENT_KIND = re.compile(r"kind: (Connect|Timeout|Body|Decode)\b")
_MISSING_BUCKET = re.compile(r"NoSuchBucket", re.IGNORECASE)
_TIMEOUT_KIND = re.compile(r"kind: Timeout\b")
# Without credentials obstore asks the EC2 instance-metadata service for some.
_METADATA = re.compile(r"169\.254\.169\.254|/latest/(api/token|meta-data)")
#: Variables that give obstore credentials without access keys (web identity, containers).
_CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(value: str, option: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"storage URL option {option}={value!r} is not a boolean (use true or false)")


def _seconds(value: str, option: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"storage URL option {option}={value!r} is not a number of seconds") from None
    if not seconds > 0:
        raise UsageError(f"storage URL option {option}={value!r} must be positive")
    return seconds


def _count(value: str, option: str) -> int:
    if not value.strip().isdigit():
        raise UsageError(f"storage URL option {option}={value!r} is not a whole number")
    return int(value)


class ObjectStoreBackend:
    """A :class:`~lifeboat.store.backends.base.Backend` over any obstore store.

    Build one with :meth:`s3` or :meth:`from_url`, or wrap a ready obstore store with a
    ``name`` for messages; ``secrets`` lists strings to blank out of error messages.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        name: str,
        secrets: Iterable[str] = (),
        timeout: float | None = None,
        implicit_credentials: bool = False,
    ) -> None:
        self._store = store
        self.name = name
        self._secrets = tuple(s for s in secrets if s)
        self._timeout = timeout
        self._implicit_credentials = implicit_credentials

    def __repr__(self) -> str:
        return f"ObjectStoreBackend({self.name!r})"

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def s3(
        cls,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        allow_http: bool | None = None,
        virtual_hosted_style: bool = False,
        skip_signature: bool = False,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_retries: int = 0,
    ) -> ObjectStoreBackend:
        """An S3 or S3-compatible bucket, optionally under ``prefix``.

        Credentials not given here come from the standard ``AWS_*`` environment variables
        (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
        ``AWS_REGION``, ``AWS_ENDPOINT``...), as obstore reads them. With an ``endpoint``
        requests are path-style (``endpoint/bucket/key``), which MinIO and SeaweedFS need.
        Plain ``http://`` endpoints are allowed automatically on loopback addresses only;
        elsewhere pass ``allow_http=True`` explicitly.
        """
        if not bucket or "/" in bucket:
            raise UsageError(f"S3 bucket name {bucket!r} is not valid")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        config: S3Config = {"virtual_hosted_style_request": virtual_hosted_style}
        where = ""
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(f"S3 endpoint {endpoint!r} must be an http:// or https:// URL")
            if parts.username or parts.password:
                raise UsageError("S3 endpoint must not contain credentials; use access_key_id options")
            if parts.scheme == "http" and allow_http is None:
                if not _is_loopback(parts.hostname):
                    raise UsageError(
                        f"S3 endpoint {endpoint} is plain http on a non-loopback host; "
                        "pass allow_http=true if you really mean it"
                    )
                allow_http = True
            config["endpoint"] = endpoint
            where = f" at {endpoint}"
        if region:
            config["region"] = region
        elif endpoint and not os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
            config["region"] = "us-east-1"
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        if session_token:
            config["session_token"] = session_token
        if skip_signature:
            config["skip_signature"] = True
        client: ClientConfig = {
            "timeout": timedelta(seconds=timeout),
            "connect_timeout": timedelta(seconds=connect_timeout),
        }
        if allow_http:
            client["allow_http"] = True
        try:
            store = S3Store(
                bucket,
                prefix=prefix or None,
                config=config,
                client_options=client,
                retry_config=_retry_config(max_retries),
            )
        except Exception as exc:  # obstore raises several types for bad configuration
            raise StoreError(f"s3://{bucket}: cannot configure the store: {_first_line(exc)}") from exc
        name = f"s3://{bucket}/{prefix}".rstrip("/") + where
        secrets = [secret_access_key or "", session_token or ""]
        secrets += [os.environ.get(var, "") for var in _SECRET_ENV]
        implicit = not (access_key_id or skip_signature or any(os.environ.get(v) for v in _CREDENTIAL_ENV))
        return cls(store, name=name, secrets=secrets, timeout=timeout, implicit_credentials=implicit)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> ObjectStoreBackend:
        """Open ``s3://bucket/prefix?endpoint=...`` (or ``gs://``, ``az://``; untested).

        ``s3://`` query options: ``endpoint``, ``region``, ``access_key_id``,
        ``secret_access_key``, ``session_token``, ``allow_http``, ``virtual_hosted_style``,
        ``skip_signature`` (booleans as true/false), ``timeout`` and ``connect_timeout``
        (seconds; ``timeout`` defaults to the ``timeout`` argument) and ``max_retries``.
        Options for ``gs://`` and ``az://`` (also ``azure://``,
        ``abfs://``) are passed to obstore's ``GCSStore``/``AzureStore`` configuration as they
        are, e.g. ``gs://bucket/prefix?service_account_path=/path/key.json``.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if parts.username or parts.password:
            raise UsageError("storage URLs must not carry credentials in the user part; use query options")
        options: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            if key in options:
                raise UsageError(f"storage URL option {key!r} is given twice")
            options[key] = value
        bucket = parts.netloc
        prefix = parts.path.strip("/")
        if not bucket:
            raise UsageError(f"storage URL {parts.scheme}://{parts.netloc}{parts.path} names no bucket")
        if scheme in ("s3", "s3a"):
            unknown = sorted(set(options) - set(S3_URL_OPTIONS))
            if unknown:
                raise UsageError(
                    f"unknown s3:// URL option(s) {', '.join(unknown)}; known: {', '.join(S3_URL_OPTIONS)}"
                )
            return cls.s3(
                bucket,
                prefix,
                endpoint=options.get("endpoint") or None,
                region=options.get("region") or None,
                access_key_id=options.get("access_key_id") or None,
                secret_access_key=options.get("secret_access_key") or None,
                session_token=options.get("session_token") or None,
                allow_http=_flag(options["allow_http"], "allow_http") if "allow_http" in options else None,
                virtual_hosted_style=_flag(
                    options.get("virtual_hosted_style", "false"), "virtual_hosted_style"
                ),
                skip_signature=_flag(options.get("skip_signature", "false"), "skip_signature"),
                timeout=_seconds(options["timeout"], "timeout") if "timeout" in options else timeout,
                connect_timeout=_seconds(options.get("connect_timeout", "5"), "connect_timeout"),
                max_retries=_count(options.get("max_retries", "0"), "max_retries"),
            )
        if prefix:
            validate_key(prefix)
        base = f"{scheme}://{bucket}"
        name = f"{base}/{prefix}".rstrip("/")
        secrets = [v for k, v in options.items() if "secret" in k or "key" in k or "token" in k]
        store: ObjectStore
        try:
            if scheme in ("gs", "gcs"):
                # The prefix travels in the URL: obstore 0.12 takes a prefix= keyword here for
                # a configuration key and refuses it.
                store = GCSStore.from_url(
                    f"gs://{bucket}/{prefix}",
                    config=cast("GCSConfig", options),
                    retry_config=_retry_config(0),
                )
            elif scheme in ("az", "azure", "abfs", "abfss"):
                store = AzureStore.from_url(
                    f"{base}/{prefix}",
                    config=cast("AzureConfig", options),
                    retry_config=_retry_config(0),
                )
            else:
                raise UsageError(
                    f"unsupported storage URL scheme {parts.scheme!r}; supported: file:// (or a plain path), "
                    "s3://, gs://, az://"
                )
        except UsageError:
            raise
        except Exception as exc:  # obstore raises several types for bad configuration
            raise StoreError(f"{name}: cannot configure the store: {_first_line(exc, secrets)}") from exc
        return cls(store, name=name, secrets=secrets)

    # -- operations ---------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Upload ``data`` in one PUT (atomic on every object store)."""
        validate_key(key)
        try:
            obstore.put(self._store, key, bytes(data), use_multipart=False)
        except Exception as exc:
            self._fail("put", key, exc)

    def get(self, key: str) -> bytes:
        """Download the whole object."""
        validate_key(key)
        try:
            return bytes(obstore.get(self._store, key).bytes())
        except FileNotFoundError as exc:
            if _MISSING_BUCKET.search(str(exc)):
                self._fail("get", key, exc)
            raise ObjectNotFound(f"{self.name}: object {key!r} not found") from None
        except Exception as exc:
            self._fail("get", key, exc)

    def stat(self, key: str) -> int | None:
        """Size from a HEAD request, or None."""
        validate_key(key)
        try:
            return int(obstore.head(self._store, key)["size"])
        except FileNotFoundError as exc:
            if _MISSING_BUCKET.search(str(exc)):
                self._fail("stat", key, exc)
            return None
        except Exception as exc:
            self._fail("stat", key, exc)

    def delete(self, key: str) -> None:
        """DELETE the object (S3 answers success for a missing one)."""
        validate_key(key)
        try:
            obstore.delete(self._store, key)
        except FileNotFoundError:
            return
        except Exception as exc:
            self._fail("delete", key, exc)

    def list(self, prefix: str = "") -> list[str]:
        """List keys starting with ``prefix`` (string prefix, not just whole segments)."""
        validate_prefix(prefix)
        head, _, _ = prefix.rpartition("/")
        keys: list[str] = []
        try:
            for chunk in obstore.list(self._store, head or None, chunk_size=1000):
                keys.extend(meta["path"] for meta in chunk if meta["path"].startswith(prefix))
        except Exception as exc:
            self._fail("list", prefix, exc)
        keys.sort()
        return keys

    # -- errors -------------------------------------------------------------------------------

    def _fail(self, what: str, key: str, exc: Exception) -> NoReturn:
        reason = _first_line(exc, self._secrets)
        message = f"{self.name}: cannot {what} {key!r}: {reason}"
        text = str(exc)
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            raise StoreError(f"{message} (check the credentials and permissions)") from None
        if _MISSING_BUCKET.search(text):
            raise StoreError(f"{self.name}: cannot {what} {key!r}: the bucket does not exist") from None
        summary = text.split("Debug source:", 1)[0]
        if self._implicit_credentials and _METADATA.search(summary):
            raise StoreError(
                f"{self.name}: no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the "
                "URL's access_key_id/secret_access_key options"
            ) from None
        if _TIMEOUT_KIND.search(text) or isinstance(exc, TimeoutError):
            limit = f"{self._timeout:g} s" if self._timeout is not None else "its timeout"
            raise StoreTimeout(
                f"{self.name}: cannot {what} {key!r}: no answer within {limit} (the store is hung or "
                "very slow; --store-timeout SECONDS or the URL option timeout=SECONDS sets the limit)"
            ) from None
        transient = _TRANSIENT.search(summary) or _TRANSIENT_KIND.search(text)
        if isinstance(exc, ConnectionError | TimeoutError) or transient:
            raise BackendUnavailable(message) from None
        if isinstance(exc, ValueError) and "path" in text.lower():
            raise InvalidKey(message) from None
        raise StoreError(message) from None


def _retry_config(max_retries: int) -> RetryConfig:
    return {
        "max_retries": max(0, max_retries),
        "retry_timeout": timedelta(seconds=30),
        "backoff": {
            "init_backoff": timedelta(milliseconds=50),
            "max_backoff": timedelta(seconds=2),
            "base": 2,
        },
    }


def _first_line(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if len(text) > 300:
        text = text[:300] + "..."
    return text
