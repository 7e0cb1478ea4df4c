"""The ``newswash`` command (also ``python -m pipeline``).

    newswash run --input 'samples/*' --output out/ [Beam options ...]
    newswash explain samples/articles/000_564ceb310d2225dc.txt
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any, Sequence, TextIO

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline import report as run_report
from pipeline.options import STAGE_NAMES, add_run_arguments, config_from_args, RunConfig
from pipeline.wiring import OUTPUT_DIRECTORIES, RUN_DIRECTORY, build_pipeline, spill_directory

__all__ = ["main", "build_parser", "run"]

RUN_EPILOG = """\
examples:
  newswash run --input 'samples/*' --output out/
  newswash run --input 'scrape/*.jsonl.gz' --output out/ --skip dedupe \\
      --direct_num_workers=2 --direct_running_mode=multi_processing
  newswash run --input 'gs://b/scrape/*.jsonl.gz' --output gs://b/clean/ --num-shards 64 \\
      --runner DataflowRunner --project P --region europe-west1 --temp_location gs://b/tmp

Every flag newswash does not know is passed to Beam's PipelineOptions unchanged
(--runner, --direct_num_workers, --job_endpoint, --project, --setup_file, ...).
The default runner is the DirectRunner.

outputs under --output: documents/ php_leaks/ related_links/ duplicates/ dead_letter/
(JSONL shards), report.json, and a summary on stdout. Exit status 1 when the
accounting input_records == documents + duplicates + dead_letter does not hold.
"""

EXPLAIN_EPILOG = """\
examples:
  newswash explain samples/articles/000_564ceb310d2225dc.txt
  newswash explain samples/articles.jsonl --line 2
  newswash explain samples/articles.jsonl --id world-123 --skip typography
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newswash",
        description="Turn raw scraped news text into a clean, structured corpus: strip leaked PHP "
                    "debug output, dedupe headlines and articles, normalise typography, and split "
                    "related-links metadata into its own output. Runs on Apache Beam.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'newswash run --help' or 'newswash explain --help' for the options of each.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_parser = commands.add_parser(
        "run", help="clean a corpus with Beam and write all outputs and report.json",
        description="Clean a corpus with Apache Beam.", epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(run_parser)
    run_parser.add_argument(
        "--overwrite", action="store_true",
        help="delete the outputs of an earlier run in --output first (refused otherwise)")

    explain_parser = commands.add_parser(
        "explain", help="show what each stage changes in one document (no Beam)",
        description="Run the per-document stages on one document and print a diff per stage.",
        epilog=EXPLAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    explain_parser.add_argument("file", metavar="FILE",
                                help="a text article, or a JSONL file with --line or --id")
    explain_parser.add_argument("--line", type=int, default=None,
                                help="1-based line of a JSONL file (default: the first record)")
    explain_parser.add_argument("--id", dest="record_id", default=None,
                                help="pick the JSONL record with this id")
    explain_parser.add_argument("--format", default="auto", choices=("auto", "jsonl", "text"))
    explain_parser.add_argument("--text-field", default="text")
    explain_parser.add_argument("--id-field", default="id")
    explain_parser.add_argument("--title-field", default="title")
    explain_parser.add_argument("--url-field", default="url")
    explain_parser.add_argument("--published-field", default="published")
    explain_parser.add_argument("--skip", action="append", default=[], choices=STAGE_NAMES,
                                metavar="STAGE", help="stage not to run; repeatable")
    explain_parser.add_argument("--base-url", default=None)
    explain_parser.add_argument("--typography-profile", default="news")
    explain_parser.add_argument("--quotes", choices=("straight", "keep"), default=None)
    explain_parser.add_argument("--dashes", choices=("keep", "ascii"), default=None)
    return parser


def _existing_outputs(output: str) -> list[str]:
    patterns = [FileSystems.join(output, name, "*") for name in (*OUTPUT_DIRECTORIES, RUN_DIRECTORY)]
    patterns.append(FileSystems.join(output, "report.json"))
    found: list[str] = []
    for result in FileSystems.match(patterns):
        found.extend(m.path for m in result.metadata_list)
    return found


def _delete_spill(config: RunConfig) -> None:
    spill = spill_directory(config)
    if FileSystems.exists(spill):
        FileSystems.delete([spill])


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    try:
        from pipeline.packaging import ship_project_to_workers  # pylint: disable=import-outside-toplevel
    except ImportError:
        return options
    ship_project_to_workers(options)
    return options


def run(config: RunConfig, beam_args: Sequence[str], overwrite: bool = False,
        out: TextIO | None = None) -> dict[str, Any]:
    """Runs the job, writes ``report.json`` and returns the report."""
    existing = _existing_outputs(config.output)
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{config.output} already holds newswash outputs ({len(existing)} files); "
                "pass --overwrite to replace them or pick another --output")
        FileSystems.delete(existing)
    options = pipeline_options(
        [*beam_args, f"--max_seconds_per_document={config.max_seconds_per_document}"])
    started = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, config)
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.monotonic() - started
    _delete_spill(config)
    outputs, reasons = run_report.read_counts(config.output)
    report = run_report.build_report(
        config={k: list(v) if isinstance(v, tuple) else v for k, v in vars(config).items()},
        outputs=outputs, dead_letter_reasons=reasons, stages=run_report.stage_metrics(result),
        seconds=seconds, runner=str(options.view_as(StandardOptions).runner))
    run_report.write_report(config.output, report)
    if out is not None:
        out.write(run_report.format_summary(report) + "\n")
    return report


def explain(args: argparse.Namespace, out: TextIO) -> int:
    from pipeline.explain import explain_document, load_document  # pylint: disable=import-outside-toplevel

    document = load_document(
        args.file, fmt=args.format, line=args.line, record_id=args.record_id,
        text_field=args.text_field, id_field=args.id_field, title_field=args.title_field,
        url_field=args.url_field, published_field=args.published_field)
    out.write(explain_document(document, args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "explain":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return explain(args, sys.stdout)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        report = run(config, rest, overwrite=args.overwrite, out=sys.stdout)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"newswash: error: {error}", file=sys.stderr)
        return 2
    return 0 if report["accounting"]["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
