"""BIP-39 mnemonics: generate, validate with the exact failing reason, derive the seed.

The word lists, entropy encoding and PBKDF2 seed derivation come from Trezor's ``mnemonic``
package (the BIP-39 reference). This module adds what a user needs on top: a validation that
says *why* a phrase is wrong (length, which word is unknown and what was probably meant, or a
bad checksum), explicit language handling, and NFKD normalisation of words and passphrase.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import hmac
import secrets as _random
import unicodedata
from dataclasses import dataclass
from functools import cache

from mnemonic import Mnemonic
from mnemonic.mnemonic import b58encode

from lifeboat.errors import MnemonicError, UsageError

WORD_COUNTS = (12, 15, 18, 21, 24)
LANGUAGES: tuple[str, ...] = tuple(sorted(Mnemonic.list_languages()))
DEFAULT_LANGUAGE = "english"
SEED_BYTES = 64
# Longest accepted phrase in characters: far above 24 of the longest words in any list.
MAX_PHRASE_CHARS = 1024


def _nfkd(text: str) -> str:
    return unicodedata.normalize("NFKD", text)


@cache
def _codec(language: str) -> Mnemonic:
    if language not in LANGUAGES:
        raise UsageError(f"unknown BIP-39 language {language!r}; choose one of {', '.join(LANGUAGES)}")
    return Mnemonic(language)


@cache
def wordlist(language: str) -> tuple[str, ...]:
    """The 2048 words of ``language``, NFKD-normalised."""
    return tuple(_nfkd(word) for word in _codec(language).wordlist)


@cache
def _index(language: str) -> dict[str, int]:
    return {word: i for i, word in enumerate(wordlist(language))}


def split_words(phrase: str) -> list[str]:
    """Split a phrase on any whitespace (including the ideographic space), NFKD-normalised."""
    if len(phrase) > MAX_PHRASE_CHARS:
        raise MnemonicError(f"the phrase is {len(phrase)} characters long; a BIP-39 phrase is far shorter")
    return _nfkd(phrase).lower().split()


def entropy_bytes_for(word_count: int) -> int:
    """Entropy length in bytes for a phrase of ``word_count`` words."""
    if word_count not in WORD_COUNTS:
        raise UsageError(f"a BIP-39 phrase has 12, 15, 18, 21 or 24 words, not {word_count}")
    return word_count * 11 * 32 // 33 // 8


def suggest(word: str, language: str, limit: int = 3) -> list[str]:
    """Words of ``language`` a mistyped ``word`` most likely meant."""
    words = wordlist(language)
    # BIP-39 lists are designed so that a word's first four letters identify it.
    by_prefix = [w for w in words if len(word) >= 4 and w.startswith(word[:4])]
    close = difflib.get_close_matches(word, words, n=limit, cutoff=0.6)
    ordered = list(dict.fromkeys(by_prefix + close))
    return ordered[:limit]


def _closest_language(words: list[str]) -> str:
    """The language holding most of ``words``, to name the odd ones out against."""
    best = max(LANGUAGES, key=lambda lang: sum(w in _index(lang) for w in words))
    if not any(w in _index(best) for w in words):
        raise MnemonicError("none of these words is in any BIP-39 word list; check the spelling")
    return best


@dataclass(frozen=True)
class Bip39Phrase:
    """A validated BIP-39 phrase."""

    words: tuple[str, ...]
    language: str
    entropy: bytes
    # Every word list the phrase is valid in, ``language`` first. Two Chinese lists share 1,275
    # characters at the same positions, so a phrase can be valid in both.
    languages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.languages:
            object.__setattr__(self, "languages", (self.language,))

    @property
    def phrase(self) -> str:
        return _codec(self.language).delimiter.join(self.words)


def _check(words: list[str], language: str) -> Bip39Phrase:
    index = _index(language)
    for position, word in enumerate(words, start=1):
        if word not in index:
            hints = suggest(word, language)
            hint = f"; did you mean {' or '.join(repr(h) for h in hints)}?" if hints else ""
            raise MnemonicError(f"word {position} {word!r} is not in the {language} word list{hint}")
    bits = "".join(format(index[w], "011b") for w in words)
    checksum_bits = len(bits) // 33
    entropy = int(bits[:-checksum_bits], 2).to_bytes(len(words) * 4 // 3, "big")
    expected = format(hashlib.sha256(entropy).digest()[0], "08b")[:checksum_bits]
    if bits[-checksum_bits:] != expected:
        raise MnemonicError(
            "bad checksum: every word is valid but the last word does not match the others; "
            "a word is probably wrong or out of order"
        )
    return Bip39Phrase(words=tuple(words), language=language, entropy=entropy)


def parse(phrase: str, language: str | None = None) -> Bip39Phrase:
    """Validate ``phrase``; raise :class:`MnemonicError` with the exact reason when it is wrong.

    Without ``language`` the phrase's language is the one whose list holds every word and whose
    checksum matches. A phrase valid in several lists (it happens between the two Chinese lists)
    is accepted: its seed depends only on its words, not on the list. ``languages`` names every
    list it is valid in; :func:`entropy_of` refuses it where the lists read different entropy.
    """
    words = split_words(phrase)
    if not words:
        raise MnemonicError("the phrase is empty")
    if len(words) not in WORD_COUNTS:
        raise MnemonicError(
            f"wrong length: {len(words)} words; a BIP-39 phrase has 12, 15, 18, 21 or 24 words"
        )
    if language is not None:
        return _check(words, language)
    holding = [lang for lang in LANGUAGES if all(w in _index(lang) for w in words)]
    if not holding:
        return _check(words, _closest_language(words))
    valid: list[Bip39Phrase] = []
    for lang in holding:
        try:
            valid.append(_check(words, lang))
        except MnemonicError:
            continue
    if not valid:
        return _check(words, holding[0])
    return dataclasses.replace(valid[0], languages=tuple(v.language for v in valid))


def entropy_of(phrase: Bip39Phrase) -> bytes:
    """The phrase's entropy, refused when the lists it is valid in give its words different values.

    The seed never depends on the list; the entropy does, unless the words sit at the same
    positions in every list the phrase is valid in (true of the two Chinese lists).
    """
    readings = {_check(list(phrase.words), language).entropy for language in phrase.languages}
    if len(readings) > 1:
        names = " and ".join(phrase.languages)
        raise MnemonicError(
            f"the phrase is valid in both {names}, which give it different entropy; name its language"
        )
    return phrase.entropy


def generate(word_count: int = 24, language: str = DEFAULT_LANGUAGE) -> Bip39Phrase:
    """A fresh phrase from the operating system's CSPRNG."""
    entropy = _random.token_bytes(entropy_bytes_for(word_count))
    return from_entropy(entropy, language)


