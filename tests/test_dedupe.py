"""Tests of the ``dedupe`` stage: pure helpers, the in-memory reference, the
composite under TestPipeline (in-process and two worker processes).

The expected canonical set and duplicate records of ``CORPUS`` were written by
applying the rules in ``transforms/dedupe.py`` by hand (see the comment on each
document), not by copying output.
"""

from __future__ import annotations

import collections
import dataclasses

import operator
import pickle
import os
import random
import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.windowed_value import WindowedValue
from hypothesis import given, settings
from hypothesis import strategies as st

import transforms.dedupe as dedupe_module
from transforms._dedupe_corpus import generate_duplicate_corpus
from transforms._dedupe_minhash import (
    UnionFind,
    classify,
    lsh_params,
    minhash,
    normalize_body,
    permutations,
    published_sort_key,
    rank_key,
    shingles,
    signature_similarity,
)
from transforms.dedupe import (
    DUPLICATES,
    STAGE,
    DedupeConfig,
    DeduplicateArticles,
    BucketIndexWriter,
    bucket_candidates,
    bucket_edges,
    bucket_keys,
    bucket_member,
    copy_rank,
    copy_tag,
    copy_tag_from,
    deduplicate,
    fingerprint,
    resolve_cluster,
    shard_candidates,
)
from transforms.document import Document
from transforms.stage import DOCUMENTS

# ``generate_duplicate_corpus(n, seed)`` (transforms/_dedupe_corpus.py) is imported
# here for reuse: ``from tests.test_dedupe import generate_duplicate_corpus`` or
# directly from the package.

# ------------------------------------------------------------------ texts

FLOOD = [
    "The river burst its banks on Sunday morning and flooded the centre of the town.",
    "Emergency crews evacuated more than 300 residents from homes near the old bridge.",
    "The mayor said the water had risen faster than at any time in the past forty years.",
    "Shops along the high street were closed and several roads remained under water by the evening.",
    "Forecasters expect more heavy rain on Tuesday, raising fears of a second flood wave.",
    "A temporary shelter has been opened in the school gymnasium for families who lost power.",
    "Officials urged drivers to avoid the valley road until engineers have inspected the embankment.",
    "Volunteers filled sandbags outside the fire station throughout the night.",
]
ELECTION = [
    "The incumbent mayor won a second term on Saturday with 58 percent of the vote.",
    "Turnout was lower than in the previous election, the electoral commission said.",
    "Her opponent conceded defeat shortly after midnight and congratulated her on the result.",
    "The new council will meet for the first time next month to agree the budget.",
    "Supporters gathered in the main square to celebrate as the final results were announced.",
    "Analysts said housing and public transport had dominated the campaign.",
]
MATCH = [
    "The home side came from two goals down to win the cup final in extra time.",
    "Their captain scored the winner with a header from a corner in the 112th minute.",
    "Fans invaded the pitch after the final whistle and the trophy ceremony was delayed.",
    "The coach praised his players for their spirit and said the victory belonged to the city.",
    "It is the club's first major trophy in more than two decades.",
]


def text(sentences: list[str]) -> str:
    return " ".join(sentences[:4]) + "\n\n" + " ".join(sentences[4:])


FLOOD_TEXT = text(FLOOD)
# Re-scrape: curly quotes, an nbsp, doubled spaces, a trailing newline. Same normalised body.
FLOOD_RESCRAPE = FLOOD_TEXT.replace("The mayor said", "The mayor  said").replace(
    "forty years", "forty\u00a0years").replace("300 residents", "300 \u2018residents\u2019") + "\n"
# One sentence replaced and a sign-off added: 2-gram Jaccard with FLOOD_TEXT ~0.75.
FLOOD_EDITED = text(FLOOD[:7] + [
    "Volunteers worked through the night to fill sandbags outside the fire station."]) + \
    "\n\nReporting by Jane Doe; editing by John Roe."
# The last sentence dropped: Jaccard ~0.9.
FLOOD_SHORTER = text(FLOOD[:7])
ELECTION_TEXT = text(ELECTION)
WEATHER_TEXT = text([
    "A heatwave is expected to reach the south coast by Thursday, forecasters said.",
    "Temperatures could climb above 35 degrees in some inland areas.",
    "Health officials advised older people to stay indoors during the afternoon.",
    "Water companies asked customers to avoid using garden hoses.",
    "The hot spell is forecast to end with thunderstorms at the weekend.",
])
MATCH_TEXT = text(MATCH)

D = Document


def doc(doc_id, body, *, title=None, published=None, source=None):
    return D(id=doc_id, text=body, title=title, published=published, source=source or f"in.jsonl:{doc_id}")


CORPUS = [
    # Cluster A. a1 is the earliest published: canonical.
    doc("a1", FLOOD_TEXT, title="River Floods Town Centre", published="2017-07-16T08:00:00"),
    # Same normalised body; same headline key once " | Daily Post" is dropped -> exact_body.
    doc("a2", FLOOD_RESCRAPE, title="River floods town centre | Daily Post", published="2017-07-16T09:00:00"),
    # Same body, other headline -> same_body_edited_headline (published None: never canonical).
    doc("a3", FLOOD_TEXT, title="Town Centre Under Water After Storm"),
    # Same headline, near body; 12:00+02:00 is 10:00 UTC, later than a1 -> same_headline_near_body.
    doc("a4", FLOOD_EDITED, title="River Floods Town Centre", published="2017-07-16T12:00:00+02:00"),
    # Near body, other headline -> near_duplicate_body.
    doc("a5", FLOOD_SHORTER, title="Storm Brings Flooding", published="2017-07-17"),
    # Cluster B: all three have the same normalised body. b3 and b1 have the same
    # published time; b3's raw text is longer (double spaces) -> b3 is canonical.
    doc("b1", ELECTION_TEXT, title="Mayor Wins Second Term", published="2017-07-15T20:00:00Z"),
    # Hostile input: the id "b1" again, from another source, no date -> exact_body of b3.
    doc("b1", ELECTION_TEXT, title="Mayor Wins Second Term", source="other.jsonl:9"),
    doc("b3", ELECTION_TEXT.replace(". ", ".  "), title="Mayor wins second term",
        published="2017-07-15T22:00:00+02:00"),
    # Cluster C: identical in all but id -> the smallest id "c-a" is canonical.
    doc("c-x", MATCH_TEXT, title="Cup Final Comeback", published="2017-05-20"),
    doc("c-a", MATCH_TEXT, title="Cup Final Comeback", published="2017-05-20"),
    # Short bodies (< min_tokens words) still match exactly: d1 < d2 by id.
    doc("d2", "Markets closed early.", title="Markets"),
    doc("d1", "Markets closed early!", title="Markets"),
    # Empty bodies are never duplicates of each other.
    doc("e1", "", title="Empty"),
    doc("e2", "  \n", title="Empty"),
    # The very same record read twice: one is kept, the other is its exact_body copy.
    doc("g", WEATHER_TEXT, title="Heatwave", published="2017-05-21", source="again.jsonl:1"),
    doc("g", WEATHER_TEXT, title="Heatwave", published="2017-05-21", source="again.jsonl:1"),
]

