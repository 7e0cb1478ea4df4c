"""Command-line options of ``newswash run`` and the immutable run config.

newswash's own flags are parsed here; every flag it does not know is passed
untouched to Beam's ``PipelineOptions`` (``--runner``, ``--direct_num_workers``,
``--project`` ...), as Beam's own examples do with ``parse_known_args``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from pipeline.io import FORMATS

__all__ = ["STAGE_NAMES", "RunConfig", "add_run_arguments", "config_from_args"]

# Every stage newswash knows, in the order the pipeline applies them. php-leaks
# must run first: any change to the text before it breaks the byte counts.
STAGE_NAMES = ("php-leaks", "headlines", "typography", "related-links", "dedupe")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    inputs: tuple[str, ...]
    output: str
    format: str = "auto"
    id_field: str = "id"
    text_field: str = "text"
    title_field: str = "title"
    url_field: str = "url"
    published_field: str = "published"
    skip: tuple[str, ...] = ()
    num_shards: int = 0
    max_document_bytes: int = 16 * 1024 * 1024
    max_seconds_per_document: float = 60.0
    reshuffle: bool = True
    split_bytes: int = 4 * 1024 * 1024
    base_url: str | None = None
    related_links_format: str = "jsonl"
    typography_profile: str = "news"
    quotes: str | None = None
    dashes: str | None = None
    dedupe_threshold: float | None = None
    dedupe_shingle_size: int | None = None
    dedupe_near_duplicates: bool = True

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("at least one --input is required")
        if self.split_bytes <= 0:
            raise ValueError(f"--split-bytes must be positive, got {self.split_bytes}")
        unknown = sorted(set(self.skip) - set(STAGE_NAMES))
        if unknown:
            raise ValueError(f"unknown stage(s) for --skip: {', '.join(unknown)}")
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {FORMATS}")
        if self.max_seconds_per_document < 0:
            raise ValueError("--max-seconds-per-document must be >= 0")
        if self.num_shards < 0:
            raise ValueError("--num-shards must be >= 0")
        if self.related_links_format not in ("jsonl", "parquet"):
            raise ValueError("--related-links-format must be jsonl or parquet")

    def runs(self, stage: str) -> bool:
        return stage not in self.skip


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``newswash run``, each with what it does and an example."""
    io_group = parser.add_argument_group("input and output")
    io_group.add_argument(
        "--input", dest="inputs", action="append", required=True, metavar="PATTERN",
        help="file or glob of raw articles; repeat for several, e.g. --input 'samples/*' "
             "--input 'gs://bucket/scrape/2024-*.jsonl.gz'. Compressed JSONL (.gz .bz2 .zst) is read as is.")
    io_group.add_argument(
        "--output", required=True, metavar="DIR",
        help="directory for documents/, php_leaks/, related_links/, duplicates/, dead_letter/ "
             "and report.json, e.g. --output out/")
    io_group.add_argument(
        "--format", default="auto", choices=FORMATS,
        help="input format: jsonl (one JSON object per line), text (one article per file; the id is "
             "the path relative to the inputs' common root) or auto, by extension (.jsonl/.ndjson/.json "
             "-> jsonl, anything else -> text). Default: auto")
    io_group.add_argument("--id-field", default="id", metavar="NAME",
                          help="JSONL field with the record id (default: id; missing -> file:line)")
    io_group.add_argument("--text-field", default="text", metavar="NAME",
                          help="JSONL field with the article body (default: text)")
    io_group.add_argument("--title-field", default="title", metavar="NAME",
                          help="JSONL field with the headline, if any (default: title)")
    io_group.add_argument("--url-field", default="url", metavar="NAME",
                          help="JSONL field with the article URL; relative related-link paths are "
                               "resolved against it (default: url)")
    io_group.add_argument("--published-field", default="published", metavar="NAME",
                          help="JSONL field with the publication time (default: published)")
    io_group.add_argument(
        "--num-shards", type=int, default=0, metavar="N",
        help="shards per output; 0 lets the runner decide (default). On a cluster pick about "
             "one shard per 100-500 MB of output, e.g. --num-shards 64")
    io_group.add_argument(
        "--max-document-bytes", type=int, default=16 * 1024 * 1024, metavar="BYTES",
        help="records larger than this go to the dead letter as too_large, never truncated "
             "(default: 16777216)")
    io_group.add_argument(
        "--max-seconds-per-document", type=float, default=60.0, metavar="SECONDS",
        help="time one stage may spend on one large (> 256 KiB) document before it goes to the "
             "dead letter as timeout; smaller documents are bounded by the stages' linear cost. "
             "0 disables (default: 60)")
    io_group.add_argument(
        "--no-reshuffle", dest="reshuffle", action="store_false",
        help="skip the shuffles of input files and byte ranges: each range is read in the "
             "process that planned it (no parallel read; saves two small shuffles on one machine)")
    io_group.add_argument(
        "--split-bytes", type=int, default=4 * 1024 * 1024, metavar="BYTES",
        help="uncompressed JSONL files are read in byte ranges of about this size, spread over "
             "the workers (compressed and text files are one range each). Default: 4194304")

    stage_group = parser.add_argument_group("stages")
    stage_group.add_argument(
        "--skip", action="append", default=[], choices=STAGE_NAMES, metavar="STAGE",
        help=f"do not run a stage; repeatable. Stages, in order: {', '.join(STAGE_NAMES)}. "
             "e.g. --skip dedupe")
    stage_group.add_argument(
        "--base-url", default=None, metavar="URL",
        help="base for absolute related-link URLs when a record has no url field, "
             "e.g. --base-url https://www.example.com/")
    stage_group.add_argument(
        "--related-links-format", default="jsonl", choices=("jsonl", "parquet"),
        help="format of related_links/ (default: jsonl); parquet uses Beam's Parquet I/O")
    stage_group.add_argument(
        "--typography-profile", default="news", metavar="NAME",
        help="typography profile: news (default: ftfy fixes + our rules, straight quotes), "
             "conservative (ftfy encoding fixes and spacing only), ftfy-default")
    stage_group.add_argument("--quotes", choices=("straight", "keep"), default=None,
                             help="quote policy, overrides the profile (news: straight)")
    stage_group.add_argument("--dashes", choices=("keep", "ascii"), default=None,
                             help="dash policy, overrides the profile (news: keep)")
    stage_group.add_argument(
        "--dedupe-threshold", type=float, default=None, metavar="J",
        help="Jaccard similarity above which two bodies are near duplicates (MinHash/LSH)")
    stage_group.add_argument("--dedupe-shingle-size", type=int, default=None, metavar="WORDS",
                             help="words per shingle for near-duplicate detection")
    stage_group.add_argument(
        "--no-near-duplicates", dest="dedupe_near_duplicates", action="store_false",
        help="dedupe only exact and headline-based duplicates, no MinHash")


def _absolute_local(path: str) -> str:
    """Local paths made absolute: remote workers have another working directory."""
    return path if "://" in path else os.path.abspath(path)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        inputs=tuple(args.inputs),
        output=_absolute_local(args.output),
        format=args.format,
        id_field=args.id_field,
        text_field=args.text_field,
        title_field=args.title_field,
        url_field=args.url_field,
        published_field=args.published_field,
        skip=tuple(dict.fromkeys(args.skip)),
        num_shards=args.num_shards,
        max_document_bytes=args.max_document_bytes,
        max_seconds_per_document=args.max_seconds_per_document,
        reshuffle=args.reshuffle,
        split_bytes=args.split_bytes,
        base_url=args.base_url,
        related_links_format=args.related_links_format,
        typography_profile=args.typography_profile,
        quotes=args.quotes,
        dashes=args.dashes,
        dedupe_threshold=args.dedupe_threshold,
        dedupe_shingle_size=args.dedupe_shingle_size,
        dedupe_near_duplicates=args.dedupe_near_duplicates,
    )

