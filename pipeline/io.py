"""Reading raw scraped articles and writing newswash's JSONL outputs.

Input is read as bytes, never through Beam's default text coder (which raises
on invalid UTF-8): each file is matched, read record by record, decoded per
record with a U+FFFD fallback, and turned into a :class:`Document` or a
:class:`DeadLetter` with the original bytes.

Two input shapes are supported:

* JSONL (``.jsonl``, ``.ndjson``, ``.json``, optionally compressed
  ``.gz``/``.bz2``/``.zst``/``.deflate``/``.xz``): one JSON object per line.
* Plain text: one article per file; the id is the path relative to the common
  root of all input files.

Parallelism comes from splitting files, not from shuffling records. A corpus
is often one large JSONL file; read as a whole it would keep one worker busy
while the others wait. Shuffling every record after the read spreads the work
but, under the DirectRunner, holds the whole raw corpus in memory and encodes
every record once more. So an uncompressed JSONL file is cut into byte ranges
of about ``split_bytes`` (as Beam's ``ReadFromText`` does) and only those few
ranges are shuffled; each worker then streams its ranges straight into the
stages, and memory stays near one range's records rather than the corpus.

``source`` must name the true line (``path:line``), and records without an
id are named by it, so planning the ranges of a file is one streaming pass
that counts newlines up to each range start; that is cheap next to parsing.
Compressed files cannot be entered in the middle, and a text article is one
record, so those are one range each.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from typing import Any, Iterator, NamedTuple, Sequence

import apache_beam as beam
import orjson
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms._json import dumps_json
from transforms.document import FLAG_INVALID_UTF8, Document
from transforms.stage import DEAD_LETTER, DOCUMENTS, METRICS_NAMESPACE, DeadLetter

__all__ = [
    "FORMATS",
    "JSONL_EXTENSIONS",
    "RawRecord",
    "InputSpec",
    "ReadRawRecords",
    "ReadRange",
    "DEFAULT_SPLIT_BYTES",
    "plan_ranges",
    "iter_range_records",
    "ParseRecordsFn",
    "ReadDocuments",
    "WriteJsonl",
    "decode_record_bytes",
    "parse_jsonl_record",
    "parse_text_record",
    "detect_format",
    "match_inputs",
    "common_root",
    "to_json_bytes",
]

FORMATS = ("auto", "jsonl", "text")
JSONL_EXTENSIONS = (".jsonl", ".ndjson", ".json")
READ_STAGE = "read"

# About 4 MiB per range: a 46 MB file becomes a dozen ranges, enough for two
# (or a few) workers to end together, while each range is still large enough
# that seeking to it and skipping one partial line cost nothing.
DEFAULT_SPLIT_BYTES = 4 * 1024 * 1024
# Chunk of the newline-counting pass: large enough that bytes.count runs at
# memory speed, small enough to be a bounded buffer.
_COUNT_CHUNK_BYTES = 1024 * 1024

# Beam's CompressionTypes.AUTO knows these suffixes; we strip them to find the
# format extension underneath (``articles.jsonl.gz`` is JSONL).
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".zstd", ".deflate", ".xz", ".lzma", ".snappy")


@dataclasses.dataclass(frozen=True, slots=True)
class RawRecord:
    """One input record as bytes, before any decoding.

    ``kind`` is ``jsonl`` or ``text``; ``source`` is ``path:line`` for JSONL
    (1-based) and ``path`` for text; ``relative_id`` is the path relative to
    the inputs' common root (the id of a text article).
    """

    kind: str
    source: str
    relative_id: str
    data: bytes


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """How to turn raw records into documents."""

    format: str = "auto"
    id_field: str = "id"
    text_field: str = "text"
    title_field: str = "title"
    url_field: str = "url"
    published_field: str = "published"
    root: str = ""
    max_document_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.max_document_bytes <= 0:
            raise ValueError(f"max_document_bytes must be positive, got {self.max_document_bytes}")


def detect_format(path: str, requested: str = "auto") -> str:
    """``jsonl`` or ``text`` for ``path``: by extension when ``requested`` is auto."""
    if requested != "auto":
        return requested
    name = path.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return "jsonl" if name.endswith(JSONL_EXTENSIONS) else "text"


def match_inputs(patterns: Sequence[str]) -> list[str]:
    """Every file the patterns match, sorted; raises if a pattern matches nothing."""
    paths: set[str] = set()
    results = FileSystems.match(list(patterns))
    for pattern, result in zip(patterns, results):
        matched = [m.path for m in result.metadata_list if not m.path.endswith("/")]
        if not matched:
            raise FileNotFoundError(f"input pattern matched no files: {pattern}")
        paths.update(matched)
    return sorted(paths)


def common_root(paths: Sequence[str]) -> str:
    """The deepest directory that contains every path ('' for none)."""
    if not paths:
        return ""
    directories = [p.rsplit("/", 1)[0] if "/" in p else "" for p in paths]
    if "://" in paths[0]:
        # Remote file systems: plain string prefix on '/' boundaries.
        parts = [d.split("/") for d in directories]
        prefix = []
        for segment in zip(*parts):
            if all(s == segment[0] for s in segment):
                prefix.append(segment[0])
            else:
                break
        return "/".join(prefix)
    return os.path.commonpath([os.path.abspath(d) if d else os.getcwd() for d in directories])


def relative_to(path: str, root: str) -> str:
    if not root:
        return path
    if "://" in path:
        return path[len(root):].lstrip("/") if path.startswith(root) else path
    return posixpath.normpath(os.path.relpath(os.path.abspath(path), root)).replace(os.sep, "/")


def decode_record_bytes(data: bytes) -> tuple[str, bool]:
    """Text of ``data`` and whether it was valid UTF-8.

    A leading UTF-8 byte order mark is dropped. Invalid bytes become U+FFFD
    rather than failing the record: the article is still worth cleaning, and
    the caller flags it so nobody mistakes it for a faithful decode.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