# (id, duplicate_of, reason), written from the comments above.
EXPECTED_DUPLICATES = sorted([
    ("a2", "a1", "exact_body"),
    ("a3", "a1", "same_body_edited_headline"),
    ("a4", "a1", "same_headline_near_body"),
    ("a5", "a1", "near_duplicate_body"),
    ("b1", "b3", "exact_body"),
    ("b1", "b3", "exact_body"),
    ("c-x", "c-a", "exact_body"),
    ("d2", "d1", "exact_body"),
    ("g", "g", "exact_body"),
])
# (id, duplicates) of the kept documents.
EXPECTED_KEPT = sorted([
    ("a1", 4), ("b3", 2), ("c-a", 1), ("d1", 1), ("e1", 0), ("e2", 0), ("g", 1),
])


def kept_summary(doc: Document) -> tuple:
    return (doc.id, doc.duplicates)


def duplicate_summary(record: dict) -> tuple:
    return (record["id"], record["duplicate_of"], record["reason"])


# ------------------------------------------------------------------ pure helpers


def test_normalize_body():
    assert normalize_body("\u201cOil\u201d  PRICES\u00a0fall \u2014 by 2.5%!\n") == "oil prices fall by 2 5"
    assert normalize_body(FLOOD_RESCRAPE) == normalize_body(FLOOD_TEXT)
    assert normalize_body("Rates rose 2%") != normalize_body("Rates rose 3%")  # digits kept
    assert normalize_body(" \n\t ") == ""


def test_published_sort_key():
    assert published_sort_key("2017-07-16T10:00:00+02:00") == (0, "2017-07-16T08:00:00")
    assert published_sort_key("2017-07-16T08:00:00Z") == (0, "2017-07-16T08:00:00")
    assert published_sort_key("2017-07-16") < published_sort_key("2017-07-16T00:00:00")
    assert published_sort_key("yesterday") == (1, "yesterday")
    assert published_sort_key("") == published_sort_key(None) == (2, "")
    assert published_sort_key("2017-07-16") < published_sort_key("yesterday") < published_sort_key(None)


def test_rank_key_is_earliest_then_longest_then_smallest_id():
    config = DedupeConfig()
    early = fingerprint(doc("z", "a b c", published="2017-01-01"), config)
    late_long = fingerprint(doc("a", "a b c d e f g h", published="2017-01-02"), config)
    undated = fingerprint(doc("0", "a b c d e f g h i j k"), config)
    long_same_day = fingerprint(doc("y", "a b c d", published="2017-01-01"), config)
    same_len_b = fingerprint(doc("b", "x y z", published="2017-01-01"), config)
    ordered = sorted([undated, late_long, early, long_same_day, same_len_b], key=rank_key)
    assert [fp.id for fp in ordered] == ["y", "b", "z", "a", "0"]


def test_lsh_params_and_config():
    assert lsh_params(0.5, 128) == (25, 5)
    for threshold in (0.3, 0.5, 0.7, 0.9):
        bands, rows = lsh_params(threshold, 128)
        assert bands * rows <= 128
        # The S-curve's midpoint (1/b)^(1/r) is near the threshold.
        assert abs((1 / bands) ** (1 / rows) - threshold) < 0.1
    assert DedupeConfig(bands=16).band_rows == (16, 8)
    for bad in ({"threshold": 0}, {"threshold": 1.5}, {"shingle_size": 0}, {"num_perm": 1},
                {"bands": 200}, {"near_duplicates": "no"}, {"threshold": True}):
        with pytest.raises(ValueError):
            DedupeConfig(**bad)
    with pytest.raises(ValueError):
        DeduplicateArticles({"threshold": 0.5})


def test_minhash_estimates_jaccard():
    perms = permutations(128, 1)
    a = set(f"w{i}" for i in range(100))
    b = set(f"w{i}" for i in range(50, 150))  # true Jaccard 50/150 = 0.333
    sim = signature_similarity(bytes(_pack(minhash(a, perms))), bytes(_pack(minhash(b, perms))))
    assert abs(sim - 1 / 3) < 0.13
    assert signature_similarity(_pack(minhash(a, perms)), _pack(minhash(set(a), perms))) == 1.0
    assert signature_similarity(_pack(minhash(a, perms)), _pack(minhash({"x", "y"}, perms))) < 0.1


def _pack(signature):
    from transforms._dedupe_minhash import pack_signature

    return pack_signature(signature)


def test_signatures_do_not_depend_on_the_process_hash_seed():
    code = ("from transforms._dedupe_minhash import minhash, permutations, shingles, normalize_body;"
            "import sys; t = normalize_body(sys.stdin.read()).split();"
            "print(minhash(shingles(t, 2), permutations(16, 1)))")
    outputs = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        outputs.add(subprocess.run([sys.executable, "-c", code], input=FLOOD_TEXT, env=env,
                                   capture_output=True, text=True, check=True).stdout)
    here = str(minhash(shingles(normalize_body(FLOOD_TEXT).split(), 2), permutations(16, 1))) + "\n"
    assert outputs == {here}


def test_shingles():
    assert shingles(["a", "b", "c"], 2) == {"a b", "b c"}
    assert shingles(["a"], 2) == {"a"}
    assert shingles([], 2) == set()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from("abcdefgh")), max_size=20), st.randoms())
def test_union_find_does_not_depend_on_order(edges, rnd):
    first, second = UnionFind(), UnionFind()
    for a, b in edges:
        first.union(a, b)
    shuffled = list(edges)
    rnd.shuffle(shuffled)
    for a, b in shuffled:
        second.union(b, a)
    assert first.roots() == second.roots()
    for node, root in first.roots().items():
        assert root <= node  # the smallest member labels the component


