"""Stage ``dedupe``: fold copies of one article scraped under several ids/URLs.

Unlike the other stages this one compares documents *across* the corpus, so
it is a composite of keyed aggregations, not a per-document function.

What counts as a copy (pure rules in ``transforms/_dedupe_minhash.py``):

* body text is compared after :func:`normalize_body` (NFKC, casefold,
  quotes/dashes/nbsp folded, punctuation and symbols dropped, whitespace
  collapsed, digits kept);
* the headline is compared by its key (``headlines.headline_key`` of the
  title without a `` - Site`` / `` | Site`` suffix);
* near-identical bodies are found with MinHash over word ``shingle_size``-grams
  and LSH banding, and every candidate pair is verified: its estimated
  Jaccard similarity must be >= ``threshold``.

Candidate pairs come from three kinds of bucket: the same normalised body
(exact), the same headline key (verified like LSH pairs) and, when
``near_duplicates`` is on, each LSH band. Clusters are the connected
components of the verified pairs (transitive).

Which copy is kept (fixed rule, :func:`rank_key`): earliest ``published``
(parsed, offsets converted to UTC; unparseable after parseable; None last),
then the longest body (characters), then the smallest ``id``, then
``source``, then the record hash. Every other member becomes a
``duplicates`` record and the kept document gets ``duplicates = N`` and
``changes["dedupe"] = N``.

``duplicates`` records (plain dicts): ``id``, ``source``, ``duplicate_of``
(the canonical id), ``duplicate_of_source`` (its source, because ids may repeat
in hostile input), ``reason`` (``exact_body`` | ``same_body_edited_headline``
| ``same_headline_near_body`` | ``near_duplicate_body``, see
:func:`classify`) and ``similarity`` (estimated Jaccard to the canonical
document, 1.0 for identical normalised bodies).

Repeated ids: every input record is keyed by ``uid``, a blake2b hash of
(id, source, title, published, url, text), never by ``id``, so two records
sharing an id are still two documents. Records identical in all six are the
same record read twice: one is kept, the others are ``exact_body``
duplicates of it.

How it scales (no full texts ever meet on one worker, and no runner has to
hold the documents):

1. ``Fingerprint``: per document, a small record (uid, id, source, rank
   fields, body hash, headline hash, packed MinHash signature) and its bucket
   entries, packed ~50 bytes each into binary blobs per shard of the bucket
   key (see "The packed bucket index" below). With a ``spill_directory``
   (``newswash run`` uses ``OUT/_run/spill``) the document itself goes to a
   spill file; without one it waits in the runner.
2. ``GroupByKey`` by index shard; per shard, a numpy sort finds the keys that
   occur more than once and :func:`bucket_candidates` turns each into exact
   edges (same normalised body) and candidate pairs (same headline or LSH
   band) -> ``Distinct``.
3. Each candidate pair meets its two signatures by uid (two
   ``CoGroupByKey`` s) and is kept when their similarity reaches the
   threshold. With a spill directory the signatures are read back from the
   fingerprint files, filtered by a :class:`PackedUidMap` of the candidate
   pairs' uids (a side input of ~17 bytes per such record); without one,
   the fingerprints of records with an edge or a candidate are found with a
   ``CoGroupByKey`` with the edge endpoints.
4. Connected components of the edges with a union-find ``CombineFn`` (only
   uids of documents that have a copy; the smallest uid labels a component,
   so the result does not depend on order). This is the one global step; it
   holds ~2 short strings per duplicated document, and its result is packed
   (32 bytes per clustered record).
5. Key the fingerprints of clustered records by their component (with a
   spill directory, by reading the fingerprint files a second time, so the
   runner never holds them all), ``GroupByKey`` by component (~150 bytes per
   member, the signature only for records in a candidate pair), pick the
   canonical copy, classify the others.
6. With a spill directory, each decision is keyed by the spill file that
   holds its document (a fingerprint carries its document's spill
   position), joined to that file's path (``CoGroupByKey``), and the step
   that reads the file back writes every document to ``documents`` or
   ``duplicates`` knowing only that file's decisions: no step holds a map of
   the corpus's decisions. A record present more than once is told apart
   from its copies by its spill position, so copies never have to meet.
   Without a spill directory the decisions are a side input by uid.

Shuffle volume per document: (``bands`` + 2) x ~50 bytes of bucket index and
one fingerprint (~4 x ``num_perm`` + ~200 bytes): ~1.9 KB with 25 bands and
128 permutations, well under a typical article, never the text itself.

Not done: no iterative (large-star/small-star) connected components, so
the edge graph of step 3 must fit on one worker; no containment matching (a
short wire story inside a long roundup is not a duplicate unless their
Jaccard reaches the threshold); no URL normalisation (two copies at one URL
with different bodies stay apart); no language-specific tokenisation (CJK
text without spaces is compared as long "words", so near-duplicates there
are mostly found only when exact).

Defaults: word 2-grams and threshold 0.5. The only news-specific benchmark
we found (ChenghaoMou/text-dedup on NEWS-COPY, a news-reprint set) tuned
MinHash to word 2-grams and threshold 0.45; reprints are edited (bylines,
trimmed paragraphs), so short shingles and a low threshold are needed to find
them. We stay slightly above (0.5) because a false merge deletes an article,
and every LSH candidate is verified against the threshold. 128 permutations
estimate a Jaccard of 0.5 with a standard error of ~0.044; (bands, rows) are
derived from the threshold (25 x 5 for 0.5). Bodies with fewer than
``min_tokens`` words only take part in exact matching.

Counters (namespace ``newswash``): ``dedupe.documents_in``,
``dedupe.canonical``, ``dedupe.duplicates.<reason>``, ``dedupe.dead_letter``, ``dedupe.no_text``
(empty normalised body: never a duplicate), ``dedupe.bucket_truncated``
(a bucket had more than ``max_bucket_size`` distinct bodies).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import pickle
import struct
import uuid
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import apache_beam as beam
from apache_beam import typehints
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows
import numpy as np

from transforms._dedupe_minhash import (
    Fingerprint,
    UnionFind,
    body_fingerprint,
    classify,
    band_digest_matrix,
    band_digests,
    digest,
    headline_fingerprint,
    lsh_params,
    normalize_body,
    packed_signatures,
    permutations,
    published_sort_key,
    rank_key,
    signature_similarity,
)
from transforms.document import Document, document_fields
from transforms.stage import DEAD_LETTER, DOCUMENTS, METRICS_NAMESPACE, stage_error

__all__ = [
    "STAGE",
    "DUPLICATES",
    "REASONS",
    "DedupeConfig",
    "fingerprint",
    "fingerprints",
    "document_uid",
    "bucket_keys",
    "NO_TEXT_BUCKET",
    "bucket_member",
    "copy_rank",
    "copy_tag",
    "BucketCandidates",
    "bucket_candidates",
    "bucket_edges",
    "resolve_cluster",
    "deduplicate",
    "DeduplicateArticles",
]

STAGE = "dedupe"
DUPLICATES = "duplicates"
REASONS = ("exact_body", "same_body_edited_headline", "same_headline_near_body", "near_duplicate_body")


@dataclasses.dataclass(frozen=True)
class DedupeConfig:
    """Tunables of the dedupe stage.

    Attributes:
      threshold: minimum estimated Jaccard similarity of two bodies' shingle
        sets for a near-duplicate or same-headline pair.
      shingle_size: words per shingle.
      num_perm: MinHash permutations.
      bands: LSH bands (rows = num_perm // bands); None derives them from
        the threshold (:func:`lsh_params`).
      near_duplicates: look for near-identical bodies with LSH; when off,
        only exact bodies and same-headline pairs (still verified) count.
      min_tokens: shorter bodies only take part in exact matching.
      max_bucket_size: distinct bodies compared pairwise within one bucket;
        beyond it, each body is compared with the first ``max_bucket_size``
        (by body hash) only.
      max_tokens: only the first ``max_tokens`` words are shingled for
        MinHash (bounds the cost of huge hostile documents; the exact body
        hash always covers the whole text).
      seed: seeds the hash family (changing it changes the signatures).
      index_shards: how many groups the bucket index is cut into; each group
        is one unit of work holding ~50 bytes per (bucket, document) entry of
        its shard, so raise it for corpora of hundreds of millions.
    """

    threshold: float = 0.5
    shingle_size: int = 2
    num_perm: int = 128
    bands: int | None = None
    near_duplicates: bool = True
    min_tokens: int = 8
    max_bucket_size: int = 200
    max_tokens: int = 20000
    seed: int = 1
    index_shards: int = 64

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}")
        for name, low in (("shingle_size", 1), ("num_perm", 2), ("min_tokens", 1), ("max_bucket_size", 2),
                          ("max_tokens", 1), ("index_shards", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if self.bands is not None and (
                isinstance(self.bands, bool) or not isinstance(self.bands, int)
                or not 1 <= self.bands <= self.num_perm):
            raise ValueError(f"bands must be None or an int in [1, num_perm], got {self.bands!r}")
        if not isinstance(self.near_duplicates, bool):
            raise ValueError(f"near_duplicates must be a bool, got {self.near_duplicates!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    @property
    def band_rows(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.num_perm // self.bands
        return lsh_params(float(self.threshold), self.num_perm)


# --------------------------------------------------------------------------
# Pure steps
# --------------------------------------------------------------------------


def document_uid(doc: Document) -> str:
    """Identity of one input record (see "Repeated ids" in the module docstring)."""
    return digest(doc.id, doc.source, doc.title or "", doc.published or "", doc.url or "", doc.text)


def fingerprint(doc: Document, config: DedupeConfig) -> Fingerprint | None:
    """The small record dedupe decides on; None when the body is empty after
    normalisation (such documents are never duplicates)."""
    return fingerprints([doc], config)[0]


def fingerprints(docs: Sequence[Document], config: DedupeConfig) -> list[Fingerprint | None]:
    """:func:`fingerprint` of each document; the MinHash signatures of the
    batch are computed in one call of the compiled kernel."""
    normalized = [normalize_body(doc.text) for doc in docs]
    signatures = iter(packed_signatures(
        [text for text in normalized if text], config.shingle_size,
        permutations(config.num_perm, config.seed), config.max_tokens))
    min_tokens = config.min_tokens
    return [
        None if not text else Fingerprint(
            uid=document_uid(doc), id=doc.id, source=doc.source,
            published_key=published_sort_key(doc.published), body_length=len(doc.text),
            body_hash=body_fingerprint(text), headline_hash=headline_fingerprint(doc.title),
            signature=next(signatures), near=text.count(" ") + 1 >= min_tokens)
        for doc, text in zip(docs, normalized)
    ]


def bucket_keys(fp: Fingerprint, config: DedupeConfig) -> list[str]:
    """The ``str`` keys a fingerprint is grouped under: ``b:`` body hash,
    ``h:`` headline hash, ``l:`` one per LSH band."""
    keys = ["b:" + fp.body_hash]
    if fp.near and fp.headline_hash:
        keys.append("h:" + fp.headline_hash)
    if fp.near and config.near_duplicates:
        bands, rows = config.band_rows
        keys.extend(LSH_BUCKET + band.hex() for band in band_digests(fp.signature, bands, rows))
    return keys


def _edge(a: str, b: str) -> str:
    return f"{a} {b}" if a < b else f"{b} {a}"


# Bucket key prefix of documents whose normalised body is empty: they are never
# duplicates of anything, but the same record read twice must still be folded.
NO_TEXT_BUCKET = "u:"
# Bucket key prefix of an LSH band (then the hex of its 16-byte band digest).
LSH_BUCKET = "l:"


def bucket_member(uid: str, body_hash: str, copy: str = "") -> str:
    """What a bucket holds per record: ``"uid body_hash"`` (both hex), and in
    the exact-body bucket also the record's :func:`copy_tag` when documents
    are spilled (it picks the one copy to keep of a record present twice)."""
    return f"{uid} {body_hash} {copy}" if copy else f"{uid} {body_hash}"


def copy_tag(doc: Document, position: str) -> str:
    """:func:`copy_rank`, then the spill ``position``: unique per record, and
    when two copies tie on the rank they are identical, so whichever position
    wins, the output is the same."""
    return copy_tag_from(copy_rank(doc), position)


class BucketCandidates(NamedTuple):
    """What one bucket yields: ``exact_edges`` (identical normalised bodies,
    final), ``pairs`` (``"uidA uidB"``, still to verify by similarity),
    ``repeated`` (``(uid, (records, smallest copy tag))`` for a record present
    more than once), whether the bucket was ``truncated``, and ``copies``:
    ``(uid, copy tag)`` of every record of a repeated uid, sorted."""

    exact_edges: list[str]
    pairs: list[str]
    repeated: list[tuple[str, tuple[int, str]]]
    truncated: bool
    copies: tuple[tuple[str, str], ...] = ()


def bucket_candidates(key: str, members: Iterable[str], config: DedupeConfig) -> BucketCandidates:
    """The edges and candidate pairs of one bucket of :func:`bucket_member` strings.

    Exact-body buckets link every member to the smallest uid. Headline and
    LSH buckets pair one representative per distinct body (the smallest uid;
    identical bodies are linked by their exact bucket); beyond
    ``max_bucket_size`` distinct bodies, each body is paired with the first
    ``max_bucket_size`` (by body hash) only.
    """
    body_of: dict[str, str] = {}
    tags: dict[str, list[str]] = {}
    for member in members:
        uid, body_hash, *copy = member.split(" ")
        body_of[uid] = body_hash
        tags.setdefault(uid, []).append(copy[0] if copy else "")
    exact = key.startswith("b:") or key.startswith(NO_TEXT_BUCKET)
    repeated: list[tuple[str, tuple[int, str]]] = []
    copies: tuple[tuple[str, str], ...] = ()
    if exact:
        repeated = sorted((uid, (len(uid_tags), min(uid_tags))) for uid, uid_tags in tags.items() if len(uid_tags) > 1)
        copies = tuple(sorted((uid, tag) for uid, _ in repeated for tag in tags[uid]))
    uids = sorted(body_of)
    if len(uids) < 2:
        return BucketCandidates([], [], repeated, False, copies)
    if exact:
        return BucketCandidates([_edge(uids[0], uid) for uid in uids[1:]], [], repeated, False, copies)
    representatives: dict[str, str] = {}
    for uid in uids:
        representatives.setdefault(body_of[uid], uid)
    bodies = [representatives[body] for body in sorted(representatives)]
    pairs = []
    for i, left in enumerate(bodies):
        for right in bodies[:min(i, config.max_bucket_size)]:
            pairs.append(_edge(left, right))
    return BucketCandidates([], pairs, repeated, len(bodies) > config.max_bucket_size)


def bucket_edges(key: str, members: Iterable[Fingerprint], config: DedupeConfig) -> tuple[list[str], bool]:
    """Verified edges ``"uidA uidB"`` within one bucket of fingerprints, and
    whether it was truncated: :func:`bucket_candidates` with every candidate
    pair kept when its similarity reaches the threshold."""
    by_uid = {fp.uid: fp for fp in members}
    candidates = bucket_candidates(
        key, [bucket_member(fp.uid, fp.body_hash) for fp in by_uid.values()], config)
    edges = list(candidates.exact_edges)
    for pair in candidates.pairs:
        a, b = pair.split(" ")
        if signature_similarity(by_uid[a].signature, by_uid[b].signature) >= config.threshold:
            edges.append(pair)
    return edges, candidates.truncated


def resolve_cluster(members: Iterable[Fingerprint]) -> list[tuple[str, tuple]]:
    """Decisions for one cluster: ``(uid, ("canonical", n))`` for the kept
    copy (``n`` counts the records of the other members; a uid may come more
    than once when the same record was read twice), ``(uid, ("duplicate", id, source, reason, similarity))`` for the others."""
    members = _with_signatures(list(members))
    copies = collections.Counter(fp.uid for fp in members)  # a record read twice counts twice
    unique = sorted({fp.uid: fp for fp in members}.values(), key=rank_key)
    canonical, others = unique[0], unique[1:]
    folded = sum(copies[fp.uid] for fp in others)
    decisions: list[tuple[str, tuple]] = [(canonical.uid, ("canonical", folded))]
    for fp in others:
        reason, similarity = classify(fp, canonical)
        decisions.append((fp.uid, ("duplicate", canonical.id, canonical.source, reason, similarity)))
    return decisions


def _with_signatures(members: list[Fingerprint]) -> list[Fingerprint]:
    """``members``, each without a signature given that of a member with the
    same body hash. The Beam path drops the signature of records joined by
    exact-body edges only (most clustered records), and a signature is a
    function of the normalised body, which the body hash identifies. Every
    body of a cluster that is compared by similarity has such a member: it
    reached another body through a verified pair."""
    if all(fp.signature for fp in members):
        return members
    by_body = {fp.body_hash: fp.signature for fp in members if fp.signature}
    return [fp if fp.signature else fp._replace(signature=by_body.get(fp.body_hash, b""))
            for fp in members]


def duplicate_record(doc: Document, duplicate_of: str, duplicate_of_source: str,
                     reason: str, similarity: float) -> dict[str, Any]:
    return {"id": doc.id, "duplicate_of": duplicate_of, "reason": reason,
            "similarity": float(similarity), "source": doc.source,
            "duplicate_of_source": duplicate_of_source}


def copy_rank(doc: Document) -> str:
    """Orders the copies of one record (same uid) by a hash of what may still
    differ between them (pass-through fields, flags, changes): the smallest
    is kept. Copies with equal ranks are identical in every output byte."""
    return digest(repr((doc.fields, doc.flags, doc.changes, doc.related_links, doc.duplicates)), size=8)


def emit(docs: Iterable[Document], decision: tuple | None) -> Iterator[tuple[str, Any]]:
    """(tag, element) outputs for all records of one uid and its decision:
    the copy of smallest :func:`copy_rank` is the one kept."""
    copies = sorted(docs, key=copy_rank)
    for index, doc in enumerate(copies):
        yield emit_copy(doc, decision, len(copies), kept=index == 0)


def emit_copy(doc: Document, decision: tuple | None, records: int, kept: bool) -> tuple[str, Any]:
    """(tag, element) for one of ``records`` copies of a record, without
    meeting the others: ``kept`` says whether it is the copy to keep."""
    if decision is not None and decision[0] == "duplicate":
        _, canonical_id, canonical_source, reason, similarity = decision
        return DUPLICATES, duplicate_record(doc, canonical_id, canonical_source, reason, similarity)
    if kept:
        n = (decision[1] if decision is not None else 0) + records - 1
        return DOCUMENTS, doc.record_stage(STAGE, n, duplicates=n)
    # A copy has the kept record's uid, hence its id and source.
    return DUPLICATES, duplicate_record(doc, doc.id, doc.source, "exact_body", 1.0)


def deduplicate(docs: Iterable[Document], config: DedupeConfig = DedupeConfig()) -> tuple[list[Document], list[dict]]:
    """The whole stage in memory (reference for tests and ``explain``)."""
    by_uid: dict[str, list[Document]] = {}
    fps: dict[str, Fingerprint] = {}
    buckets: dict[str, list[Fingerprint]] = {}
    for doc in docs:
        uid = document_uid(doc)
        by_uid.setdefault(uid, []).append(doc)
        fp = fingerprint(doc, config)
        if fp is not None and uid not in fps:
            fps[uid] = fp
            for key in bucket_keys(fp, config):
                buckets.setdefault(key, []).append(fp)
    union = UnionFind()
    for key, members in buckets.items():
        for edge in bucket_edges(key, members, config)[0]:
            a, b = edge.split(" ")
            union.union(a, b)
    clusters: dict[str, list[Fingerprint]] = {}
    for uid, root in union.roots().items():
        clusters.setdefault(root, []).extend([fps[uid]] * len(by_uid[uid]))
    decisions = dict(d for members in clusters.values() for d in resolve_cluster(members))
    kept: list[Document] = []
    duplicates: list[dict] = []
    for uid in sorted(by_uid):
        for tag, element in emit(by_uid[uid], decisions.get(uid)):
            (kept if tag == DOCUMENTS else duplicates).append(element)
    return kept, duplicates


# --------------------------------------------------------------------------
# The packed bucket index
# --------------------------------------------------------------------------
#
# Every fingerprinted document lands in ~27 buckets (body, headline, 25 LSH
# bands) and almost every bucket holds one document. As one Beam element per
# (bucket, document) that is 27 elements per document, each paying the
# runner's per-element cost, and the DirectRunner holds every one of them as
# Python objects (~300 bytes each). Instead each bundle packs its entries into
# fixed-size binary records, grouped by a shard of the bucket key, and one
# element carries thousands of them (~50 bytes per entry). Each shard then
# finds its colliding keys with a numpy sort; only those become members for
# :func:`bucket_candidates`, so the rules stay those of the pure functions.

_KEY_BYTES = 16
_SIMILAR_RECORD = 48  # bucket key | uid | body hash
_EXACT_RECORD = 76  # bucket key | uid | body hash | copy rank (8) | spill file (16) | spill index (4)
_EXACT_LAYOUT = b"E"  # body and no-text buckets: edges need no verification; copies are told apart
_SIMILAR_LAYOUT = b"S"  # headline and LSH buckets
_REFERENCE_LAYOUT = b"R"  # a blob in an index spill file: offset, length, path
_INDEX_FLUSH_BYTES = 8 * 1024 * 1024


def bucket_key_digest(key: str) -> bytes:
    """The 16-byte digest a bucket key is packed as (bucket keys have
    different kinds and lengths; collisions of 128-bit digests do not occur
    in practice). An LSH key is the hex of a 16-byte band digest already,
    which is used as it is."""
    if key.startswith(LSH_BUCKET) and len(key) == len(LSH_BUCKET) + 2 * _KEY_BYTES:
        try:
            return bytes.fromhex(key[len(LSH_BUCKET):])
        except ValueError:
            pass
    return hashlib.blake2b(key.encode("utf-8"), digest_size=_KEY_BYTES).digest()


def _copy_bytes(copy: str) -> bytes:
    """A :func:`copy_tag` as 28 bytes (all zero when documents are not spilled)."""
    if not copy:
        return bytes(28)
    rank, position = copy.split("@")
    file_id, index = position.split(":")
    return bytes.fromhex(rank) + bytes.fromhex(file_id) + struct.pack(">I", int(index))


def _copy_string(packed: bytes) -> str:
    if not any(packed):
        return ""
    return copy_tag_from(packed[:8].hex(), spill_position(packed[8:24].hex(), struct.unpack(">I", packed[24:])[0]))


def copy_tag_from(rank: str, position: str) -> str:
    return f"{rank}@{position}"


class BucketIndexWriter:
    """Packs one bundle's bucket entries into ``(shard, blob)`` elements.

    Entries are appended to one buffer per layout and cut into shards only
    when flushed (one numpy sort), so adding a document's ~27 entries costs a
    few byte copies rather than 27 dictionary updates.
    """

    def __init__(self, shards: int):
        self._shards = shards
        self._records = {_EXACT_LAYOUT: bytearray(), _SIMILAR_LAYOUT: bytearray()}

    def add(self, key: str, uid: str, body_hash: str, copy: str | None = None) -> None:
        """Adds one entry; ``copy`` (a :func:`copy_tag` or "") marks an exact-body
        or no-text bucket entry."""
        record = bucket_key_digest(key) + bytes.fromhex(uid) + (bytes.fromhex(body_hash) if body_hash else bytes(16))
        if copy is None:
            self._records[_SIMILAR_LAYOUT] += record
        else:
            self._records[_EXACT_LAYOUT] += record + _copy_bytes(copy)

    def add_fingerprint(self, fp: Fingerprint, config: DedupeConfig, copy: str, bands: bool = True) -> None:
        """Adds every :func:`bucket_keys` entry of ``fp`` (the exact-body one
        with ``copy``), as :meth:`add` of each key would; without the LSH
        band entries when ``bands`` is False (see :meth:`add_band_entries`)."""
        tail = bytes.fromhex(fp.uid) + bytes.fromhex(fp.body_hash)
        self._records[_EXACT_LAYOUT] += bucket_key_digest("b:" + fp.body_hash) + tail + _copy_bytes(copy)
        if not fp.near:
            return
        similar = self._records[_SIMILAR_LAYOUT]
        if fp.headline_hash:
            similar += bucket_key_digest("h:" + fp.headline_hash) + tail
        if config.near_duplicates and bands:
            band_count, rows = config.band_rows
            digests = band_digests(fp.signature, band_count, rows)
            if digests:
                similar += tail.join(digests)
                similar += tail

    def add_band_entries(self, fps: Sequence[Fingerprint], config: DedupeConfig) -> None:
        """Adds the LSH band entries of the near-duplicate candidates among
        ``fps`` (those :meth:`add_fingerprint` adds unless ``bands=False``),
        their digests computed for all of them at once."""
        if not config.near_duplicates:
            return
        bands, rows = config.band_rows
        if bands <= 0 or rows <= 0:
            return
        by_length: dict[int, list[Fingerprint]] = {}  # one matrix needs one signature length
        for fp in fps:
            if fp.near:
                by_length.setdefault(len(fp.signature), []).append(fp)
        for group in by_length.values():
            digests = band_digest_matrix([fp.signature for fp in group], bands, rows)
            tails = np.frombuffer(b"".join(bytes.fromhex(fp.uid) + bytes.fromhex(fp.body_hash) for fp in group),
                                  dtype=np.uint8).reshape(len(group), 1, 32)
            records = np.concatenate((digests, np.broadcast_to(tails, (len(group), bands, 32))), axis=2)
            self._records[_SIMILAR_LAYOUT] += records.tobytes()

    @property
    def full(self) -> bool:
        return sum(map(len, self._records.values())) >= _INDEX_FLUSH_BYTES

    def flush(self) -> list[tuple[int, bytes]]:
        """The buffered entries as ``(shard, layout byte + records)`` blobs,
        exact-body layout first, each by ascending shard."""
        blobs = []
        for layout, size in ((_EXACT_LAYOUT, _EXACT_RECORD), (_SIMILAR_LAYOUT, _SIMILAR_RECORD)):
            buffer = self._records[layout]
            if not buffer:
                continue
            rows = np.frombuffer(bytes(buffer), dtype=np.uint8).reshape(-1, size)
            buffer.clear()
            shards = rows[:, :4].copy().view(">u4").ravel() % self._shards
            order = np.argsort(shards, kind="stable")
            rows, shards = rows[order], shards[order]
            starts = np.flatnonzero(np.concatenate(([True], shards[1:] != shards[:-1])))
            for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(shards)]):
                blobs.append((int(shards[start]), layout + rows[start:end].tobytes()))
        return blobs


def _colliding_records(records: bytes, size: int) -> Iterator[list[bytes]]:
    """The records of every key that occurs more than once, grouped by key."""
    if not records:
        return
    rows = np.frombuffer(records, dtype=np.uint8).reshape(-1, size)
    high = rows[:, :8].copy().view(">u8").ravel()
    low = rows[:, 8:16].copy().view(">u8").ravel()
    order = np.lexsort((low, high))
    high, low = high[order], low[order]
    starts = np.flatnonzero(np.concatenate(([True], (high[1:] != high[:-1]) | (low[1:] != low[:-1]))))
    ends = np.append(starts[1:], len(order))
    for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
        yield [records[i * size:(i + 1) * size] for i in order[start:end].tolist()]


def shard_candidates(blobs: Iterable[bytes], config: DedupeConfig) -> Iterator[BucketCandidates]:
    """:func:`bucket_candidates` of every colliding bucket in one shard's blobs."""
    exact = bytearray()
    similar = bytearray()
    for blob in blobs:
        (exact if blob[:1] == _EXACT_LAYOUT else similar).extend(blob[1:])
    for group in _colliding_records(bytes(exact), _EXACT_RECORD):
        members = [bucket_member(r[16:32].hex(), r[32:48].hex(), _copy_string(r[48:76])) for r in group]
        yield bucket_candidates("b:", members, config)
    for group in _colliding_records(bytes(similar), _SIMILAR_RECORD):
        members = [bucket_member(r[16:32].hex(), r[32:48].hex()) for r in group]
        yield bucket_candidates("l:", members, config)


# --------------------------------------------------------------------------
# Beam
# --------------------------------------------------------------------------

_UID_BYTES = 16


def _uid_array(uids: Sequence[str]) -> np.ndarray:
    """uids (32 hex characters each, see :func:`document_uid`) as 16-byte keys."""
    joined = "".join(uids)
    if len(joined) != 2 * _UID_BYTES * len(uids):
        raise ValueError("a uid is not 32 hex characters")
    return np.frombuffer(bytes.fromhex(joined), dtype=f"S{_UID_BYTES}")


def _fixed_hex(value: bytes, size: int = _UID_BYTES) -> str:
    # numpy drops trailing NULs of fixed-width bytes
    return value.ljust(size, b"\x00").hex()


class PackedUidMap:
    """An immutable ``uid -> value`` map held as two numpy arrays: the uids'
    16 bytes, sorted, and the values. It is how dedupe hands a map over every
    clustered record to a step as a side input: ~20-32 bytes per entry where
    a ``dict`` of ``str`` takes ~200, and it is pickled as two byte strings.
    """

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        if len(keys) != len(values):
            raise ValueError("keys and values differ in length")
        self._keys = keys
        self._values = values

    @classmethod
    def from_pairs(cls, uids: Sequence[str], values: Sequence[Any], dtype: str) -> "PackedUidMap":
        """The map of ``zip(uids, values)``; a uid given twice keeps one of its values."""
        keys = _uid_array(uids)
        array = np.asarray(values, dtype=dtype) if len(values) else np.empty(0, dtype=dtype)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], array[order])

    def __len__(self) -> int:
        return len(self._keys)

    def __reduce__(self):
        return _packed_uid_map, (self._keys.tobytes(), self._values.tobytes(), self._values.dtype.str)

    def lookup(self, uids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found, values) for ``uids``: a boolean mask, and each uid's value
        (meaningless where not found)."""
        query = _uid_array(uids)
        if not len(self._keys):
            return np.zeros(len(query), dtype=bool), np.zeros(len(query), dtype=self._values.dtype)
        at = np.minimum(np.searchsorted(self._keys, query), len(self._keys) - 1)
        return self._keys[at] == query, self._values[at]

    def get(self, uid: str) -> Any:
        """The value of ``uid`` as a Python scalar (bytes values as hex), or None."""
        found, values = self.lookup([uid])
        if not found[0]:
            return None
        value = values[0]
        return _fixed_hex(value, self._values.dtype.itemsize) if isinstance(value, bytes) else value.item()


def _packed_uid_map(keys: bytes, values: bytes, dtype: str) -> PackedUidMap:
    return PackedUidMap(np.frombuffer(keys, dtype=f"S{_UID_BYTES}"), np.frombuffer(values, dtype=dtype))


def _or_kinds(keys: np.ndarray, kinds: np.ndarray) -> PackedUidMap:
    """Sorted unique keys, each with the OR of its kinds."""
    if not len(keys):
        return PackedUidMap(keys, kinds)
    order = np.argsort(keys, kind="stable")
    keys, kinds = keys[order], kinds[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return PackedUidMap(keys[starts], np.bitwise_or.reduceat(kinds, starts))


class _PackingCombineFn(beam.CombineFn):
    """A CombineFn whose inputs are gathered in a list and packed into numpy
    every ``_PACK_EVERY`` inputs (and before an accumulator is merged), so no
    worker holds them as Python objects. Subclasses say how a list of inputs
    is packed and how packed parts merge."""

    _PACK_EVERY = 65536

    def _pack(self, inputs: list) -> Any:
        raise NotImplementedError

    def _merge(self, parts: list) -> Any:
        raise NotImplementedError

    def create_accumulator(self) -> list:
        return [[], None]  # pending inputs, packed so far

    def _packed(self, accumulator: list) -> Any:
        pending, packed = accumulator
        if pending:
            new = self._pack(pending)
            packed = new if packed is None else self._merge([packed, new])
            accumulator[:] = [[], packed]
        return packed

    def add_input(self, accumulator: list, element: Any) -> list:
        accumulator[0].append(element)
        if len(accumulator[0]) >= self._PACK_EVERY:
            self._packed(accumulator)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list]) -> list:
        parts = [packed for packed in (self._packed(accumulator) for accumulator in accumulators)
                 if packed is not None]
        return [[], self._merge(parts) if parts else None]


class _InvolvedUidsFn(_PackingCombineFn):
    """``(uid, kind)`` edge endpoints -> :class:`PackedUidMap` uid -> OR of its kinds."""

    def _pack(self, inputs: list[tuple[str, int]]) -> PackedUidMap:
        return _or_kinds(_uid_array([uid for uid, _ in inputs]), np.array([kind for _, kind in inputs], dtype="u1"))

    def _merge(self, parts: list[PackedUidMap]) -> PackedUidMap:
        return _or_kinds(np.concatenate([part._keys for part in parts]),  # pylint: disable=protected-access
                         np.concatenate([part._values for part in parts]))  # pylint: disable=protected-access

    def extract_output(self, accumulator: list) -> PackedUidMap:
        packed = self._packed(accumulator)
        return packed if packed is not None else EMPTY_UID_MAP


# What a packed side input is when nothing was combined (no candidates, no edges).
EMPTY_UID_MAP = PackedUidMap(np.empty(0, dtype=f"S{_UID_BYTES}"), np.empty(0, dtype="u1"))
EMPTY_ROOTS = PackedUidMap(np.empty(0, dtype=f"S{_UID_BYTES}"), np.empty(0, dtype=f"S{_UID_BYTES}"))


_FINGERPRINTS = "fingerprints"
_KEYED_DOCUMENTS = "keyed_documents"
_EXACT_EDGES = "exact_edges"
_CANDIDATES = "candidates"
_REPEATED = "repeated"
_SPILLED = "spilled"
_FINGERPRINTS_SPILLED = "fingerprints_spilled"
_SIGNATURES = "signatures"
# Spill files are cut at about this size so that reading them back spreads
# over workers (one file is read by one worker).
SPILL_FILE_BYTES = 32 * 1024 * 1024
SPILL_SUFFIX = ".spill"
FINGERPRINTS_SUFFIX = ".fingerprints"
INDEX_SUFFIX = ".index"
_COPIES = "copies"


def _counter(name: str):
    return Metrics.counter(METRICS_NAMESPACE, f"{STAGE}.{name}")


# Documents are fingerprinted a batch at a time: one kernel call signs the
# batch, and each step (normalising, signing, spilling, indexing) runs over
# the batch with its tables and buffers still in the CPU caches.
FINGERPRINT_BATCH = 256


class _FingerprintFn(beam.DoFn):
    """Document -> main: ``(shard, blob)`` packed bucket entries (see "The
    packed bucket index"); ``fingerprints``: ``(uid, Fingerprint)``; and the
    document itself, as ``(uid, doc)`` on ``keyed_documents`` or, with a spill
    directory, into a spill file whose path goes to ``spilled``. A document
    whose fingerprint raises goes to ``dead_letter`` with its original
    record and takes no part in dedupe.

    Dedupe decides over the whole corpus, in the global window, so buffered
    documents' outputs are emitted in the global window.
    """

    def __init__(self, config: DedupeConfig, spill_directory: str | None = None):
        super().__init__()
        self._config = config
        self._spill_directory = spill_directory
        self._spill: _SpillWriter | None = None
        self._batch: list[Document] = []

    def setup(self) -> None:
        self._documents_in = _counter("documents_in")
        self._no_text = _counter("no_text")
        self._dead_letter = _counter("dead_letter")
        permutations(self._config.num_perm, self._config.seed)  # warm the cache

    def start_bundle(self) -> None:
        self._spill = None
        self._fingerprint_spill: _SpillWriter | None = None
        self._index_spill: _IndexSpillWriter | None = None
        self._index = BucketIndexWriter(self._config.index_shards)
        self._batch = []  # a failed attempt's batch is processed again by its retry

    def _flush_index(self) -> list[tuple[int, bytes]]:
        blobs = self._index.flush()
        if self._spill_directory is None or not blobs:
            return blobs
        if self._index_spill is None:
            self._index_spill = _IndexSpillWriter(self._spill_directory)
        return self._index_spill.write(blobs)

    def process(self, doc: Document) -> Iterator[Any]:
        # With its original record until fingerprinted, for the dead letter.
        self._batch.append(doc)
        if len(self._batch) >= FINGERPRINT_BATCH:
            yield from self._fingerprint_batch()

    def _fingerprints(self, batch: list[Document]) -> Iterator[Any]:
        """``(doc, fingerprint or None)`` of each document that could be
        fingerprinted; a dead letter for each one that raised (the batch is
        then fingerprinted one document at a time to find it)."""
        stripped = [doc.without_transients() for doc in batch]
        try:
            yield from zip(stripped, fingerprints(stripped, self._config))
            return
        except Exception:  # pylint: disable=broad-except
            pass
        for original, doc in zip(batch, stripped):
            try:
                fp = fingerprint(doc, self._config)
            except Exception as error:  # pylint: disable=broad-except
                self._dead_letter.inc()
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, stage_error(original, STAGE, error))
                continue
            yield doc, fp

    def _fingerprint_batch(self) -> Iterator[Any]:
        batch, self._batch = self._batch, []
        if not batch:
            return
        self._documents_in.inc(len(batch))
        config = self._config
        index = self._index
        spill_directory = self._spill_directory
        fingerprinted = []
        for result in self._fingerprints(batch):
            if isinstance(result, beam.pvalue.TaggedOutput):
                yield result
            else:
                fingerprinted.append(result)
        batch = [doc for doc, _ in fingerprinted]
        batch_fingerprints = [fp for _, fp in fingerprinted]
        # The LSH band entries of the whole batch at once (one hash call).
        index.add_band_entries([fp for fp in batch_fingerprints if fp is not None], config)
        for doc, fp in zip(batch, batch_fingerprints):
            uid = fp.uid if fp is not None else document_uid(doc)
            if spill_directory is None:
                yield beam.pvalue.TaggedOutput(_KEYED_DOCUMENTS, (uid, doc))
                copy = ""
            else:
                if self._spill is None:
                    self._spill = _SpillWriter(spill_directory)
                position, full = self._spill.write(uid, doc)
                if full is not None:
                    yield beam.pvalue.TaggedOutput(_SPILLED, full)
                copy = copy_tag(doc, position)
            if fp is None:
                self._no_text.inc()
                index.add(NO_TEXT_BUCKET + uid, uid, "", copy)
            else:
                if spill_directory is None:
                    yield beam.pvalue.TaggedOutput(_FINGERPRINTS, (uid, fp))
                else:
                    if self._fingerprint_spill is None:
                        self._fingerprint_spill = _SpillWriter(spill_directory, FINGERPRINTS_SUFFIX)
                    _, full = self._fingerprint_spill.write(uid, PlacedFingerprint(fp, position))
                    if full is not None:
                        yield beam.pvalue.TaggedOutput(_FINGERPRINTS_SPILLED, full)
                index.add_fingerprint(fp, config, copy, bands=False)
            if index.full:
                yield from self._flush_index()

    def finish_bundle(self) -> Iterator[Any]:
        for output in self._fingerprint_batch():
            if isinstance(output, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
            else:
                yield GlobalWindows.windowed_value(output)
        for shard_blob in self._flush_index():
            yield GlobalWindows.windowed_value(shard_blob)
        if self._index_spill is not None:
            self._index_spill.close()
        for writer, tag in ((self._spill, _SPILLED), (self._fingerprint_spill, _FINGERPRINTS_SPILLED)):
            path = writer.close() if writer is not None else None
            if path is not None:
                yield beam.pvalue.TaggedOutput(tag, GlobalWindows.windowed_value(path))
        self._spill = self._fingerprint_spill = self._index_spill = None


_RECORD_LENGTH = struct.Struct("<I")
_SPILL_CHUNK_BYTES = 1024 * 1024


class _SpillWriter:
    """Writes ``(uid, Document)`` records to files of about ``SPILL_FILE_BYTES``.

    Each record is a 4-byte little-endian length and a pickle. A file name
    is only emitted once the file is complete and closed, so a retried
    bundle's files are never read twice: an abandoned attempt leaves an
    orphan that nobody references.
    """

    def __init__(self, directory: str, suffix: str = SPILL_SUFFIX):
        self._directory = directory
        self._suffix = suffix
        self._handle: Any = None
        self._path: str | None = None
        self._file_id = ""
        self._written = 0
        self._records = 0
        # Records are gathered here and written in large chunks: most are a
        # few KB, and one write call (a system call for a local file, a
        # buffer copy for remote ones) per record cost more than pickling it.
        self._pending = bytearray()

    def _open(self) -> None:
        self._file_id = uuid.uuid4().hex
        self._path = FileSystems.join(self._directory, self._file_id + self._suffix)
        self._handle = FileSystems.create(self._path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._written = 0
        self._records = 0

    def write(self, uid: str, record: Any) -> tuple[str, str | None]:
        """Writes one ``(uid, record)``; returns its position (``file id:index``)
        and the path of a file that just filled up, if any."""
        if self._handle is None:
            self._open()
        payload = pickle.dumps(_spill_record(uid, record), protocol=pickle.HIGHEST_PROTOCOL)
        pending = self._pending
        pending += _RECORD_LENGTH.pack(len(payload))
        pending += payload
        if len(pending) >= _SPILL_CHUNK_BYTES:
            self._handle.write(pending)
            pending.clear()
        position = spill_position(self._file_id, self._records)
        self._written += 4 + len(payload)
        self._records += 1
        if self._written >= SPILL_FILE_BYTES:
            return position, self.close()
        return position, None

    def close(self) -> str | None:
        if self._handle is None:
            return None
        if self._pending:
            self._handle.write(self._pending)
            self._pending.clear()
        self._handle.close()
        path, self._handle, self._path = self._path, None, None
        return path


class _IndexSpillWriter:
    """Writes packed bucket-index blobs to one file per bundle and returns
    references to them, so the shuffle carries ``(shard, reference)`` pairs
    and the index itself stays on disk until its shard is processed."""

    def __init__(self, directory: str):
        self._directory = directory
        self._handle: Any = None
        self._path = ""
        self._offset = 0

    def write(self, blobs: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        if self._handle is None:
            self._path = FileSystems.join(self._directory, uuid.uuid4().hex + INDEX_SUFFIX)
            self._handle = FileSystems.create(self._path, compression_type=CompressionTypes.UNCOMPRESSED)
            self._offset = 0
        references = []
        for shard, blob in blobs:
            self._handle.write(blob)
            references.append((shard, _index_reference(self._path, self._offset, len(blob))))
            self._offset += len(blob)
        return references

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _index_reference(path: str, offset: int, length: int) -> bytes:
    return _REFERENCE_LAYOUT + struct.pack("<QI", offset, length) + path.encode("utf-8")


def _resolve_index_blobs(blobs: Iterable[bytes]) -> Iterator[bytes]:
    """The blobs of one shard, reading the referenced ones from their files."""
    by_path: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for blob in blobs:
        if blob[:1] != _REFERENCE_LAYOUT:
            yield blob
            continue
        offset, length = struct.unpack("<QI", blob[1:13])
        by_path[blob[13:].decode("utf-8")].append((offset, length))
    for path in sorted(by_path):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            for offset, length in sorted(by_path[path]):
                handle.seek(offset)
                blob = handle.read(length)
                if len(blob) != length:
                    raise IOError(f"truncated index spill file {path}")
                yield blob


def spill_position(file_id: str, index: int) -> str:
    return f"{file_id}:{index}"


def spill_file_id(path: str) -> str:
    return path.rsplit("/", 1)[-1][:-len(SPILL_SUFFIX)]


def read_spill_file(path: str) -> Iterator[tuple[str, Document]]:
    """The ``(uid, Document)`` records of one spill file, in order."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        while True:
            header = handle.read(4)
            if not header:
                return
            if len(header) < 4:
                raise IOError(f"truncated spill file {path}")
            (size,) = struct.unpack("<I", header)
            payload = handle.read(size)
            if len(payload) < size:
                raise IOError(f"truncated spill file {path}")
            yield _spilled_record(pickle.loads(payload))


# Spill records are pickled as plain tuples of field values: pickling a
# dataclass with slots or a NamedTuple goes through Python-level
# __getstate__/__reduce__ hooks, a tuple stays in C (~3x cheaper each way).
_DOCUMENT_RECORD = 0
_FINGERPRINT_RECORD = 1
_PLACED_FINGERPRINT_RECORD = 2


class PlacedFingerprint(NamedTuple):
    """A fingerprint and the spill position (``file id:index``) of its
    document, or "" when documents are not spilled: the decisions are sent to
    the spill file that holds the document, not looked up by uid."""

    fingerprint: Fingerprint
    position: str


def _spill_record(uid: str, record: Any) -> tuple:
    if type(record) is Document:
        return uid, _DOCUMENT_RECORD, document_fields(record)
    if type(record) is Fingerprint:
        return uid, _FINGERPRINT_RECORD, tuple(record)
    if type(record) is PlacedFingerprint:
        return uid, _PLACED_FINGERPRINT_RECORD, (tuple(record.fingerprint), record.position)
    raise TypeError(f"cannot spill a {type(record).__name__}")


def _spilled_record(values: tuple) -> tuple[str, Any]:
    uid, kind, fields = values
    if kind == _DOCUMENT_RECORD:
        return uid, Document(*fields)
    if kind == _PLACED_FINGERPRINT_RECORD:
        return uid, PlacedFingerprint(Fingerprint._make(fields[0]), fields[1])
    return uid, Fingerprint._make(fields)


def _copy_place(tag: str) -> tuple[str, int]:
    """(spill file id, index) of a :func:`copy_tag`."""
    file_id, index = tag.split("@", 1)[1].split(":")
    return file_id, int(index)


class _BucketCandidatesFn(beam.DoFn):
    """One shard of the packed bucket index -> main: exact edges;
    ``candidates``: pairs to verify; ``repeated``: for a record present more
    than once, ``(uid, (records, copy tag to keep))``, or with ``spilled``
    one ``(spill file id, (index, (records, kept)))`` per copy."""

    def __init__(self, config: DedupeConfig, spilled: bool = False):
        super().__init__()
        self._config = config
        self._spilled = spilled

    def setup(self) -> None:
        self._truncated = _counter("bucket_truncated")

    def process(self, element: tuple[int, Iterable[bytes]]) -> Iterator[Any]:
        _, blobs = element
        for candidates in shard_candidates(_resolve_index_blobs(blobs), self._config):
            if candidates.truncated:
                self._truncated.inc()
            yield from candidates.exact_edges
            for pair in candidates.pairs:
                yield beam.pvalue.TaggedOutput(_CANDIDATES, pair)
            if not self._spilled:
                for uid_records in candidates.repeated:
                    yield beam.pvalue.TaggedOutput(_REPEATED, uid_records)
                continue
            repeated = dict(candidates.repeated)
            for uid, tag in candidates.copies:
                records, kept_tag = repeated[uid]
                file_id, index = _copy_place(tag)
                yield beam.pvalue.TaggedOutput(_REPEATED, (file_id, (index, (records, tag == kept_tag))))


# How a record takes part in dedupe's decisions (bits, OR-ed per uid): an
# exact-body edge needs only its rank fields; a candidate pair needs its
# signature too.
_EXACT_EDGE = 1
_CANDIDATE_PAIR = 2


def _edge_endpoints(edge: str, kind: int) -> Iterator[tuple[str, int]]:
    a, b = edge.split(" ")
    yield a, kind
    yield b, kind


def _either_kind(kinds: Iterable[int]) -> int:
    combined = 0
    for kind in kinds:
        combined |= kind
    return combined


def _involved_outputs(uid: str, placed: PlacedFingerprint, kinds: int) -> Iterator[Any]:
    """Main: ``(uid, PlacedFingerprint)`` for cluster resolution, without the
    512-byte signature unless the record is in a candidate pair;
    ``signatures``: ``(uid, signature)`` for the records in a candidate pair
    (the only ones verification reads)."""
    fp = placed.fingerprint
    if kinds & _CANDIDATE_PAIR:
        yield beam.pvalue.TaggedOutput(_SIGNATURES, (uid, fp.signature))
        yield uid, placed
    else:
        yield uid, PlacedFingerprint(fp._replace(signature=b""), placed.position)


def _read_in_chunks(path: str, size: int = 4096) -> Iterator[list[tuple[str, PlacedFingerprint]]]:
    """The records of a fingerprint spill file, ``size`` at a time (one
    side-input lookup per chunk)."""
    chunk: list[tuple[str, PlacedFingerprint]] = []
    for record in read_spill_file(path):
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _ReadCandidateSignaturesFn(beam.DoFn):
    """``(uid, signature)`` of the records of one fingerprint spill file that
    are in a candidate pair (``candidates``: their packed uids)."""

    def process(self, path: str, candidates: PackedUidMap) -> Iterator[tuple[str, bytes]]:
        for chunk in _read_in_chunks(path):
            found, _ = candidates.lookup([uid for uid, _ in chunk])
            for (uid, placed), hit in zip(chunk, found.tolist()):
                if hit:
                    yield uid, placed.fingerprint.signature


class _ReadClusterMembersFn(beam.DoFn):
    """``(component, packed member)`` of the records of one fingerprint spill
    file that are in a component, with the signature only for records in a
    candidate pair (see :func:`_resolve`)."""

    def process(self, path: str, roots: PackedUidMap, candidates: PackedUidMap) -> Iterator[tuple[str, bytes]]:
        for chunk in _read_in_chunks(path):
            uids = [uid for uid, _ in chunk]
            in_component, components = roots.lookup(uids)
            in_pair, _ = candidates.lookup(uids)
            for (_, placed), member, paired, root in zip(
                    chunk, in_component.tolist(), in_pair.tolist(), components.tolist()):
                if member:
                    yield _fixed_hex(root), _pack_member(placed, with_signature=paired)


class _InvolvedFingerprintsFn(beam.DoFn):
    """Fingerprints of the records that have at least one candidate or exact
    edge, the only ones verification and cluster resolution need (see
    :func:`_involved_outputs`)."""

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Any]:
        uid, joined = element
        kinds = _either_kind(joined["involved"])
        if kinds:
            for fp in joined["fingerprint"]:
                yield from _involved_outputs(uid, PlacedFingerprint(fp, ""), kinds)


