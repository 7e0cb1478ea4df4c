"""``newswash explain``: what each stage does to one document, as diffs.

Runs the same pure stage functions the pipeline runs, in the same order, on
one record, without Beam, so a user can see why a document came out as it did.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.io import InputSpec, detect_format, iter_raw_records, parse_jsonl_record, parse_text_record, to_json_bytes
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


# Characters a terminal does not show, made visible in diffs.
_VISIBLE = str.maketrans({"\u00a0": "␣", "\u200b": "⟨zwsp⟩", "\u00ad": "⟨shy⟩",
                          "\t": "⇥", "\r": "␍", "\x00": "␀"})
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def _word_diff(before: str, after: str) -> str:
    """One line with ``[-removed-]{+added+}`` marks, as ``git diff --word-diff``."""
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    parts: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append("".join(old[i1:i2]))
            continue
        if i2 > i1:
            parts.append("[-" + "".join(old[i1:i2]).translate(_VISIBLE) + "-]")
        if j2 > j1:
            parts.append("{+" + "".join(new[j1:j2]).translate(_VISIBLE) + "+}")
    return "".join(parts)


def _diff(before: str, after: str) -> str:
    """Changed lines of ``before`` -> ``after``: ``-``/``+`` for removed or
    added lines, ``~`` with a word diff for lines changed in place."""
    old, new = before.split("\n"), after.split("\n")
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for offset in range(i2 - i1):
                out.append(f"~ {i1 + offset + 1}: {_word_diff(old[i1 + offset], new[j1 + offset])}")
            continue
        out.extend(f"- {i + 1}: {old[i].translate(_VISIBLE)}" for i in range(i1, i2))
        out.extend(f"+ {j + 1}: {new[j].translate(_VISIBLE)}" for j in range(j1, j2))
    return "\n".join(out) + "\n" if out else ""


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
            parts.append(_diff(document.text, after.text))
        for tag, record in result.side_records:
            parts.append(f"+ {tag}: {to_json_bytes(record).decode('utf-8')[:300]}\n")
        document = after
    if config.runs("dedupe"):
        parts.append("\n== dedupe: compares documents across the corpus; see 'newswash run'\n")
    parts.append("\n== result\n")
    parts.append(to_json_bytes(document.without_transients()).decode("utf-8") + "\n")
    return "".join(parts)