def test_bucket_edges_verify_similarity():
    config = DedupeConfig()
    a1, a4, b1 = (fingerprint(doc(i, t), config) for i, t in (("a1", FLOOD_TEXT), ("a4", FLOOD_EDITED), ("b1", ELECTION_TEXT)))
    edges, truncated = bucket_edges("l:000:x", [b1, a4, a1], config)
    assert edges == [" ".join(sorted((a1.uid, a4.uid)))] and not truncated
    # Exact-body buckets link every copy to the smallest uid, without comparing.
    copies = [fingerprint(doc(i, FLOOD_TEXT), config) for i in ("x", "y", "z")]
    root = min(fp.uid for fp in copies)
    assert sorted(bucket_edges("b:" + copies[0].body_hash, copies, config)[0]) == sorted(
        " ".join(sorted((root, fp.uid))) for fp in copies if fp.uid != root)


def test_classify():
    config = DedupeConfig()
    a1 = fingerprint(doc("a1", FLOOD_TEXT, title="River Floods"), config)
    assert classify(fingerprint(doc("x", FLOOD_RESCRAPE, title="River floods - Site"), config), a1) == ("exact_body", 1.0)
    assert classify(fingerprint(doc("x", FLOOD_TEXT), config), a1) == ("exact_body", 1.0)
    assert classify(fingerprint(doc("x", FLOOD_TEXT, title="Other"), config), a1) == ("same_body_edited_headline", 1.0)
    reason, sim = classify(fingerprint(doc("x", FLOOD_EDITED, title="RIVER FLOODS!"), config), a1)
    assert reason == "same_headline_near_body" and 0.5 <= sim < 1.0
    reason, sim = classify(fingerprint(doc("x", FLOOD_EDITED, title="Other"), config), a1)
    assert reason == "near_duplicate_body" and 0.5 <= sim < 1.0


# ------------------------------------------------------------------ the corpus


def test_corpus_in_memory():
    kept, duplicates = deduplicate(CORPUS)
    assert sorted(kept_summary(d) for d in kept) == EXPECTED_KEPT
    assert sorted(duplicate_summary(r) for r in duplicates) == EXPECTED_DUPLICATES
    for d in kept:
        assert d.changes[-1] == (STAGE, d.duplicates)
    by_id = {r["id"]: r for r in duplicates}
    assert by_id["a2"]["similarity"] == by_id["a3"]["similarity"] == 1.0
    assert 0.5 <= by_id["a4"]["similarity"] < 1.0 and 0.5 <= by_id["a5"]["similarity"] < 1.0
    assert set(by_id["a2"]) == {"id", "duplicate_of", "reason", "similarity", "source", "duplicate_of_source"}
    sources = sorted(r["source"] for r in duplicates if r["id"] == "b1")
    assert sources == ["in.jsonl:b1", "other.jsonl:9"]
    assert by_id["b1"]["duplicate_of_source"] == "in.jsonl:b3"


def test_a_record_read_twice_counts_twice():
    copy = doc("r", MATCH_TEXT + " Extra.", title="Cup Final", published="2017-06-01")
    kept, duplicates = deduplicate([doc("c-a", MATCH_TEXT, title="Cup Final", published="2017-05-20"), copy, copy])
    assert [kept_summary(d) for d in kept] == [("c-a", 2)]
    assert sorted(duplicate_summary(r) for r in duplicates) == [("r", "c-a", "same_headline_near_body")] * 2


def test_unrelated_articles_stay_apart_at_a_low_threshold():
    kept, duplicates = deduplicate([doc("f", FLOOD_TEXT), doc("e", ELECTION_TEXT), doc("m", MATCH_TEXT)],
                                   DedupeConfig(threshold=0.2))
    assert len(kept) == 3 and not duplicates


def test_near_duplicates_off_keeps_exact_and_headline_pairs():
    kept, duplicates = deduplicate(CORPUS, DedupeConfig(near_duplicates=False))
    # a5 (near body, other headline) is only found through LSH.
    assert sorted(duplicate_summary(r) for r in duplicates) == [
        e for e in EXPECTED_DUPLICATES if e[0] != "a5"]
    assert ("a5", 0) in {kept_summary(d) for d in kept}


def _chain() -> list[Document]:
    """x ~ y ~ z with x and z further apart than y is from either.

    The seed is one where LSH puts x and y, and y and z, in a common bucket
    and never x and z (test_clusters_are_transitive checks that it still
    does): a pair at Jaccard 0.66 shares a bucket with probability ~0.86."""
    rng = random.Random(21)
    words = [f"w{i}" for i in range(3000)]
    sentences = [" ".join(rng.choice(words) for _ in range(12)) + "." for _ in range(28)]
    x = sentences[:20]
    y = sentences[:16] + sentences[20:24]
    z = sentences[:12] + sentences[20:28]
    return [doc("x", " ".join(x), published="2017-01-01"), doc("y", " ".join(y), published="2017-01-02"),
            doc("z", " ".join(z), published="2017-01-03")]


def test_clusters_are_transitive():
    docs = _chain()
    config = DedupeConfig(threshold=0.55)
    fps = {d.id: fingerprint(d, config) for d in docs}
    assert signature_similarity(fps["x"].signature, fps["y"].signature) >= 0.55
    assert signature_similarity(fps["y"].signature, fps["z"].signature) >= 0.55
    keys = {name: set(bucket_keys(fp, config)) for name, fp in fps.items()}
    assert keys["x"] & keys["y"] and keys["y"] & keys["z"] and not keys["x"] & keys["z"]
    kept, duplicates = deduplicate(docs, config)
    assert [d.id for d in kept] == ["x"] and kept[0].duplicates == 2
    by_id = {r["id"]: r for r in duplicates}
    assert by_id["z"]["duplicate_of"] == "x"
    # The similarity is always measured against the canonical document.
    assert by_id["z"]["similarity"] == signature_similarity(fps["z"].signature, fps["x"].signature)


@settings(max_examples=10, deadline=None)
@given(st.randoms(use_true_random=False))
def test_shuffled_input_gives_identical_output(rnd):
    corpus = CORPUS + _chain()
    baseline = deduplicate(corpus)
    shuffled = list(corpus)
    rnd.shuffle(shuffled)
    kept, duplicates = deduplicate(shuffled)
    assert sorted(kept, key=repr) == sorted(baseline[0], key=repr)
    assert sorted(duplicates, key=repr) == sorted(baseline[1], key=repr)


