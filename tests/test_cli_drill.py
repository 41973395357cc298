"""``lifeboat drill`` end to end, as README command 1 runs it: every path, real components, a small
ledger; the HTML report rendered in headless Chromium; the same seed drills the same world.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from conftest_tools import require_tool
from lifeboat.drill.report import render_html
from lifeboat.drill.run import run_drill
from lifeboat.drill.timeline import PathName, Phase
from test_drill_run import stand_ins

ACCOUNTS = 2000
VIEWPORT = {"width": 1200, "height": 900}
#: Step facts that depend on the seed only (not on fresh keys or repository ids).
SEEDED_FACTS = {
    ("storage", "catastrophe"): "stores",
    ("signers", "catastrophe"): "lost",
    ("state", "catastrophe"): "victim",
}


def drill(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = dict(os.environ, LIFEBOAT_HOME=str(tmp_path / "home"))
    done = subprocess.run(
        [sys.executable, "-m", "lifeboat", "--json", "drill", "--workdir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    return done, json.loads(done.stdout)


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    tmp_path = tmp_path_factory.mktemp("drill")
    report = tmp_path / "report.html"
    done, document = drill(tmp_path, "--seed", "11", "--accounts", str(ACCOUNTS), "--report", str(report))
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return report, document, done.stdout + done.stderr


@pytest.mark.slow
def test_every_path_breaks_and_comes_back(drilled: tuple[Path, dict[str, Any], str]) -> None:
    _, document, _ = drilled
    assert document["verdict"] == "passed" and document["accounts"] == ACCOUNTS
    paths = {p["path"]: p for p in document["paths"]}
    assert set(paths) == {"keys", "signers", "state", "chain", "storage"}
    for path in paths.values():
        assert path["verdict"] == "passed", path
        assert path["rto_seconds"] > 0
        assert path["lost"] and path["recovered"] == path["lost"], path
    assert document["rpo_entries"] == 0 and paths["state"]["rpo_entries"] == 0
    phases = [(s["path"], s["phase"]) for s in document["steps"]]
    last_catastrophe = max(i for i, (_, phase) in enumerate(phases) if phase == "catastrophe")
    first_recovery = min(i for i, (_, phase) in enumerate(phases) if phase == "recover")
    assert last_catastrophe < first_recovery  # everything breaks at once, then recovery starts
    assert all(s["ok"] for s in document["steps"])
    assert document["sandbox"] is None


@pytest.mark.slow
def test_the_drill_leaves_nothing_behind_and_prints_no_secret(
    drilled: tuple[Path, dict[str, Any], str],
) -> None:
    report, _, output = drilled
    workdir = report.parent
    assert sorted(p.name for p in workdir.iterdir() if p.name != "home") == ["report.html"]
    for marker in ("AGE-SECRET-KEY-", "PRIVATE KEY", "mnemonic", "passphrase"):
        assert marker not in output


@pytest.mark.slow
def test_the_same_seed_drills_the_same_world(
    tmp_path: Path, drilled: tuple[Path, dict[str, Any], str]
) -> None:
    _, first, _ = drilled
    done, again = drill(tmp_path, "--seed", "11", "--accounts", str(ACCOUNTS))
    assert done.returncode == 0

    def seeded(document: dict[str, Any]) -> dict[tuple[str, str], Any]:
        found = {}
        for step in document["steps"]:
            key = (step["path"], step["phase"])
            if key in SEEDED_FACTS and SEEDED_FACTS[key] in step["facts"]:
                found[key] = step["facts"][SEEDED_FACTS[key]]
        return found

    assert seeded(first) == seeded(again) and len(seeded(first)) == len(SEEDED_FACTS)
    roots = [[s["facts"].get("root") for s in d["steps"] if s["path"] == "state"] for d in (first, again)]
    assert roots[0] == roots[1] and any(roots[0])


# --- the HTML report in a browser ---------------------------------------------------------------


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
    try:
        yield context.new_page()
    finally:
        context.close()


def pixels(page: Page, shot: bytes, points: dict[str, tuple[int, int]]) -> dict[str, list[int]]:
    """The colours at ``points`` of a PNG screenshot, decoded by the browser in a blank page."""
    blank = page.context.new_page()
    try:
        return dict(
            blank.evaluate(
                """async ([b64, points]) => {
                    const img = new Image();
                    img.src = "data:image/png;base64," + b64;
                    await img.decode();
                    const canvas = document.createElement("canvas");
                    canvas.width = img.width; canvas.height = img.height;
                    const ctx = canvas.getContext("2d");
                    ctx.drawImage(img, 0, 0);
                    const out = {};
                    for (const [name, [x, y]] of Object.entries(points))
                        out[name] = Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
                    return out;
                }""",
                [base64.b64encode(shot).decode(), points],
            )
        )
    finally:
        blank.close()


def box_centre(page: Page, selector: str) -> tuple[int, int]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return int(box["x"] + 6), int(box["y"] + box["height"] / 2)


@pytest.mark.slow
def test_the_report_shows_the_verdict_and_the_timeline(
    drilled: tuple[Path, dict[str, Any], str], page: Page
) -> None:
    report, document, _ = drilled
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    verdict = page.locator("#verdict")
    assert (verdict.text_content() or "").startswith("DRILL PASSED") and verdict.is_visible()
    assert page.locator("#paths tbody tr").count() == 5
    assert page.locator("#steps tbody tr").count() == len(document["steps"])
    timeline = page.locator("#timeline svg")
    assert timeline.is_visible()
    box = timeline.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 150
    page.locator("#timeline").scroll_into_view_if_needed()
    shot = page.screenshot(full_page=True)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
    page.evaluate("window.scrollTo(0, 0)")  # the box is measured in the viewport; the shot is the whole page
    seen = pixels(page, shot, {"verdict": box_centre(page, "#verdict")})
    assert seen["verdict"] == [0xDA, 0xFB, 0xE1]  # the green "passed" banner
    for label in ("keys", "signers", "state", "chain", "storage"):  # one timeline row per path
        assert page.locator("#timeline svg text", has_text=label).count() >= 1
    assert requests == [report.as_uri()]  # nothing else loaded: the page is self-contained


def test_a_failed_drill_report_is_red(tmp_path: Path, page: Page) -> None:
    failed = run_drill(seed=1, workdir=tmp_path, paths=stand_ins([], state=Phase.RECOVER))
    assert failed.path(PathName.STATE).verdict == "failed"
    report = tmp_path / "failed.html"
    report.write_text(render_html(failed))
    page.goto(report.as_uri())
    shot = page.screenshot()
    seen = pixels(page, shot, {"verdict": box_centre(page, "#verdict")})
    assert seen["verdict"] == [0xFF, 0xEB, 0xE9]  # the red "failed" banner
    assert "state did not recover" in (page.locator("#verdict").text_content() or "")