class RecordError(ValueError):
    """A record that cannot become a document; ``reason`` is the dead-letter code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _optional_string(record: dict[str, Any], field: str) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def parse_jsonl_record(raw: RawRecord, spec: InputSpec) -> Document:
    """The document of one JSONL line; raises :class:`RecordError` for bad lines."""
    data = raw.data[3:] if raw.data.startswith(b"\xef\xbb\xbf") else raw.data
    valid = True
    try:
        # orjson parses the bytes and accepts exactly the valid UTF-8 that
        # bytes.decode("utf-8") accepts (tests compare the two), so a good
        # line is never decoded twice.
        record = orjson.loads(data)
    except orjson.JSONDecodeError:
        # Invalid UTF-8 (decoded with U+FFFD and flagged) or invalid JSON:
        # parse the decoded text, whose error message counts characters.
        text, valid = decode_record_bytes(raw.data)
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise RecordError("invalid_json", f"line is not valid JSON: {error}") from None
    if not isinstance(record, dict):
        raise RecordError(
            "not_an_object", f"line is a JSON {type(record).__name__}, expected an object")
    if spec.text_field not in record:
        raise RecordError(
            "missing_text_field", f"object has no {spec.text_field!r} field")
    body = record[spec.text_field]
    if not isinstance(body, str):
        raise RecordError(
            "text_not_a_string",
            f"field {spec.text_field!r} is a JSON {type(body).__name__}, expected a string")
    record_id = _optional_string(record, spec.id_field)
    if record_id is None or record_id == "":
        # No usable id: the position in the input is stable and unique.
        record_id = f"{raw.relative_id}:{raw.source.rsplit(':', 1)[-1]}"
    consumed = {spec.id_field, spec.text_field, spec.title_field, spec.url_field, spec.published_field}
    fields = tuple((k, v) for k, v in record.items() if k not in consumed)
    return Document(
        id=record_id,
        text=body,
        source=raw.source,
        title=_optional_string(record, spec.title_field),
        published=_optional_string(record, spec.published_field),
        url=_optional_string(record, spec.url_field),
        fields=fields,
        flags=() if valid else (FLAG_INVALID_UTF8,),
        original=raw.data,
    )


def parse_text_record(raw: RawRecord, spec: InputSpec) -> Document:
    """The document of one plain-text article file."""
    text, valid = decode_record_bytes(raw.data)
    return Document(
        id=raw.relative_id,
        text=text,
        source=raw.source,
        flags=() if valid else (FLAG_INVALID_UTF8,),
        original=raw.data,
    )


def _raw_line_record(path: str, line_number: int, relative_id: str, line: bytes) -> RawRecord | None:
    """The record of one line as ``readline`` returned it (None for a blank line)."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    if not line.strip():
        return None  # blank separator lines are not records
    return RawRecord("jsonl", f"{path}:{line_number}", relative_id, line)


def iter_raw_records(path: str, handle: Any, kind: str, relative_id: str) -> Iterator[RawRecord]:
    """The raw records of one open binary file (streamed, bounded memory for JSONL)."""
    if kind == "text":
        yield RawRecord("text", path, relative_id, handle.read())
        return
    line_number = 0
    # Beam's CompressedFile has readline() but is not iterable.
    for line in iter(handle.readline, b""):
        line_number += 1
        record = _raw_line_record(path, line_number, relative_id, line)
        if record is not None:
            yield record


