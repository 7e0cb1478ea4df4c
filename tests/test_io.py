"""Readers: byte-safe decoding, JSONL parsing, dead-letter reasons."""

from __future__ import annotations

import base64
import gzip

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.io import (
    InputSpec,
    ParseRecordsFn,
    RawRecord,
    ReadDocuments,
    RecordError,
    common_root,
    decode_record_bytes,
    detect_format,
    match_inputs,
    parse_jsonl_record,
    parse_text_record,
    to_json_bytes,
)
from transforms.document import FLAG_INVALID_UTF8, Document
from transforms.stage import DEAD_LETTER, DOCUMENTS, DeadLetter

SPEC = InputSpec()


def jsonl(data: bytes, line: int = 1) -> RawRecord:
    return RawRecord("jsonl", f"in/a.jsonl:{line}", "a.jsonl", data)


# --- pure functions -------------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    ("a.jsonl", "jsonl"), ("a.JSONL.gz", "jsonl"), ("x/b.ndjson.zst", "jsonl"),
    ("c.json.bz2", "jsonl"), ("d.txt", "text"), ("e", "text"), ("f.txt.gz", "text"),
])
def test_detect_format_by_extension_under_compression(path, expected):
    assert detect_format(path) == expected


def test_detect_format_explicit_wins():
    assert detect_format("a.jsonl", "text") == "text"


def test_decode_valid_utf8_and_bom():
    assert decode_record_bytes("café".encode()) == ("café", True)
    assert decode_record_bytes(b"\xef\xbb\xbfhi") == ("hi", True)


def test_decode_invalid_utf8_falls_back_to_replacement():
    text, valid = decode_record_bytes(b"caf\xe9 \x92ok")
    assert not valid
    assert text == "caf\ufffd \ufffdok"


def test_parse_jsonl_record_maps_fields_and_keeps_extras():
    doc = parse_jsonl_record(jsonl(
        b'{"id": 7, "text": "Body", "title": "T", "url": "https://x/1", '
        b'"published": "2020-01-01", "lang": "en"}'), SPEC)
    assert (doc.id, doc.text, doc.title, doc.url, doc.published) == ("7", "Body", "T", "https://x/1", "2020-01-01")
    assert doc.fields == (("lang", "en"),)
    assert doc.source == "in/a.jsonl:1"
    assert doc.original.startswith(b'{"id": 7')


def test_parse_jsonl_record_without_id_uses_position():
    doc = parse_jsonl_record(jsonl(b'{"text": "x"}', line=9), SPEC)
    assert doc.id == "a.jsonl:9"


def test_parse_jsonl_record_custom_fields():
    spec = InputSpec(id_field="nid", text_field="body", title_field="headline")
    doc = parse_jsonl_record(jsonl(b'{"nid": "n1", "body": "B", "headline": "H", "text": "other"}'), spec)
    assert (doc.id, doc.text, doc.title) == ("n1", "B", "H")
    assert ("text", "other") in doc.fields


def test_parse_jsonl_record_invalid_utf8_is_flagged_not_dropped():
    doc = parse_jsonl_record(jsonl(b'{"id": "x", "text": "caf\xe9"}'), SPEC)
    assert doc.text == "caf\ufffd"
    assert FLAG_INVALID_UTF8 in doc.flags


