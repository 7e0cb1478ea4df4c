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


def test_apply_stage_under_test_pipeline_counts_every_record_once():
    inputs = [doc("1", "abc"), doc("2", "boom"), doc("3", "drop"), doc("4", "XYZ")]
    with TestPipeline() as p:
        out = apply_stage(p | beam.Create(inputs), "upper", upper_stage, side_tags=(SIDE,))
        assert_that(out[DOCUMENTS] | "Texts" >> beam.Map(lambda d: (d.id, d.text)),
                    equal_to([("1", "ABC"), ("4", "XYZ")]), label="docs")
        assert_that(out[DEAD_LETTER] | "Dead" >> beam.Map(lambda d: (d.id, d.reason)),
                    equal_to([("2", "stage_error"), ("3", "asked_to_drop")]), label="dead")
        assert_that(out[SIDE], equal_to([{"id": "1"}, {"id": "4"}]), label="side")


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
