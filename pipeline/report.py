"""The run report: what came in, what went where, what each stage changed.

The accounting identity ``input_records == documents + duplicates +
dead_letter`` is checked on counts the pipeline computed from the written
PCollections themselves (``_run/counts.jsonl``); per-stage change counts come
from Beam metrics in the ``newswash`` namespace.
"""

from __future__ import annotations

import datetime
from typing import Any, Iterable, Mapping

import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from pipeline.wiring import COUNTS_FILE, OUTPUT_DIRECTORIES, RUN_DIRECTORY
from transforms.stage import METRICS_NAMESPACE

__all__ = ["read_counts", "stage_metrics", "build_report", "format_summary", "write_report"]


def read_counts(output: str) -> tuple[dict[str, int], dict[str, int]]:
    """Output record counts and dead-letter reason counts written by the run."""
    path = FileSystems.join(output, RUN_DIRECTORY, COUNTS_FILE)
    outputs: dict[str, int] = {}
    reasons: dict[str, int] = {}
    with FileSystems.open(path) as handle:
        for line in handle.read().splitlines():
            if not line.strip():
                continue
            record = orjson.loads(line)
            if "output" in record:
                outputs[record["output"]] = outputs.get(record["output"], 0) + record["records"]
            else:
                reason = record["dead_letter_reason"]
                reasons[reason] = reasons.get(reason, 0) + record["records"]
    return outputs, dict(sorted(reasons.items()))


def stage_metrics(result: Any) -> dict[str, dict[str, int]]:
    """``{stage: {counter: value}}`` from the ``newswash`` Beam counters.

    Empty when the runner returns no metrics; the accounting does not rely
    on them.
    """
    try:
        query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except Exception:  # pylint: disable=broad-except
        return {}
    stages: dict[str, dict[str, int]] = {}
    for counter in query.get("counters", []):
        name = counter.key.metric.name
        stage, _, rule = name.partition(".")
        value = counter.committed if counter.committed is not None else counter.attempted
        if value is None:
            continue
        rules = stages.setdefault(stage, {})
        rules[rule] = rules.get(rule, 0) + int(value)
    return {stage: dict(sorted(rules.items())) for stage, rules in sorted(stages.items())}


def build_report(
    *,
    config: Mapping[str, Any],
    outputs: Mapping[str, int],
    dead_letter_reasons: Mapping[str, int],
    stages: Mapping[str, Mapping[str, int]],
    seconds: float,
    runner: str,
) -> dict[str, Any]:
    input_records = outputs.get("input_records", 0)
    accounted = sum(outputs.get(name, 0) for name in ("documents", "duplicates", "dead_letter"))
    return {
        "newswash_report_version": 1,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runner": runner,
        "config": dict(config),
        "input_records": input_records,
        "outputs": {name: outputs.get(name, 0) for name in OUTPUT_DIRECTORIES},
        "accounting": {
            "identity": "input_records == documents + duplicates + dead_letter",
            "input_records": input_records,
            "accounted": accounted,
            "balanced": input_records == accounted,
        },
        "dead_letter_reasons": dict(dead_letter_reasons),
        "stages": {stage: dict(rules) for stage, rules in stages.items()},
        "seconds": round(seconds, 3),
        "documents_per_second": round(input_records / seconds, 1) if seconds > 0 else None,
    }


def _table(rows: Iterable[tuple[str, str]], indent: str = "  ") -> list[str]:
    rows = list(rows)
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{k.ljust(width)}  {v}" for k, v in rows]


def format_summary(report: Mapping[str, Any]) -> str:
    """A human summary of ``report`` for the end of a run."""
    outputs = report["outputs"]
    accounting = report["accounting"]
    lines = [
        f"newswash: {report['input_records']} input records in {report['seconds']:.1f} s "
        f"({report['documents_per_second'] or 0:.0f} records/s, runner {report['runner']})",
        "outputs:",
        *_table((name, str(count)) for name, count in outputs.items()),
        "accounting: {identity}: {input_records} == {accounted} -> {verdict}".format(
            verdict="balanced" if accounting["balanced"] else "NOT BALANCED", **accounting),
    ]
    if report["dead_letter_reasons"]:
        lines.append("dead letters by stage:reason:")
        lines += _table((reason, str(n)) for reason, n in report["dead_letter_reasons"].items())
    if report["stages"]:
        lines.append("per stage (Beam counters, namespace newswash):")
        for stage, rules in report["stages"].items():
            changed = ", ".join(f"{rule}={value}" for rule, value in rules.items())
            lines.append(f"  {stage}: {changed}")
    return "\n".join(lines)


def write_report(output: str, report: Mapping[str, Any]) -> str:
    path = FileSystems.join(output, "report.json")
    with FileSystems.create(path) as handle:
        handle.write(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    return path