def _keyed_by_left(pair: str) -> tuple[str, str]:
    a, b = pair.split(" ")
    return a, b


def _left_signature_to_right(element: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, bytes]]]:
    uid, joined = element
    signatures = joined["signature"]
    if signatures:
        for right in joined["right"]:
            yield right, (uid, signatures[0])


class _VerifyPairsFn(beam.DoFn):
    """Keeps a candidate pair when its estimated Jaccard similarity reaches
    the threshold (the pair's two signatures met by uid)."""

    def __init__(self, config: DedupeConfig):
        super().__init__()
        self._threshold = config.threshold

    def setup(self) -> None:
        self._rejected = _counter("candidates_rejected")

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[str]:
        uid, joined = element
        signatures = joined["signature"]
        if not signatures:
            return
        signature = signatures[0]
        for left, left_signature in joined["left"]:
            if signature_similarity(left_signature, signature) >= self._threshold:
                yield _edge(left, uid)
            else:
                self._rejected.inc()


def _edge_array(edges: Sequence[str]) -> np.ndarray:
    """Edges ``"uidA uidB"`` as 16-byte keys, the two ends of each edge side by side."""
    return _uid_array([uid for edge in edges for uid in edge.split(" ")])


def connected_components(ends: np.ndarray) -> PackedUidMap:
    """``uid -> smallest uid of its component`` of the graph whose edges are
    the pairs ``ends[0::2], ends[1::2]`` (16-byte keys), as
    :class:`UnionFind` gives it, computed on arrays (~32 bytes per edge
    instead of a dict of str per node): every root hooks under the smallest
    root it shares an edge with, then every node points straight to its
    root, until no edge joins two roots. Pointers only go to smaller nodes,
    so a root is the smallest node of its component."""
    if not len(ends):
        return EMPTY_ROOTS
    nodes = np.unique(ends)
    left = np.searchsorted(nodes, ends[0::2])
    right = np.searchsorted(nodes, ends[1::2])
    parent = np.arange(len(nodes), dtype=np.int64)
    while True:
        left_root, right_root = parent[left], parent[right]
        apart = left_root != right_root
        if not apart.any():
            break
        left_root, right_root = left_root[apart], right_root[apart]
        np.minimum.at(parent, np.maximum(left_root, right_root), np.minimum(left_root, right_root))
        while True:
            grandparent = parent[parent]
            if np.array_equal(grandparent, parent):
                break
            parent = grandparent
    return PackedUidMap(nodes, nodes[parent])


