"""The MinHash signature of a normalised text in one compiled pass (numba).

:func:`transforms._dedupe_minhash.minhash_text` computes a signature with
numpy in four passes over large temporaries: token hashes, shingle hashes,
then a ``num_perm x shingles`` matrix of 64-bit products (~600 KB for a
news article) and its row minima. This kernel walks the text's bytes once
and keeps only the running minima, so nothing but the bytes and a
``num_perm``-word accumulator is touched, and the compiler vectorises the
loop over permutations. It computes exactly the same integers (same table,
same polynomial, same ``(a*x + b) mod 2**64`` family); tests compare the two
on arbitrary texts.

Imported lazily: a process that never fingerprints a document does not pay
for importing numba, and a platform without numba falls back to numpy.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["signature_minima", "signature_minima_batch", "band_hashes"]


@numba.njit(cache=True, nogil=True)
def _fill_minima(data, begin, end, table, a, b, size, max_tokens, prime, base, minima, recent):  # pragma: no cover - compiled
    """The signature minima of the text in ``data[begin:end]`` (see
    :func:`signature_minima`); ``recent`` is scratch space of ``size`` words."""
    num_perm = a.shape[0]
    last_row = table.shape[0] // 256 - 1
    for index in range(num_perm):
        minima[index] = np.uint64(0xFFFFFFFFFFFFFFFF)
    if end <= begin:
        return 0
    tokens = 0
    shingles = 0
    position = 0
    total = np.uint64(0)
    index = begin
    while index <= end:
        if index == end or data[index] == 32:
            recent[tokens % size] = total % prime
            tokens += 1
            if tokens >= size:
                shingle = np.uint64(0)
                for k in range(tokens - size, tokens):
                    shingle = (shingle * base + recent[k % size]) % prime
                for p in range(num_perm):
                    value = a[p] * shingle + b[p]
                    if value < minima[p]:
                        minima[p] = value
                shingles += 1
            if tokens == max_tokens:
                break
            total = np.uint64(0)
            position = 0
        else:
            row = position if position < last_row else last_row
            total += table[row * 256 + data[index]]
            position += 1
        index += 1
    if shingles == 0 and tokens > 0:  # fewer words than ``size``: one shingle of them all
        shingle = np.uint64(0)
        for k in range(tokens):
            shingle = (shingle * base + recent[k % size]) % prime
        for p in range(num_perm):
            value = a[p] * shingle + b[p]
            if value < minima[p]:
                minima[p] = value
    return tokens


@numba.njit(cache=True, nogil=True)
def signature_minima(data, table, a, b, size, max_tokens, prime, base, minima):  # pragma: no cover - compiled
    """Fills ``minima[i]`` with ``min((a[i] * x + b[i]) mod 2**64)`` over the
    shingle hashes ``x`` of the space-separated words in ``data`` (UTF-8
    bytes of a normalize_body text: single spaces, none at either end);
    returns how many words were hashed (at most ``max_tokens``)."""
    recent = np.zeros(size, dtype=np.uint64)  # the last ``size`` token hashes, cyclically
    return _fill_minima(data, 0, data.shape[0], table, a, b, size, max_tokens, prime, base, minima, recent)


@numba.njit(cache=True, nogil=True)
def signature_minima_batch(data, offsets, table, a, b, size, max_tokens, prime, base, minima):  # pragma: no cover - compiled
    """:func:`signature_minima` of many texts in one call: text ``i`` is
    ``data[offsets[i]:offsets[i + 1]]`` and its minima fill ``minima[i]``."""
    recent = np.zeros(size, dtype=np.uint64)
    for text in range(offsets.shape[0] - 1):
        _fill_minima(data, offsets[text], offsets[text + 1], table, a, b, size, max_tokens, prime, base,
                     minima[text], recent)


@numba.njit(cache=True, nogil=True, inline="always")
def _mix64(h):  # pragma: no cover - compiled
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@numba.njit(cache=True, nogil=True)
def band_hashes(values, bands, rows, seeds, out):  # pragma: no cover - compiled
    """``out[i, band, lane]``: the LSH band hash of row ``i`` of ``values``
    (see ``transforms._dedupe_minhash.band_hash_matrix``)."""
    length = values.shape[1]
    for i in range(values.shape[0]):
        for band in range(bands):
            start = band * rows
            end = min(start + rows, length)
            for lane in range(seeds.shape[0]):
                h = _mix64(seeds[lane] ^ np.uint64(band))
                for k in range(start, end):
                    h = _mix64(h ^ values[i, k])
                out[i, band, lane] = h
