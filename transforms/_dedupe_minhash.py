"""Pure, deterministic building blocks of the ``dedupe`` stage (no Beam here).

Everything is computed from the text alone with ``hashlib.blake2b``, never
with Python's salted ``hash()``, so every worker process, run and runner
computes the same fingerprints, MinHash signatures, LSH bucket keys and
winners.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import struct
import unicodedata
from typing import Iterable, NamedTuple, Sequence

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
    "shingle_hashes",
    "pack_signature",
    "unpack_signature",
    "signature_similarity",
    "lsh_params",
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


def normalize_body(text: str) -> str:
    """The text that exact and near duplicates are compared on.

    NFKC; curly quotes, dashes and nbsp folded; casefolded; every
    punctuation, symbol, control and separator character becomes a space;
    whitespace collapsed. Digits are kept (a changed number is a change).

    >>> normalize_body("\u201cOil\u201d  falls\u00a0\u2014 2.5%!\\n")
    'oil falls 2 5'
    """
    folded = unicodedata.normalize("NFKC", text)
    for source, target in _FOLD_PAIRS:  # str.replace scans in C; translate is per character
        if source in folded:
            folded = folded.replace(source, target)
    if folded.isascii():
        # Most news is ASCII once folded: bytes.translate runs at memory speed
        # and gives what the Unicode-category regex gives on ASCII.
        return " ".join(folded.encode("ascii").translate(_ASCII_WORDLIKE).decode("ascii").lower().split())
    return " ".join(_NOT_WORDLIKE.sub(" ", folded.casefold()).split())


def digest(*parts: str, size: int = 16) -> str:
    """Hex blake2b of the parts (NUL-separated; lone surrogates tolerated)."""
    hasher = hashlib.blake2b(digest_size=size)
    for index, part in enumerate(parts):
        if index:
            hasher.update(b"\x00")
        hasher.update(part.encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()


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


def _minhash_of_hashes(hashes: np.ndarray, perms: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    if not hashes.size:
        return tuple(MAX_HASH for _ in perms)
    a, b = _permutation_arrays(tuple(perms))
    with np.errstate(over="ignore"):  # wrapping modulo 2**64 is the hash family
        values = (a * hashes[None, :] + b) >> _SHIFT
    return tuple(values.min(axis=1).tolist())


def minhash(shingle_set: Iterable[str], perms: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """The MinHash signature (32-bit values) of a set of shingle strings."""
    hashes = np.fromiter((_shingle_hash(s) % SIGNATURE_PRIME for s in shingle_set), dtype=np.uint64)
    return _minhash_of_hashes(hashes, perms)


# A token's hash depends only on the token, so it is memoised per process
# (news vocabularies are small); bounded so hostile input cannot grow it.
_TOKEN_HASHES: dict[str, int] = {}
_TOKEN_HASHES_MAX = 1 << 20
# Base of the polynomial that combines token hashes into a shingle hash.
_SHINGLE_BASE = np.uint64(1_000_003)


def _token_values(tokens: Sequence[str]) -> np.ndarray:
    cache = _TOKEN_HASHES
    missing = set(tokens).difference(cache)
    if missing:
        if len(cache) + len(missing) > _TOKEN_HASHES_MAX:
            cache.clear()
        for token in missing:
            cache[token] = _shingle_hash(token) % SIGNATURE_PRIME
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def shingle_hashes(tokens: Sequence[str], size: int) -> np.ndarray:
    """Hashes (below 2**31) of the word ``size``-grams of ``tokens``.

    Each is the polynomial ``sum(h(t_i) * B**(size-1-i)) mod p`` of its
    tokens' hashes, so every token is hashed once however many shingles hold
    it. A text shorter than ``size`` is one shingle, as in :func:`shingles`.
    """
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    token_values = _token_values(tokens)
    width = min(size, len(tokens))
    count = len(tokens) - width + 1
    combined = token_values[:count].copy()
    for offset in range(1, width):
        combined = (combined * _SHINGLE_BASE + token_values[offset:offset + count]) % _PRIME
    return combined


def minhash_tokens(tokens: Sequence[str], size: int, perms: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """The MinHash signature of the word ``size``-grams of ``tokens``."""
    return _minhash_of_hashes(shingle_hashes(tokens, size), perms)


def pack_signature(signature: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(signature)}I", *signature)


def unpack_signature(packed: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(packed) // 4}I", packed)


def signature_similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity: the share of equal MinHash values (4 decimals)."""
    if len(a) != len(b) or not a:
        return 0.0
    n = len(a) // 4
    va, vb = struct.unpack(f"<{n}I", a), struct.unpack(f"<{n}I", b)
    return round(sum(1 for x, y in zip(va, vb) if x == y) / n, 4)


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


def band_keys(signature: Sequence[int], bands: int, rows: int) -> list[str]:
    """One ``str`` bucket key per LSH band."""
    return [
        f"{band:03d}:" + hashlib.blake2b(
            pack_signature(signature[band * rows:(band + 1) * rows]), digest_size=8).hexdigest()
        for band in range(bands)
    ]


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
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
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
