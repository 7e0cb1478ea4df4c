"""The shared stage DoFn: dead letters, side outputs, metrics, immutability."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.document import Document
from transforms.stage import DEAD_LETTER, DOCUMENTS, ApplyStageFn, StageResult, apply_stage

SIDE = "side"


def upper_stage() -> "callable":
    def run(document: Document) -> StageResult:
        if "boom" in document.text:
            raise ValueError("cannot handle boom")
        if "drop" in document.text:
            return StageResult(document=None, drop_reason="asked_to_drop")
        new_text = document.text.upper()
        return StageResult(
            document=document.replace_text("upper", new_text, int(new_text != document.text)),
            side_records=((SIDE, {"id": document.id}),),
            counts={"uppercased": int(new_text != document.text)})
    return run


def doc(i: str, text: str) -> Document:
    return Document(id=i, text=text, source=f"src:{i}", original=text.encode())


def test_document_is_immutable_and_replace_records_stage():
    d = doc("1", "a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.text = "b"  # type: ignore[misc]
    e = d.replace_text("s", "b", 1, title="T")
    assert (d.text, d.changes, d.title) == ("a", (), None)
    assert (e.text, e.changes, e.title) == ("b", (("s", 1),), "T")
    assert e.without_transients().original == b"" and d.original == b"a"


def test_document_replace_is_dataclasses_replace():
    d = Document(id="1", text="t", source="s", title="T", published="2020-01-01", url="u",
                 fields=(("k", 1),), flags=("f",), changes=(("a", 1),), related_links=2, duplicates=3,
                 php_values=({"x": 1},), original=b"raw")
    for name, value in (("id", "2"), ("text", "u"), ("title", None), ("fields", ()), ("duplicates", 9),
                        ("original", b""), ("php_values", ())):
        assert d.replace(**{name: value}) == dataclasses.replace(d, **{name: value})
    both = d.replace(text="x", related_links=0)
    assert both == dataclasses.replace(d, text="x", related_links=0) and both is not d and d.text == "t"
    assert d.replace() == d
    with pytest.raises(TypeError, match="no field 'txt'"):
        d.replace(txt="typo")


def test_document_fields_rebuild_the_document():
    from transforms.document import document_fields

    d = Document(id="1", text="t", source="s", title="T", fields=(("k", [1, {"x": None}]),), flags=("f",),
                 changes=(("a", 1),), related_links=2, duplicates=3, php_values=({"x": 1},), original=b"raw")
    assert Document(*document_fields(d)) == d
    assert len(document_fields(d)) == len(dataclasses.fields(Document))


def test_document_to_json_puts_input_fields_first_and_ours_win():
    d = Document(id="1", text="t", fields=(("lang", "en"), ("text", "stale")), changes=(("s", 2),))
    record = d.to_json()
    assert list(record)[0] == "lang"
    assert record["text"] == "t"
    assert record["newswash"]["changes"] == {"s": 2}


def test_apply_stage_fn_directly():
    fn = ApplyStageFn("upper", upper_stage)
    fn.setup()
    out = list(fn.process(doc("1", "abc")))
    assert out[0].tag == SIDE and out[0].value == {"id": "1"}
    assert out[1].text == "ABC" and out[1].changes == (("upper", 1),)
    failed = list(fn.process(doc("2", "boom")))
    assert len(failed) == 1 and failed[0].tag == DEAD_LETTER
    dead = failed[0].value
    assert (dead.stage, dead.reason, dead.original, dead.id) == ("upper", "stage_error", b"boom", "2")
    assert "cannot handle boom" in dead.error


def test_counts_of_a_failed_bundle_are_not_carried_into_the_next(monkeypatch):
    import collections

    import transforms.stage as stage_module

    added: collections.Counter = collections.Counter()

    class RecordingCounter:
        def __init__(self, name):
            self.name = name

        def inc(self, value=1):
            added[self.name] += value

    class RecordingMetrics:
        @staticmethod
        def counter(namespace, name):
            return RecordingCounter(f"{namespace}/{name}")

    monkeypatch.setattr(stage_module, "Metrics", RecordingMetrics)
    fn = ApplyStageFn("upper", upper_stage)
    fn.setup()
    fn.start_bundle()
    list(fn.process(doc("1", "abc")))  # the bundle fails here: finish_bundle never runs
    fn.start_bundle()  # its retry on the same instance
    list(fn.process(doc("1", "abc")))
    assert not added  # nothing is added before the bundle ends
    assert list(fn.finish_bundle()) == []  # direct calls left no batch behind
    assert added["newswash/upper.documents_in"] == 1 and added["newswash/upper.documents_changed"] == 1


def test_apply_stage_under_test_pipeline_counts_every_record_once():
    inputs = [doc("1", "abc"), doc("2", "boom"), doc("3", "drop"), doc("4", "XYZ")]
    with TestPipeline() as p:
        out = apply_stage(p | beam.Create(inputs), "upper", upper_stage, side_tags=(SIDE,))
        assert_that(out[DOCUMENTS] | "Texts" >> beam.Map(lambda d: (d.id, d.text)),
                    equal_to([("1", "ABC"), ("4", "XYZ")]), label="docs")
        assert_that(out[DEAD_LETTER] | "Dead" >> beam.Map(lambda d: (d.id, d.reason)),
                    equal_to([("2", "stage_error"), ("3", "asked_to_drop")]), label="dead")
        assert_that(out[SIDE], equal_to([{"id": "1"}, {"id": "4"}]), label="side")


def test_stage_counters_are_committed_once_per_record_over_several_bundles():
    # Counts are summed per bundle and added to the Beam counters at the end
    # of each bundle; the committed totals must be those of every record.
    import collections

    from apache_beam.metrics.metric import MetricsFilter

    inputs = [doc(str(i), ("boom" if i % 7 == 0 else "drop" if i % 11 == 0 else "ab" if i % 2 else "AB"))
              for i in range(1, 201)]
    pipeline = TestPipeline()
    out = apply_stage(pipeline | beam.Create(inputs) | beam.Reshuffle(), "upper", upper_stage, side_tags=(SIDE,))
    assert_that(out[DOCUMENTS] | beam.combiners.Count.Globally(), equal_to([200 - 28 - 16]))
    result = pipeline.run()
    result.wait_until_finish()
    counters = collections.Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace("newswash"))["counters"]:
        counters[counter.key.metric.name] += counter.committed
    raised, dropped = 28, sum(1 for i in range(1, 201) if i % 11 == 0 and i % 7)
    changed = sum(1 for i in range(1, 201) if i % 2 and i % 7 and i % 11)
    assert dropped == 16
    assert counters["upper.documents_in"] == 200
    assert counters["upper.dead_letter"] == raised + dropped
    assert counters["upper.documents_changed"] == changed == counters["upper.uppercased"]


def slow_on_long_text() -> "callable":
    import time

    def run(document: Document) -> StageResult:
        if len(document.text) > 100:
            time.sleep(1)
        return StageResult(document=document.record_stage("slow", 0))
    return run


def test_large_document_over_the_time_bound_goes_to_dead_letter_whole():
    fn = ApplyStageFn("slow", slow_on_long_text, seconds_per_document=0.2, inline_characters=10)
    fn.setup()
    out = list(fn.process(doc("big", "x" * 200)))
    assert len(out) == 1 and out[0].tag == DEAD_LETTER
    assert (out[0].value.reason, out[0].value.original) == ("timeout", b"x" * 200)
    assert "took over 0.2 s" in out[0].value.error
    # The next document gets a fresh watchdog and is processed normally.
    assert list(fn.process(doc("small", "short text")))[0].text == "short text"
    fn.teardown()


def test_time_bound_reaches_stages_through_pipeline_options():
    from transforms.stage import INLINE_CHARACTERS

    big = doc("big", "y" * (INLINE_CHARACTERS + 1))
    from apache_beam.options.pipeline_options import PipelineOptions

    with TestPipeline(options=PipelineOptions(["--max_seconds_per_document=0.2"])) as p:
        out = apply_stage(p | beam.Create([big, doc("1", "fine")]), "slow", slow_on_long_text)
        assert_that(out[DOCUMENTS] | "Ids" >> beam.Map(lambda d: d.id), equal_to(["1"]), label="docs")
        assert_that(out[DEAD_LETTER] | "Reasons" >> beam.Map(lambda d: (d.id, d.reason)),
                    equal_to([("big", "timeout")]), label="dead")
    assert ApplyStageFn("slow", slow_on_long_text, seconds_per_document=0)._seconds_per_document == 0
    with pytest.raises(ValueError):
        ApplyStageFn("slow", slow_on_long_text, seconds_per_document=-1)


def _comparable(tagged_record):
    """A record as text, related links as their schema rows (the composite
    emits rows, the fused step the stage's JSON records; the writers accept both)."""
    from transforms.related_links import RELATED_LINKS, related_link_from_json

    tag, record = tagged_record
    return repr(related_link_from_json(record) if tag == RELATED_LINKS else record)


def _same_records(fused, chained):
    return sorted(fused) == sorted(chained)


def test_fused_stages_equal_the_chain_of_stage_composites():
    # The pipeline runs the four per-document stages in one ApplyStagesFn
    # step; users may chain the composites instead. Both must give the same
    # documents, side records and dead letters.
    import functools
    import pathlib

    from pipeline.io import InputSpec, RawRecord, RecordError, parse_jsonl_record
    from pipeline.options import RunConfig
    from pipeline.wiring import CLEANING_STAGES
    from transforms.stage import ApplyStagesFn

    samples = pathlib.Path(__file__).resolve().parent.parent / "samples"
    docs = [Document(id=p.name, text=p.read_text("utf-8", "replace"), source=str(p), original=p.read_bytes())
            for p in sorted(samples.glob("*.txt"))]
    for number, line in enumerate((samples / "articles.jsonl").read_bytes().splitlines(), 1):
        try:
            docs.append(parse_jsonl_record(RawRecord("jsonl", f"articles.jsonl:{number}", "a", line), InputSpec()))
        except RecordError:
            pass  # read-stage dead letters are not the stages' concern
    docs.append(doc("hostile", 'string(99) "unterminated \u00e2\u20ac\u2122 dump'))
    config = RunConfig(inputs=("x",), output="/tmp/unused")
    side_tags = tuple(tag for wiring in CLEANING_STAGES.values() for tag in wiring.side_tags)

    with TestPipeline() as pipeline:
        source = pipeline | beam.Create(docs, reshuffle=False)
        fused = source | "Fused" >> beam.ParDo(ApplyStagesFn(
            [(stage, functools.partial(wiring.function, config)) for stage, wiring in CLEANING_STAGES.items()]
        )).with_outputs(DEAD_LETTER, *side_tags, main=DOCUMENTS)
        chained, dead, sides = source, [], {tag: [] for tag in side_tags}
        for wiring in CLEANING_STAGES.values():
            outputs = chained | wiring.label >> wiring.build(config)
            chained = outputs[DOCUMENTS]
            dead.append(outputs[DEAD_LETTER])
            for tag in wiring.side_tags:
                sides[tag].append(outputs[tag])
        pairs = [(DOCUMENTS, fused[DOCUMENTS], chained),
                 (DEAD_LETTER, fused[DEAD_LETTER], tuple(dead) | "FlattenDead" >> beam.Flatten())]
        pairs += [(tag, fused[tag], tuple(sides[tag]) | f"Flatten{tag}" >> beam.Flatten()) for tag in side_tags]
        for tag, fused_output, chained_output in pairs:
            want = (chained_output
                    | f"ChainedText{tag}" >> beam.Map(lambda r, t=tag: _comparable((t, r)))
                    | f"Chained{tag}" >> beam.combiners.ToList())
            assert_that(
                fused_output
                | f"FusedText{tag}" >> beam.Map(lambda r, t=tag: _comparable((t, r)))
                | f"Fused{tag}" >> beam.combiners.ToList()
                | f"Compare{tag}" >> beam.Map(_same_records, beam.pvalue.AsSingleton(want)),
                equal_to([True]), label=f"Check{tag}")
        assert_that(fused[DOCUMENTS] | "CountDocuments" >> beam.combiners.Count.Globally(),
                    equal_to([len(docs)]), label="EveryDocumentCleaned")


# --- batches ---------------------------------------------------------------


def _windowed(document: Document, start: int):
    from apache_beam.transforms.window import IntervalWindow
    from apache_beam.utils.windowed_value import WindowedValue

    return WindowedValue(document, start + 1, [IntervalWindow(start, start + 10)])


def _unwrapped(output):
    """(tag, value, timestamp, window start) of a batched output."""
    tag = output.tag if isinstance(output, beam.pvalue.TaggedOutput) else DOCUMENTS
    windowed = output.value if isinstance(output, beam.pvalue.TaggedOutput) else output
    (window,) = windowed.windows
    return tag, windowed.value, windowed.timestamp.micros // 1_000_000, window.start.micros // 1_000_000


def test_batches_give_each_output_its_own_elements_window_and_equal_the_unbatched_results():
    texts = ["abc", "boom", "x", "drop", "def", "GHI", "jkl"]
    docs = [doc(str(i), text) for i, text in enumerate(texts)]
    unbatched = ApplyStageFn("upper", upper_stage, batch_size=1)
    unbatched.setup()
    expected = []
    for number, document in enumerate(docs):
        for output in unbatched.process(document):
            tag = output.tag if isinstance(output, beam.pvalue.TaggedOutput) else DOCUMENTS
            value = output.value if isinstance(output, beam.pvalue.TaggedOutput) else output
            expected.append((tag, value, 10 * number + 1, 10 * number))

    batched = ApplyStageFn("upper", upper_stage, batch_size=3)
    batched.setup()
    batched.start_bundle()
    emitted_after_each = []
    outputs = []
    for number, document in enumerate(docs):
        produced = list(batched.process(document, _windowed(document, 10 * number)))
        emitted_after_each.append(len(produced))
        outputs.extend(produced)
    assert [count > 0 for count in emitted_after_each] == [False, False, True, False, False, True, False]
    tail = list(batched.finish_bundle())
    assert tail, "the last, partial batch is emitted when the bundle finishes"
    outputs.extend(tail)
    got = [_unwrapped(output) for output in outputs]
    # Same records, each with the timestamp and window of the element it came from.
    assert sorted(map(repr, got)) == sorted(map(repr, expected))
    assert [g[1].id for g in got if g[0] == DOCUMENTS] == ["0", "2", "4", "5", "6"]


def test_a_batch_is_also_cut_by_its_characters(monkeypatch):
    import transforms.stage as stage_module

    monkeypatch.setattr(stage_module, "BATCH_CHARACTERS", 10)
    fn = ApplyStageFn("upper", upper_stage, batch_size=100)
    fn.setup()
    fn.start_bundle()
    assert list(fn.process(doc("1", "aaaa"), _windowed(doc("1", "aaaa"), 0))) == []
    flushed = list(fn.process(doc("2", "bbbbbbb"), _windowed(doc("2", "bbbbbbb"), 10)))
    assert [_unwrapped(o)[1].text for o in flushed if not isinstance(o, beam.pvalue.TaggedOutput)] == ["AAAA", "BBBBBBB"]


def test_a_retried_bundle_drops_the_partial_batch_of_the_failed_attempt():
    fn = ApplyStageFn("upper", upper_stage, batch_size=10)
    fn.setup()
    fn.start_bundle()
    list(fn.process(doc("1", "abc"), _windowed(doc("1", "abc"), 0)))  # the attempt fails after this
    fn.start_bundle()
    list(fn.process(doc("2", "def"), _windowed(doc("2", "def"), 10)))
    documents = [_unwrapped(o)[1].id for o in fn.finish_bundle() if not isinstance(o, beam.pvalue.TaggedOutput)]
    assert documents == ["2"]


def test_batched_stage_keeps_windows_under_test_pipeline():
    # Fixed windows (one window per element) take the batched path; sliding
    # windows (each element in two) the per-element one. Either way every
    # output lands in the windows of its own input.
    from apache_beam.transforms import window

    inputs = [(doc(str(i), "drop" if i == 4 else f"text {i}"), 10 * i + 1) for i in range(12)]
    kept = [i for i in range(12) if i != 4]

    def id_and_window(record, win=beam.DoFn.WindowParam):
        record_id = record["id"] if isinstance(record, dict) else record.id
        return record_id, int(win.start)

    with TestPipeline() as p:
        stamped = p | beam.Create(inputs) | beam.Map(lambda pair: window.TimestampedValue(*pair))
        for name, windowing, starts in (
                ("Fixed", window.FixedWindows(10), lambda i: [10 * i]),
                ("Sliding", window.SlidingWindows(20, 10), lambda i: [10 * i - 10, 10 * i])):
            out = (stamped
                   | f"{name}Windows" >> beam.WindowInto(windowing)
                   | f"{name}Apply" >> beam.ParDo(ApplyStageFn("upper", upper_stage, batch_size=5)).with_outputs(
                       DEAD_LETTER, SIDE, main=DOCUMENTS))
            for tag, ids in ((DOCUMENTS, kept), (SIDE, kept), (DEAD_LETTER, [4])):
                assert_that(out[tag] | f"{name}{tag}Windows" >> beam.Map(id_and_window),
                            equal_to([(str(i), start) for i in ids for start in starts(i)]),
                            label=f"{name}{tag}")


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size"):
        ApplyStageFn("upper", upper_stage, batch_size=0)
