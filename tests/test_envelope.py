"""Guardian envelopes: round trips, the stock age CLI both ways, and every way to break one."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
from pathlib import Path

import pyrage
import pytest

from conftest_tools import require_tool
from lifeboat.errors import EnvelopeError, InputError
from lifeboat.secrets import envelope, slip39

SHARE = slip39.split(bytes(range(16)), slip39.Scheme.parse("2of3"), iteration_exponent=0).shares()[1]
FINGERPRINT = "3f9a-1c2e-0a1b-2c3d-4e5f-6a7b-8c9d-aeb0"


def content() -> envelope.EnvelopeContent:
    return envelope.EnvelopeContent.for_share(
        SHARE, share_set="s-12345678", fingerprint=FINGERPRINT, guardian="alice", label="test"
    )


def version_1(item: envelope.EnvelopeContent) -> bytes:
    """The plaintext of a version 1 envelope, as Lifeboat wrote it: one JSON object."""
    body = {"format": "lifeboat-share-envelope", "version": 1, **dataclasses.asdict(item)}
    return json.dumps(body, indent=1, sort_keys=True).encode()


@pytest.fixture
def identity() -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.generate()


def test_round_trip(identity: pyrage.x25519.Identity) -> None:
    sealed = envelope.seal(content(), identity.to_public())
    assert sealed.startswith(envelope.ARMOR_BEGIN)
    opened = envelope.open_envelope(sealed, [identity])
    assert opened == content()
    assert opened.member_index == 2 and opened.group_index == 1


def test_nothing_identifying_outside_the_encryption(identity: pyrage.x25519.Identity) -> None:
    sealed = envelope.seal(content(), identity.to_public()).decode()
    for needle in ("s-12345678", FINGERPRINT[:9], "alice", *SHARE.split()[:4]):
        assert needle not in sealed


def test_wrong_identity(identity: pyrage.x25519.Identity) -> None:
    sealed = envelope.seal(content(), identity.to_public())
    with pytest.raises(EnvelopeError, match="none of the given identities opens it"):
        envelope.open_envelope(sealed, [pyrage.x25519.Identity.generate()])


def test_tampered_truncated_oversized(identity: pyrage.x25519.Identity) -> None:
    sealed = envelope.seal(content(), identity.to_public())
    lines = sealed.splitlines()
    # Flip a character in the last base64 line of the payload.
    body = bytearray(lines[-2])
    body[0] = ord("A") if body[0] != ord("A") else ord("B")
    tampered = b"\n".join([*lines[:-2], bytes(body), lines[-1]]) + b"\n"
    with pytest.raises(EnvelopeError):
        envelope.open_envelope(tampered, [identity])
    with pytest.raises(EnvelopeError):
        envelope.open_envelope(sealed[: len(sealed) // 2], [identity])
    with pytest.raises(EnvelopeError, match="far larger"):
        envelope.open_envelope(envelope.ARMOR_BEGIN + b"A" * envelope.MAX_ENVELOPE_BYTES, [identity])
    with pytest.raises(EnvelopeError, match="not an age file"):
        envelope.open_envelope(b"hello", [identity])
    with pytest.raises(EnvelopeError, match="give the guardian's identity"):
        envelope.open_envelope(sealed, [])


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        (b"not json", "not a Lifeboat share envelope"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b'{"format": "something-else"}', "not a Lifeboat share envelope"),
        (
            b'{"format": "lifeboat-share-envelope", "version": 99}',
            "version 99; this Lifeboat reads version 1",
        ),
        (b'{"format": "lifeboat-share-envelope", "version": 1, "share": 5}', "malformed"),
        (b'# {"format":"lifeboat-share-envelope","version":3}\n' + SHARE.encode(), "version 3"),
        (b'# {"format":"lifeboat-share-envelope","version":2', "not valid JSON"),
        (b'# {"format":"lifeboat-share-envelope","version":2}\n# no share\n', "one share line, this one 0"),
        (
            b'# {"format":"lifeboat-share-envelope","version":2}\n' + (SHARE + "\n").encode() * 2,
            "one share line, this one 2",
        ),
        (
            b'# {"fingerprint":"aaaa-bbbb","format":"lifeboat-share-envelope","version":2}\n'
            + SHARE.encode(),
            "malformed",
        ),
        (b'# {"format":"lifeboat-share-envelope","version":2}\nnot a share', "malformed"),
    ],
)
def test_foreign_plaintext(identity: pyrage.x25519.Identity, plaintext: bytes, reason: str) -> None:
    sealed = bytes(pyrage.encrypt(plaintext, [identity.to_public()], armored=True))
    with pytest.raises(EnvelopeError, match=reason):
        envelope.open_envelope(sealed, [identity])


def test_version_1_envelopes_still_open(identity: pyrage.x25519.Identity) -> None:
    sealed = bytes(pyrage.encrypt(version_1(content()), [identity.to_public()], armored=True))
    assert envelope.open_envelope(sealed, [identity]) == content()


def test_version_1_metadata_must_match_the_share(identity: pyrage.x25519.Identity) -> None:
    body = json.loads(version_1(content()))
    body["member_index"] = 3
    sealed = bytes(pyrage.encrypt(json.dumps(body).encode(), [identity.to_public()], armored=True))
    with pytest.raises(EnvelopeError, match="does not match the share"):
        envelope.open_envelope(sealed, [identity])


def test_recipient_and_identity_parsing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="starts with 'age1'"):
        envelope.parse_recipient("ssh-ed25519 AAAA")
    with pytest.raises(InputError, match="not a valid age recipient"):
        envelope.parse_recipient("age1qqqq")
    bad = tmp_path / "key.txt"
    bad.write_text("# comment\nnot-a-key\n")
    with pytest.raises(InputError, match="line 2: not an age X25519 identity"):
        envelope.load_identities(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(InputError, match="holds no age identity"):
        envelope.load_identities(empty)


@pytest.mark.interop
def test_stock_age_decrypts_our_envelope(tmp_path: Path) -> None:
    age = require_tool("age")
    keygen = require_tool("age-keygen")
    key = tmp_path / "alice.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    identity = envelope.load_identities(key)[0]
    path = tmp_path / "share.age"
    path.write_bytes(envelope.seal(content(), identity.to_public()))
    out = subprocess.run([age, "-d", "-i", str(key), str(path)], check=True, capture_output=True).stdout
    first, position, share = out.decode().splitlines()
    assert first.startswith("# ") and position.startswith("# ")
    body = json.loads(first[2:])
    assert body["format"] == "lifeboat-share-envelope" and body["version"] == 2
    assert body["share_set"] == "s-12345678" and body["fingerprint"] == FINGERPRINT
    assert "group 1 of 1 (1 groups needed), member 2 (2 needed from this group)" in position
    assert share == SHARE  # the bare mnemonic on its own line
    # The documented extraction: every line but the comments is the share.
    only = subprocess.run(["grep", "-v", "^#"], input=out, check=True, capture_output=True).stdout
    assert only.decode() == SHARE + "\n"


@pytest.mark.interop
def test_we_open_what_stock_age_encrypts(tmp_path: Path) -> None:
    age = require_tool("age")
    keygen = require_tool("age-keygen")
    key = tmp_path / "bob.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    identity = envelope.load_identities(key)[0]
    plain = tmp_path / "content.txt"
    for plaintext, armor in itertools.product((content().to_plaintext(), version_1(content())), (["-a"], [])):
        plain.write_bytes(plaintext)
        sealed = subprocess.run(
            [age, "-r", str(identity.to_public()), *armor, str(plain)], check=True, capture_output=True
        ).stdout
        assert envelope.open_envelope(sealed, [identity]) == content()


def test_leading_blank_lines_and_one_line_errors(identity: pyrage.x25519.Identity) -> None:
    sealed = envelope.seal(content(), identity.to_public())
    assert envelope.open_envelope(b"\n\n" + sealed, [identity]) == content()
    garbled = sealed.replace(
        b"-----BEGIN AGE ENCRYPTED FILE-----\n", b"-----BEGIN AGE ENCRYPTED FILE-----\n!!"
    )
    with pytest.raises(EnvelopeError) as caught:
        envelope.open_envelope(garbled, [identity])
    assert "\n" not in str(caught.value)
