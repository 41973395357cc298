"""Guardian envelopes: round trips, the stock age CLI both ways, and every way to break one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyrage
import pytest

from conftest_tools import require_tool
from lifeboat.errors import EnvelopeError, InputError
from lifeboat.secrets import envelope, slip39

SHARE = slip39.split(bytes(range(16)), slip39.Scheme.parse("2of3"), iteration_exponent=0).shares()[1]


def content() -> envelope.EnvelopeContent:
    return envelope.EnvelopeContent.for_share(
        SHARE, share_set="s-12345678", fingerprint="aaaa-bbbb", guardian="alice", label="test"
    )


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
    for needle in ("s-12345678", "aaaa-bbbb", "alice", *SHARE.split()[:4]):
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
        (b"not json", "not valid JSON"),
        (b'{"format": "something-else"}', "not a Lifeboat share envelope"),
        (
            b'{"format": "lifeboat-share-envelope", "version": 99}',
            "version 99; this Lifeboat reads version 1",
        ),
        (b'{"format": "lifeboat-share-envelope", "version": 1, "share": 5}', "malformed"),
    ],
)
def test_foreign_plaintext(identity: pyrage.x25519.Identity, plaintext: bytes, reason: str) -> None:
    sealed = bytes(pyrage.encrypt(plaintext, [identity.to_public()], armored=True))
    with pytest.raises(EnvelopeError, match=reason):
        envelope.open_envelope(sealed, [identity])


def test_metadata_must_match_the_share(identity: pyrage.x25519.Identity) -> None:
    body = json.loads(content().to_json())
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
    body = json.loads(out)
    assert body["format"] == "lifeboat-share-envelope" and body["version"] == 1
    assert body["share"] == SHARE and body["share_set"] == "s-12345678"


@pytest.mark.interop
def test_we_open_what_stock_age_encrypts(tmp_path: Path) -> None:
    age = require_tool("age")
    keygen = require_tool("age-keygen")
    key = tmp_path / "bob.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    identity = envelope.load_identities(key)[0]
    plain = tmp_path / "content.json"
    plain.write_bytes(content().to_json())
    for armor in (["-a"], []):
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
