"""Regression tests of the fast paths in ``transforms/_dedupe_minhash.py``.

Fingerprints, MinHash signatures and LSH band keys decide which articles are
duplicates, so a faster implementation must return exactly what the
definition says. Two kinds of check:

* golden values: normalised bodies, digests and headline hashes computed
  with the previous (straightforward) implementation at commit 58f3931,
  BEFORE the fast paths were written, and pasted here (the short normalised
  strings were also checked by reading them);
* hypothesis: every fast path against a straightforward reference written
  below. Token hashes (tabulation hashing, since the session of 2026-11-24;
  they were a memoised blake2b per token before) and band digests are
  written out again here from their definition, with Python ints and
  ``hashlib`` only, so the numpy code is checked against an independent
  oracle.
"""

from __future__ import annotations

import hashlib
import struct
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import _dedupe_minhash as mh
from transforms._dedupe_minhash import (
    band_keys,
    digest,
    headline_fingerprint,
    minhash_tokens,
    normalize_body,
    pack_signature,
    permutations,
    published_sort_key,
    shingle_hashes,
    signature_similarity,
    unpack_signature,
)

# --------------------------------------------------------------------------
# Reference implementations: the previous code, unchanged
# --------------------------------------------------------------------------


def ref_normalize_body(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text)
    for source, target in mh._FOLD_PAIRS:
        if source in folded:
            folded = folded.replace(source, target)
    if folded.isascii():
        return " ".join(folded.encode("ascii").translate(mh._ASCII_WORDLIKE).decode("ascii").lower().split())
    return " ".join(mh._NOT_WORDLIKE.sub(" ", folded.casefold()).split())


