"""Share cards: real SLIP-39 shares rendered to PDF, read back with poppler and zbar."""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image
from shamir_mnemonic import generate_mnemonics
from shamir_mnemonic.share import Share

from conftest_tools import require_tool
from lifeboat.errors import InputError, MnemonicError, StorageError
from lifeboat.secrets.cards import (
    PDF_TITLE,
    ShareCard,
    position_line,
    render_cards,
    threshold_rule,
    write_cards,
)
from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint

GROUPS = [(2, 3), (3, 5)]
SECRET_16 = bytes.fromhex("bb54aac4b89dc868ba37d9cc21b2cece")
SECRET_32 = bytes(range(100, 132))
SECRET_64 = bytes(range(64))
MM = 72 / 25.4  # points per millimetre


def make_cards(
    secret: bytes,
    group_threshold: int,
    groups: Sequence[tuple[int, int]],
    **extra: str,
) -> list[ShareCard]:
    """One card per share of a freshly generated SLIP-39 share set."""
    mnemonics = generate_mnemonics(group_threshold, list(groups), secret, b"", True, 0)
    fp = format_fingerprint(fingerprint(secret))
    cards = []
    for group_number, group in enumerate(mnemonics, start=1):
        for member_number, mnemonic in enumerate(group, start=1):
            share = Share.from_mnemonic(mnemonic)
            cards.append(
                ShareCard(
                    mnemonic=mnemonic,
                    share_set_id="set-4KQ7-2MZ9",
                    fingerprint=fp,
                    identifier=share.identifier,
                    group_index=group_number,
                    group_count=len(groups),
                    group_threshold=group_threshold,
                    member_index=member_number,
                    member_threshold=share.member_threshold,
                    member_count=groups[group_number - 1][1],
                    created="2026-03-14",
                    **extra,
                )
            )
    return cards


@pytest.fixture(scope="module")
def cards20() -> list[ShareCard]:
    return make_cards(SECRET_16, 2, GROUPS, label="Treasury admin key", guardian="Zoë Müller")


@pytest.fixture(scope="module")
def cards33() -> list[ShareCard]:
    return make_cards(SECRET_32, 2, GROUPS, label="Ops hot wallet")


@pytest.fixture(scope="module")
def cards59() -> list[ShareCard]:
    return make_cards(SECRET_64, 1, GROUPS, label="Cold storage", guardian="Ana Ibáñez")