def test_generated_corpus_ground_truth():
    docs = generate_duplicate_corpus(150, seed=11)
    assert len(docs) == 150 and len({d.id for d in docs}) == 150
    assert generate_duplicate_corpus(150, seed=11) == docs  # deterministic
    kept, duplicates = deduplicate(docs)
    truth = {d.id: dict(d.fields) for d in docs}
    assert {d.id for d in kept} == {d.id for d in docs if truth[d.id]["variant"] == "original"}
    expected_reason = {"rescrape": "exact_body", "edited_headline": "same_body_edited_headline",
                       "near_body": "same_headline_near_body", "near_body_new_headline": "near_duplicate_body"}
    for record in duplicates:
        assert record["duplicate_of"] == truth[record["id"]]["origin"]
        assert record["reason"] == expected_reason[truth[record["id"]]["variant"]]


# ------------------------------------------------------------------ Beam


def _run_composite(options=None, spill_directory=None):
    """Runs the composite over CORPUS (shuffled) with hand-written expectations."""
    shuffled = list(CORPUS)
    random.Random(3).shuffle(shuffled)
    reference = deduplicate(CORPUS)
    with TestPipeline(options=options) as pipeline:
        outputs = pipeline | beam.Create(shuffled, reshuffle=False) | DeduplicateArticles(
            DedupeConfig(), spill_directory=spill_directory)
        # Stdlib getters, not functions of this module: worker processes cannot
        # import the test module.
        assert_that(outputs[DOCUMENTS] | "KeptSummary" >> beam.Map(operator.attrgetter("id", "duplicates")),
                    equal_to(EXPECTED_KEPT), label="CheckKept")
        assert_that(outputs[DUPLICATES] | "DuplicateSummary" >> beam.Map(
            operator.itemgetter("id", "duplicate_of", "reason")),
                    equal_to(EXPECTED_DUPLICATES), label="CheckDuplicates")
        # Field for field, the same as the in-memory reference (similarities included).
        assert_that(outputs[DOCUMENTS], equal_to(reference[0]), label="CheckDocumentsExact")
        assert_that(outputs[DUPLICATES], equal_to(reference[1]), label="CheckDuplicatesExact")


def test_composite_under_test_pipeline():
    _run_composite()


def test_composite_with_spill_directory(tmp_path):
    # Documents wait in spill files instead of the runner's memory: same result.
    _run_composite(spill_directory=str(tmp_path / "spill"))
    assert list((tmp_path / "spill").iterdir()), "the documents were not spilled"


@pytest.mark.slow
def test_composite_with_spill_directory_and_two_worker_processes(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    _run_composite(PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"]),
                   spill_directory=str(tmp_path / "spill"))


def _copies_of_one_record():
    """A record read three times (two byte-identical copies and one whose
    pass-through fields differ), beside a near copy of it and an unrelated one."""
    record = doc("r", MATCH_TEXT + " Extra.", title="Cup Final", published="2017-06-01")
    other_fields = dataclasses.replace(record, fields=(("section", "sport"),))
    lone = doc("lone", FLOOD_TEXT)
    return [record, record, other_fields, lone, lone]


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_copies_of_one_record_keep_exactly_one(tmp_path, spill):
    docs = _copies_of_one_record()
    kept, duplicates = deduplicate(docs)
    # The in-memory reference: one of the three "r" copies and one "lone" kept.
    assert sorted(kept_summary(d) for d in kept) == [("lone", 1), ("r", 2)]
    assert sorted(duplicate_summary(r) for r in duplicates) == [
        ("lone", "lone", "exact_body"), ("r", "r", "exact_body"), ("r", "r", "exact_body")]
    spill_directory = str(tmp_path / "spill") if spill else None
    for order in (docs, docs[::-1]):
        with TestPipeline() as pipeline:
            outputs = pipeline | beam.Create(order, reshuffle=False) | DeduplicateArticles(
                spill_directory=spill_directory)
            assert_that(outputs[DOCUMENTS], equal_to(kept), label="CheckKept")
            assert_that(outputs[DUPLICATES], equal_to(duplicates), label="CheckDuplicates")


def _canonical_without_pair():
    """A (earliest, kept) and B share a body; C is a near copy of it. The
    LSH pair is B-C (B has the smaller uid, so it represents the body), so
    the Beam path joins A by an exact-body edge only, without its signature."""
    edited = MATCH_TEXT.replace("in extra time", "after extra time").replace("the final", "the cup final")
    for n in range(100):
        a = doc(f"a{n}", MATCH_TEXT, published="2017-05-01")
        b = doc(f"b{n}", MATCH_TEXT, published="2017-05-02")
        if fingerprint(b, DedupeConfig()).uid < fingerprint(a, DedupeConfig()).uid:
            return [a, b, doc("c", edited, published="2017-05-03")]
    raise AssertionError("no id pair orders the uids as needed")


def test_resolve_cluster_fills_a_dropped_signature_from_the_same_body():
    docs = _canonical_without_pair()
    fps = [fingerprint(d, DedupeConfig()) for d in docs]
    full = resolve_cluster(fps)
    assert [decision[1][3] for decision in full[1:]] == ["exact_body", "near_duplicate_body"]
    assert full[2][1][4] == signature_similarity(fps[2].signature, fps[0].signature) > 0.5
    slim = [fps[0]._replace(signature=b""), fps[1], fps[2]]
    assert resolve_cluster(slim) == full


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_canonical_joined_by_an_exact_edge_only_is_compared_by_its_body(tmp_path, spill):
    docs = _canonical_without_pair()
    kept, duplicates = deduplicate(docs)
    assert [d.id for d in kept] == [docs[0].id]
    assert sorted(r["reason"] for r in duplicates) == ["exact_body", "near_duplicate_body"]
    with TestPipeline() as pipeline:
        outputs = pipeline | beam.Create(docs, reshuffle=False) | DeduplicateArticles(
            spill_directory=str(tmp_path / "spill") if spill else None)
        assert_that(outputs[DOCUMENTS], equal_to(kept), label="CheckKept")
        assert_that(outputs[DUPLICATES], equal_to(duplicates), label="CheckDuplicates")


def test_copy_rank_orders_copies_by_content_only():
    record = doc("r", MATCH_TEXT)
    assert copy_rank(record) == copy_rank(dataclasses.replace(record))
    assert copy_rank(record) != copy_rank(dataclasses.replace(record, fields=(("k", "v"),)))
    assert copy_tag(record, "f:1") != copy_tag(record, "f:2")
    assert copy_tag(record, "f:1").startswith(copy_rank(record) + "@")


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_composite_on_empty_input(tmp_path, spill):
    with TestPipeline() as pipeline:
        outputs = pipeline | beam.Create([], reshuffle=False).with_output_types(Document) | DeduplicateArticles(
            spill_directory=str(tmp_path / "spill") if spill else None)
        assert_that(outputs[DOCUMENTS], equal_to([]), label="CheckNoDocuments")
        assert_that(outputs[DUPLICATES], equal_to([]), label="CheckNoDuplicates")


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_composite_without_any_copy_keeps_everything(tmp_path, spill):
    # No edge and no candidate: the packed side inputs are their empty defaults.
    docs = [doc("flood", FLOOD_TEXT), doc("match", MATCH_TEXT, title="Cup Final"), doc("empty", " ")]
    with TestPipeline() as pipeline:
        outputs = pipeline | beam.Create(docs, reshuffle=False) | DeduplicateArticles(
            spill_directory=str(tmp_path / "spill") if spill else None)
        assert_that(outputs[DOCUMENTS] | beam.Map(operator.attrgetter("id", "duplicates")),
                    equal_to([("flood", 0), ("match", 0), ("empty", 0)]), label="CheckKept")
        assert_that(outputs[DUPLICATES], equal_to([]), label="CheckNoDuplicates")


@pytest.mark.slow
def test_composite_with_two_worker_processes():
    # A real multi-process DirectRunner run: the transforms package must be
    # importable by the workers (it is installed editable in the dev venv).
    from apache_beam.options.pipeline_options import PipelineOptions

    _run_composite(PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"]))


def test_counters():
    from apache_beam.metrics.metric import MetricsFilter

    pipeline = TestPipeline()
    outputs = pipeline | beam.Create(CORPUS, reshuffle=False) | DeduplicateArticles()
    assert_that(outputs[DOCUMENTS] | "Ids" >> beam.Map(operator.attrgetter("id")),
                equal_to([k for k, _ in EXPECTED_KEPT]))
    result = pipeline.run()
    result.wait_until_finish()
    # A counter is reported per step (kept documents are counted where they
    # stream by and where records read twice meet), so sum like the report does.
    counters = collections.Counter()
    for c in result.metrics().query(MetricsFilter().with_namespace("newswash"))["counters"]:
        counters[c.key.metric.name] += c.committed
    assert counters["dedupe.documents_in"] == len(CORPUS) == 16
    assert counters["dedupe.canonical"] == 7
    assert counters["dedupe.no_text"] == 2
    assert counters["dedupe.duplicates.exact_body"] == 6
    assert counters["dedupe.duplicates.same_body_edited_headline"] == 1
    assert counters["dedupe.duplicates.same_headline_near_body"] == 1
    assert counters["dedupe.duplicates.near_duplicate_body"] == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "a"]), st.text(max_size=60),
                          st.sampled_from([None, "T", "t!"]), st.sampled_from([None, "2017-01-01", "junk"])),
                max_size=8))