def ref_digest(*parts: str, size: int = 16) -> str:
    hasher = hashlib.blake2b(digest_size=size)
    for index, part in enumerate(parts):
        if index:
            hasher.update(b"\x00")
        hasher.update(part.encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()


_TABLE_BYTES = hashlib.shake_256(b"newswash token tabulation table v1").digest(64 * 256 * 8)


def ref_token_hash(token: str) -> int:
    """sum of TABLE[min(j, 63)][byte j] mod 2**64, mod 2**31 - 1; the space byte's entries are 0."""
    total = 0
    for position, byte in enumerate(token.encode("utf-8", "surrogatepass")):
        if byte != 0x20:
            entry = (min(position, 63) * 256 + byte) * 8
            total += int.from_bytes(_TABLE_BYTES[entry:entry + 8], "little")
    return total % 2**64 % (2**31 - 1)


def ref_shingle_hashes(tokens, size):
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    values = np.array([ref_token_hash(t) for t in tokens], dtype=np.uint64)
    width = min(size, len(tokens))
    count = len(tokens) - width + 1
    combined = values[:count].copy()
    for offset in range(1, width):
        combined = (combined * np.uint64(1_000_003) + values[offset:offset + count]) % np.uint64(mh.SIGNATURE_PRIME)
    return combined


def ref_minhash_tokens(tokens, size, perms):
    hashes = ref_shingle_hashes(tokens, size)
    if not hashes.size:
        return tuple(mh.MAX_HASH for _ in perms)
    a = np.array([(pa & 0xFFFFFFFFFFFFFFFF) | 1 for pa, _ in perms], dtype=np.uint64)[:, None]
    b = np.array([pb & 0xFFFFFFFFFFFFFFFF for _, pb in perms], dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        values = (a * hashes[None, :] + b) >> np.uint64(32)
    return tuple(values.min(axis=1).tolist())


def ref_pack(signature) -> bytes:
    return struct.pack(f"<{len(signature)}I", *signature)


_MASK64 = (1 << 64) - 1


def ref_mix64(h: int) -> int:
    """splitmix64's finaliser, written from its definition with Python ints."""
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _MASK64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _MASK64
    return h ^ (h >> 31)


def ref_band_keys(signature, bands, rows):
    """Per band: two lanes h = mix(seed ^ band), h = mix(h ^ value) for each
    of the band's values; the key is both lanes' big-endian hex."""
    if rows <= 0:
        return []
    keys = []
    for band in range(bands):
        lanes = []
        for seed in (0x243F6A8885A308D3, 0x13198A2E03707344):
            h = ref_mix64(seed ^ band)
            for value in signature[band * rows:(band + 1) * rows]:
                h = ref_mix64(h ^ value)
            lanes.append(h.to_bytes(8, "big"))
        keys.append((lanes[0] + lanes[1]).hex())
    return keys


def ref_similarity(a: bytes, b: bytes) -> float:
    if len(a) != len(b) or not a:
        return 0.0
    n = len(a) // 4
    va, vb = struct.unpack(f"<{n}I", a), struct.unpack(f"<{n}I", b)
    return round(sum(1 for x, y in zip(va, vb) if x == y) / n, 4)


# --------------------------------------------------------------------------
# Golden values (computed by the previous implementation, before the change)
# --------------------------------------------------------------------------

GOLDEN_NORMALIZED = [
    ("\u201cOil\u201d  falls\u00a0\u2014 2.5%!\n", "oil falls 2 5"),
    ("\uff26\uff55\uff4c\uff4c\u00a0width \ufb01ne \u2122 \u2026 caf\u00e9 CAFE\u0301",
     "full width fine tm caf\u00e9 caf\u00e9"),
    ("Stra\u00dfe \u0130stanbul \u03a3\u039f\u03a3", "strasse i\u0307stanbul \u03c3\u03bf\u03c3"),
    ("\ud800 lone \x00 nul", "lone nul"),
    ("", ""),
    ("   \t\n", ""),
    ("\u0643\u062a\u0628 \u0627\u0644\u0645\u0631\u0627\u0633\u0644: "
     "\u0627\u0644\u0645\u0627\u0621\u060c \u0662\u0660\u0662\u0664",
     "\u0643\u062a\u0628 \u0627\u0644\u0645\u0631\u0627\u0633\u0644 "
     "\u0627\u0644\u0645\u0627\u0621 \u0662\u0660\u0662\u0664"),
]


@pytest.mark.parametrize("text, expected", GOLDEN_NORMALIZED)
def test_normalize_body_golden(text, expected):
    assert normalize_body(text) == expected


def test_digest_and_headline_golden():
    assert digest("abc") == "cf4ab791c62b8d2b2109c90275287816"
    assert digest("a", "b", size=8) == "ffc151170352baa3"
    assert digest("\ud800") == "b4fe3de0239399efbfffc79686f435f9"
    assert headline_fingerprint("Assad Ouster Fades Away | Press TV") == "965bba5aa8ae2a94fea8d5901c00ff38"
    assert headline_fingerprint("Assad Ouster Fades Away") == "965bba5aa8ae2a94fea8d5901c00ff38"


def test_minhash_tokens_edge_cases():
    tokens = "the quick brown fox jumps over the lazy dog".split()
    assert minhash_tokens(tokens, 2, permutations(8, 1)) == ref_minhash_tokens(tokens, 2, permutations(8, 1))
    assert minhash_tokens(["solo"], 3, permutations(4, 2)) == ref_minhash_tokens(["solo"], 3, permutations(4, 2))
    assert minhash_tokens([], 2, permutations(4, 2)) == (4294967295,) * 4
    assert minhash_tokens(["a", "b"], 2, ()) == () == ref_minhash_tokens(["a", "b"], 2, ())
    assert mh.token_hashes("").size == 0 and mh.minhash_text("", 2, permutations(4, 2)) == (4294967295,) * 4
    assert mh.token_hashes("a b", 0).size == 0 and mh.minhash_text("a b", 2, permutations(4, 2), 0) == (4294967295,) * 4


def _jaccard(a: str, b: str, size: int = 2) -> float:
    def grams(text):
        words = normalize_body(text).split()
        return {tuple(words[i:i + size]) for i in range(len(words) - size + 1)}
    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_fingerprint_and_band_keys_of_a_sample():
    from transforms.dedupe import DedupeConfig, bucket_keys, fingerprint
    from transforms.document import Document

    with open("samples/002_eurozone_inflation.txt", encoding="utf-8") as handle:
        text = handle.read()
    doc = Document(id="s2", text=text, title="Eurozone inflation", published="2017-07-16T15:18:15+02:00")
    config = DedupeConfig()
    fp = fingerprint(doc, config)
    # Golden (58f3931): the uid, body and headline hashes did not change with the token hashes.
    assert fp[:7] == ("2f12f72d916eaf58b7da484804511897", "s2", "", (0, "2017-07-16T13:18:15"), 1463,
                      "77c0aee9c1b873cfcd53dfe9c95c5c11", "4b38343b02e92dbce3a3c4403999a3f2")
    assert fp.near is True
    words = normalize_body(text).split()
    signature = ref_minhash_tokens(words, 2, permutations(128, 1))
    assert fp.signature == ref_pack(signature)
    bands, rows = config.band_rows
    assert bucket_keys(fp, config)[-bands:] == ["l:" + key for key in ref_band_keys(signature, bands, rows)]
    assert band_keys(unpack_signature(fp.signature), bands, rows) == ref_band_keys(signature, bands, rows)
    # The estimate tracks the true Jaccard similarity of the 2-gram sets
    # (128 permutations: standard error about 0.04 at these values).
    for edited_text in (text.replace("inflation", "prices", 2), text[:len(text) // 2] + " Extra words here.",
                        text[len(text) // 3:]):
        edited = fingerprint(Document(id="s2b", text=edited_text, title="Eurozone inflation"), config)
        assert abs(signature_similarity(fp.signature, edited.signature) - _jaccard(text, edited_text)) < 0.15


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab\u00e9\u4e2d\ud800x0"), min_size=1, max_size=90), max_size=40),
       st.one_of(st.none(), st.integers(1, 45)))
def test_token_hashes_match_reference(words, max_tokens):
    words = [word.replace(" ", "") or "x" for word in words]
    expected = [ref_token_hash(word) for word in words][:max_tokens]
    assert mh.token_hashes(" ".join(words), max_tokens).tolist() == expected
    assert [mh.token_hash(word) for word in words][:max_tokens] == expected


def test_token_hashes_of_long_words_share_the_last_row():
    # Bytes from position 63 on use the same table row: an order change
    # there is not seen (documented), one before it is.
    head = "y" * 63
    assert mh.token_hash(head + "ab") == mh.token_hash(head + "ba")
    assert mh.token_hash("x" * 61 + "ab") != mh.token_hash("x" * 61 + "ba")
    assert mh.token_hashes(head + "ab " + "word").tolist() == [ref_token_hash(head + "ab"), ref_token_hash("word")]


def test_signature_estimates_jaccard_without_bias():
    # Over many seeds, the mean estimate is the true Jaccard similarity.
    import random

    rng = random.Random(3)
    vocabulary = [f"w{i}" for i in range(500)]
    base = [rng.choice(vocabulary) for _ in range(300)]
    edited = base[:200] + [rng.choice(vocabulary) for _ in range(100)]
    truth = _jaccard(" ".join(base), " ".join(edited))
    estimates = [signature_similarity(ref_pack(minhash_tokens(base, 2, permutations(128, seed))),
                                      ref_pack(minhash_tokens(edited, 2, permutations(128, seed))))
                 for seed in range(1, 41)]
    assert abs(sum(estimates) / len(estimates) - truth) < 0.02


# --------------------------------------------------------------------------
# Fast paths against the references
# --------------------------------------------------------------------------

# Characters that exercise every branch: ASCII, fold sources, the NFKC
# pre-mapped characters, compatibility characters, combining marks (which
# compose with what precedes them), Hangul jamo, separators, controls,
# lone surrogates and astral characters.
_SPECIAL = (
    "aZ09 .,-'\"\t\n\r\x0b\x0c\x1c\x1f\x00\x7f"
    "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2013\u2014\u2212\u00a0\u00ad\u200b"
    "\u2026\u2122\u2009\u202f\u2002\u2003\u00b4\ufb01\ufb02"
    "\u00bd\u2460\u00b2\u2167\uff76\uff9e\uff21\u3000"
    "\u0301\u0308\u0327\u0323\u0345\u093c\u3099\u1100\u1161\u11a8\uac00"
    "\u00e9\u00c5\u212b\u00df\u1e9e\u0130\u0131\u03c2\u03a3\u01c5"
    "\u0085\u1680\u2028\u180e\u0378"
    "\ud800\udc00\ud83d\ude00\U0001f600\U0001d400\U000e0001"
    "\u00e2\u20ac\u2122\u009d"
    "\u0627\u0644\u060c\u0662\u4e2d\u6587\u3002"
)
_mixed_text = st.text(alphabet=st.sampled_from(_SPECIAL), max_size=400)
_any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)
_texts = st.one_of(_mixed_text, _any_text,
                   st.lists(_mixed_text, max_size=4).map(lambda parts: "The news of the day ".join(parts) * 3))


@settings(max_examples=600, deadline=None)
@given(_texts)
def test_normalize_body_matches_reference(text):
    assert normalize_body(text) == ref_normalize_body(text)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_nfkc_fast_path_matches_unicodedata(text):
    assert mh._nfkc(text) == unicodedata.normalize("NFKC", text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \u00e9\u4e2d"), max_size=700))
def test_collapse_spaces_matches_split_join(text):
    data = text.encode("utf-8")
    assert mh._collapse_spaces(data) == b" ".join(data.split())


@settings(max_examples=300, deadline=None)
@given(st.one_of(_mixed_text, _any_text))
def test_words_of_unicode_matches_regex(text):
    folded = text.casefold()
    assert mh._words_of_unicode(folded) == " ".join(mh._NOT_WORDLIKE.sub(" ", folded).split())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab\u00e9 \ud800"), max_size=4), max_size=40),
       st.integers(1, 4), st.sampled_from([(2, 1), (16, 3), (128, 1), (7, 9)]))
def test_minhash_tokens_matches_reference(tokens, size, perm_args):
    perms = permutations(*perm_args)
    assert np.array_equal(shingle_hashes(tokens, size), ref_shingle_hashes(tokens, size))
    signature = minhash_tokens(tokens, size, perms)
    assert signature == ref_minhash_tokens(tokens, size, perms)
    assert minhash_tokens(tokens, size, list(perms)) == signature  # a list of perms too
    assert pack_signature(signature) == ref_pack(signature)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=40), st.integers(1, 12), st.integers(1, 6), st.booleans())
def test_band_keys_and_packing_match_reference(values, bands, rows, via_unpack):
    signature = tuple(values)
    if via_unpack:  # as bucket_keys does: the tuple comes from unpack_signature
        signature = unpack_signature(ref_pack(signature))
    assert pack_signature(signature) == ref_pack(signature)
    assert band_keys(signature, bands, rows) == ref_band_keys(signature, bands, rows)
    assert band_keys(list(signature), bands, rows) == ref_band_keys(signature, bands, rows)


def test_band_keys_of_computed_signature_and_edge_cases():
    signature = minhash_tokens("a b c d e f g".split(), 2, permutations(128, 1))
    assert band_keys(signature, 25, 5) == ref_band_keys(signature, 25, 5)
    assert band_keys(signature, 0, 5) == [] and band_keys(signature, 3, 0) == ref_band_keys(signature, 3, 0)
    assert band_keys(np.array(signature, dtype=np.uint64), 4, 3) == ref_band_keys(signature, 4, 3)
    with pytest.raises(struct.error):
        band_keys((1, -1), 1, 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=0, max_size=20), st.lists(st.integers(0, 3), min_size=0, max_size=20))
