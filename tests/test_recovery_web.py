"""The guardians' web page (lifeboat.recovery.service.web), end to end in headless Chromium.

A real ``lifeboat serve --simulated-clock`` on 127.0.0.1 with a temporary SQLite database; vaults
and requests are made through ``/v1/actions`` as any client makes them; the page is driven by
Python playwright with the Debian ``chromium``. A guardian copies the EIP-712 typed data off the
page, signs it with eth-account as a wallet would, pastes the signature, and the approval lands.
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from conftest_tools import require_tool
from lifeboat.recovery import messages, policy
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.keys import KeyKind, PrivateKey, PublicKey
from recovery_helpers import DAY, private_key, running_service

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
VIEWPORT = {"width": 1280, "height": 900}


# --- a real service --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``lifeboat serve --simulated-clock`` on a free loopback port; its base URL."""
    tmp = tmp_path_factory.mktemp("web")
    database, key = f"sqlite:///{tmp / 'recovery.db'}", str(tmp / "service-key.json")
    with running_service(
        tmp, "--simulated-clock", "--no-webhooks", "--database", database, "--service-key", key
    ) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_tool("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


# --- the service's API, as a client uses it ----------------------------------------------------


@dataclass
class Api:
    base: str

    def service(self) -> tuple[messages.Service, int]:
        body = httpx.get(f"{self.base}/v1/service").json()
        return messages.Service.from_json(body["service"]), int(body["now"])

    def act(self, key: PrivateKey, vault: bytes, action: messages.Action) -> dict[str, Any]:
        service, now = self.service()
        message = messages.Message(vault, action, secrets.randbelow(2**64), now - 60, now + 3600)
        signed = messages.signed_to_json(messages.sign(service, message, key))
        response = httpx.post(f"{self.base}/v1/actions", json={"signed": signed})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def vault(self, vault: bytes) -> tuple[int, policy.VaultState]:
        body = httpx.get(f"{self.base}/v1/vaults/0x{vault.hex()}").json()
        return int(body["version"]), policy.vault_state_from_json(json.dumps(body["state"]).encode())

    def advance(self, seconds: int) -> int:
        response = httpx.post(f"{self.base}/v1/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text
        return int(response.json()["now"])


@dataclass
class Scene:
    """One vault: an Ed25519 owner, an Ed25519 guardian, an EIP-712 guardian (a wallet), and a
    guardian whose label is hostile; a family policy 2-of-3 with a 3-day recovery period."""

    api: Api
    vault: bytes
    owner: PrivateKey
    alice: PrivateKey
    wallet: PrivateKey
    mallory: PrivateKey
    request: bytes
    new_owner: PublicKey

    @property
    def url(self) -> str:
        return f"{self.api.base}/vaults/0x{self.vault.hex()}"


def make_scene(base: str, name: str) -> Scene:
    api = Api(base)
    owner = private_key(KeyKind.ED25519, f"{name}/owner")
    alice = private_key(KeyKind.ED25519, f"{name}/alice")
    wallet = private_key(KeyKind.EIP712, f"{name}/wallet")
    mallory = private_key(KeyKind.BIP340, f"{name}/mallory")
    members = (alice.public_key, wallet.public_key, mallory.public_key)
    config = VaultConfig(
        guardians=(
            Guardian(alice.public_key, 1, "Alice"),
            Guardian(wallet.public_key, 2, "Carol's wallet"),
            Guardian(mallory.public_key, 1, HOSTILE[:64]),
        ),
        policies=(Policy("family", members, 2, recovery_period=3 * DAY, expiry_window=7 * DAY),),
    )
    vault = secrets.token_bytes(32)
    api.act(owner, vault, messages.CreateVault(config))
    request = secrets.token_bytes(32)
    new_owner = PrivateKey.generate(KeyKind.ED25519).public_key
    api.act(alice, vault, messages.OpenRequest(request, new_owner, "family"))
    return Scene(api, vault, owner, alice, wallet, mallory, request, new_owner)


@pytest.fixture
def scene(server: str, request: pytest.FixtureRequest) -> Scene:
    return make_scene(server, request.node.name)


def typed_data_on(page: Page, verb: str, request: bytes) -> dict[str, Any]:
    """The typed data as the page shows it (what a guardian copies into a wallet)."""
    text = page.locator(f"#typed-{verb}-{request.hex()}").text_content()
    assert text
    return dict(json.loads(text))


def submit(page: Page, verb: str, request: bytes, signer: str, signature: str) -> str:
    panel = page.locator(f"#panel-{verb}-{request.hex()}")
    panel.locator("input[name=signer]").fill(signer)
    panel.locator("textarea[name=signature]").fill(signature)
    panel.locator("form button").click()
    result = panel.locator(".result")
    result.locator("xpath=self::*[contains(@class,'ok') or contains(@class,'error')]").wait_for(
        timeout=10_000
    )
    return result.text_content() or ""


def mark_of(page: Page, key: PublicKey) -> str:
    return page.locator(f'tr.approval[data-key="{key.text}"]').text_content() or ""


def countdown_seconds(page: Page, request: bytes) -> int:
    value = page.locator(f"#request-{request.hex()} .countdown").get_attribute("data-seconds")
    assert value is not None
    return int(value)


# --- the tests ----------------------------------------------------------------------------------


def test_the_page_shows_the_vault_and_a_countdown_that_runs_on_the_service_clock(
    scene: Scene, page: Page
) -> None:
    dialogs: list[Dialog] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    response = page.goto(scene.url)
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'nonce-" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp

    assert page.locator("#owner").text_content() == scene.owner.public_key.text
    rows = page.locator("tr.guardian")
    assert rows.count() == 3
    wallet_row = page.locator(f'tr.guardian[data-key="{scene.wallet.public_key.text}"]')
    assert wallet_row.locator("td").all_text_contents()[:3] == ["Carol's wallet", "eip712", "2"]
    # the hostile label is shown as the text it is, and nothing in it ran
    hostile_row = page.locator(f'tr.guardian[data-key="{scene.mallory.public_key.text}"]')
    assert hostile_row.locator("td.label").text_content() == HOSTILE[:64]
    assert page.evaluate("window.pwned") is None and not dialogs
    assert page.locator("main script, main img").count() == 0

    card = page.locator(f"#request-{scene.request.hex()}")
    assert card.get_attribute("data-status") == "pending"
    assert "✓ approved" in mark_of(page, scene.alice.public_key)
    assert "pending" in mark_of(page, scene.wallet.public_key)
    assert card.locator(".tally").text_content() == "1 of 2 approvals"
    first = countdown_seconds(page, scene.request)
    assert 7 * DAY - 120 < first <= 7 * DAY  # the request expires 7 days after it opened
    page.wait_for_timeout(2100)
    assert countdown_seconds(page, scene.request) < first  # it runs

    # the countdown follows the service's clock, not the browser's
    scene.api.advance(DAY)
    page.reload()
    assert 6 * DAY - 120 < countdown_seconds(page, scene.request) <= 6 * DAY

    # the CLI command names this vault and request
    cli = page.locator(f"#panel-approve-{scene.request.hex()} pre.cli").text_content() or ""
    assert cli.split() == [
        "lifeboat",
        "recovery",
        "approve",
        "0x" + scene.vault.hex(),
        "0x" + scene.request.hex(),
        "--new-owner",
        scene.new_owner.text,
        "--key",
        "KEYFILE",
        "--service",
        scene.api.base,
    ]


def test_a_wallet_signature_pasted_into_the_page_approves_and_a_forged_one_changes_nothing(
    scene: Scene, page: Page
) -> None:
    page.goto(scene.url)
    _, now = scene.api.service()
    typed = typed_data_on(page, "approve", scene.request)
    assert typed["primaryType"] == "Approve"
    message = typed["message"]
    assert message["request"] == "0x" + scene.request.hex() and message["policy"] == "family"
    assert abs(message["notBefore"] - (now - 60)) <= 5 and abs(message["expiry"] - (now + 3600)) <= 5
    assert typed_data_on(page, "veto", scene.request)["message"]["nonce"] != message["nonce"]  # fresh

    # forged: signed by a key that is not the one named as signer
    version_before, _ = scene.api.vault(scene.vault)
    stranger = PrivateKey.generate(KeyKind.EIP712)
    forged = Account.sign_typed_data(stranger.secret, full_message=typed).signature.hex()
    address = Account.from_key(scene.wallet.secret).address  # EIP-55 mixed case, as a wallet shows it
    shown = submit(page, "approve", scene.request, address, forged)
    assert shown.startswith("Refused: ") and "does not verify" in shown
    version_after, state = scene.api.vault(scene.vault)
    assert version_after == version_before and len(state.requests[0].approvals) == 1

    # the wallet's own signature approves; written with v = 0/1 (as some wallets do), the page
    # turns it into the 27/28 the format wants
    signed = bytes(Account.sign_typed_data(scene.wallet.secret, full_message=typed).signature)
    signature = "0x" + (signed[:64] + bytes([signed[64] - 27])).hex()
    shown = submit(page, "approve", scene.request, address, signature)
    assert shown.startswith("Accepted"), shown
    assert "request_approved" in shown

    page.reload()
    card = page.locator(f"#request-{scene.request.hex()}")
    assert card.get_attribute("data-status") == "approved"
    assert "✓ approved" in mark_of(page, scene.wallet.public_key)
    assert card.locator(".tally").text_content() == "2 of 2 approvals"
    assert 3 * DAY - 120 < countdown_seconds(page, scene.request) <= 3 * DAY  # executable in 3 days
    _, state = scene.api.vault(scene.vault)
    assert state.requests[0].status is policy.Status.APPROVED


def test_the_owner_vetoes_from_the_page_with_an_ed25519_signature(scene: Scene, page: Page) -> None:
    page.goto(scene.url)
    typed = typed_data_on(page, "veto", scene.request)
    service = messages.Service.from_json({k: typed["domain"][k] for k in ("chainId", "verifyingContract")})
    message = messages.message_from_json(typed["primaryType"], typed["message"])
    signature = scene.owner.sign(messages.digest(service, message))
    shown = submit(page, "veto", scene.request, scene.owner.public_key.text, signature.hex())
    assert shown.startswith("Accepted") and "owner_veto" in shown
    page.reload()
    card = page.locator(f"#request-{scene.request.hex()}")
    assert card.get_attribute("data-status") == "cancelled"
    assert "owner_veto" in (card.locator(".outcome").text_content() or "")
    assert card.locator(".panel").count() == 0  # no panels for a closed request


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_screenshot_of_the_page_shows_its_regions(scene: Scene, page: Page) -> None:
    page.goto(scene.url)
    shot = page.screenshot()
    assert png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"])
    # decode the PNG in the browser (a canvas), away from the page's CSP, and look at its pixels
    blank = page.context.new_page()
    pixels = blank.evaluate(
        """async (b64) => {
            const img = new Image();
            img.src = "data:image/png;base64," + b64;
            await img.decode();
            const canvas = document.createElement("canvas");
            canvas.width = img.width; canvas.height = img.height;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0);
            const data = ctx.getImageData(0, 0, img.width, img.height).data;
            const colours = new Set();
            for (let i = 0; i < data.length; i += 16) colours.add((data[i] << 16) | (data[i+1] << 8) | data[i+2]);
            const at = (x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
            return {colours: colours.size, header: at(5, 5), page: at(3, 200)};
        }""",
        base64.b64encode(shot).decode(),
    )
    blank.close()
    assert pixels["colours"] >= 20, pixels  # text, badges, borders: far from blank
    assert pixels["header"] == [0x14, 0x30, 0x4F]  # the dark header bar
    assert pixels["page"] == [0xF5, 0xF6, 0xF8]  # the page background
    # and the regions that matter carry the right text
    assert page.locator("h1").first.text_content() == f"Vault 0x{scene.vault.hex()}"
    assert [h.strip() for h in page.locator("section.card > h2").all_text_contents()[:3]] == [
        "Overview",
        "Guardians",
        "Policies",
    ]
    badge = page.locator(f"#request-{scene.request.hex()} .badge")
    assert badge.text_content() == "pending" and badge.is_visible()


# --- without a browser: escaping and headers, over plain HTTP ---------------------------------


def test_hostile_text_is_escaped_in_the_html_itself(scene: Scene) -> None:
    response = httpx.get(scene.url)
    assert response.status_code == 200
    text = response.text
    nonce = re.search(r"script-src 'nonce-([^']+)'", response.headers["content-security-policy"])
    assert nonce is not None
    assert html.escape(HOSTILE[:64], quote=True) in text
    assert text.count("<script") == 1 and f'<script nonce="{nonce.group(1)}">' in text
    assert "onerror=" not in text.replace("onerror=&quot;", "")


def test_unknown_and_malformed_vault_ids_are_pages_not_errors(server: str) -> None:
    missing = httpx.get(f"{server}/vaults/0x{'ab' * 32}")
    assert missing.status_code == 404 and "has no vault" in missing.text
    bad = httpx.get(f"{server}/vaults/<b>x")
    assert bad.status_code == 404 and "<b>x" not in bad.text and "&lt;b&gt;x" in bad.text
    index = httpx.get(f"{server}/")
    assert index.status_code == 200 and "Lifeboat Recovery" in index.text and 'action="/vaults"' in index.text