def test_any_input_is_fully_accounted(rows):
    docs = [doc(i, body, title=title, published=published, source="s") for i, body, title, published in rows]
    kept, duplicates = deduplicate(docs)
    # Every input record comes out exactly once: kept or as a duplicate record.
    assert len(kept) + len(duplicates) == len(docs)
    assert sum(d.duplicates for d in kept) == len(duplicates)
    kept_keys = {(d.id, d.source) for d in kept}
    assert all((r["duplicate_of"], r["duplicate_of_source"]) in kept_keys for r in duplicates)


def test_max_tokens_bounds_the_shingled_prefix():
    words = " ".join(f"w{i}" for i in range(40))
    a, b = doc("a", words + " tail one"), doc("b", words + " other ending here")
    config = DedupeConfig(max_tokens=30)
    fa, fb = fingerprint(a, config), fingerprint(b, config)
    assert fa.body_hash != fb.body_hash  # the exact hash covers the whole text
    assert signature_similarity(fa.signature, fb.signature) == 1.0
    kept, duplicates = deduplicate([a, b], config)
    # Same (missing) date: the longer body, b, is kept.
    assert [duplicate_summary(r) for r in duplicates] == [("a", "b", "near_duplicate_body")]


def test_token_minhash_behaves_like_shingle_minhash():
    from transforms._dedupe_minhash import minhash_tokens, shingle_hashes

    perms = permutations(128, 1)
    words = normalize_body(FLOOD_TEXT).split()
    assert len(shingle_hashes(words, 2)) == len(words) - 1
    assert len(shingle_hashes(["only"], 3)) == 1 and len(shingle_hashes([], 2)) == 0
    # Repeating the text repeats only shingles already present (plus one seam).
    doubled = minhash_tokens(words + words, 2, perms)
    assert signature_similarity(_pack(minhash_tokens(words, 2, perms)), _pack(doubled)) > 0.9
    edited = words[:]
    edited[len(edited) // 2] = "different"
    near = signature_similarity(_pack(minhash_tokens(words, 2, perms)), _pack(minhash_tokens(edited, 2, perms)))
    assert 0.85 < near < 1.0
    other = signature_similarity(_pack(minhash_tokens(words, 2, perms)),
                                 _pack(minhash_tokens(["unrelated", "words"] * 20, 2, perms)))
    assert other < 0.1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_normalize_body_ascii_fast_path_equals_the_unicode_rule(text):
    from transforms._dedupe_minhash import _NOT_WORDLIKE

    assert normalize_body(text) == " ".join(_NOT_WORDLIKE.sub(" ", text.casefold()).split())


# ------------------------------------------------------------------ packed bucket index

_HEX = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(st.tuples(
        st.sampled_from(["b:k1", "b:k2", "u:k3", "l:000:k4", "l:001:k4", "h:k5", "l:002:k6"]),
        st.sampled_from(["a" * 32, "b" * 32, "c" * 32, "0123456789abcdef" * 2]),
        st.sampled_from(["", "e" * 32, "f" * 32]),
        st.sampled_from(["", "0011223344556677@" + "9" * 32 + ":3", "0011223344556677@" + "8" * 32 + ":12"]),
    ), max_size=40),
    shards=st.integers(1, 5),
    flush_every=st.integers(1, 50),
)
def test_packed_index_finds_what_per_bucket_grouping_finds(entries, shards, flush_every):
    # The packed index is an encoding, not a rule: its candidates must be
    # exactly those of bucket_candidates over each key's members.
    config = DedupeConfig(max_bucket_size=2)
    writer = BucketIndexWriter(shards)
    blobs_by_shard: dict[int, list[bytes]] = collections.defaultdict(list)
    expected_members: dict[str, list[str]] = collections.defaultdict(list)
    for i, (key, uid, body, copy) in enumerate(entries):
        exact = key.startswith(("b:", "u:"))
        writer.add(key, uid, body, copy if exact else None)
        expected_members[key].append(bucket_member(uid, body or "0" * 32, copy if exact else ""))
        if i % flush_every == 0:
            for shard, blob in writer.flush():
                blobs_by_shard[shard].append(blob)
    for shard, blob in writer.flush():
        blobs_by_shard[shard].append(blob)

    def summary(results):
        edges, pairs, repeated, truncated = [], [], [], 0
        for result in results:
            edges += result.exact_edges
            pairs += result.pairs
            repeated += result.repeated
            truncated += result.truncated
        return sorted(edges), sorted(pairs), sorted(repeated), truncated

    expected = summary(bucket_candidates(key, members, config)
                       for key, members in expected_members.items() if len(members) > 1)
    packed = summary(candidates for blobs in blobs_by_shard.values()
                     for candidates in shard_candidates(blobs, config))
    assert packed == expected
    assert all(0 <= shard < shards for shard in blobs_by_shard)