def from_entropy(entropy: bytes, language: str = DEFAULT_LANGUAGE) -> Bip39Phrase:
    """Encode ``entropy`` (16, 20, 24, 28 or 32 bytes) as a phrase."""
    if len(entropy) not in (16, 20, 24, 28, 32):
        raise UsageError(f"BIP-39 entropy is 16, 20, 24, 28 or 32 bytes, not {len(entropy)}")
    phrase = _codec(language).to_mnemonic(entropy)
    return Bip39Phrase(words=tuple(split_words(phrase)), language=language, entropy=bytes(entropy))


def to_seed(phrase: Bip39Phrase, passphrase: str = "") -> bytes:
    """The 64-byte BIP-39 seed (PBKDF2-HMAC-SHA512, 2048 rounds, NFKD words and passphrase)."""
    return bytes(Mnemonic.to_seed(_nfkd(phrase.phrase), _nfkd(passphrase)))


def master_xprv(seed: bytes) -> str:
    """The BIP-32 master extended private key (mainnet ``xprv``) of a seed of 16 to 64 bytes.

    BIP-39 seeds are 64 bytes; a SLIP-39 master secret (16, 32 or 64 bytes) is used as the
    BIP-32 seed directly, which is how SLIP-39 wallets derive their keys.
    """
    if not 16 <= len(seed) <= 64:
        raise UsageError(f"a BIP-32 seed is 16 to 64 bytes, not {len(seed)}")
    digest = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    payload = b"\x04\x88\xad\xe4" + bytes(9) + digest[32:] + b"\x00" + digest[:32]
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return str(b58encode(payload + check))
