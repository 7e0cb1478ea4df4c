"""Readers: byte-safe decoding, JSONL parsing, dead-letter reasons, byte-range splitting."""

from __future__ import annotations

import base64
import gzip
import os

import apache_beam as beam
import orjson
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.io import (
    DEFAULT_SPLIT_BYTES,
    InputSpec,
    ParseRecordsFn,
    PlanRangesFn,
    RawRecord,
    ReadDocuments,
    ReadRange,
    ReadRawRecords,
    RecordError,
    common_root,
    decode_record_bytes,
    detect_format,
    iter_range_records,
    iter_raw_records,
    match_inputs,
    parse_jsonl_record,
    parse_text_record,
    plan_ranges,
    to_json_bytes,
)
from transforms.document import FLAG_INVALID_UTF8, Document
from transforms.stage import DEAD_LETTER, DOCUMENTS, METRICS_NAMESPACE, DeadLetter

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


# --- byte-range splitting ---------------------------------------------------

def whole_file_records(path: str, data: bytes, relative_id: str) -> list[RawRecord]:
    """The JSONL records of ``data`` read the obvious way: split the whole file on newlines.

    Lines end at b"\\n" only; a "\\r" before it belongs to the terminator, a lone
    "\\r" does not end a line; whitespace-only lines are separators, not records.
    """
    pieces = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        pieces.pop()  # nothing follows the last newline
    records = []
    for index, piece in enumerate(pieces):
        terminated = index < len(pieces) - 1 or data.endswith(b"\n")
        if terminated and piece.endswith(b"\r"):
            piece = piece[:-1]
        if piece.strip():
            records.append(RawRecord("jsonl", f"{path}:{index + 1}", relative_id, piece))
    return records


def ranged_records(path: str, split_bytes: int, relative_id: str = "a.jsonl") -> list[RawRecord]:
    """Every range of ``path`` planned and read as the pipeline does, checking the plan's shape."""
    with open(path, "rb") as handle:
        ranges = list(plan_ranges(path, handle, split_bytes))
    size = os.path.getsize(path)
    assert ranges[0].start == 0 and ranges[0].newlines_before == 0
    assert ranges[-1].end is None  # the last range reads to the end, whatever it finds there
    for before, after in zip(ranges, ranges[1:]):
        assert before.end == after.start and before.end - before.start <= split_bytes
    if len(ranges) > 1:
        assert size - ranges[-1].start <= split_bytes
    records = []
    for read_range in ranges:
        with open(path, "rb") as handle:
            records.extend(iter_range_records(handle, read_range, relative_id))
    return records


TRICKY_FILES = {
    "empty": b"",
    "one_line_no_newline": b'{"text": "x"}',
    "crlf": b'{"id": 1}\r\n{"id": 2}\r\n\r\n{"id": 3}\r\n',
    "cr_only": b'{"a": 1}\r{"b": 2}\r{"c": 3}\r',
    "cr_before_eof_kept": b'{"a": 1}\n{"b": 2}\r',
    "blank_lines": b"\n\n  \n\t\n{}\n\n\n{}\n \n",
    "only_newlines": b"\n" * 20,
    # 7-byte lines: with split 7 every cut falls exactly on a line start.
    "lines_on_boundaries": b"abcdef\n" * 6,
    # the newline itself sits on the cut
    "newline_on_boundary": b"abcdefg\n" * 6,
    "long_record": b'{"id": 1}\n{"text": "' + b"x" * 300 + b'"}\n{"id": 3}\n',
    "long_record_last": b'{"id": 1}\n' + b"y" * 500,
    "no_trailing_newline": b"one\ntwo\nthree",
    "invalid_utf8": b'{"text": "caf\xe9"}\n\xff\xfe\xfd\n\xc3\n\x80\x80\n',
    "nul_bytes": b"\x00\x00\n\x00{\"a\": 1}\x00\n\x00\n\n\x00",
    "bom": b'\xef\xbb\xbf{"id": 1}\n{"id": 2}\n',
}


@pytest.mark.parametrize("name", sorted(TRICKY_FILES))
def test_ranges_read_exactly_the_whole_file_records_at_every_split_size(tmp_path, name):
    data = TRICKY_FILES[name]
    path = str(tmp_path / "a.jsonl")
    (tmp_path / "a.jsonl").write_bytes(data)
    expected = whole_file_records(path, data, "a.jsonl")
    # Every split size from one byte to past the file puts a cut at every position.
    for split_bytes in sorted({*range(1, len(data) + 2), 7, 64}):
        assert ranged_records(path, split_bytes) == expected, split_bytes


def test_reference_reader_agrees_with_the_line_reader_on_the_tricky_files(tmp_path):
    # The reference is only a reference if it reads as the whole-file reader did.
    for name, data in TRICKY_FILES.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(data)
        with open(path, "rb") as handle:
            assert list(iter_raw_records(str(path), handle, "jsonl", "r")) == \
                whole_file_records(str(path), data, "r"), name