def test_signature_similarity_matches_reference(a, b):
    pa, pb = ref_pack(a), ref_pack(b[:len(a)] + a[len(b):])
    assert signature_similarity(pa, pb) == ref_similarity(pa, pb)
    assert signature_similarity(pa, ref_pack(b)) == ref_similarity(pa, ref_pack(b))


def test_signature_similarity_rejects_ragged_bytes_as_before():
    with pytest.raises(struct.error):
        signature_similarity(b"abcde", b"abcdf")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_mixed_text, _any_text), max_size=6), st.sampled_from([8, 16]))
def test_digest_matches_reference(parts, size):
    assert digest(*parts, size=size) == ref_digest(*parts, size=size)


def test_digest_rejects_non_str_parts_as_before():
    with pytest.raises(AttributeError):
        digest("a", 1)
    with pytest.raises(AttributeError):
        digest(b"x")


def test_published_sort_key_unchanged():
    assert published_sort_key("2017-07-16T15:18:15+02:00") == (0, "2017-07-16T13:18:15")
    assert published_sort_key(None) == (2, "")


# --------------------------------------------------------------------------
# The compiled MinHash kernel (numba) against numpy and the reference
# --------------------------------------------------------------------------


def test_compiled_kernel_is_used_whenever_numba_imports():
    # numba is a dependency (except on Pythons it has no wheels for): where
    # it imports, the kernel must be used, not silently the 4x slower numpy.
    try:
        import numba  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        has_numba = False
    else:
        has_numba = True
    assert (mh._signature_kernel() is not None) == has_numba


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab\u00e9\u4e2d\ud800x0"), min_size=1, max_size=70), max_size=50),
       st.integers(1, 5), st.one_of(st.none(), st.integers(1, 60)),
       st.sampled_from([(2, 1), (16, 3), (128, 1), (7, 9)]))