@pytest.mark.parametrize("config", [DedupeConfig(), DedupeConfig(near_duplicates=False), DedupeConfig(bands=3)],
                         ids=["default", "no-lsh", "3-bands"])
def test_index_entries_of_a_fingerprint_are_those_of_its_bucket_keys(config):
    # add_fingerprint is the fast path of adding every bucket_keys() entry.
    fast, slow = BucketIndexWriter(7), BucketIndexWriter(7)
    docs = CORPUS + [doc("short", "two words", title="Short")]
    for number, document in enumerate(docs):
        fp = fingerprint(document, config)
        if fp is None:
            continue
        copy = copy_tag(document, f"{'ab' * 16}:{number}")
        fast.add_fingerprint(fp, config, copy)
        keys = bucket_keys(fp, config)
        slow.add(keys[0], fp.uid, fp.body_hash, copy)
        for key in keys[1:]:
            slow.add(key, fp.uid, fp.body_hash)
    blobs = fast.flush()
    assert blobs == slow.flush() and blobs
    assert fast.flush() == [] and not fast.full


def _records_by_shard(blobs):
    """Each shard's records (layout byte, then fixed-size records), sorted:
    the index is a multiset per shard."""
    from transforms.dedupe import _EXACT_LAYOUT, _EXACT_RECORD, _SIMILAR_RECORD

    records = collections.defaultdict(list)
    for shard, blob in blobs:
        size = _EXACT_RECORD if blob[:1] == _EXACT_LAYOUT else _SIMILAR_RECORD
        body = blob[1:]
        records[shard, blob[:1]].extend(body[start:start + size] for start in range(0, len(body), size))
    return {key: sorted(values) for key, values in records.items()}


@pytest.mark.parametrize("config", [DedupeConfig(), DedupeConfig(near_duplicates=False), DedupeConfig(bands=3)],
                         ids=["default", "no-lsh", "3-bands"])
def test_band_entries_of_a_batch_are_those_of_each_fingerprint(config):
    # The fingerprint step adds a batch's LSH band entries at once; the
    # index must hold exactly what add_fingerprint() adds for each.
    batched, single = BucketIndexWriter(7), BucketIndexWriter(7)
    docs = CORPUS + [doc("short", "two words", title="Short")]
    fps = [fp for fp in (fingerprint(document, config) for document in docs) if fp is not None]
    for number, fp in enumerate(fps):
        copy = copy_tag(docs[number], f"{'ab' * 16}:{number}")
        batched.add_fingerprint(fp, config, copy, bands=False)
        single.add_fingerprint(fp, config, copy)
    batched.add_band_entries(fps, config)
    expected = _records_by_shard(single.flush())
    assert _records_by_shard(batched.flush()) == expected and expected
    # Signatures of different lengths cannot share a matrix: each alone, same entries.
    mixed = [fps[0]._replace(signature=fps[0].signature[:64]), *fps[1:3]]
    one_by_one, together = BucketIndexWriter(3), BucketIndexWriter(3)
    for fp in mixed:
        one_by_one.add_fingerprint(fp, config, "")
        together.add_fingerprint(fp, config, "", bands=False)
    together.add_band_entries(mixed, config)
    assert _records_by_shard(together.flush()) == _records_by_shard(one_by_one.flush())


def test_packed_index_record_of_a_copy_round_trips():
    writer = BucketIndexWriter(1)
    tag = copy_tag_from("0011223344556677", "ab" * 16 + ":70000")
    writer.add("b:x", "a" * 32, "e" * 32, tag)
    writer.add("b:x", "a" * 32, "e" * 32, "")
    [(_, blob)] = writer.flush()
    [candidates] = list(shard_candidates([blob], DedupeConfig()))
    # Two records of one uid: repeated, and the empty tag (not spilled) sorts first.
    assert candidates.repeated == [("a" * 32, (2, ""))]
    writer.add("b:x", "a" * 32, "e" * 32, tag)
    writer.add("b:x", "a" * 32, "e" * 32, copy_tag_from("ffffffffffffffff", "00" * 16 + ":1"))
    [(_, blob)] = writer.flush()
    [candidates] = list(shard_candidates([blob], DedupeConfig()))
    assert candidates.repeated == [("a" * 32, (2, tag))]


def test_fingerprints_of_a_batch_equal_each_documents_own():
    docs = generate_duplicate_corpus(60, seed=5)
    docs = [*docs, Document(id="empty", text=" \n\t "), Document(id="short", text="two words")]
    config = DedupeConfig()
    batch = dedupe_module.fingerprints(docs, config)
    assert batch == [fingerprint(doc, config) for doc in docs]
    assert batch[-2] is None and batch[-1] is not None and not batch[-1].near


def test_spill_files_round_trip_across_chunks_and_files(tmp_path, monkeypatch):
    # Records are buffered and written in chunks; files are cut at a size.
    # Every record must come back, in order, at the position write() gave.
    monkeypatch.setattr(dedupe_module, "_SPILL_CHUNK_BYTES", 3000)
    monkeypatch.setattr(dedupe_module, "SPILL_FILE_BYTES", 20000)
    docs = generate_duplicate_corpus(40, seed=9)
    writer = dedupe_module._SpillWriter(str(tmp_path))
    positions, files = [], []
    for number, doc in enumerate(docs):
        position, full = writer.write(f"uid{number}", doc)
        positions.append(position)
        if full is not None:
            files.append(full)
    last = writer.close()
    if last is not None:
        files.append(last)
    assert len(files) > 2, "the test must cross file boundaries"
    read_back = []
    for path in files:
        file_id = dedupe_module.spill_file_id(path)
        for index, record in enumerate(dedupe_module.read_spill_file(path)):
            read_back.append((dedupe_module.spill_position(file_id, index), record))
    assert read_back == [(position, (f"uid{number}", doc))
                         for number, (position, doc) in enumerate(zip(positions, docs))]