def run(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{args[0]} failed ({done.returncode}): {done.stderr[-500:]}"
    return done.stdout


def pdf_pages_text(pdf: Path) -> list[str]:
    text = run(require_tool("pdftotext"), "-layout", str(pdf), "-")
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def words_on_page(page: str) -> list[str]:
    """The lowercase words of the word grid, in reading order."""
    grid = page.split("Recovery words", 1)[1].split("\n", 1)[1]
    grid = grid.split("Share set", 1)[0]
    return re.findall(r"\b[a-z]+\b", grid)


def write_pdf(tmp_path: Path, cards: Sequence[ShareCard], name: str, paper: str = "A4") -> Path:
    path = tmp_path / name
    path.write_bytes(render_cards(cards, paper=paper))
    return path


# --- rendering and reading back ------------------------------------------------------------


def test_pdftoppm_renders_one_page_per_card(tmp_path: Path, cards20: list[ShareCard]) -> None:
    pdftoppm = require_tool("pdftoppm")
    pdf = write_pdf(tmp_path, cards20, "cards.pdf")
    assert len(cards20) == 8
    run(pdftoppm, "-png", "-r", "40", str(pdf), str(tmp_path / "page"))
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == len(cards20)
    for png in pngs:
        assert png.stat().st_size > 5_000
        with Image.open(png) as image:
            grey = image.convert("L")
            dark = sum(grey.histogram()[:128])
            assert dark > 0.02 * grey.width * grey.height, f"{png.name} is nearly blank"


@pytest.mark.parametrize("fixture", ["cards20", "cards33", "cards59"])
def test_text_has_words_in_order_and_details(
    tmp_path: Path, request: pytest.FixtureRequest, fixture: str
) -> None:
    cards: list[ShareCard] = request.getfixturevalue(fixture)
    pages = pdf_pages_text(write_pdf(tmp_path, cards, "cards.pdf"))
    assert len(pages) == len(cards)
    for number, (card, page) in enumerate(zip(cards, pages, strict=True), start=1):
        assert words_on_page(page) == card.mnemonic.split()
        assert card.fingerprint in page
        assert card.share_set_id in page
        assert str(card.identifier) in page
        assert position_line(card) in page
        assert f"Group {card.group_index} of 2" in page
        assert "Lifeboat recovery share" in page
        assert "lifeboat shares recover" in page
        assert "shamir recover" in page
        assert "passphrase" in page
        assert f"Page {number} of {len(cards)}" in page
    assert "Group 1 of 2 · Share 2 of 3" in pages[1]
    assert "Group 2 of 2 · Share 5 of 5" in pages[-1]


@pytest.mark.parametrize("paper", ["A4", "letter"])
def test_59_words_fit_on_one_page(tmp_path: Path, cards59: list[ShareCard], paper: str) -> None:
    pdf = write_pdf(tmp_path, cards59[:2], "cards.pdf", paper)
    pages = pdf_pages_text(pdf)
    assert len(pages) == 2
    for card, page in zip(cards59[:2], pages, strict=True):
        assert len(card.mnemonic.split()) == 59
        assert words_on_page(page) == card.mnemonic.split()
        assert "SLIP-39 standard" in page  # the footer, so nothing spilled over


def _word_boxes(pdf: Path) -> tuple[float, float, list[tuple[float, float, float, float, str]]]:
    html = run(require_tool("pdftotext"), "-bbox", "-f", "1", "-l", "1", str(pdf), "-")
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)">', html)
    assert page is not None
    boxes = [
        (float(x0), float(y0), float(x1), float(y1), word)
        for x0, y0, x1, y1, word in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<',
            html,
        )
    ]
    return float(page.group(1)), float(page.group(2)), boxes


@pytest.mark.parametrize(("fixture", "paper"), [("cards20", "A4"), ("cards59", "letter")])
def test_text_stays_inside_margins_without_overlap(
    tmp_path: Path, request: pytest.FixtureRequest, fixture: str, paper: str
) -> None:
    cards: list[ShareCard] = request.getfixturevalue(fixture)
    width, height, boxes = _word_boxes(write_pdf(tmp_path, cards[:1], "card.pdf", paper))
    assert len(boxes) > 150
    margin = 8 * MM
    for x0, y0, x1, y1, word in boxes:
        assert margin <= x0 < x1 <= width - margin, word
        assert margin <= y0 < y1 <= height - margin, word
    shrink = 0.6  # poppler's boxes include the font's ascent and descent; allow a touch
    for i, (ax0, ay0, ax1, ay1, a) in enumerate(boxes):
        for bx0, by0, bx1, by1, b in boxes[i + 1 :]:
            overlap_x = min(ax1, bx1) - max(ax0, bx0)
            overlap_y = min(ay1, by1) - max(ay0, by0)
            assert overlap_x <= shrink or overlap_y <= shrink, f"{a!r} overlaps {b!r}"


@pytest.mark.parametrize("fixture", ["cards20", "cards33", "cards59"])
def test_qr_code_decodes_to_the_exact_mnemonic(
    tmp_path: Path, request: pytest.FixtureRequest, fixture: str
) -> None:
    pdftoppm = require_tool("pdftoppm")
    zbarimg = require_tool("zbarimg")
    card: ShareCard = request.getfixturevalue(fixture)[-1]
    pdf = write_pdf(tmp_path, [card], "card.pdf")
    run(pdftoppm, "-png", "-r", "150", "-singlefile", str(pdf), str(tmp_path / "page"))
    decoded = run(zbarimg, "--raw", "-q", str(tmp_path / "page.png"))
    assert decoded.rstrip("\n") == card.mnemonic


