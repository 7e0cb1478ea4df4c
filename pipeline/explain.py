"""``newswash explain``: what each stage does to one document, as diffs.

Runs the same pure stage functions the pipeline runs, in the same order, on
one record, without Beam, so a user can see why a document came out as it did.
"""

from __future__ import annotations

import argparse
import difflib
import os
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.io import InputSpec, RawRecord, detect_format, iter_raw_records, parse_jsonl_record, parse_text_record, to_json_bytes
from pipeline.options import RunConfig
from pipeline.wiring import CLEANING_STAGES, stage_function
from transforms.document import Document

__all__ = ["load_document", "explain_document"]


def load_document(path: str, *, fmt: str = "auto", line: int | None = None, record_id: str | None = None,
                  text_field: str = "text", id_field: str = "id", title_field: str = "title",
                  url_field: str = "url", published_field: str = "published") -> Document:
    """The document at ``path`` (a text article, or one JSONL record)."""
    spec = InputSpec(format=fmt, id_field=id_field, text_field=text_field, title_field=title_field,
                     url_field=url_field, published_field=published_field,
                     root=os.path.dirname(os.path.abspath(path)))
    kind = detect_format(path, fmt)
    relative = os.path.basename(path)
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
        for raw in iter_raw_records(path, handle, kind, relative):
            if kind == "text":
                return parse_text_record(raw, spec)
            if line is not None and raw.source != f"{path}:{line}":
                continue
            document = parse_jsonl_record(raw, spec)
            if record_id is not None and document.id != record_id:
                continue
            return document
    wanted = f"line {line}" if line is not None else f"id {record_id!r}" if record_id else "a record"
    raise LookupError(f"{path} has no {wanted}")


def _diff(before: str, after: str, label: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=f"{label} (before)", tofile=f"{label} (after)", n=1)
    text = "".join(line if line.endswith("\n") else line + "\n\\ no newline\n" for line in lines)
    return text


def explain_document(document: Document, args: argparse.Namespace) -> str:
    config = RunConfig(
        inputs=(document.source,), output="", skip=tuple(args.skip), base_url=args.base_url,
        typography_profile=args.typography_profile, quotes=args.quotes, dashes=args.dashes)
    parts = [f"document {document.id} from {document.source}: {len(document.text)} characters\n"]
    for stage in CLEANING_STAGES:
        if not config.runs(stage):
            parts.append(f"\n== {stage}: skipped\n")
            continue
        result = stage_function(stage, config)(document)
        if result.document is None:
            parts.append(f"\n== {stage}: document dropped ({result.drop_reason})\n")
            return "".join(parts)
        after = result.document
        fired = ", ".join(f"{rule}={n}" for rule, n in result.counts.items() if n) or "no rule fired"
        parts.append(f"\n== {stage}: {fired}\n")
        for name in ("title", "published", "url", "related_links"):
            old, new = getattr(document, name), getattr(after, name)
            if old != new:
                parts.append(f"{name}: {old!r} -> {new!r}\n")
        if after.text != document.text:
            parts.append(_diff(document.text, after.text, "text"))
        for tag, record in result.side_records:
            parts.append(f"+ {tag}: {to_json_bytes(record).decode('utf-8')[:300]}\n")
        document = after
    if config.runs("dedupe"):
        parts.append("\n== dedupe: compares documents across the corpus; see 'newswash run'\n")
    parts.append("\n== result\n")
    parts.append(to_json_bytes(document.without_transients()).decode("utf-8") + "\n")
    return "".join(parts)