# ------------------------------------------------------------------ packed side inputs


def _random_uids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    uids = [rng.randbytes(16).hex() for _ in range(count)]
    # Fixed-width numpy bytes drop trailing NULs when read back: keys and
    # values ending in 00 must still round-trip.
    return [*uids, "ab" + "00" * 15, "00" * 16, "ff" * 15 + "00"]


def _packed_roots(roots: dict[str, str]):
    uids = list(roots)
    return dedupe_module.PackedUidMap.from_pairs(uids, [bytes.fromhex(roots[uid]) for uid in uids], "S16")


def _combine_in_pickled_parts(combine, inputs, part_size):
    """``combine`` over ``inputs`` as the runner does it: one accumulator per
    part, each pickled (moved between workers), merged with an empty one."""
    accumulators = [combine.create_accumulator()]
    for start in range(0, len(inputs), part_size):
        accumulator = combine.create_accumulator()
        for element in inputs[start:start + part_size]:
            accumulator = combine.add_input(accumulator, element)
        accumulators.append(pickle.loads(pickle.dumps(accumulator)))
    return combine.extract_output(combine.merge_accumulators(accumulators))


def test_packed_uid_map_answers_like_a_dict():
    uids = _random_uids(500, seed=1)
    roots = {uid: uids[(number * 7) % len(uids)] for number, uid in enumerate(uids)}
    packed = _packed_roots(roots)
    assert len(packed) == len(roots)
    assert {uid: packed.get(uid) for uid in uids} == roots
    absent = _random_uids(50, seed=2)[:50]
    assert [packed.get(uid) for uid in absent] == [None] * 50
    found, values = packed.lookup([uids[3], absent[0], uids[-1]])
    assert found.tolist() == [True, False, True]
    restored = pickle.loads(pickle.dumps(packed))
    assert {uid: restored.get(uid) for uid in uids} == roots
    empty = _packed_roots({})
    assert len(empty) == 0 and empty.get(uids[0]) is None
    with pytest.raises(ValueError):
        packed.get("not-a-uid")


def test_involved_uids_combine_ors_the_kinds_of_each_uid(monkeypatch):
    # Small packing threshold: accumulators pack and merge several times.
    monkeypatch.setattr(dedupe_module._InvolvedUidsFn, "_PACK_EVERY", 7)
    uids = _random_uids(40, seed=3)
    rng = random.Random(4)
    endpoints = [(rng.choice(uids), rng.choice([1, 2])) for _ in range(300)]
    expected: dict[str, int] = {}
    for uid, kind in endpoints:
        expected[uid] = expected.get(uid, 0) | kind
    combine = dedupe_module._InvolvedUidsFn()
    packed = _combine_in_pickled_parts(combine, endpoints, 50)
    assert len(packed) == len(expected)
    assert {uid: packed.get(uid) for uid in expected} == expected
    assert combine.extract_output(combine.create_accumulator()).get(uids[0]) is None


def test_bucket_candidates_list_every_copy_of_a_repeated_record():
    tag_one = copy_tag_from("0011223344556677", "ab" * 16 + ":5")
    tag_two = copy_tag_from("0011223344556677", "cd" * 16 + ":0")
    tag_other = copy_tag_from("8899aabbccddeeff", "ab" * 16 + ":6")
    members = [bucket_member("b" * 32, "e" * 32, tag_two), bucket_member("a" * 32, "e" * 32, tag_other),
               bucket_member("b" * 32, "e" * 32, tag_one)]
    candidates = bucket_candidates("b:" + "e" * 32, members, DedupeConfig())
    assert candidates.repeated == [("b" * 32, (2, tag_one))]
    assert candidates.copies == (("b" * 32, tag_one), ("b" * 32, tag_two))
    assert candidates.exact_edges == [f"{'a' * 32} {'b' * 32}"]
    # Headline and LSH buckets never fold copies.
    assert bucket_candidates("l:x", members, DedupeConfig()).copies == ()


def test_bucket_candidates_fn_sends_each_copy_to_its_spill_file():
    writer = BucketIndexWriter(1)
    kept_tag = copy_tag_from("0011223344556677", "ab" * 16 + ":5")
    other_tag = copy_tag_from("0011223344556677", "cd" * 16 + ":9")
    for tag in (other_tag, kept_tag):
        writer.add("b:x", "a" * 32, "e" * 32, tag)
    [(shard, blob)] = writer.flush()
    spilled = dedupe_module._BucketCandidatesFn(DedupeConfig(), spilled=True)
    spilled.setup()
    outputs = list(spilled.process((shard, [blob])))
    assert sorted(output.value for output in outputs) == [
        ("ab" * 16, (5, (2, True))), ("cd" * 16, (9, (2, False)))]
    assert {output.tag for output in outputs} == {dedupe_module._REPEATED}
    in_memory = dedupe_module._BucketCandidatesFn(DedupeConfig())
    in_memory.setup()
    assert [output.value for output in in_memory.process((shard, [blob]))] == [("a" * 32, (2, kept_tag))]


def test_emit_spilled_fn_applies_only_its_files_decisions(tmp_path):
    docs = [doc("one", FLOOD_TEXT), doc("two", MATCH_TEXT), doc("three", FLOOD_TEXT + " More.")]
    writer = dedupe_module._SpillWriter(str(tmp_path))
    for number, document in enumerate(docs):
        writer.write(f"uid{number}", document)
    path = writer.close()
    file_id = dedupe_module.spill_file_id(path)
    emit = dedupe_module._EmitSpilledFn()
    emit.setup()
    joined = {"path": [path], "decision": [(2, ("duplicate", "one", "", "near_duplicate_body", 0.9)),
                                           (0, ("canonical", 1))],
              "copy": [(1, (2, False))]}
    outputs = list(emit.process((file_id, joined)))
    kept = [output for output in outputs if not isinstance(output, beam.pvalue.TaggedOutput)]
    folded = [output.value for output in outputs if isinstance(output, beam.pvalue.TaggedOutput)]
    assert [(d.id, d.duplicates) for d in kept] == [("one", 1)]
    assert sorted((r["id"], r["duplicate_of"], r["reason"]) for r in folded) == [
        ("three", "one", "near_duplicate_body"), ("two", "two", "exact_body")]
    # Decisions for a file whose path never arrived are a bug, not data to drop.
    with pytest.raises(RuntimeError, match="0 paths"):
        list(emit.process((file_id, {"path": [], "decision": joined["decision"], "copy": []})))