@pytest.mark.parametrize("data, reason", [
    (b'{"id": "b"', "invalid_json"),
    (b"not json at all", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"a string"', "not_an_object"),
    (b'{"id": "c", "title": "no body"}', "missing_text_field"),
    (b'{"id": "d", "text": 42}', "text_not_a_string"),
    (b'{"id": "e", "text": ["a"]}', "text_not_a_string"),
    (b'{"id": "f", "text": null}', "text_not_a_string"),
])
def test_parse_jsonl_record_bad_lines_raise_with_reason(data, reason):
    with pytest.raises(RecordError) as caught:
        parse_jsonl_record(jsonl(data), SPEC)
    assert caught.value.reason == reason


def test_parse_text_record_id_is_relative_path():
    doc = parse_text_record(RawRecord("text", "/data/x/y.txt", "x/y.txt", b"Hello"), SPEC)
    assert (doc.id, doc.text, doc.source) == ("x/y.txt", "Hello", "/data/x/y.txt")


def test_common_root_of_local_paths(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    paths = [str(tmp_path / "a" / "one.txt"), str(tmp_path / "a" / "b" / "two.txt")]
    assert common_root(paths) == str(tmp_path / "a")


def test_common_root_of_remote_paths():
    assert common_root(["gs://b/x/y/1.txt", "gs://b/x/z/2.txt"]) == "gs://b/x"


def test_match_inputs_dedupes_and_fails_on_empty_pattern(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    paths = match_inputs([str(tmp_path / "*"), str(tmp_path / "a.txt")])
    assert paths == [str(tmp_path / "a.txt")]
    with pytest.raises(FileNotFoundError):
        match_inputs([str(tmp_path / "nothing-*.jsonl")])


def test_dead_letter_keeps_invalid_bytes_losslessly():
    original = b'{"id": "x", "text": "\xff\xfe broken'
    record = DeadLetter("s:1", "read", "invalid_json", "e", original).to_json()
    assert record["original"] is None
    assert base64.b64decode(record["original_base64"]) == original


def test_to_json_bytes_never_raises_on_odd_values():
    assert to_json_bytes({"big": 2 ** 70}) == b'{"big":1180591620717411303424}'
    assert to_json_bytes({"b": b"\xff", 1: (1, 2)}) == b'{"b":"\xef\xbf\xbd","1":[1,2]}'
    assert to_json_bytes({"big": 2 ** 70, "x": float("nan")}) == b'{"big":1180591620717411303424,"x":null}'
    assert to_json_bytes({"text": "a\ud800b"}) == '{"text":"a\ufffdb"}'.encode()
    deep: list = []
    for _ in range(3000):
        deep = [deep]
    written = orjson.loads(to_json_bytes({"value": deep, "kept": 1}))
    assert written["kept"] == 1
    innermost = written["value"]
    for _ in range(199):
        innermost = innermost[0]
    assert innermost == {"__truncated__": "nested deeper than 200 levels"}


# --- the DoFn, called directly -------------------------------------------

def test_parse_records_fn_routes_good_and_bad():
    fn = ParseRecordsFn(InputSpec(max_document_bytes=50))
    good = list(fn.process(jsonl(b'{"id": "a", "text": "t"}')))
    assert len(good) == 1 and isinstance(good[0], Document)
    bad = list(fn.process(jsonl(b"{", line=2)))
    assert len(bad) == 1 and bad[0].tag == DEAD_LETTER
    assert bad[0].value.reason == "invalid_json" and bad[0].value.original == b"{"
    large = list(fn.process(jsonl(b'{"text": "' + b"x" * 60 + b'"}', line=3)))
    assert large[0].tag == DEAD_LETTER and large[0].value.reason == "too_large"
    assert large[0].value.original.endswith(b'x"}')  # kept whole, never truncated


# --- the composite under TestPipeline --------------------------------------

def test_read_documents_under_test_pipeline(tmp_path):
    lines = b'{"id": "a", "text": "one"}\n\n{"id": "b"\n{"id": "c", "text": "caf\xe9"}\r\n'
    with gzip.open(tmp_path / "part.jsonl.gz", "wb") as handle:
        handle.write(lines)
    (tmp_path / "story.txt").write_bytes(b"\xef\xbb\xbfA story")
    paths = match_inputs([str(tmp_path / "*")])
    spec = InputSpec(root=common_root(paths))
    with TestPipeline() as p:
        read = p | ReadDocuments(paths, spec)
        assert_that(read[DOCUMENTS] | "Ids" >> beam.Map(lambda d: (d.id, d.text, d.flags)), equal_to([
            ("a", "one", ()), ("c", "caf\ufffd", (FLAG_INVALID_UTF8,)), ("story.txt", "A story", ()),
        ]), label="documents")
        assert_that(read[DEAD_LETTER] | "Reasons" >> beam.Map(lambda d: (d.source.rsplit("/", 1)[-1], d.reason)),
                    equal_to([("part.jsonl.gz:3", "invalid_json")]), label="dead_letter")
        assert_that(read["raw_records"] | "Count" >> beam.combiners.Count.Globally(),
                    equal_to([4]), label="raw_count")