# --- the PDF itself --------------------------------------------------------------------------


def test_metadata_and_streams_do_not_leak_the_words(cards20: list[ShareCard]) -> None:
    data = render_cards(cards20[:2])
    assert data.startswith(b"%PDF-")
    assert f"/Title ({PDF_TITLE})".encode() in data
    assert b"/FlateDecode" in data
    for card in cards20[:2]:
        words = card.mnemonic.split()[4:]
        for word in words:
            assert f"({word})".encode() not in data
        # Single words can collide with PDF syntax ("true" is a SLIP-39 word); runs cannot.
        for i in range(len(words) - 1):
            assert " ".join(words[i : i + 2]).encode() not in data
    assert b"Treasury" not in data
    assert b"/Subject" not in data and b"/Keywords" not in data


def test_letter_paper_size(cards20: list[ShareCard]) -> None:
    assert b"/MediaBox [0 0 612.00 792.00]" in render_cards(cards20[:1], paper="letter")
    assert b"/MediaBox [0 0 595.28 841.89]" in render_cards(cards20[:1], paper="a4")


def test_write_cards_is_0600_and_refuses_existing(tmp_path: Path, cards20: list[ShareCard]) -> None:
    path = tmp_path / "cards.pdf"
    write_cards(cards20[:1], path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert first.startswith(b"%PDF-")

    with pytest.raises(StorageError, match="already exists"):
        write_cards(cards20[1:2], path)
    assert path.read_bytes() == first

    write_cards(cards20[1:3], path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.pdf"]  # no temp file left


def test_write_cards_writes_nothing_when_rendering_fails(tmp_path: Path) -> None:
    path = tmp_path / "cards.pdf"
    with pytest.raises(InputError):
        write_cards([], path)
    assert list(tmp_path.iterdir()) == []


def test_write_cards_missing_directory(tmp_path: Path, cards20: list[ShareCard]) -> None:
    with pytest.raises(StorageError):
        write_cards(cards20[:1], tmp_path / "absent" / "cards.pdf")


# --- validation ------------------------------------------------------------------------------


def test_empty_list_and_unknown_paper(cards20: list[ShareCard]) -> None:
    with pytest.raises(InputError, match="no share cards"):
        render_cards([])
    with pytest.raises(InputError, match="paper"):
        render_cards(cards20[:1], paper="A5")


def test_non_latin1_text_is_rejected(cards20: list[ShareCard]) -> None:
    with pytest.raises(InputError, match="Latin-1"):
        render_cards([dataclasses.replace(cards20[0], guardian="Zoë 王")])
    with pytest.raises(InputError, match="Latin-1"):
        render_cards([dataclasses.replace(cards20[0], label="Vault — key")])
    with pytest.raises(InputError, match="control character"):
        render_cards([dataclasses.replace(cards20[0], label="two\nlines")])


def test_decomposed_accents_are_normalised(tmp_path: Path, cards20: list[ShareCard]) -> None:
    card = dataclasses.replace(cards20[0], guardian="Zoe\u0308 Mu\u0308ller")  # NFD
    page = pdf_pages_text(write_pdf(tmp_path, [card], "card.pdf"))[0]
    assert "Kept by Zoë Müller" in page


def test_card_must_match_its_share(cards20: list[ShareCard]) -> None:
    card = cards20[0]
    wrong = [
        dataclasses.replace(card, group_index=2),
        dataclasses.replace(card, member_index=3),
        dataclasses.replace(card, member_threshold=3),
        dataclasses.replace(card, group_threshold=1),
        dataclasses.replace(card, identifier=(card.identifier + 1) % 2**15),
    ]
    for bad in wrong:
        with pytest.raises(InputError, match="do not match"):
            render_cards([bad])
    with pytest.raises(InputError, match="member index|cannot exist"):
        render_cards([dataclasses.replace(card, member_index=4)])
    with pytest.raises(InputError, match="member count"):
        render_cards([dataclasses.replace(card, member_count=1)])


def test_invalid_mnemonic_is_rejected_without_quoting_it(cards20: list[ShareCard]) -> None:
    words = cards20[0].mnemonic.split()
    swapped = [*words[:10], words[11], words[10], *words[12:]]
    if swapped == words:  # two equal neighbours: change one word instead
        swapped[10] = "academic" if words[10] != "academic" else "acid"
    for mnemonic, reason in [
        (" ".join(swapped), "checksum"),
        (" ".join([*words[:5], "bitcoin", *words[6:]]), "word 6"),
        (" ".join(words[:-1]), "invalid length"),
    ]:
        with pytest.raises(MnemonicError, match=reason) as info:
            render_cards([dataclasses.replace(cards20[0], mnemonic=mnemonic)])
        message = str(info.value)
        assert not any(f"{a} {b}" in message for a, b in itertools.pairwise(words))


def test_too_many_words(cards59: list[ShareCard]) -> None:
    mnemonic = cards59[0].mnemonic + " academic" * 2
    with pytest.raises(MnemonicError, match="at most"):
        render_cards([dataclasses.replace(cards59[0], mnemonic=mnemonic)])


def test_required_text_and_numbers(cards20: list[ShareCard]) -> None:
    with pytest.raises(InputError, match="fingerprint"):
        render_cards([dataclasses.replace(cards20[0], fingerprint="  ")])
    with pytest.raises(InputError, match="longer than"):
        render_cards([dataclasses.replace(cards20[0], label="x" * 65)])
    with pytest.raises(InputError, match="group count"):
        render_cards([dataclasses.replace(cards20[0], group_count=0)])
    with pytest.raises(InputError, match="identifier"):
        render_cards([dataclasses.replace(cards20[0], identifier=2**15)])


# --- wording ---------------------------------------------------------------------------------


def _card(**fields: int | None) -> ShareCard:
    base: dict[str, int | None] = {
        "identifier": 1,
        "group_index": 1,
        "group_count": 3,
        "group_threshold": 2,
        "member_index": 2,
        "member_threshold": 3,
        "member_count": 5,
    }
    base.update(fields)
    return ShareCard("", "id", "fp", **base)  # type: ignore[arg-type]


def _one_line(text: str) -> str:
    return text.replace("\n", " ")


def test_position_line() -> None:
    assert position_line(_card(group_count=2)) == "Group 1 of 2 · Share 2 of 5"
    assert position_line(_card(group_count=2, member_count=None)) == "Group 1 of 2 · Share 2"
    assert position_line(_card(group_count=1, group_threshold=1)) == "Share 2 of 5"


def test_threshold_rule_wording() -> None:
    assert _one_line(threshold_rule(_card())) == (
        "To recover, you need 2 of the 3 groups. From this group (Group 1), 3 of the 5 shares."
    )
    assert _one_line(threshold_rule(_card(member_count=None))) == (
        "To recover, you need 2 of the 3 groups. From this group (Group 1), 3 shares."
    )
    assert "any 1 of the 3 groups" in threshold_rule(_card(group_threshold=1))
    assert "both groups" in threshold_rule(_card(group_count=2))
    single = _one_line(threshold_rule(_card(group_count=1, group_threshold=1)))
    assert single == (
        "There is only one group, so no other group is needed. "
        "To recover, you need 3 of the 5 shares of this group."
    )
    lone = _card(group_count=1, group_threshold=1, member_index=1, member_threshold=1, member_count=1)
    assert "this one share" in threshold_rule(lone)


def test_single_share_set_warns_the_card_alone_is_enough(tmp_path: Path) -> None:
    (card,) = make_cards(SECRET_16, 1, [(1, 1)])
    page = pdf_pages_text(write_pdf(tmp_path, [card], "card.pdf"))[0]
    assert "Share 1 of 1" in page
    assert "There is only one group" in page
    assert "This share alone recovers the secret." in page
    assert "Alone it reveals nothing" not in page


def test_require_tool_fails_in_ci_and_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "lifeboat-no-such-tool-xyz"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_tool(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_tool(missing)
    assert os.path.isabs(require_tool("sh"))
