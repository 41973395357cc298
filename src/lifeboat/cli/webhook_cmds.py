"""``lifeboat webhook add|list|remove``: the operator subscribes endpoints to recovery events.

These commands work on the service's database directly (the same ``--database`` as ``lifeboat
serve``), not over HTTP: only whoever runs the service decides where its notifications go. The
signing secret of a new endpoint is shown once, and only when asked (``--reveal``) or written to
a 0600 file (``--secret-file``); the receiver checks every delivery with it (docs/formats.md,
"Recovery webhooks, version 1").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lifeboat.cli.output import emit, info, settings, stdout
from lifeboat.errors import UsageError

if TYPE_CHECKING:
    from lifeboat.recovery.db import Database

webhook_app = typer.Typer(
    help="Subscribe endpoints to recovery events (operator; works on the service's database).",
    no_args_is_help=True,
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="The service's database, as for `lifeboat serve` (default: recovery.db in the Lifeboat home).",
        metavar="URL",
        envvar="LIFEBOAT_DATABASE_URL",
    ),
]


def _open(database: str | None) -> Database:
    """The service's database, refused when it does not exist or was never migrated."""
    from sqlalchemy.engine import make_url

    from lifeboat.home import default_home
    from lifeboat.recovery import migrations
    from lifeboat.recovery.db import Database, default_url

    url = database or default_url(settings.home or default_home())
    try:
        parsed = make_url(url)
    except Exception:
        parsed = None
    sqlite_file = parsed.database if parsed is not None and parsed.get_backend_name() == "sqlite" else None
    if sqlite_file and not Path(sqlite_file).is_file():
        raise UsageError(
            f"no recovery database at {sqlite_file}: start the service once "
            "(`lifeboat serve`, or `lifeboat serve --migrate-only`), or pass --database"
        )
    db = Database(url)
    try:
        revision = migrations.current(db.engine)
    except Exception as exc:
        db.dispose()
        raise UsageError(f"cannot read the recovery database: {' '.join(str(exc).split())[:200]}") from exc
    if revision is None:
        db.dispose()
        raise UsageError(
            "the recovery database has no schema yet: run `lifeboat serve --migrate-only` with the same --database"
        )
    return db


def add_command(
    url: Annotated[str, typer.Argument(help="The endpoint (https://...) that receives each event.")],
    database: DatabaseOption = None,
    vault: Annotated[
        str | None,
        typer.Option("--vault", help="Only this vault's events (default: every vault's).", metavar="ID"),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file",
            help="Write the endpoint's signing secret (hex) to this new file, mode 0600.",
            metavar="FILE",
        ),
    ] = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Print the signing secret.")] = False,
) -> None:
    """Subscribe URL to recovery events; deliveries are signed with a new secret shown once."""
    from lifeboat.fs import atomic_writer, check_writable
    from lifeboat.recovery.db import VaultNotFound
    from lifeboat.recovery.webhooks import WebhookError

    if not reveal and secret_file is None:
        raise UsageError(
            "the endpoint's signing secret is shown only once: pass --secret-file FILE to keep it, "
            "or --reveal to print it"
        )
    if secret_file is not None:
        check_writable(secret_file, overwrite=False)
    db = _open(database)
    try:
        if vault is not None:
            try:
                db.load(vault)
            except VaultNotFound:
                raise UsageError(
                    f"no vault {vault[:80]!r} in this database: check the id (`lifeboat recovery vault show`)"
                ) from None
        try:
            hook_id, secret = db.add_webhook(url, vault_id=vault)
        except WebhookError as exc:
            raise UsageError(str(exc)) from None
    finally:
        db.dispose()
    if secret_file is not None:
        with atomic_writer(secret_file) as handle:
            handle.write(secret.hex().encode("ascii") + b"\n")
    data: dict[str, object] = {"id": hook_id, "url": url, "vault": vault}
    if reveal:
        data["secret"] = secret.hex()
    if secret_file is not None:
        data["secret_file"] = str(secret_file)

    def human() -> None:
        stdout.print(f"{hook_id}: {url} ({'vault ' + vault if vault else 'every vault'})")
        if reveal:
            stdout.print(f"secret: {secret.hex()}")
        if secret_file is not None:
            info(f"the signing secret is in {secret_file} (0600); give it to the receiver")

    emit(data, human)


def list_command(database: DatabaseOption = None) -> None:
    """List subscribed endpoints and how their deliveries stand (secrets are never shown)."""
    db = _open(database)
    try:
        hooks = db.webhooks()
    finally:
        db.dispose()

    def human() -> None:
        if not hooks:
            stdout.print("no webhooks: add one with `lifeboat webhook add URL --secret-file FILE`")
        for hook in hooks:
            since = datetime.fromtimestamp(hook.created_at, UTC).isoformat(timespec="seconds")
            counts = ", ".join(f"{n} {status}" for status, n in hook.deliveries.items())
            stdout.print(
                f"{hook.id}  {hook.url}  {'vault ' + hook.vault_id if hook.vault_id else 'every vault'}"
                f"  since {since}  ({counts})"
            )

    emit(
        {
            "webhooks": [
                {
                    "id": h.id,
                    "url": h.url,
                    "vault": h.vault_id,
                    "created_at": h.created_at,
                    "deliveries": dict(h.deliveries),
                }
                for h in hooks
            ]
        },
        human,
    )


def remove_command(
    hook_id: Annotated[str, typer.Argument(help="The endpoint's id (wh-..., from `webhook list`).")],
    database: DatabaseOption = None,
) -> None:
    """Unsubscribe an endpoint; deliveries not yet made to it are dropped."""
    db = _open(database)
    try:
        removed = db.remove_webhook(hook_id)
    finally:
        db.dispose()
    if not removed:
        raise UsageError(f"no webhook {hook_id[:80]!r}: `lifeboat webhook list` shows the ids")
    emit({"id": hook_id, "removed": True}, lambda: stdout.print(f"removed {hook_id}"))


webhook_app.command("add")(add_command)
webhook_app.command("list")(list_command)
webhook_app.command("remove")(remove_command)