class ReadRange(NamedTuple):
    """A part of one input file, read by one worker.

    The range owns the lines that *start* in ``[start, end)`` (``end`` None:
    to the end of the file), so a line cut by a boundary belongs to the range
    where it begins and every line is read exactly once. ``newlines_before``
    is the number of ``\\n`` bytes before ``start``, from which the range
    numbers its lines. A range ``(path, 0, None, 0)`` is the whole file,
    read through its compression.
    """

    path: str
    start: int
    end: int | None
    newlines_before: int


def _is_compressed(path: str) -> bool:
    return CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED


def _local_or_remote(path: str) -> str:
    # Remote workers resolve relative paths against their own directory, so
    # local files are opened by absolute path; ``source`` keeps the path as
    # the user wrote it.
    return path if "://" in path else os.path.abspath(path)


def plan_ranges(path: str, handle: Any, split_bytes: int) -> Iterator[ReadRange]:
    """The ranges of one uncompressed JSONL file open in ``handle`` (seekable).

    A file no larger than ``split_bytes`` is one range and is not read here.
    Otherwise the file is cut into equal ranges of at most ``split_bytes``
    and read once, in bounded chunks, to count the newlines before each cut.
    """
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    if size <= split_bytes:
        yield ReadRange(path, 0, None, 0)
        return
    count = -(-size // split_bytes)
    cuts = [size * k // count for k in range(1, count)]
    handle.seek(0)
    position = start = newlines = newlines_at_start = 0
    for cut in cuts:
        while position < cut:
            chunk = handle.read(min(_COUNT_CHUNK_BYTES, cut - position))
            if not chunk:
                break  # the file shrank since it was sized: the last range reads to its end
            newlines += chunk.count(b"\n")
            position += len(chunk)
        if position < cut:
            break
        yield ReadRange(path, start, cut, newlines_at_start)
        start, newlines_at_start = cut, newlines
    yield ReadRange(path, start, None, newlines_at_start)


def iter_range_records(handle: Any, read_range: ReadRange, relative_id: str) -> Iterator[RawRecord]:
    """The records of the lines starting in ``read_range`` of an uncompressed file.

    The usual text-splitting rule (Hadoop's, Beam's TextIO): a range that does
    not begin at a line start skips the rest of that line, which the previous
    range owns, and the last line that starts before ``end`` is read whole,
    past ``end``. Streamed line by line, so memory is one line.
    """
    path, start, end, line_number = read_range
    position = start
    handle.seek(max(start - 1, 0))
    if start > 0 and handle.read(1) != b"\n":
        partial = handle.readline()
        position += len(partial)
        line_number += 1
    while end is None or position < end:
        line = handle.readline()
        if not line:
            break
        position += len(line)
        line_number += 1
        record = _raw_line_record(path, line_number, relative_id, line)
        if record is not None:
            yield record


class PlanRangesFn(beam.DoFn):
    """Splits one matched file into the :class:`ReadRange`s read in parallel."""

    def __init__(self, requested_format: str, split_bytes: int):
        super().__init__()
        self._requested_format = requested_format
        self._split_bytes = split_bytes
        self._files = Metrics.counter(METRICS_NAMESPACE, f"{READ_STAGE}.files")

    def process(self, path: str) -> Iterator[ReadRange]:
        self._files.inc()
        if detect_format(path, self._requested_format) == "text" or _is_compressed(path):
            yield ReadRange(path, 0, None, 0)
            return
        with FileSystems.open(_local_or_remote(path), compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            yield from plan_ranges(path, handle, self._split_bytes)


class ReadRangeRecordsFn(beam.DoFn):
    """Reads one :class:`ReadRange` into :class:`RawRecord`s."""

    def __init__(self, requested_format: str, root: str):
        super().__init__()
        self._requested_format = requested_format
        self._root = root
        self._ranges = Metrics.counter(METRICS_NAMESPACE, f"{READ_STAGE}.ranges")

    def process(self, read_range: ReadRange) -> Iterator[RawRecord]:
        self._ranges.inc()
        path = read_range.path
        relative_id = relative_to(path, self._root)
        location = _local_or_remote(path)
        if read_range.start == 0 and read_range.end is None:
            kind = detect_format(path, self._requested_format)
            with FileSystems.open(location, compression_type=CompressionTypes.AUTO) as handle:
                yield from iter_raw_records(path, handle, kind, relative_id)
            return
        with FileSystems.open(location, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            yield from iter_range_records(handle, read_range, relative_id)


class ReadRawRecords(beam.PTransform):
    """Reads every input file as raw byte records.

    ``paths`` are the files :func:`match_inputs` found (sorted, each once, so a
    file matched by two patterns is read once).

    Files are spread over workers, each is planned into ranges (see the module
    docstring), and the ranges, not the records, are reshuffled: runners such
    as Flink and the DirectRunner do not split a DoFn's file reads by
    themselves, and a shuffle of every record would hold the corpus in memory.
    ``reshuffle=False`` drops both shuffles, so each range is read where it
    was planned (one process on a single machine, no shuffle cost).
    ``split_bytes`` is the size of a range; files no larger are read whole.
    """

    def __init__(self, paths: Sequence[str], requested_format: str, root: str, reshuffle: bool = True,
                 *, split_bytes: int = DEFAULT_SPLIT_BYTES):
        super().__init__()
        if split_bytes <= 0:
            raise ValueError(f"split_bytes must be positive, got {split_bytes}")
        self._paths = sorted(set(paths))
        self._requested_format = requested_format
        self._root = root
        self._reshuffle = reshuffle
        self._split_bytes = split_bytes

    def expand(self, pbegin):
        paths = pbegin | "Paths" >> beam.Create(self._paths, reshuffle=self._reshuffle)
        if self._reshuffle:
            paths = paths | "SpreadFiles" >> beam.Reshuffle()
        ranges = paths | "PlanRanges" >> beam.ParDo(PlanRangesFn(self._requested_format, self._split_bytes))
        if self._reshuffle:
            ranges = ranges | "SpreadRanges" >> beam.Reshuffle()
        return ranges | "ReadRanges" >> beam.ParDo(ReadRangeRecordsFn(self._requested_format, self._root))


class ParseRecordsFn(beam.DoFn):
    """Turns raw records into documents; every failure is a dead letter."""

    def __init__(self, spec: InputSpec):
        super().__init__()
        self._spec = spec
        self._counters: dict[str, Any] = {}

    def _count(self, name: str) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = Metrics.counter(METRICS_NAMESPACE, f"{READ_STAGE}.{name}")
            self._counters[name] = counter
        counter.inc()

    def process(self, raw: RawRecord) -> Iterator[Any]:
        self._count("records")
        try:
            if len(raw.data) > self._spec.max_document_bytes:
                raise RecordError(
                    "too_large",
                    f"record is {len(raw.data)} bytes, over --max-document-bytes "
                    f"{self._spec.max_document_bytes}; not truncated")
            if raw.kind == "jsonl":
                document = parse_jsonl_record(raw, self._spec)
            else:
                document = parse_text_record(raw, self._spec)
        except RecordError as error:
            self._count(f"dead_letter.{error.reason}")
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                source=raw.source, stage=READ_STAGE, reason=error.reason,
                error=str(error), original=raw.data))
            return
        if FLAG_INVALID_UTF8 in document.flags:
            self._count(FLAG_INVALID_UTF8)
        yield document


class ReadDocuments(beam.PTransform):
    """Reads the inputs into documents.

    Returns a dict with ``documents``, ``dead_letter`` and ``raw_records`` (the
    undecoded records, which the run report counts as the input).
    """

    def __init__(self, paths: Sequence[str], spec: InputSpec, reshuffle: bool = True,
                 *, split_bytes: int = DEFAULT_SPLIT_BYTES):
        super().__init__()
        self._paths = list(paths)
        self._spec = spec
        self._reshuffle = reshuffle
        self._split_bytes = split_bytes

    def expand(self, pbegin):
        raw = pbegin | "ReadRaw" >> ReadRawRecords(
            self._paths, self._spec.format, self._spec.root, self._reshuffle, split_bytes=self._split_bytes)
        parsed = raw | "Parse" >> beam.ParDo(ParseRecordsFn(self._spec)).with_outputs(
            DEAD_LETTER, main=DOCUMENTS)
        return {DOCUMENTS: parsed[DOCUMENTS], DEAD_LETTER: parsed[DEAD_LETTER], "raw_records": raw}


def to_json_bytes(record: Any) -> bytes:
    """One JSONL line for ``record`` (a dict, or anything with ``to_json()``).

    Never raises and always writes valid JSON (see :mod:`transforms._json`).
    """
    if hasattr(record, "to_json"):
        record = record.to_json()
    return dumps_json(record)


class WriteJsonl(beam.PTransform):
    """Writes records as JSONL shards ``<directory>/part-SSSSS-of-NNNNN.jsonl``."""

    def __init__(self, directory: str, num_shards: int = 0):
        super().__init__()
        self._directory = directory
        self._num_shards = num_shards

    def expand(self, records):
        return (
            records
            | "Serialize" >> beam.Map(to_json_bytes)
            | "Write" >> beam.io.WriteToText(
                FileSystems.join(self._directory, "part"),
                file_name_suffix=".jsonl",
                coder=beam.coders.BytesCoder(),
                num_shards=self._num_shards))
