"""SLIP-39 share cards: one printable PDF page per share, for a guardian to keep on paper.

A card has to be usable in ten years by someone who has no Lifeboat software at all, so it
carries, besides the words, everything needed to understand and use it: where the share sits
in the set ("Group 1 of 2 · Share 2 of 5"), the threshold rules in plain words, the share-set
id, SLIP-39 identifier and fingerprint that tie the cards of one set together, a QR code of the
words, and short recovery instructions that name tools other than ours.

Fonts: only the PDF core fonts (Helvetica, Courier) are used, so nothing is embedded and every
PDF reader shows the same glyphs. SLIP-39 words are ASCII. Free text (label, guardian name,
share-set id, fingerprint, date) is normalised to NFC and must then be Latin-1 (ISO 8859-1),
the character set of the core fonts; anything else is rejected with :class:`InputError` rather
than transliterated, so a name is never printed differently from how it was typed.

Each card is also checked against its own mnemonic: the mnemonic must be a valid SLIP-39 share
and its identifier, group and member positions and thresholds must be the ones the card states,
so a card can never describe its words wrongly. Error messages never quote the words.

The PDF is compressed and its metadata carries only the title "Lifeboat share cards": neither
the words nor the labels appear in it.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos

from lifeboat.errors import InputError, MnemonicError
from lifeboat.fs import SECRET_MODE, atomic_writer
from lifeboat.secrets import slip39
from lifeboat.secrets.fingerprint import FINGERPRINT_CONTEXT

__all__ = ["PAPER_SIZES", "ShareCard", "render_cards", "write_cards"]

PDF_TITLE = "Lifeboat share cards"
SLIP39_URL = "https://github.com/satoshilabs/slips/blob/master/slip-0039.md"

#: Accepted paper names (case-insensitive) and their size in millimetres (portrait).
PAPER_SIZES: dict[str, tuple[float, float]] = {
    "a4": (210.0, 297.0),
    "letter": (215.9, 279.4),
}

MAX_WORDS = 60  # 4 columns of 15 rows; a 512-bit secret gives 59 words
MAX_FREE_TEXT = 64  # label, guardian, share-set id, fingerprint, date
MAX_SLIP39_INDEX = 16  # groups and members per group are 4-bit fields

# Layout: lengths in millimetres, font sizes in points.
_PT = 25.4 / 72  # one point in millimetres
_MARGIN_X = 15.0
_MARGIN_TOP = 13.0
_MARGIN_BOTTOM = 11.0
_SECTION_GAP = 4.0
_QR_SIZE = 46.0
_GRID_COLUMNS = 4
_WORDS_HEAD = 6.0  # the line above the words
_WORD_MAX_PT = 16.0
_WORD_MIN_PT = 12.0
_ROW_MAX = 1.7  # row height / font size, at most and at least
_ROW_MIN = 1.4
_DETAIL_ROW = 6.0
_HEAD_W = 23.0  # instruction headings
_INSTR_PT = 9.0
_INSTR_LINE = 4.2
_INSTR_GAP = 1.3
_MIN_FIT_SIZE = 6.0
_MIN_WRAP_SIZE = 9.0

_INK = (0, 0, 0)
_SOFT = (90, 90, 90)
_GREY = (125, 125, 125)
_RULE = (190, 190, 190)
_STRIPE = (242, 242, 242)
_WARN = (160, 0, 0)


@dataclass(frozen=True)
class ShareCard:
    """What one card shows. Positions (``group_index``, ``member_index``) are 1-based."""

    mnemonic: str  # the SLIP-39 share, words separated by single spaces
    share_set_id: str
    fingerprint: str
    identifier: int  # SLIP-39 identifier (15 bits)
    group_index: int  # 1-based
    group_count: int
    group_threshold: int  # number of groups needed
    member_index: int  # 1-based
    member_threshold: int
    member_count: int | None = None
    label: str | None = None
    guardian: str | None = None
    created: str | None = None  # ISO date text


# --------------------------------------------------------------------------------------------
# Validation


def _free_text(value: str | None, what: str, where: str, *, required: bool = False) -> str | None:
    """NFC-normalise ``value`` and check it prints with the core fonts on one line."""
    if value is None:
        if required:
            raise InputError(f"{where}: the {what} is missing")
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: the {what} must be text")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        if required:
            raise InputError(f"{where}: the {what} is empty")
        return None
    if len(text) > MAX_FREE_TEXT:
        raise InputError(f"{where}: the {what} is longer than {MAX_FREE_TEXT} characters; shorten it")
    for char in text:
        if unicodedata.category(char).startswith("C"):
            raise InputError(f"{where}: the {what} contains a control character")
        if ord(char) > 0xFF:
            raise InputError(
                f"{where}: the {what} contains {char!r} (U+{ord(char):04X}), which the PDF "
                "core fonts cannot print; use Latin-1 characters only (no transliteration)"
            )
    return text


def _count_ok(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_numbers(card: ShareCard, where: str) -> None:
    if not _count_ok(card.identifier, 0, 2**15 - 1):
        raise InputError(f"{where}: the SLIP-39 identifier must be an integer 0..32767")
    if not _count_ok(card.group_count, 1, MAX_SLIP39_INDEX):
        raise InputError(f"{where}: the group count must be 1..{MAX_SLIP39_INDEX}")
    if not _count_ok(card.group_threshold, 1, card.group_count):
        raise InputError(f"{where}: the group threshold must be 1..{card.group_count}")
    if not _count_ok(card.group_index, 1, card.group_count):
        raise InputError(f"{where}: the group index must be 1..{card.group_count}")
    if not _count_ok(card.member_threshold, 1, MAX_SLIP39_INDEX):
        raise InputError(f"{where}: the member threshold must be 1..{MAX_SLIP39_INDEX}")
    if not _count_ok(card.member_index, 1, MAX_SLIP39_INDEX):
        raise InputError(f"{where}: the share (member) index must be 1..{MAX_SLIP39_INDEX}")
    if card.member_count is not None:
        if not _count_ok(card.member_count, card.member_threshold, MAX_SLIP39_INDEX):
            raise InputError(
                f"{where}: the member count must be {card.member_threshold}..{MAX_SLIP39_INDEX}"
                " (at least the member threshold)"
            )
        if card.member_index > card.member_count:
            raise InputError(
                f"{where}: share {card.member_index} cannot exist in a group of {card.member_count} shares"
            )


def _check_mnemonic(card: ShareCard, where: str) -> list[str]:
    """Return the canonical words of the card's share, checked against the card's numbers."""
    if not isinstance(card.mnemonic, str):
        raise MnemonicError(f"{where}: the mnemonic must be text")
    words = card.mnemonic.lower().split()
    if not words:
        raise MnemonicError(f"{where}: the mnemonic is empty")
    if len(words) > MAX_WORDS:
        raise MnemonicError(f"{where}: the mnemonic has {len(words)} words; a card holds at most {MAX_WORDS}")
    share = slip39.decode(card.mnemonic, where)

    mismatches = [
        name
        for name, stated, actual in (
            ("identifier", card.identifier, share.identifier),
            ("group index", card.group_index, share.group_index + 1),
            ("group count", card.group_count, share.group_count),
            ("group threshold", card.group_threshold, share.group_threshold),
            ("share (member) index", card.member_index, share.index + 1),
            ("member threshold", card.member_threshold, share.member_threshold),
        )
        if stated != actual
    ]
    if mismatches:
        raise InputError(
            f"{where}: the card's {', '.join(mismatches)} do not match its SLIP-39 share; "
            "refusing to print a card that misdescribes its words"
        )
    return words


@dataclass(frozen=True)
class _Checked:
    card: ShareCard
    words: list[str]
    share_set_id: str
    fingerprint: str
    label: str | None
    guardian: str | None
    created: str | None


def _check(card: ShareCard, number: int) -> _Checked:
    where = f"card {number}"
    if not isinstance(card, ShareCard):
        raise InputError(f"{where}: expected a ShareCard, got {type(card).__name__}")
    _check_numbers(card, where)
    words = _check_mnemonic(card, where)
    share_set_id = _free_text(card.share_set_id, "share-set id", where, required=True)
    fingerprint = _free_text(card.fingerprint, "fingerprint", where, required=True)
    assert share_set_id is not None and fingerprint is not None
    return _Checked(
        card=card,
        words=words,
        share_set_id=share_set_id,
        fingerprint=fingerprint,
        label=_free_text(card.label, "label", where),
        guardian=_free_text(card.guardian, "guardian name", where),
        created=_free_text(card.created, "creation date", where),
    )


# --------------------------------------------------------------------------------------------
# Wording


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def position_line(card: ShareCard) -> str:
    """The large position line: ``Group 1 of 2 · Share 2 of 5`` (``Share 2`` if count unknown).

    With a single group the group part is left out: ``Share 2 of 5``.
    """
    share = f"Share {card.member_index}"
    if card.member_count is not None:
        share += f" of {card.member_count}"
    if card.group_count == 1:
        return share
    return f"Group {card.group_index} of {card.group_count} · {share}"


def _k_of_n(needed: int, total: int, noun: str) -> str:
    """``2 of the 3 groups``, ``both groups``, ``all 3 shares``, ``any 1 of the 2 groups``."""
    if needed == total:
        return f"both {noun}s" if total == 2 else f"all {total} {noun}s"
    if needed == 1:
        return f"any 1 of the {total} {noun}s"
    return f"{needed} of the {total} {noun}s"


def threshold_rule(card: ShareCard) -> str:
    """The recovery rule in plain words, one sentence per line.

    ``To recover, you need 2 of the 3 groups.`` / ``From this group (Group 1), 3 of the 5
    shares.``; with a single group it says so instead of counting groups.
    """
    if card.member_count == 1 and card.member_threshold == 1:
        members = "this one share"
    elif card.member_count is None:
        members = _plural(card.member_threshold, "share")
    else:
        members = _k_of_n(card.member_threshold, card.member_count, "share")
    if card.group_count == 1:
        return (
            "There is only one group, so no other group is needed.\n"
            f"To recover, you need {members} of this group."
        )
    return (
        f"To recover, you need {_k_of_n(card.group_threshold, card.group_count, 'group')}.\n"
        f"From this group (Group {card.group_index}), {members}."
    )


def _alone_is_enough(card: ShareCard) -> bool:
    return card.group_threshold == 1 and card.member_threshold == 1


def _instructions(card: ShareCard) -> list[tuple[str, str]]:
    """(heading, paragraph) pairs of the plain-language instructions."""
    if _alone_is_enough(card):
        what = (
            "One share of a secret split with SLIP-39 (Shamir's Secret Sharing). WARNING: with "
            "the rule at the top, this share alone is enough to rebuild the secret. Guard it "
            "exactly as you would guard the secret itself."
        )
    else:
        what = (
            "One piece (a share) of a secret split with SLIP-39 (Shamir's Secret Sharing). "
            "Alone it reveals nothing about the secret: only enough shares together, as the "
            "rule at the top says, can rebuild it. Other people hold the other shares."
        )
    return [
        ("What this is", what),
        (
            "Keep it safe",
            "Keep this paper in a safe, dry place. Never photograph or scan it, and never type "
            "its words into a website, an e-mail, a chat or a cloud document: nobody honest "
            "will ask you to. Scan the QR code only with an offline device you trust.",
        ),
        (
            "To recover",
            "Gather enough shares of this set (every card shows the same share set and "
            "SLIP-39 id) and enter the words of each, in order, on an offline device: with "
            "'lifeboat shares recover', or with any SLIP-39 tool, such as a Trezor hardware "
            "wallet or Trezor's 'shamir recover' command (Python package shamir-mnemonic). "
            "SLIP-39 is an open standard: no Lifeboat software is required.",
        ),
        (
            "Passphrase",
            "If a passphrase was set when the secret was split, it is needed too. A wrong or "
            "missing passphrase gives no error: it silently yields a different secret.",
        ),
        (
            "Verify",
            "After recovery, check that the fingerprint of the recovered secret is the one "
            "printed above. 'lifeboat shares recover' checks it for you; by hand, it is BLAKE3 "
            f'in derive-key mode with context "{FINGERPRINT_CONTEXT}" over the secret, first '
            "16 bytes, in hex. If it differs, a share or the passphrase is wrong.",
        ),
    ]


# --------------------------------------------------------------------------------------------
# Drawing


def _qr_png(text: str) -> io.BytesIO:
    """A QR code of ``text`` (error correction M or better) as a PNG, 10 px per module.

    The quiet zone is left out of the image; the page around it is blank instead.
    """
    qr = segno.make(text, error="m", boost_error=True, micro=False)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=10, border=0)
    buffer.seek(0)
    return buffer


def _fit_size(pdf: FPDF, text: str, family: str, style: str, size: float, width: float) -> float:
    """Set and return the largest font size <= ``size`` (down to 6 pt) where ``text`` fits."""
    while True:
        pdf.set_font(family, style, size)
        if size <= _MIN_FIT_SIZE or pdf.get_string_width(text) <= width:
            return size
        size -= 0.5


def _text_block(pdf: FPDF, text: str, size: float, width: float) -> None:
    """Helvetica ``text`` on one line, shrunk down to 9 pt if need be, else wrapped at 9 pt."""
    size = _fit_size(pdf, text, "Helvetica", "", size, width)
    size = max(size, _MIN_WRAP_SIZE)
    pdf.set_font("Helvetica", "", size)
    pdf.multi_cell(width, size * _PT * 1.3, text, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


class _CardPDF(FPDF):
    def __init__(self, paper: tuple[float, float]) -> None:
        super().__init__(orientation="P", unit="mm", format=paper)
        self.set_margins(_MARGIN_X, _MARGIN_TOP, _MARGIN_X)
        self.set_auto_page_break(False)
        self.set_compression(True)
        self.set_title(PDF_TITLE)
        self.set_creator("Lifeboat")
        self.c_margin = 0

    @property
    def content_width(self) -> float:
        return float(self.w - 2 * _MARGIN_X)

    def ink(self, rgb: tuple[int, int, int]) -> None:
        self.set_text_color(*rgb)

    def hline(self, y: float) -> None:
        self.set_draw_color(*_RULE)
        self.set_line_width(0.3)
        self.line(_MARGIN_X, y, self.w - _MARGIN_X, y)


def _draw_header(pdf: _CardPDF, item: _Checked) -> float:
    """Title, label, position line, rule, guardian and QR code. Returns the y below them."""
    card = item.card
    top = _MARGIN_TOP
    left_w = pdf.content_width - _QR_SIZE - 8.0
    qr_x = pdf.w - _MARGIN_X - _QR_SIZE

    pdf.set_xy(_MARGIN_X, top)
    pdf.ink(_SOFT)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(left_w, 6, "Lifeboat recovery share", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if item.label:
        pdf.ink(_INK)
        _text_block(pdf, item.label, 15, left_w)

    pdf.ln(2)
    position = position_line(card)
    pdf.ink(_INK)
    _fit_size(pdf, position, "Helvetica", "B", 26, left_w)
    pdf.cell(left_w, 11, position, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2.5)

    pdf.set_font("Helvetica", "", 11.5)
    pdf.multi_cell(left_w, 5.5, threshold_rule(card), align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if _alone_is_enough(card):
        pdf.ink(_WARN)
        pdf.set_font("Helvetica", "B", 11.5)
        pdf.cell(left_w, 5.5, "This share alone recovers the secret.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if item.guardian:
        pdf.ln(1.5)
        pdf.ink(_SOFT)
        _text_block(pdf, f"Kept by {item.guardian}", 11, left_w)
    text_bottom = pdf.get_y()

    pdf.image(
        _qr_png(" ".join(item.words)),
        x=qr_x,
        y=top,
        w=_QR_SIZE,
        h=_QR_SIZE,
        alt_text="QR code of the recovery words",
    )
    pdf.set_xy(qr_x - 4, top + _QR_SIZE + 2.5)
    pdf.ink(_GREY)
    pdf.set_font("Helvetica", "", 7.5)
    pdf.multi_cell(
        _QR_SIZE + 8,
        3.3,
        f"QR code: the same {len(item.words)} words as text.\nScan it only with an offline device.",
        align=Align.C,
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    return max(text_bottom, pdf.get_y()) + 3.0


def _grid_rows(count: int) -> int:
    return -(-count // _GRID_COLUMNS)


def _draw_words(pdf: _CardPDF, words: Sequence[str], top: float, room: float) -> float | None:
    """The numbered words, row by row in 4 columns, striped, in at most ``room`` mm.

    Returns the y below, or None when they cannot be drawn large enough in ``room``.
    """
    rows = _grid_rows(len(words))
    row_h = min(_WORD_MAX_PT * _PT * _ROW_MAX, (room - _WORDS_HEAD) / rows)
    size = min(_WORD_MAX_PT, row_h / (_PT * _ROW_MIN))
    if size < _WORD_MIN_PT:
        return None
    col_w = pdf.content_width / _GRID_COLUMNS
    num_w = 8.5
    gap = 2.5

    pdf.set_xy(_MARGIN_X, top)
    pdf.ink(_SOFT)
    pdf.set_font("Helvetica", "B", 9.5)
    pdf.cell(
        pdf.content_width, 5, f"Recovery words ({len(words)}), read across each row: 1, 2, 3, 4, then 5, 6..."
    )
    grid_top = top + _WORDS_HEAD

    pdf.set_fill_color(*_STRIPE)
    for row in range(0, rows, 2):
        pdf.rect(_MARGIN_X, grid_top + row * row_h, pdf.content_width, row_h, style="F")
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.3)
    pdf.rect(_MARGIN_X, grid_top, pdf.content_width, rows * row_h)

    for number, word in enumerate(words, start=1):
        row, column = divmod(number - 1, _GRID_COLUMNS)
        x = _MARGIN_X + column * col_w
        # Number and word share one baseline, a little below the middle of the row.
        baseline = grid_top + (row + 0.5) * row_h + 0.3 * size * _PT
        label = f"{number}."
        pdf.ink(_GREY)
        pdf.set_font("Helvetica", "", 8.5)
        pdf.text(x + num_w - pdf.get_string_width(label), baseline, label)
        pdf.ink(_INK)
        pdf.set_font("Courier", "B", size)
        pdf.text(x + num_w + gap, baseline, word)
    return grid_top + rows * row_h


def _details_rows(item: _Checked) -> list[tuple[tuple[str, str, str], tuple[str, str, str]]]:
    """Two columns of (key, value, font family): ids on the left, the rest on the right."""
    created = ("Created", item.created, "Helvetica") if item.created else ("", "", "Helvetica")
    return [
        (("Share set", item.share_set_id, "Courier"), ("SLIP-39 id", str(item.card.identifier), "Courier")),
        (("Fingerprint", item.fingerprint, "Courier"), created),
    ]


def _draw_details(pdf: _CardPDF, item: _Checked, top: float) -> float:
    """Share-set id, fingerprint, SLIP-39 identifier, date. Returns the y below them."""
    key_w = (22.0, 20.0)
    col_w = (pdf.content_width - 52.0, 52.0)
    pdf.set_y(top)
    for pair in _details_rows(item):
        x = _MARGIN_X
        y = pdf.get_y()
        for column, (key, value, family) in enumerate(pair):
            pdf.set_xy(x, y)
            pdf.ink(_GREY)
            pdf.set_font("Helvetica", "", 9)
            pdf.cell(key_w[column], _DETAIL_ROW, key)
            pdf.ink(_INK)
            _fit_size(pdf, value, family, "B", 11, col_w[column] - key_w[column] - 2.0)
            pdf.cell(col_w[column] - key_w[column], _DETAIL_ROW, value)
            x += col_w[column]
        pdf.set_xy(_MARGIN_X, y + _DETAIL_ROW)
    return pdf.get_y()


def _instructions_height(pdf: _CardPDF, card: ShareCard) -> float:
    """The height :func:`_draw_instructions` will take, measured without drawing."""
    body_w = pdf.content_width - _HEAD_W
    pdf.set_font("Helvetica", "", _INSTR_PT)
    total = 0.0
    for _heading, paragraph in _instructions(card):
        height = pdf.multi_cell(body_w, _INSTR_LINE, paragraph, dry_run=True, output=MethodReturnValue.HEIGHT)
        assert isinstance(height, float | int)
        total += height + _INSTR_GAP
    return total


def _draw_instructions(pdf: _CardPDF, card: ShareCard, top: float) -> float:
    """The plain-language instructions. Returns the y below them."""
    body_w = pdf.content_width - _HEAD_W
    pdf.set_y(top)
    for heading, paragraph in _instructions(card):
        y = pdf.get_y()
        pdf.set_x(_MARGIN_X)
        pdf.ink(_INK)
        pdf.set_font("Helvetica", "B", _INSTR_PT)
        pdf.cell(_HEAD_W, _INSTR_LINE, heading)
        pdf.set_xy(_MARGIN_X + _HEAD_W, y)
        pdf.set_font("Helvetica", "", _INSTR_PT)
        pdf.multi_cell(body_w, _INSTR_LINE, paragraph, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_y(pdf.get_y() + _INSTR_GAP)
    return pdf.get_y()


def _draw_footer(pdf: _CardPDF, number: int, total: int) -> float:
    """The footer line. Returns the y of its rule."""
    y = pdf.h - _MARGIN_BOTTOM - 4.0
    pdf.hline(y - 1.5)
    pdf.set_xy(_MARGIN_X, y)
    pdf.ink(_GREY)
    pdf.set_font("Helvetica", "", 7.5)
    pdf.cell(pdf.content_width * 0.75, 4, f"SLIP-39 standard: {SLIP39_URL}")
    pdf.cell(pdf.content_width * 0.25, 4, f"Page {number} of {total}", align=Align.R)
    return y - 1.5


def _draw_card(pdf: _CardPDF, item: _Checked, number: int, total: int) -> None:
    """One page. The words get whatever room the other parts leave, up to their largest size."""
    pdf.add_page()
    footer_rule = _draw_footer(pdf, number, total)
    y = _draw_header(pdf, item)
    below_words = (
        _SECTION_GAP
        + len(_details_rows(item)) * _DETAIL_ROW
        + _SECTION_GAP
        + _instructions_height(pdf, item.card)
        + _SECTION_GAP
    )
    bottom = _draw_words(pdf, item.words, y, footer_rule - below_words - y)
    if bottom is None:
        raise InputError(
            f"card {number}: the words do not fit on one page at a legible size on this "
            "paper; shorten the label or guardian name, or use A4"
        )
    y = _draw_details(pdf, item, bottom + _SECTION_GAP)
    pdf.hline(y + _SECTION_GAP / 2)
    _draw_instructions(pdf, item.card, y + _SECTION_GAP)


# --------------------------------------------------------------------------------------------
# API


def _paper(paper: str) -> tuple[float, float]:
    size = PAPER_SIZES.get(paper.strip().lower()) if isinstance(paper, str) else None
    if size is None:
        raise InputError(f"unknown paper size {paper!r}; choose one of: A4, letter")
    return size


def render_cards(cards: Sequence[ShareCard], *, paper: str = "A4") -> bytes:
    """Return a PDF with one page per card (pure: no I/O). ``paper`` is ``A4`` or ``letter``."""
    size = _paper(paper)
    if not cards:
        raise InputError("no share cards to print")
    checked = [_check(card, number) for number, card in enumerate(cards, start=1)]
    pdf = _CardPDF(size)
    for number, item in enumerate(checked, start=1):
        _draw_card(pdf, item, number, len(checked))
    return bytes(pdf.output())


def write_cards(
    cards: Sequence[ShareCard], path: Path, *, paper: str = "A4", overwrite: bool = False
) -> None:
    """Render the cards and write the PDF to ``path`` atomically, mode 0600 (it holds secrets).

    An existing ``path`` is refused unless ``overwrite``; nothing is written if rendering fails.
    """
    data = render_cards(cards, paper=paper)
    with atomic_writer(Path(path), mode=SECRET_MODE, overwrite=overwrite) as handle:
        handle.write(data)
