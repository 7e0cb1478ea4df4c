"""Pure, deterministic building blocks of the ``dedupe`` stage (no Beam here).

Everything is computed from the text alone with ``hashlib`` (blake2b, and a
SHAKE-256 table for token hashes), never with Python's salted ``hash()``, so
every worker process, run and runner computes the same fingerprints, MinHash
signatures, LSH bucket keys and winners.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import struct
import unicodedata
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np
import regex

from transforms.headlines import headline_key, strip_site_suffix

__all__ = [
    "MERSENNE_PRIME",
    "MAX_HASH",
    "Fingerprint",
    "normalize_body",
    "digest",
    "body_fingerprint",
    "headline_fingerprint",
    "shingles",
    "permutations",
    "minhash",
    "minhash_tokens",
    "minhash_text",
    "minhash_text_numpy",
    "packed_signatures",
    "token_hash",
    "token_hashes",
    "combine_shingles",
    "shingle_hashes",
    "pack_signature",
    "unpack_signature",
    "signature_similarity",
    "lsh_params",
    "band_digests",
    "band_digest_matrix",
    "band_hash_matrix",
    "band_keys",
    "published_sort_key",
    "rank_key",
    "classify",
    "UnionFind",
]

MERSENNE_PRIME = (1 << 61) - 1
MAX_HASH = (1 << 32) - 1

_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " ", "\u00ad": "", "\u200b": "",
})


_FOLD_PAIRS = tuple((chr(source), target) for source, target in _FOLD.items())
# Punctuation, symbols, separators and control/format/unassigned characters:
# the categories normalize_body turns into spaces.
_NOT_WORDLIKE = regex.compile(r"[\p{P}\p{S}\p{Z}\p{C}]+")
_ASCII_WORDLIKE = bytes(c if chr(c).isalnum() else 0x20 for c in range(128)) + bytes(range(128, 256))
# The same, with A-Z also lowercased (str.lower and casefold agree on ASCII).
_ASCII_WORDLIKE_LOWER = _ASCII_WORDLIKE.translate(bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                                                  b"abcdefghijklmnopqrstuvwxyz"))
_ASCII_BYTES = bytes(range(128))


def normalize_body(text: str) -> str:
    """The text that exact and near duplicates are compared on.

    NFKC; curly quotes, dashes and nbsp folded; casefolded; every
    punctuation, symbol, control and separator character becomes a space;
    whitespace collapsed. Digits are kept (a changed number is a change).

    >>> normalize_body("\u201cOil\u201d  falls\u00a0\u2014 2.5%!\\n")
    'oil falls 2 5'
    """
    folded = _nfkc(text)
    if folded.isascii():  # nothing to fold: every fold source is non-ASCII
        # Most news is ASCII once normalised: one bytes.translate maps
        # punctuation, symbols, controls and whitespace to spaces and A-Z to
        # a-z, as the Unicode-category regex and casefold do on ASCII.
        return _collapse_spaces(folded.encode("ascii").translate(_ASCII_WORDLIKE_LOWER)).decode("ascii")
    for source, target in _FOLD_PAIRS:  # str.replace scans in C; translate is per character
        if source in folded:
            folded = folded.replace(source, target)
    if folded.isascii():
        return _collapse_spaces(folded.encode("ascii").translate(_ASCII_WORDLIKE_LOWER)).decode("ascii")
    return _words_of_unicode(folded.casefold())


# Characters common in scraped news that are not NFKC-stable. Replacing a
# character with its own NFKC form does not change the NFKC form of the
# text around it (both are compatibility-equivalent, and NFKC is a function
# of that equivalence class), so they are replaced with a C-speed
# str.replace first and most texts then pass the cheap is_normalized check.
_NFKC_PREMAP = tuple(
    (ch, unicodedata.normalize("NFKC", ch)) for ch in (
        "\u00a0", "\u2026", "\u2122", "\u2009", "\u202f", "\u2002", "\u2003", "\u00b4", "\ufb01", "\ufb02")
    if unicodedata.normalize("NFKC", ch) != ch)


def _nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, skipping the work when the text is already normalised."""
    if text.isascii():
        return text
    for source, target in _NFKC_PREMAP:
        if source in text:
            text = text.replace(source, target)
    if unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)


