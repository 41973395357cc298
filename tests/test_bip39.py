"""BIP-39: the 288 published vectors, exact failure reasons, and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from lifeboat.errors import MnemonicError
from lifeboat.secrets import bip39


def all_vectors() -> list[tuple[str, str, str, str, str]]:
    data = load_vectors("bip39/vectors.json")
    return [(lang, *entry) for lang, entries in data.items() for entry in entries]


def test_vector_count() -> None:
    assert len(all_vectors()) == 288


def test_published_vectors() -> None:
    for language, entropy, phrase, seed, xprv in all_vectors():
        made = bip39.from_entropy(bytes.fromhex(entropy), language)
        assert made.phrase == phrase
        parsed = bip39.parse(phrase, language)
        assert parsed.entropy.hex() == entropy
        derived = bip39.to_seed(parsed, "TREZOR")
        assert derived.hex() == seed
        assert bip39.master_xprv(derived) == xprv


def test_language_detected_and_ambiguous_phrases_accepted() -> None:
    ambiguous = 0
    for language, entropy, phrase, seed, _xprv in all_vectors():
        parsed = bip39.parse(phrase)
        assert language in parsed.languages and parsed.language == parsed.languages[0]
        # The seed is PBKDF2 over the words, whatever list they are read from.
        assert bip39.to_seed(parsed, "TREZOR").hex() == seed
        assert bip39.entropy_of(parsed).hex() == entropy
        if len(parsed.languages) > 1:
            # The two Chinese lists share characters at the same positions.
            assert set(parsed.languages) == {"chinese_simplified", "chinese_traditional"}
            ambiguous += 1
        else:
            assert parsed.language == language
    assert ambiguous > 0


def test_entropy_refused_when_the_lists_disagree() -> None:
    # 100 words are in both the english and the french list, at different positions. A 12-word
    # phrase of them has a 1 in 256 chance of passing both checksums: its seed is fine (it depends
    # on the words only), its entropy is not (it depends on the positions).
    import itertools

    words = sorted(set(bip39.wordlist("english")) & set(bip39.wordlist("french")))
    for combo in itertools.product(words[:4], repeat=12):
        try:
            parsed = bip39.parse(" ".join(combo))
        except MnemonicError:
            continue
        if len(parsed.languages) == 2:
            break
    else:
        pytest.fail("no phrase valid in both english and french found")
    assert set(parsed.languages) == {"english", "french"}
    assert len(bip39.to_seed(parsed)) == 64
    with pytest.raises(MnemonicError, match="different entropy; name its language"):
        bip39.entropy_of(parsed)
    assert bip39.entropy_of(bip39.parse(" ".join(combo), "french")) != bip39.entropy_of(
        bip39.parse(" ".join(combo), "english")
    )


ABANDON = "abandon " * 11


@pytest.mark.parametrize(
    ("phrase", "reason"),
    [
        (ABANDON + "abandon", "bad checksum"),
        (ABANDON + "abuot", "word 12 'abuot' is not in the english word list; did you mean 'about'"),
        ("abandon " * 10, "wrong length: 10 words"),
        ("", "the phrase is empty"),
        ("zzz " * 12, "none of these words is in any BIP-39 word list"),
        ("x" * 5000, "characters long"),
    ],
)
def test_exact_failure_reason(phrase: str, reason: str) -> None:
    with pytest.raises(MnemonicError, match=reason):
        bip39.parse(phrase)


def test_normalises_case_spacing_and_nfkd() -> None:
    phrase = "  ABANDON\tabandon  " + "abandon " * 9 + "about\n"
    assert bip39.parse(phrase).entropy == bytes(16)
    # Spanish words with accents typed in composed form (NFC) still validate.
    spanish = bip39.from_entropy(bytes(range(16)), "spanish")
    import unicodedata

    assert bip39.parse(unicodedata.normalize("NFC", spanish.phrase), "spanish").entropy == bytes(range(16))


def test_passphrase_is_nfkd_normalised() -> None:
    phrase = bip39.from_entropy(bytes(16))
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert bip39.to_seed(phrase, composed) == bip39.to_seed(phrase, decomposed)


@settings(max_examples=60, deadline=None)
@given(
    entropy=st.sampled_from([16, 20, 24, 28, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    language=st.sampled_from(bip39.LANGUAGES),
)
def test_entropy_round_trip(entropy: bytes, language: str) -> None:
    phrase = bip39.from_entropy(entropy, language)
    assert len(phrase.words) == len(entropy) * 3 // 4
    assert bip39.parse(phrase.phrase, language).entropy == entropy


@settings(max_examples=60, deadline=None)
@given(
    entropy=st.binary(min_size=16, max_size=16),
    position=st.integers(0, 11),
    replacement=st.integers(0, 2047),
)
def test_single_word_change_is_caught_or_valid(entropy: bytes, position: int, replacement: int) -> None:
    """Changing one word gives either a checksum error or a different valid phrase, never the same entropy."""
    words = list(bip39.from_entropy(entropy).words)
    new_word = bip39.wordlist("english")[replacement]
    if new_word == words[position]:
        return
    words[position] = new_word
    try:
        parsed = bip39.parse(" ".join(words), "english")
    except MnemonicError as exc:
        assert "checksum" in str(exc)
    else:
        assert parsed.entropy != entropy


def test_generate_uses_requested_size_and_language() -> None:
    for count in bip39.WORD_COUNTS:
        phrase = bip39.generate(count, "french")
        assert len(phrase.words) == count
        assert bip39.parse(phrase.phrase, "french").language == "french"
    with pytest.raises(Exception, match="12, 15, 18, 21 or 24"):
        bip39.generate(13)