def test_compiled_kernel_matches_numpy_and_reference(words, size, max_tokens, perm_args):
    words = [word.replace(" ", "") or "x" for word in words]
    text = " ".join(words)
    perms = permutations(*perm_args)
    expected = ref_minhash_tokens(words[:max_tokens], size, perms)
    assert mh.minhash_text_numpy(text, size, perms, max_tokens) == expected
    assert mh.minhash_text(text, size, perms, max_tokens) == expected
    assert pack_signature(mh.minhash_text(text, size, perms, max_tokens)) == ref_pack(expected)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.text(alphabet=st.sampled_from("ab\u00e9\u4e2d\ud800x0"), min_size=1, max_size=30),
                         max_size=40), max_size=12),
       st.integers(1, 5), st.one_of(st.none(), st.integers(1, 60)),
       st.sampled_from([(2, 1), (16, 3), (128, 1), (7, 9)]))
def test_batch_of_signatures_equals_each_text_alone(texts, size, max_tokens, perm_args):
    # One kernel call for a batch (texts of every length, empty ones too)
    # must give each text exactly its own packed signature.
    texts = [" ".join(word.replace(" ", "") or "x" for word in words) for words in texts]
    perms = permutations(*perm_args)
    expected = [ref_pack(ref_minhash_tokens(text.split()[:max_tokens], size, perms)) for text in texts]
    assert mh.packed_signatures(texts, size, perms, max_tokens) == expected


def test_without_numba_the_same_signatures(monkeypatch):
    with open("samples/002_eurozone_inflation.txt", encoding="utf-8") as handle:
        text = normalize_body(handle.read())
    perms = permutations(128, 1)
    compiled = mh.minhash_text(text, 2, perms, 20000)
    compiled_batch = mh.packed_signatures([text, "a b c", text[:500]], 2, perms, 20000)
    compiled_bands = [mh.band_digests(packed, 25, 5) for packed in compiled_batch]
    compiled_matrix = mh.band_digest_matrix(compiled_batch, 12, 7)
    monkeypatch.setattr(mh, "_KERNELS", False)  # as when numba cannot be imported
    assert mh._signature_kernel() is None
    assert mh.minhash_text(text, 2, perms, 20000) == compiled == mh.minhash_text(text, 2, perms, 20000)
    assert mh.packed_signatures([text, "a b c", text[:500]], 2, perms, 20000) == compiled_batch
    assert [mh.band_digests(packed, 25, 5) for packed in compiled_batch] == compiled_bands
    assert (mh.band_digest_matrix(compiled_batch, 12, 7) == compiled_matrix).all()