def _collapse_spaces(data: bytes) -> bytes:
    """``b" ".join(data.split())`` for ASCII or UTF-8 bytes whose only ASCII
    whitespace is the space: runs of spaces become one, none at either end."""
    if len(data) < 256:
        return b" ".join(data.split())
    chars = np.frombuffer(data, dtype=np.uint8)
    keep = chars != 0x20  # a space stays only after a non-space
    keep[1:] |= chars[:-1] != 0x20
    return chars[keep].tobytes().rstrip(b" ")


def _words_of_unicode(text: str) -> str:
    """``" ".join(_NOT_WORDLIKE.sub(" ", text).split())`` for casefolded, folded non-ASCII text.

    When few non-ASCII characters occur, each distinct one is classified
    with ``_NOT_WORDLIKE`` and replaced with ``str.replace``; ASCII goes
    through ``bytes.translate``. Long non-Latin texts use the regex.
    """
    encoded = text.encode("utf-8", "surrogatepass")
    others = encoded.translate(None, _ASCII_BYTES)
    if len(others) * 4 > len(encoded):
        return " ".join(_NOT_WORDLIKE.sub(" ", text).split())
    replaced = 0
    for ch in set(others.decode("utf-8", "surrogatepass")):
        if _NOT_WORDLIKE.match(ch) is not None:
            replaced += 1
            if replaced > 24:  # many distinct separators: one regex pass is cheaper
                return " ".join(_NOT_WORDLIKE.sub(" ", text).split())
            text = text.replace(ch, " ")
        elif ch.isspace():  # whitespace the regex keeps: split() must decide
            return " ".join(_NOT_WORDLIKE.sub(" ", text).split())
    # Left: word-like non-ASCII characters (never whitespace), ASCII. Every
    # non-alphanumeric ASCII character is in _NOT_WORDLIKE's categories.
    data = text.encode("utf-8", "surrogatepass").translate(_ASCII_WORDLIKE)
    return _collapse_spaces(data).decode("utf-8", "surrogatepass")


def digest(*parts: str, size: int = 16) -> str:
    """Hex blake2b of the parts (NUL-separated; lone surrogates tolerated)."""
    # "\x00".join(parts) encodes to the parts' encodings joined by b"\x00":
    # one encode and one update instead of one per part.
    try:
        joined = parts[0] if len(parts) == 1 else "\x00".join(parts)
    except TypeError:  # a part that is not a str: fail as the per-part loop does
        joined = None
    if joined is None or type(joined) is not str:
        hasher = hashlib.blake2b(digest_size=size)
        for index, part in enumerate(parts):
            if index:
                hasher.update(b"\x00")
            hasher.update(part.encode("utf-8", "surrogatepass"))
        return hasher.hexdigest()
    return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def body_fingerprint(normalized: str) -> str:
    return digest(normalized)


def headline_fingerprint(title: str | None) -> str | None:
    """Hash of the headline key, site suffix (`` - Site``) dropped; None if no headline."""
    if not title:
        return None
    key = headline_key(strip_site_suffix(title) or title)
    return digest(key) if key else None


def shingles(tokens: Sequence[str], size: int) -> set[str]:
    """Word ``size``-grams; a text shorter than ``size`` is one shingle."""
    if len(tokens) <= size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + size]) for i in range(len(tokens) - size + 1)}


@functools.lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[tuple[int, int], ...]:
    """``num_perm`` (a, b) pairs of the hash family ``(a*x + b) mod p``, from blake2b."""
    pairs = []
    for index in range(num_perm):
        raw = hashlib.blake2b(f"newswash-minhash:{seed}:{index}".encode(), digest_size=16).digest()
        a = int.from_bytes(raw[:8], "little") % (MERSENNE_PRIME - 1) + 1
        b = int.from_bytes(raw[8:], "little") % MERSENNE_PRIME
        pairs.append((a, b))
    return tuple(pairs)