def test_a_file_no_larger_than_the_split_is_one_range_and_not_read(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"x\n" * 32)

    class Unreadable:  # planning may size the file but must not read it
        def __init__(self, handle):
            self._handle = handle

        def seek(self, *args):
            return self._handle.seek(*args)

        def tell(self):
            return self._handle.tell()

        def read(self, *args):
            raise AssertionError("read a file that fits in one range")

    with open(path, "rb") as handle:
        assert list(plan_ranges(str(path), Unreadable(handle), 64)) == [ReadRange(str(path), 0, None, 0)]


def test_plan_counts_newlines_before_each_cut(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"ab\n" * 10)  # 30 bytes, split 10: cuts at 10 and 20
    with open(path, "rb") as handle:
        ranges = list(plan_ranges(str(path), handle, 10))
    assert ranges == [ReadRange(str(path), 0, 10, 0), ReadRange(str(path), 10, 20, 3),
                      ReadRange(str(path), 20, None, 6)]


def test_compressed_and_text_files_are_one_range_each(tmp_path):
    with gzip.open(tmp_path / "big.jsonl.gz", "wb") as handle:
        handle.write(b'{"text": "x"}\n' * 100)
    (tmp_path / "story.txt").write_bytes(b"line\n" * 100)
    (tmp_path / "big.jsonl").write_bytes(b'{"text": "x"}\n' * 100)
    fn = PlanRangesFn("auto", split_bytes=64)
    for name in ("big.jsonl.gz", "story.txt"):
        path = str(tmp_path / name)
        assert list(fn.process(path)) == [ReadRange(path, 0, None, 0)]
    assert len(list(fn.process(str(tmp_path / "big.jsonl")))) == 1400 // 64 + 1
    # An explicit text format wins over the extension: one article, one range.
    assert len(list(PlanRangesFn("text", split_bytes=64).process(str(tmp_path / "big.jsonl")))) == 1


def test_split_bytes_must_be_positive():
    with pytest.raises(ValueError):
        ReadRawRecords(["a.jsonl"], "auto", "", split_bytes=0)
    assert DEFAULT_SPLIT_BYTES >= 1024 * 1024


_BYTES = st.lists(st.sampled_from([b"\n", b"\r", b"\r\n", b" ", b"\t", b"\x00", b"\xff", b"\xc3",
                                   b"\xef\xbb\xbf", b"a", b"{}", b'{"text": "x"}', b"z" * 40]),
                  max_size=60).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=_BYTES | st.binary(max_size=200), split_bytes=st.integers(1, 80))
def test_ranges_match_the_whole_file_reader_on_random_bytes(tmp_path_factory, data, split_bytes):
    directory = tmp_path_factory.mktemp("random")
    path = str(directory / "a.jsonl")
    (directory / "a.jsonl").write_bytes(data)
    assert ranged_records(path, split_bytes) == whole_file_records(path, data, "a.jsonl")


@pytest.mark.parametrize("reshuffle", [True, False])
def test_read_raw_records_splits_files_under_test_pipeline(tmp_path, reshuffle):
    big = b"".join(b'{"id": %d, "text": "%s"}\r\n\n' % (i, b"w" * (i % 13)) for i in range(60))
    big += b"\xff\x00 no newline at the end"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big.jsonl").write_bytes(big)
    (tmp_path / "small.jsonl").write_bytes(b'{"text": "s"}\n')
    with gzip.open(tmp_path / "zipped.jsonl.gz", "wb") as handle:
        handle.write(big)
    (tmp_path / "story.txt").write_bytes(b"A\nstory\n")
    big_path, small_path, zipped_path, story_path = (
        str(tmp_path / name) for name in ("sub/big.jsonl", "small.jsonl", "zipped.jsonl.gz", "story.txt"))
    paths = [big_path, small_path, zipped_path, story_path]
    root = common_root(paths)
    expected = [
        *whole_file_records(big_path, big, "sub/big.jsonl"),
        *whole_file_records(small_path, b'{"text": "s"}\n', "small.jsonl"),
        *whole_file_records(zipped_path, big, "zipped.jsonl.gz"),
        RawRecord("text", story_path, "story.txt", b"A\nstory\n"),
    ]
    assert len(expected) == 61 + 1 + 61 + 1  # 60 objects and the unterminated line, twice
    pipeline = TestPipeline()
    records = pipeline | ReadRawRecords(paths, "auto", root, reshuffle, split_bytes=64)
    assert_that(records, equal_to(expected))
    result = pipeline.run()
    result.wait_until_finish()
    ranges = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name("read.ranges"))
    # big.jsonl: ceil(len / 64) ranges; the small, zipped and text files: one each.
    assert sum(counter.committed for counter in ranges["counters"]) == -(-len(big) // 64) + 3