def test_packed_cluster_member_round_trips():
    config = DedupeConfig()
    odd = Document(id="id-\ud800-lone", text=MATCH_TEXT, title=None, source="src\x00", published="not a date")
    dated = doc("dated", FLOOD_TEXT, title="Flood", published="2017-07-16T15:18:15+02:00")
    for document in (odd, dated):
        fp = fingerprint(document, config)
        for position in ("", "ab" * 16 + ":0", "00" * 16 + ":4294967295"):
            placed = dedupe_module.PlacedFingerprint(fp, position)
            assert dedupe_module._unpack_member(dedupe_module._pack_member(placed)) == placed
            slim = dedupe_module._unpack_member(dedupe_module._pack_member(placed, with_signature=False))
            assert slim == dedupe_module.PlacedFingerprint(fp._replace(signature=b""), position)
    assert fingerprint(odd, config).headline_hash is None


def _union_find_roots(edges: list[str]) -> dict[str, str]:
    union = UnionFind()
    for edge in edges:
        union.union(*edge.split(" "))
    return union.roots()


def _random_graph(seed: int, nodes: int, edges: int) -> list[str]:
    rng = random.Random(seed)
    uids = _random_uids(nodes, seed=seed)
    graph = []
    for _ in range(edges):
        a, b = rng.sample(uids, 2)
        graph.append(f"{min(a, b)} {max(a, b)}")
    return graph


@pytest.mark.parametrize("seed,nodes,edges", [(0, 10, 4), (1, 200, 150), (2, 200, 400), (3, 1000, 990)])
def test_connected_components_equal_union_find(seed, nodes, edges):
    graph = _random_graph(seed, nodes, edges)
    packed = dedupe_module.connected_components(dedupe_module._edge_array(graph))
    expected = _union_find_roots(graph)
    assert len(packed) == len(expected)
    assert {uid: packed.get(uid) for uid in expected} == expected


def test_connected_components_of_a_long_chain_in_adversarial_order():
    # A path whose uids alternate high and low ends: many hook rounds.
    uids = sorted(_random_uids(301, seed=7))
    order = [uids[i // 2] if i % 2 == 0 else uids[-1 - i // 2] for i in range(len(uids))]
    chain = [f"{min(a, b)} {max(a, b)}" for a, b in zip(order, order[1:])]
    random.Random(8).shuffle(chain)
    packed = dedupe_module.connected_components(dedupe_module._edge_array(chain))
    assert {uid: packed.get(uid) for uid in uids} == {uid: uids[0] for uid in uids}


def test_components_combine_fn_across_pickled_accumulators(monkeypatch):
    monkeypatch.setattr(dedupe_module._ComponentsFn, "_PACK_EVERY", 5)
    graph = _random_graph(11, 120, 100)
    combine = dedupe_module._ComponentsFn()
    packed = _combine_in_pickled_parts(combine, graph, 17)
    expected = _union_find_roots(graph)
    assert {uid: packed.get(uid) for uid in expected} == expected and len(packed) == len(expected)
    assert len(combine.extract_output(combine.create_accumulator())) == 0


def _failing_normalize_body(monkeypatch):
    """normalize_body raising on one marked text (a stand-in for a bug that
    hostile input could trigger)."""
    real = dedupe_module.normalize_body

    def normalize(text):
        if "FINGERPRINT-FAILS" in text:
            raise ValueError("cannot normalise this body")
        return real(text)

    monkeypatch.setattr(dedupe_module, "normalize_body", normalize)


def test_fingerprint_fn_sends_a_failing_document_to_the_dead_letter(monkeypatch):
    _failing_normalize_body(monkeypatch)
    bad = dataclasses.replace(doc("bad", "FINGERPRINT-FAILS " + FLOOD_TEXT), original=b'{"id": "bad"}')
    docs = [doc("one", FLOOD_TEXT), bad, doc("two", MATCH_TEXT)]
    fn = dedupe_module._FingerprintFn(DedupeConfig())
    fn.setup()
    fn.start_bundle()
    outputs = [output for d in docs for output in fn.process(d)]
    outputs += list(fn.finish_bundle())  # the batch is flushed here, as WindowedValues
    tagged = collections.defaultdict(list)
    for output in outputs:
        if isinstance(output, beam.pvalue.TaggedOutput):
            value = output.value
            tagged[output.tag].append(value.value if isinstance(value, WindowedValue) else value)
    [dead] = tagged[dedupe_module.DEAD_LETTER]
    assert (dead.id, dead.stage, dead.reason, dead.original) == ("bad", STAGE, "stage_error", b'{"id": "bad"}')
    assert "cannot normalise this body" in dead.error
    assert sorted(d.id for _, d in tagged[dedupe_module._KEYED_DOCUMENTS]) == ["one", "two"]
    assert sorted(fp.id for _, fp in tagged[dedupe_module._FINGERPRINTS]) == ["one", "two"]


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_composite_dead_letters_a_document_it_cannot_fingerprint(tmp_path, monkeypatch, spill):
    _failing_normalize_body(monkeypatch)
    bad = doc("bad", "FINGERPRINT-FAILS " + FLOOD_TEXT)
    docs = [doc("a", FLOOD_TEXT, published="2017-01-01"), doc("b", FLOOD_TEXT, published="2017-01-02"), bad]
    with TestPipeline() as pipeline:
        outputs = pipeline | beam.Create(docs, reshuffle=False) | DeduplicateArticles(
            spill_directory=str(tmp_path / "spill") if spill else None)
        assert_that(outputs[DOCUMENTS] | beam.Map(operator.attrgetter("id", "duplicates")),
                    equal_to([("a", 1)]), label="CheckKept")
        assert_that(outputs[DUPLICATES] | beam.Map(operator.itemgetter("id", "duplicate_of")),
                    equal_to([("b", "a")]), label="CheckDuplicates")
        assert_that(outputs[dedupe_module.DEAD_LETTER] | beam.Map(operator.attrgetter("id", "reason")),
                    equal_to([("bad", "stage_error")]), label="CheckDeadLetter")