# Shingle hashes are combined modulo the Mersenne prime 2**31 - 1 (products
# of two values below it fit exactly in uint64). The signature's hash family
# is multiply-add-shift, ((a*x + b) mod 2**64) >> 32 with odd a: strongly
# universal for 32-bit x, and free of division, so it vectorises ~3.5x better
# than a modulus.
SIGNATURE_PRIME = (1 << 31) - 1


def _shingle_hash(shingle: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(shingle.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


@functools.lru_cache(maxsize=16)
def _permutation_arrays(perms: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([(pa & 0xFFFFFFFFFFFFFFFF) | 1 for pa, _ in perms], dtype=np.uint64)
    b = np.array([pb & 0xFFFFFFFFFFFFFFFF for _, pb in perms], dtype=np.uint64)
    return a[:, None], b[:, None]


_PRIME = np.uint64(SIGNATURE_PRIME)
_SHIFT = np.uint64(32)


# (perms, a, b) of the last call: permutations() returns one cached tuple, so
# an identity check saves hashing 2 x num_perm ints per signature.
_LAST_PERMUTATIONS: tuple = (object(), None, None)


def _permutation_columns(perms: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    global _LAST_PERMUTATIONS  # pylint: disable=global-statement
    last = _LAST_PERMUTATIONS
    if last[0] is perms:
        return last[1], last[2]
    a, b = _permutation_arrays(tuple(perms))
    if type(perms) is tuple:  # immutable (and hashable, or lru_cache raised): safe to recognise by identity
        _LAST_PERMUTATIONS = (perms, a, b)
    return a, b


def _minima_of_hashes(hashes: np.ndarray, perms: Sequence[tuple[int, int]]) -> np.ndarray:
    """The signature of shingle ``hashes`` as a ``uint64`` vector."""
    if not hashes.size:
        return np.full(len(perms), MAX_HASH, dtype=np.uint64)
    a, b = _permutation_columns(perms)
    # (a*x + b) mod 2**64 (wrapping is the hash family), then the row
    # minima, then >> 32: shifting is monotone, so the minimum of the
    # shifted values is the shifted minimum (one pass less over the matrix).
    values = np.multiply(a, hashes)
    np.add(values, b, out=values)
    minima = values.min(axis=1)
    minima >>= _SHIFT
    return minima


def _minhash_of_hashes(hashes: np.ndarray, perms: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    return tuple(_minima_of_hashes(hashes, perms).tolist())


def minhash(shingle_set: Iterable[str], perms: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """The MinHash signature (32-bit values) of a set of shingle strings."""
    hashes = np.fromiter((_shingle_hash(s) % SIGNATURE_PRIME for s in shingle_set), dtype=np.uint64)
    return _minhash_of_hashes(hashes, perms)


# Token hashes: simple tabulation hashing over each token's UTF-8 bytes,
# h(t) = (sum_j TABLE[min(j, 63)][t_j] mod 2**64) mod p, with TABLE a fixed
# 64 x 256 array of pseudo-random 64-bit words (SHAKE-256 of a constant, so
# every platform and process has the same one). Tabulation hashing is
# 3-independent, and unlike a per-token blake2b with a memo dictionary it
# runs over a whole text in a few numpy passes: no Python work per token and
# no memo that grows with the vocabulary. The space byte's column is zero,
# so the separator after a token adds nothing to that token's sum. Bytes
# beyond position 63 share the last row (such words are rare in prose).
TOKEN_TABLE_POSITIONS = 64
_TOKEN_TABLE = np.frombuffer(
    hashlib.shake_256(b"newswash token tabulation table v1").digest(TOKEN_TABLE_POSITIONS * 256 * 8),
    dtype="<u8").astype(np.uint64).reshape(TOKEN_TABLE_POSITIONS, 256)
_TOKEN_TABLE[:, 0x20] = 0
_TOKEN_TABLE.setflags(write=False)
_TOKEN_TABLE_FLAT = _TOKEN_TABLE.ravel()
_LAST_POSITION = TOKEN_TABLE_POSITIONS - 1
# Base of the polynomial that combines token hashes into a shingle hash.
_SHINGLE_BASE = np.uint64(1_000_003)


def token_hash(token: str) -> int:
    """The hash (below 2**31 - 1) of one token; :func:`token_hashes` computes
    the same for every word of a text at once."""
    total = 0
    for position, byte in enumerate(token.encode("utf-8", "surrogatepass")):
        total += int(_TOKEN_TABLE[min(position, _LAST_POSITION), byte])
    return (total & 0xFFFFFFFFFFFFFFFF) % SIGNATURE_PRIME


def token_hashes(normalized: str, max_tokens: int | None = None) -> np.ndarray:
    """:func:`token_hash` of each word of a :func:`normalize_body` text (words
    separated by single spaces, none at either end), of the first
    ``max_tokens`` words only when given; empty for an empty text."""
    if not normalized or (max_tokens is not None and max_tokens < 1):
        return np.empty(0, dtype=np.uint64)
    data = np.frombuffer(normalized.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    spaces = np.flatnonzero(data == 0x20)
    if max_tokens is not None and spaces.size >= max_tokens:
        data = data[:spaces[max_tokens - 1]]
        spaces = spaces[:max_tokens - 1]
    starts = np.empty(spaces.size + 1, dtype=np.intp)
    starts[0] = 0
    np.add(spaces, 1, out=starts[1:])
    # Each byte's position in its word, as a running sum of steps of one
    # that drops back to zero at each word start (the separating space gets
    # the word's length, and adds zero).
    position = np.ones(data.size, dtype=np.intp)
    position[0] = 0
    position[starts[1:]] = starts[:-1] - starts[1:] + 1
    np.cumsum(position, out=position)
    np.minimum(position, _LAST_POSITION, out=position)
    position <<= 8
    position += data
    sums = np.add.reduceat(_TOKEN_TABLE_FLAT.take(position), starts)
    sums %= _PRIME
    return sums


def _token_values(tokens: Sequence[str]) -> np.ndarray:
    if tokens and all(tokens) and not any(" " in token for token in tokens):
        return token_hashes(" ".join(tokens))
    # Empty tokens or tokens with spaces cannot be told apart once joined.
    return np.array([token_hash(token) for token in tokens], dtype=np.uint64)


def shingle_hashes(tokens: Sequence[str], size: int) -> np.ndarray:
    """Hashes (below 2**31) of the word ``size``-grams of ``tokens``.

    Each is the polynomial ``sum(h(t_i) * B**(size-1-i)) mod p`` of its
    tokens' :func:`token_hash`, so every token is hashed once however many
    shingles hold it. A text shorter than ``size`` is one shingle, as in
    :func:`shingles`.
    """
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    return combine_shingles(_token_values(tokens), size)


def combine_shingles(token_values: np.ndarray, size: int) -> np.ndarray:
    """The shingle hashes of :func:`shingle_hashes` from the tokens' hashes."""
    width = min(size, len(token_values))
    if width <= 1:
        return token_values
    count = len(token_values) - width + 1
    combined = token_values[:count] * _SHINGLE_BASE
    combined += token_values[1:1 + count]
    combined %= _PRIME
    for offset in range(2, width):
        combined *= _SHINGLE_BASE
        combined += token_values[offset:offset + count]
        combined %= _PRIME
    return combined


def minhash_tokens(tokens: Sequence[str], size: int, perms: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """The MinHash signature of the word ``size``-grams of ``tokens``."""
    return _minhash_of_hashes(shingle_hashes(tokens, size), perms)


def minhash_text(normalized: str, size: int, perms: Sequence[tuple[int, int]],
                 max_tokens: int | None = None) -> tuple[int, ...]:
    """:func:`minhash_tokens` of the words of a :func:`normalize_body` text
    (the first ``max_tokens`` of them when given), without splitting it.

    Computed by the compiled kernel of ``transforms/_minhash_kernel.py``
    when numba is importable, else with numpy; both give the same integers.
    """
    kernel = _signature_kernel()
    if kernel is None or not perms or size < 1 or (max_tokens is not None and max_tokens < 1):
        return minhash_text_numpy(normalized, size, perms, max_tokens)
    a, b = _permutation_vectors(perms)
    minima = np.empty(len(a), dtype=np.uint64)
    kernel(np.frombuffer(normalized.encode("utf-8", "surrogatepass"), dtype=np.uint8), _TOKEN_TABLE_FLAT, a, b,
           size, -1 if max_tokens is None else max_tokens, _PRIME, _SHINGLE_BASE, minima)
    minima >>= _SHIFT
    return tuple(minima.tolist())


def packed_signatures(normalized: Sequence[str], size: int, perms: Sequence[tuple[int, int]],
                      max_tokens: int | None = None) -> list[bytes]:
    """``pack_signature(minhash_text(text, ...))`` of each text, computed for
    all of them in one call of the compiled kernel (else text by text)."""
    kernels = _signature_kernels()
    if kernels is None or not perms or size < 1 or (max_tokens is not None and max_tokens < 1) or not normalized:
        return [_minima_of_hashes(combine_shingles(token_hashes(text, max_tokens), size), perms)
                .astype("<u4").tobytes() for text in normalized]
    encoded = [text.encode("utf-8", "surrogatepass") for text in normalized]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(data) for data in encoded], out=offsets[1:])
    a, b = _permutation_vectors(perms)
    minima = np.empty((len(encoded), len(a)), dtype=np.uint64)
    kernels.signature_minima_batch(
        np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets, _TOKEN_TABLE_FLAT, a, b,
        size, -1 if max_tokens is None else max_tokens, _PRIME, _SHINGLE_BASE, minima)
    minima >>= _SHIFT
    packed = minima.astype("<u4").tobytes()
    width = 4 * len(a)
    return [packed[start:start + width] for start in range(0, len(packed), width)]


def minhash_text_numpy(normalized: str, size: int, perms: Sequence[tuple[int, int]],
                       max_tokens: int | None = None) -> tuple[int, ...]:
    """:func:`minhash_text` with numpy only (the reference of the kernel)."""
    return _minhash_of_hashes(combine_shingles(token_hashes(normalized, max_tokens), size), perms)


# None until first use; then the kernel module, or False when numba cannot be used.
_KERNELS: Any = None


def _signature_kernels():
    """``transforms._minhash_kernel`` (imported on first use), or None without numba."""
    global _KERNELS  # pylint: disable=global-statement
    if _KERNELS is None:
        try:
            from transforms import _minhash_kernel  # pylint: disable=import-outside-toplevel
        except ImportError:  # numba missing or broken on this platform: numpy does the same
            _KERNELS = False
        else:
            _KERNELS = _minhash_kernel
    return _KERNELS or None


def _signature_kernel():
    kernels = _signature_kernels()
    return kernels.signature_minima if kernels is not None else None


def _permutation_vectors(perms: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) columns of :func:`_permutation_columns` as 1-D views (contiguous:
    the columns are views of contiguous vectors)."""
    a, b = _permutation_columns(perms)
    return a[:, 0], b[:, 0]


@functools.lru_cache(maxsize=64)
def _signature_struct(length: int) -> struct.Struct:
    return struct.Struct(f"<{length}I")


def pack_signature(signature: Sequence[int]) -> bytes:
    return _signature_struct(len(signature)).pack(*signature)


def unpack_signature(packed: bytes) -> tuple[int, ...]:
    return _signature_struct(len(packed) // 4).unpack(packed)


def signature_similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity: the share of equal MinHash values (4 decimals)."""
    if len(a) != len(b) or not a:
        return 0.0
    n = len(a) // 4
    if len(a) % 4:  # not a packed signature: struct raises, as it always did
        va, vb = struct.unpack(f"<{n}I", a), struct.unpack(f"<{n}I", b)
        return round(sum(1 for x, y in zip(va, vb) if x == y) / n, 4)
    equal = int(np.count_nonzero(np.frombuffer(a, dtype="<u4") == np.frombuffer(b, dtype="<u4")))
    return round(equal / n, 4)


def _integrate(function, lower: float, upper: float, steps: int = 100) -> float:
    width = (upper - lower) / steps
    return sum(function(lower + (i + 0.5) * width) for i in range(steps)) * width


@functools.lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising false positive +
    false negative probability mass around ``threshold`` (equal weights; the
    method of datasketch's ``_optimal_param``)."""
    best, best_error = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = _integrate(lambda s: 1 - (1 - s ** rows) ** bands, 0.0, threshold)
            fn = _integrate(lambda s: (1 - s ** rows) ** bands, threshold, 1.0)
            error = 0.5 * fp + 0.5 * fn
            if error < best_error - 1e-12:
                best, best_error = (bands, rows), error
    return best


BAND_DIGEST_BYTES = 16
# One 64-bit lane of a band digest per seed (the first digits of pi).
_BAND_SEEDS = np.array([0x243F6A8885A308D3, 0x13198A2E03707344], dtype=np.uint64)
_MIX_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection of 64-bit words), element-wise."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX_MULTIPLIERS[0]
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX_MULTIPLIERS[1]
    return h ^ (h >> np.uint64(31))


def _band_hashes_numpy(values: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """:func:`band_hash_matrix` with numpy only (the fallback of the kernel)."""
    count, length = values.shape
    out = np.empty((count, bands, len(_BAND_SEEDS)), dtype=np.uint64)
    for band in range(bands):
        for lane, seed in enumerate(_BAND_SEEDS):
            h = _mix64(np.full(count, seed ^ np.uint64(band), dtype=np.uint64))
            for k in range(band * rows, min(band * rows + rows, length)):
                h = _mix64(h ^ values[:, k])
            out[:, band, lane] = h
    return out


def band_hash_matrix(values: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """The LSH band hashes of signatures ``values`` (``count x num_perm``):
    ``out[i, band]`` holds two 64-bit lanes; lane ``l`` is
    ``h = mix(seed[l] ^ band)``, then ``h = mix(h ^ value)`` for each value
    of the band in order (``mix``: splitmix64's finaliser). Band ``b`` holds
    values ``b*rows`` to ``b*rows + rows - 1`` (fewer past the end).

    Not a cryptographic hash: two bands with one digest only make a
    candidate pair, which is then verified on the signatures.
    """
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if bands <= 0 or rows <= 0:
        return np.empty((values.shape[0], 0, len(_BAND_SEEDS)), dtype=np.uint64)
    kernels = _signature_kernels()
    if kernels is None:
        return _band_hashes_numpy(values, bands, rows)
    out = np.empty((values.shape[0], bands, len(_BAND_SEEDS)), dtype=np.uint64)
    kernels.band_hashes(values, bands, rows, _BAND_SEEDS, out)
    return out


def band_digest_matrix(packed: Sequence[bytes], bands: int, rows: int) -> np.ndarray:
    """``count x bands x 16`` bytes: the :func:`band_digests` of packed
    signatures of one length, all at once."""
    values = np.frombuffer(b"".join(packed), dtype="<u4").reshape(len(packed), -1)
    hashes = band_hash_matrix(values, bands, rows)
    return hashes.astype(">u8").view(np.uint8).reshape(len(packed), hashes.shape[1], BAND_DIGEST_BYTES)


def band_digests(packed: bytes, bands: int, rows: int) -> list[bytes]:
    """One 16-byte LSH bucket digest per band of a packed signature: the two
    lanes of :func:`band_hash_matrix`, big-endian (so equal values in two
    bands are two buckets: the band number is hashed in)."""
    if bands <= 0 or rows <= 0:
        return []
    if len(packed) % 4:
        raise struct.error("a packed signature is a whole number of 4-byte values")
    data = band_digest_matrix([packed], bands, rows)[0].tobytes()
    return [data[start:start + BAND_DIGEST_BYTES] for start in range(0, len(data), BAND_DIGEST_BYTES)]


def band_keys(signature: Sequence[int], bands: int, rows: int) -> list[str]:
    """One ``str`` bucket key per LSH band: the hex of its :func:`band_digests`."""
    if bands <= 0 or rows <= 0:
        return []
    return [band.hex() for band in band_digests(pack_signature(signature[:bands * rows]), bands, rows)]


def published_sort_key(published: str | None) -> tuple[int, str]:
    """Orders ``published`` values: earliest first, unparseable after, None last.

    Offsets are converted to UTC; a time without offset is taken as UTC; a
    date alone sorts before any time on that day.

    >>> published_sort_key("2017-07-16T15:18:15+02:00")
    (0, '2017-07-16T13:18:15')
    >>> published_sort_key(None)
    (2, '')
    """
    if published is None or not published.strip():
        return (2, "")
    text = published.strip()
    try:
        if len(text) == 10:
            return (0, datetime.date.fromisoformat(text).isoformat())
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return (1, published)
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        except OverflowError:  # "0001-01-01T00:00+00:01" is before year 1 in UTC
            return (1, published)
    return (0, moment.isoformat())


class Fingerprint(NamedTuple):
    """The small per-document record dedupe decides on (never the text).

    ``uid`` identifies one input record (hash of id, source, title,
    published, url and text), so records that share an ``id`` stay apart.
    """

    uid: str
    id: str
    source: str
    published_key: tuple[int, str]
    body_length: int
    body_hash: str
    headline_hash: str | None
    signature: bytes
    near: bool  # long enough to take part in near-duplicate detection


def rank_key(fp: Fingerprint) -> tuple:
    """The canonical copy of a cluster is the smallest rank: earliest
    ``published`` (None last), then longest body, then smallest id (then
    source and uid, so the order is total)."""
    return (fp.published_key, -fp.body_length, fp.id, fp.source, fp.uid)


def classify(duplicate: Fingerprint, canonical: Fingerprint) -> tuple[str, float]:
    """(reason, similarity) of a duplicate against its canonical document.

    exact_body: same normalised body, same or missing headline.
    same_body_edited_headline: same normalised body, both headlines present
      and different.
    same_headline_near_body: different bodies, same headline key.
    near_duplicate_body: anything else (joined by MinHash similarity, maybe
      through other copies: the similarity is always measured against the
      canonical document, so in a chain it may be below the threshold).
    """
    if duplicate.body_hash == canonical.body_hash:
        if duplicate.headline_hash and canonical.headline_hash and \
                duplicate.headline_hash != canonical.headline_hash:
            return "same_body_edited_headline", 1.0
        return "exact_body", 1.0
    similarity = signature_similarity(duplicate.signature, canonical.signature)
    if duplicate.headline_hash and duplicate.headline_hash == canonical.headline_hash:
        return "same_headline_near_body", similarity
    return "near_duplicate_body", similarity


class UnionFind:
    """Union-find whose representative is always the smallest member, so the
    components and their labels do not depend on the order of the unions."""

    def __init__(self, parent: dict[str, str] | None = None):
        self.parent: dict[str, str] = parent if parent is not None else {}

    def find(self, node: str) -> str:
        parent = self.parent
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while node != root:  # path compression
            parent[node], node = root, parent[node]
        parent.setdefault(root, root)
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra

    def merge(self, other: "UnionFind") -> None:
        for node, parent in list(other.parent.items()):
            self.union(node, parent)

    def roots(self) -> dict[str, str]:
        return {node: self.find(node) for node in list(self.parent)}
