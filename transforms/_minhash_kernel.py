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

__all__ = ["signature_minima"]


@numba.njit(cache=True, nogil=True)
def signature_minima(data, table, a, b, size, max_tokens, prime, base, minima):  # pragma: no cover - compiled
    """Fills ``minima[i]`` with ``min((a[i] * x + b[i]) mod 2**64)`` over the
    shingle hashes ``x`` of the space-separated words in ``data`` (UTF-8
    bytes of a normalize_body text: single spaces, none at either end);
    returns how many words were hashed (at most ``max_tokens``)."""
    length = data.shape[0]
    num_perm = a.shape[0]
    last_row = table.shape[0] // 256 - 1
    for index in range(num_perm):
        minima[index] = np.uint64(0xFFFFFFFFFFFFFFFF)
    if length == 0:
        return 0
    recent = np.zeros(size, dtype=np.uint64)  # the last ``size`` token hashes, cyclically
    tokens = 0
    shingles = 0
    position = 0
    total = np.uint64(0)
    index = 0
    while index <= length:
        if index == length or data[index] == 32:
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
