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
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from typing import Any, Iterator, Sequence

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


def iter_raw_records(path: str, handle: Any, kind: str, relative_id: str) -> Iterator[RawRecord]:
    """The raw records of one open binary file (streamed, bounded memory for JSONL)."""
    if kind == "text":
        yield RawRecord("text", path, relative_id, handle.read())
        return
    line_number = 0
    # Beam's CompressedFile has readline() but is not iterable.
    for line in iter(handle.readline, b""):
        line_number += 1
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        if not line.strip():
            continue  # blank separator lines are not records
        yield RawRecord("jsonl", f"{path}:{line_number}", relative_id, line)


class ReadFileRecordsFn(beam.DoFn):
    """Reads one matched file into :class:`RawRecord`s."""

    def __init__(self, requested_format: str, root: str):
        super().__init__()
        self._requested_format = requested_format
        self._root = root
        self._files = Metrics.counter(METRICS_NAMESPACE, f"{READ_STAGE}.files")

    def process(self, path: str) -> Iterator[RawRecord]:
        self._files.inc()
        kind = detect_format(path, self._requested_format)
        # Remote workers resolve relative paths against their own directory,
        # so local files are opened by absolute path; ``source`` keeps the
        # path as the user wrote it.
        location = path if "://" in path else os.path.abspath(path)
        with FileSystems.open(location, compression_type=CompressionTypes.AUTO) as handle:
            yield from iter_raw_records(path, handle, kind, relative_to(path, self._root))


class ReadRawRecords(beam.PTransform):
    """Reads every input file as raw byte records.

    ``paths`` are the files :func:`match_inputs` found (sorted, each once, so a
    file matched by two patterns is read once).

    A ``Reshuffle`` follows the read so that the records of one large file are
    spread over workers: runners such as Flink do not split reads by
    themselves (see resiliparse's Beam text reader).
    """

    def __init__(self, paths: Sequence[str], requested_format: str, root: str, reshuffle: bool = True):
        super().__init__()
        self._paths = sorted(set(paths))
        self._requested_format = requested_format
        self._root = root
        self._reshuffle = reshuffle

    def expand(self, pbegin):
        records = (
            pbegin
            | "Paths" >> beam.Create(self._paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadRecords" >> beam.ParDo(ReadFileRecordsFn(self._requested_format, self._root)))
        if self._reshuffle:
            records = records | "SpreadRecords" >> beam.Reshuffle()
        return records


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

    def __init__(self, paths: Sequence[str], spec: InputSpec, reshuffle: bool = True):
        super().__init__()
        self._paths = list(paths)
        self._spec = spec
        self._reshuffle = reshuffle

    def expand(self, pbegin):
        raw = pbegin | "ReadRaw" >> ReadRawRecords(
            self._paths, self._spec.format, self._spec.root, self._reshuffle)
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