class _ComponentsFn(_PackingCombineFn):
    """Connected components of the edges (see :func:`connected_components`):
    a :class:`PackedUidMap` uid -> smallest uid of its component. A dict of
    str would take ~6x the memory in the one worker that merges them all,
    and the result is read by every worker."""

    def _pack(self, inputs: list[str]) -> np.ndarray:
        return _edge_array(inputs)

    def _merge(self, parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)

    def extract_output(self, accumulator: list) -> PackedUidMap:
        packed = self._packed(accumulator)
        return connected_components(packed if packed is not None else np.empty(0, dtype=f"S{_UID_BYTES}"))


def _pack_member(placed: PlacedFingerprint, with_signature: bool = True) -> bytes:
    """A cluster member as the runner holds it until its cluster is resolved:
    one byte string (~150 bytes; the hex hashes as raw bytes), not a
    pickled NamedTuple (~330). Without its signature unless asked."""
    fp = placed.fingerprint
    file_id, _, index = placed.position.partition(":")
    return pickle.dumps((
        bytes.fromhex(fp.uid), fp.id, fp.source, fp.published_key, fp.body_length, bytes.fromhex(fp.body_hash),
        None if fp.headline_hash is None else bytes.fromhex(fp.headline_hash),
        fp.signature if with_signature else b"", fp.near, bytes.fromhex(file_id), int(index) if index else -1),
        protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_member(packed: bytes) -> PlacedFingerprint:
    uid, id_, source, published_key, body_length, body_hash, headline_hash, signature, near, file_id, index = \
        pickle.loads(packed)
    return PlacedFingerprint(
        Fingerprint(uid.hex(), id_, source, tuple(published_key), body_length, body_hash.hex(),
                    None if headline_hash is None else headline_hash.hex(), signature, near),
        spill_position(file_id.hex(), index) if index >= 0 else "")


def _fingerprint_by_component(element: tuple[str, PlacedFingerprint],
                              roots: PackedUidMap) -> Iterator[tuple[str, bytes]]:
    """``(component, packed member)``; nothing for a record whose candidate
    pairs all failed verification (it is in no component)."""
    uid, placed = element
    root = roots.get(uid)
    if root is not None:
        yield root, _pack_member(placed)


def _resolve(element: tuple[str, Iterable[bytes]]) -> list[tuple[str, tuple]]:
    """``(uid, decision)`` of each record of one cluster."""
    return resolve_cluster(_unpack_member(packed).fingerprint for packed in element[1])


def _resolve_by_spill_file(element: tuple[str, Iterable[bytes]]) -> Iterator[tuple[str, tuple[int, tuple]]]:
    """``(spill file id, (index, decision))`` of each record of one cluster:
    the decisions travel to the file that holds the document."""
    members = [_unpack_member(packed) for packed in element[1]]
    decisions = dict(resolve_cluster(placed.fingerprint for placed in members))
    for placed in members:
        file_id, index = placed.position.split(":")
        yield file_id, (int(index), decisions[placed.fingerprint.uid])


def _keyed_by_file_id(path: str) -> tuple[str, str]:
    return spill_file_id(path), path


class _EmitFn(beam.DoFn):
    """Applies the decisions (a side input: only documents in a cluster have
    one) to the documents as they stream by; main output kept documents,
    ``duplicates`` records, ``copies`` the records present more than once,
    which must meet by uid to keep exactly one."""

    def setup(self) -> None:
        self._canonical = _counter("canonical")
        self._reasons = {reason: _counter(f"duplicates.{reason}") for reason in REASONS}

    def process(self, element: tuple[str, Document], decisions: dict[str, tuple],
                repeated: dict[str, tuple[int, str]]) -> Iterator[Any]:
        uid, doc = element
        if uid in repeated:
            yield beam.pvalue.TaggedOutput(_COPIES, element)
            return
        yield from self._emit([doc], decisions.get(uid))

    def _emit(self, docs: Iterable[Document], decision: tuple | None) -> Iterator[Any]:
        for tag, record in emit(docs, decision):
            yield from self._output(tag, record)

    def _output(self, tag: str, record: Any) -> Iterator[Any]:
        if tag == DOCUMENTS:
            self._canonical.inc()
            yield record
        else:
            self._reasons[record["reason"]].inc()
            yield beam.pvalue.TaggedOutput(DUPLICATES, record)


class _EmitCopiesFn(_EmitFn):
    """All records of one uid present more than once, with its decision."""

    def process(self, element: tuple[str, Iterable[Document]], decisions: dict[str, tuple]) -> Iterator[Any]:
        uid, docs = element
        yield from self._emit(docs, decisions.get(uid))


_PATH = "path"
_DECISION = "decision"
_COPY = "copy"


class _EmitSpilledFn(_EmitFn):
    """Every record of one spill file with the decisions sent to it (by index
    in the file): only this file's decisions are held, never the whole
    corpus's. A record present more than once is told apart from its copies
    by its spill position, so no copies need to meet (and no Flatten has to
    hold the documents)."""

    def process(self, element: tuple[str, dict[str, list]]) -> Iterator[Any]:  # pylint: disable=arguments-differ
        file_id, joined = element
        paths = list(joined[_PATH])
        decisions = dict(joined[_DECISION])
        copies = dict(joined[_COPY])
        if len(paths) != 1:
            # Decisions come only from records of files whose path was emitted.
            raise RuntimeError(f"dedupe: spill file {file_id} has {len(paths)} paths "
                               f"for {len(decisions)} decisions and {len(copies)} copies")
        for index, (_, doc) in enumerate(read_spill_file(paths[0])):
            decision = decisions.get(index)
            copy = copies.get(index)
            if copy is None:
                yield from self._emit([doc], decision)
                continue
            records, kept = copy
            tag, record = emit_copy(doc, decision, records, kept)
            yield from self._output(tag, record)


class DeduplicateArticles(beam.PTransform):
    """Keeps one copy of every article scraped more than once.

    Input: ``Document``. Output: a dict with ``DOCUMENTS`` (the kept
    ``Document`` s, each with ``duplicates = N`` and the ``dedupe`` stage
    recorded), ``DUPLICATES`` (one dict per folded copy: ``id``,
    ``source``, ``duplicate_of``, ``duplicate_of_source``, ``reason``,
    ``similarity``) and ``DEAD_LETTER`` (a ``DeadLetter``, reason
    ``stage_error``, for a document whose fingerprint raised; it is in
    neither of the others). Counters: see the module docstring.

    ``spill_directory`` (any Beam file system path every worker can reach,
    e.g. ``gs://bucket/tmp/dedupe``): where the documents, their
    fingerprints and the bucket index wait while the decisions are made, so
    the runner holds only file references. The caller deletes it after the
    run (``newswash run`` does). Without it, the runner holds the documents
    and the index, which is fine for tests and small inputs.
    """

    def __init__(self, config: DedupeConfig = DedupeConfig(), spill_directory: str | None = None):
        super().__init__()
        if not isinstance(config, DedupeConfig):
            raise ValueError(f"expected a DedupeConfig, got {type(config).__name__}")
        self._config = config
        self._spill_directory = spill_directory

    def expand(self, documents):
        config = self._config
        spilled = self._spill_directory is not None
        signed = (
            documents
            | "Fingerprint" >> beam.ParDo(_FingerprintFn(config, self._spill_directory)).with_outputs(
                _KEYED_DOCUMENTS, _SPILLED, _FINGERPRINTS, _FINGERPRINTS_SPILLED, DEAD_LETTER,
                main="bucket_index")
            .with_output_types(typehints.Tuple[int, bytes]))
        buckets = (
            signed["bucket_index"]
            | "GroupIndexShards" >> beam.GroupByKey()
            | "BucketCandidates" >> beam.ParDo(_BucketCandidatesFn(config, spilled=spilled)).with_outputs(
                _CANDIDATES, _REPEATED, main=_EXACT_EDGES))
        exact_edges = buckets[_EXACT_EDGES] | "DistinctExactEdges" >> beam.Distinct()
        candidates = buckets[_CANDIDATES] | "DistinctCandidates" >> beam.Distinct()
        candidate_endpoints = candidates | "CandidateEndpoints" >> beam.FlatMap(_edge_endpoints, _CANDIDATE_PAIR)

        if spilled:
            # Every fingerprint stays on disk and is read twice: first for
            # the signatures of the records in a candidate pair (the side
            # input: ~17 bytes per such record), then, once the components
            # are known, for the records in a cluster. The runner holds
            # neither the fingerprints nor a map of the involved records.
            fingerprint_files = signed[_FINGERPRINTS_SPILLED] | "SpreadFingerprintFiles" >> beam.Reshuffle()
            # Without defaults: CombineGlobally would pass its result through
            # one more side input to replace an empty result.
            candidate_uids = beam.pvalue.AsSingleton(
                candidate_endpoints
                | "PackCandidateUids" >> beam.CombineGlobally(_InvolvedUidsFn()).without_defaults(),
                default_value=EMPTY_UID_MAP)
            signatures = fingerprint_files | "ReadCandidateSignatures" >> beam.ParDo(
                _ReadCandidateSignaturesFn(), candidate_uids)
        else:
            involved = (
                (exact_edges | "ExactEdgeEndpoints" >> beam.FlatMap(_edge_endpoints, _EXACT_EDGE),
                 candidate_endpoints)
                | "FlattenEndpoints" >> beam.Flatten())
            involved_fingerprints = (
                {"fingerprint": signed[_FINGERPRINTS], "involved": involved}
                | "JoinInvolved" >> beam.CoGroupByKey()
                | "InvolvedFingerprints" >> beam.ParDo(_InvolvedFingerprintsFn()).with_outputs(
                    _SIGNATURES, main=_FINGERPRINTS))
            signatures = involved_fingerprints[_SIGNATURES]

        # Verification joins only the signatures of records in a candidate
        # pair; most clustered records are joined by exact-body edges only,
        # and their fingerprints meet once, without signature, to resolve.
        left_signatures = (
            {"signature": signatures,
             "right": candidates | "KeyByLeft" >> beam.Map(_keyed_by_left)}
            | "JoinLeft" >> beam.CoGroupByKey()
            | "LeftSignatureToRight" >> beam.FlatMap(_left_signature_to_right))
        verified_edges = (
            {"signature": signatures, "left": left_signatures}
            | "JoinRight" >> beam.CoGroupByKey()
            | "VerifyPairs" >> beam.ParDo(_VerifyPairsFn(config)))

        # The components (uid -> smallest uid, packed: 32 bytes per clustered
        # record) reach the fingerprints as a side input: a join would hold
        # every clustered record's fingerprint once more.
        roots = beam.pvalue.AsSingleton(
            (exact_edges, verified_edges)
            | "FlattenEdges" >> beam.Flatten()
            | "Components" >> beam.CombineGlobally(_ComponentsFn()).without_defaults(),
            default_value=EMPTY_ROOTS)
        if spilled:
            members = fingerprint_files | "ReadClusterMembers" >> beam.ParDo(
                _ReadClusterMembersFn(), roots, candidate_uids)
        else:
            members = involved_fingerprints[_FINGERPRINTS] | "KeyByComponent" >> beam.FlatMap(
                _fingerprint_by_component, roots)
        clusters = members | "GroupClusters" >> beam.GroupByKey()
        if spilled:
            # Each decision (and each copy of a repeated record) goes to the
            # spill file of its document, so a file is written out knowing
            # only its own decisions, and the runner never holds the documents:
            # they stream from the spill files to the outputs.
            emitted = (
                {_PATH: signed[_SPILLED] | "KeySpillFiles" >> beam.Map(_keyed_by_file_id),
                 _DECISION: clusters | "PickCanonical" >> beam.FlatMap(_resolve_by_spill_file),
                 _COPY: buckets[_REPEATED]}
                | "JoinDecisionsToSpillFiles" >> beam.CoGroupByKey()
                | "Emit" >> beam.ParDo(_EmitSpilledFn()).with_outputs(DUPLICATES, main=DOCUMENTS))
            return {DOCUMENTS: emitted[DOCUMENTS], DUPLICATES: emitted[DUPLICATES],
                    DEAD_LETTER: signed[DEAD_LETTER]}

        decisions_by_uid = beam.pvalue.AsDict(clusters | "PickCanonical" >> beam.FlatMap(_resolve))
        repeated_by_uid = beam.pvalue.AsDict(buckets[_REPEATED])
        emitted = signed[_KEYED_DOCUMENTS] | "Emit" >> beam.ParDo(
            _EmitFn(), decisions_by_uid, repeated_by_uid).with_outputs(
                DUPLICATES, _COPIES, main=DOCUMENTS)
        copies = (
            emitted[_COPIES]
            | "GroupCopies" >> beam.GroupByKey()
            | "EmitCopies" >> beam.ParDo(_EmitCopiesFn(), decisions_by_uid).with_outputs(
                DUPLICATES, main=DOCUMENTS))
        return {
            DOCUMENTS: (emitted[DOCUMENTS], copies[DOCUMENTS]) | "FlattenKept" >> beam.Flatten(),
            DUPLICATES: (emitted[DUPLICATES], copies[DUPLICATES]) | "FlattenDuplicates" >> beam.Flatten(),
            DEAD_LETTER: signed[DEAD_LETTER],
        }
