"""Measure newswash against the I/O floor and the pipeline a user would otherwise write.

    .venv/bin/python benchmarks/run_benchmarks.py --docs 1000 --docs 10000
    .venv/bin/python benchmarks/run_benchmarks.py --docs 10000 --profile --profile-docs 2000

For every ``--docs N`` the same generated corpus (``generate_corpus.py``, seed
``--seed``) is processed by, in this order:

  io-floor          plain Python: read the JSONL, orjson.loads + orjson.dumps each line, write it
  reference         Beam ReadFromText -> Map(orjson.loads, ftfy.fix_text(text), orjson.dumps)
                    -> WriteToText; DirectRunner, --direct_num_workers=1
  reference-2w      the same with ``--direct_num_workers=2 --direct_running_mode=multi_processing``
  newswash-none     the same CLI with every stage skipped (``--skip`` x5): reading, writing and
                    the accounting only, i.e. newswash's framework cost
  newswash-1w       ``python -m pipeline run --input C --output O --overwrite --direct_num_workers=1``
                    (in_memory mode), every stage that imports
  newswash-2w       the same with ``--direct_num_workers=2 --direct_running_mode=multi_processing``
  stage:<name>      each pure stage function (``pipeline.wiring.stage_function``) alone, in
                    process, on the parsed documents, fed the previous stage's output
                    (php-leaks -> headlines -> typography -> related-links)

Every measurement but the stage functions is a child process; its wall time
includes interpreter and Beam start-up, as a user would see it. Peak memory is
the maximum, over samples every ~50 ms, of the summed VmRSS (/proc/<pid>/status)
of the child and all its descendants. CPU is user+sys of the child and the
descendants it waited for (os.wait4). Results are printed and appended to
``benchmarks/RESULTS.md`` as a dated section (``--no-results`` to skip).

Internal sub-commands (used by the runner itself, also handy under cProfile):

    run_benchmarks.py io-floor IN.jsonl OUT.jsonl
    run_benchmarks.py reference IN.jsonl OUT_PREFIX
    run_benchmarks.py stages IN.jsonl [--profile-dir DIR]
    python -m cProfile -s cumtime benchmarks/run_benchmarks.py stages IN.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
sys.path.insert(0, str(HERE))  # generate_corpus
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

PER_DOCUMENT_STAGES = ("php-leaks", "headlines", "typography", "related-links")
ALL_STAGES = PER_DOCUMENT_STAGES + ("dedupe",)
MEASUREMENTS = ("io-floor", "reference", "reference-2w", "newswash-none", "newswash-1w", "newswash-2w", "stages")
SAMPLE_SECONDS = 0.05

# Targets of issue 8.
TARGET_VS_REFERENCE = 5.0
TARGET_TWO_WORKERS = 1.6


# ----------------------------------------------------------------------------
# Process-tree sampling
# ----------------------------------------------------------------------------

def _parent_map() -> dict[int, int]:
    """pid -> ppid for every process visible in /proc."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        parents[int(name)] = int(fields[1])
    return parents


def _descendants(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class TreeMemorySampler(threading.Thread):
    """Samples the summed VmRSS of a process and its descendants."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.peak_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = _descendants(self.pid, _parent_map())
            total = sum(_rss_kib(pid) for pid in pids)
            if total > self.peak_kib:
                self.peak_kib = total
            self.peak_processes = max(self.peak_processes, len(pids))
            self._halt.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclasses.dataclass
class Measurement:
    name: str
    docs: int
    input_bytes: int
    seconds: float
    peak_rss_mib: float | None
    cpu_seconds: float | None = None
    ok: bool = True
    note: str = ""
    skipped: bool = False

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_per_second(self) -> float:
        return self.input_bytes / 1e6 / self.seconds if self.seconds > 0 else float("nan")


def run_measured(command: Sequence[str], log_path: Path, cwd: Path = PROJECT) -> tuple[float, float, float, int, int]:
    """Runs ``command``; returns (wall s, peak MiB, cpu s, exit status, peak processes)."""
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(list(command), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeMemorySampler(process.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except KeyboardInterrupt:
            # Interrupted (Ctrl-C or kill -INT of the runner): end the child's whole tree.
            for pid in reversed(_descendants(process.pid, _parent_map())):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            process.wait()
            sampler.stop()
            raise
        seconds = time.monotonic() - started
        sampler.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, sampler.peak_kib / 1024, cpu, process.returncode, sampler.peak_processes


# ----------------------------------------------------------------------------
# Sub-commands run as children
# ----------------------------------------------------------------------------

def io_floor(input_path: str, output_path: str) -> int:
    """Plain Python: read, parse and re-serialise every line with orjson."""
    import orjson  # pylint: disable=import-outside-toplevel

    count = 0
    with open(input_path, "rb") as source, open(output_path, "wb") as sink:
        for line in source:
            sink.write(orjson.dumps(orjson.loads(line)) + b"\n")
            count += 1
    print(f"io-floor: {count} records")
    return 0


def _fix_record(line: str) -> str:
    import ftfy  # pylint: disable=import-outside-toplevel
    import orjson  # pylint: disable=import-outside-toplevel

    record = orjson.loads(line)
    record["text"] = ftfy.fix_text(record["text"])
    return orjson.dumps(record).decode("utf-8")


def reference(input_path: str, output_prefix: str, beam_args: Sequence[str] = ()) -> int:
    """What a user would write without newswash: ftfy over the text field in Beam."""
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel

    options = PipelineOptions(["--runner=DirectRunner", "--direct_num_workers=1", *beam_args])
    with beam.Pipeline(options=options) as pipeline:
        (pipeline  # pylint: disable=expression-not-assigned
         | "Read" >> beam.io.ReadFromText(input_path)
         | "FixText" >> beam.Map(_fix_record)
         | "Write" >> beam.io.WriteToText(output_prefix, file_name_suffix=".jsonl"))
    return 0


def _load_documents(input_path: str) -> tuple[list[Any], int]:
    from pipeline.io import InputSpec, RawRecord, parse_jsonl_record  # pylint: disable=import-outside-toplevel

    spec = InputSpec()
    documents, size = [], 0
    with open(input_path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            size += len(line)
            line = line.rstrip(b"\r\n")
            if line.strip():
                documents.append(parse_jsonl_record(
                    RawRecord("jsonl", f"{input_path}:{number}", "corpus", line), spec))
    return documents, size


def stages(input_path: str, profile_dir: str | None = None, top: int = 15) -> int:
    """Times each pure stage function on the documents; prints one JSON line per stage."""
    from pipeline.options import RunConfig  # pylint: disable=import-outside-toplevel
    from pipeline.wiring import stage_function  # pylint: disable=import-outside-toplevel

    started = time.monotonic()
    documents, size = _load_documents(input_path)
    print(json.dumps({"stage": "parse", "docs": len(documents), "bytes": size,
                      "seconds": time.monotonic() - started}), flush=True)
    config = RunConfig(inputs=("x",), output="")
    for stage in PER_DOCUMENT_STAGES:
        try:
            function = stage_function(stage, config)
        except Exception as error:  # pylint: disable=broad-except
            print(json.dumps({"stage": stage, "skipped": f"{type(error).__name__}: {error}"}), flush=True)
            continue
        profiler = None
        if profile_dir:
            import cProfile  # pylint: disable=import-outside-toplevel

            profiler = cProfile.Profile()
        outputs, errors, dropped, side_records = [], 0, 0, 0
        first_error = ""
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        for document in documents:
            try:
                result = function(document)
            except Exception as error:  # pylint: disable=broad-except
                errors += 1  # ApplyStageFn would dead-letter it; keep it for the next stage
                first_error = first_error or f"{type(error).__name__}: {error}"[:300]
                outputs.append(document)
                continue
            side_records += len(result.side_records)
            if result.document is None:
                dropped += 1
            else:
                outputs.append(result.document)
        seconds = time.perf_counter() - began
        if profiler:
            profiler.disable()
        record = {"stage": stage, "docs": len(documents), "bytes": size, "seconds": seconds,
                  "errors": errors, "dropped": dropped, "side_records": side_records}
        if first_error:
            record["first_error"] = first_error
        if profiler:
            record["profile"] = _profile_summary(profiler, Path(profile_dir) / f"{stage}.prof", top)
        print(json.dumps(record), flush=True)
        documents = outputs
    _dedupe_fingerprints(documents, config)
    if profile_dir:  # minutes at 10k docs with a pure-Python MinHash: profile pass only
        _dedupe_in_memory(documents, config, profile_dir, top)
    return 0


def _dedupe_fingerprints(documents: list[Any], config: Any) -> None:
    """Dedupe's per-document part: fingerprint (normalised body, MinHash,
    hashes) and bucket-index entries, as its Beam step computes them (in
    batches; without the spill writes)."""
    from pipeline.wiring import dedupe_config  # pylint: disable=import-outside-toplevel
    from transforms.dedupe import FINGERPRINT_BATCH, BucketIndexWriter, fingerprint, fingerprints  # pylint: disable=import-outside-toplevel

    dedupe = dedupe_config(config)
    if documents:
        fingerprint(documents[0], dedupe)  # builds the hash family outside the timed loop
    began = time.perf_counter()
    fingerprinted = 0
    index = BucketIndexWriter(dedupe.index_shards)
    for start in range(0, len(documents), FINGERPRINT_BATCH):
        batch = [document.without_transients() for document in documents[start:start + FINGERPRINT_BATCH]]
        batch_fingerprints = [fp for fp in fingerprints(batch, dedupe) if fp is not None]
        index.add_band_entries(batch_fingerprints, dedupe)
        for fp in batch_fingerprints:
            index.add_fingerprint(fp, dedupe, "", bands=False)
        fingerprinted += len(batch_fingerprints)
        if index.full:
            index.flush()
    index.flush()
    print(json.dumps({"stage": "dedupe-fingerprint", "docs": len(documents), "seconds": time.perf_counter() - began,
                      "errors": 0, "dropped": len(documents) - fingerprinted, "side_records": 0}), flush=True)


def _dedupe_in_memory(documents: list[Any], config: Any, profile_dir: str | None, top: int) -> None:
    """Dedupe has no per-document function; time its in-memory reference ``deduplicate``."""
    try:
        from pipeline.wiring import dedupe_config  # pylint: disable=import-outside-toplevel
        from transforms.dedupe import deduplicate  # pylint: disable=import-outside-toplevel

        dedupe = dedupe_config(config)
    except Exception as error:  # pylint: disable=broad-except
        print(json.dumps({"stage": "dedupe", "skipped": f"{type(error).__name__}: {error}"}), flush=True)
        return
    documents = [document.without_transients() for document in documents]
    profiler = None
    if profile_dir:
        import cProfile  # pylint: disable=import-outside-toplevel

        profiler = cProfile.Profile()
        profiler.enable()
    began = time.perf_counter()
    errors, first_error, kept, duplicates = 0, "", [], []
    try:
        kept, duplicates = deduplicate(documents, dedupe)
    except Exception as error:  # pylint: disable=broad-except
        errors, first_error = 1, f"{type(error).__name__}: {error}"[:300]
    seconds = time.perf_counter() - began
    record = {"stage": "dedupe", "docs": len(documents), "seconds": seconds, "errors": errors,
              "dropped": len(duplicates), "side_records": len(duplicates), "kept": len(kept)}
    if first_error:
        record["first_error"] = first_error
    if profiler:
        profiler.disable()
        record["profile"] = _profile_summary(profiler, Path(profile_dir) / "dedupe.prof", top)
    print(json.dumps(record), flush=True)


def _profile_summary(profiler: Any, path: Path, top: int) -> list[dict[str, Any]]:
    """The ``top`` functions by own time, with % of the stage's total time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(path))
    return _stats_rows(path, top)


def _stats_rows(path: Path, top: int, key: str = "tottime_pct",
                project_only: bool = False) -> list[dict[str, Any]]:
    """Top functions of a pstats file, by own (``tottime_pct``) or cumulative time."""
    import pstats  # pylint: disable=import-outside-toplevel

    stats = pstats.Stats(str(path))
    # cProfile can lose the own time of generator frames (so total_tt falls short);
    # the largest cumulative time (the top-level call) is the better 100%.
    total = max([stats.total_tt, *(entry[3] for entry in stats.stats.values())]) or 1e-9
    rows = []
    for (filename, line, function), (_, calls, tottime, cumtime, _) in stats.stats.items():
        if project_only and (not filename.startswith((str(PROJECT / "transforms"), str(PROJECT / "pipeline")))
                             or (filename.endswith(("pipeline/cli.py", "pipeline/__main__.py"))
                                 and function in ("main", "run", "<module>"))):
            continue  # other code, or the CLI's entry points (always ~100%)
        rows.append({
            "function": f"{_short_path(filename)}:{line}({function})",
            "calls": calls,
            "tottime_pct": round(100 * tottime / total, 1),
            "cumtime_pct": round(100 * cumtime / total, 1),
        })
    rows.sort(key=lambda row: row[key], reverse=True)
    return rows[:top]


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", str(PROJECT) + "/", "lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# ----------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------

def available_stages() -> tuple[list[str], dict[str, str]]:
    """Stages whose module imports, and why the others are skipped."""
    present, missing = [], {}
    for stage in ALL_STAGES:
        module = "transforms." + stage.replace("-", "_")
        try:
            importlib.import_module(module)
        except Exception as error:  # pylint: disable=broad-except
            missing[stage] = f"{module}: {type(error).__name__}: {error}"[:200]
        else:
            present.append(stage)
    return present, missing


def ensure_corpus(workdir: Path, docs: int, seed: int) -> tuple[Path, int]:
    import generate_corpus  # pylint: disable=import-outside-toplevel

    path = workdir / f"corpus-{docs}-seed{seed}.jsonl"
    done = path.with_suffix(".done")
    if not (path.exists() and done.exists() and done.read_text().strip() == str(path.stat().st_size)):
        started = time.monotonic()
        generate_corpus.write_corpus(docs, str(path), seed)
        done.write_text(str(path.stat().st_size))
        print(f"  generated {path} ({path.stat().st_size / 1e6:.1f} MB) in "
              f"{time.monotonic() - started:.1f} s", flush=True)
    return path, path.stat().st_size


def _count_lines(pattern_dir: Path, prefix: str = "") -> int:
    total = 0
    for file in pattern_dir.glob(prefix + "*"):
        if file.is_file():
            with open(file, "rb") as handle:
                total += sum(1 for _ in handle)
    return total


def _newswash_check(output: Path, docs: int) -> tuple[bool, str]:
    try:
        report = json.loads((output / "report.json").read_text())
    except (OSError, ValueError) as error:
        return False, f"no report.json ({error})"
    outputs = report["outputs"]
    balanced = report["accounting"]["balanced"] and report["input_records"] == docs
    note = (f"in {report['input_records']}, docs {outputs['documents']}, dup {outputs['duplicates']}, "
            f"dead {outputs['dead_letter']}, php {outputs['php_leaks']}, links {outputs['related_links']}; "
            f"pipeline {report['seconds']:.1f} s")
    return balanced, note


def measure_size(docs: int, args: argparse.Namespace, missing: dict[str, str],
                 results: list[Measurement]) -> None:
    """Appends each measurement to ``results`` as soon as it is done."""
    workdir = Path(args.workdir).resolve()
    corpus, size = ensure_corpus(workdir, docs, args.seed)
    python = sys.executable
    me = str(Path(__file__).resolve())
    runs = set(args.only or MEASUREMENTS)
    skips = [f"--skip={stage}" for stage in missing]

    def child(name: str, command: list[str], out: Path | None) -> tuple[float, float, float, int]:
        if out is not None and out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        print(f"  {name}: {shlex.join(command)}", flush=True)
        seconds, peak, cpu, status, processes = run_measured(command, workdir / f"{name}-{docs}.log")
        print(f"    {seconds:.1f} s, {docs / seconds:.0f} docs/s, peak {peak:.0f} MiB "
              f"({processes} processes), cpu {cpu:.1f} s, exit {status}", flush=True)
        return seconds, peak, cpu, status

    if "io-floor" in runs:
        out = workdir / f"io-floor-{docs}.jsonl"
        seconds, peak, cpu, status = child("io-floor", [python, me, "io-floor", str(corpus), str(out)], out)
        lines = _count_lines(workdir, out.name) if status == 0 else 0
        results.append(Measurement("io-floor", docs, size, seconds, peak, cpu, status == 0 and lines == docs,
                                   f"{lines} records written"))
        out.unlink(missing_ok=True)

    for name, label, extra in (
            ("reference", "reference (Beam + ftfy)", []),
            ("reference-2w", "reference 2 workers (multi_processing)",
             ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])):
        if name not in runs:
            continue
        out = workdir / f"{name}-{docs}"
        out.mkdir(parents=True, exist_ok=True)
        seconds, peak, cpu, status = child(
            name, [python, me, "reference", str(corpus), str(out / "part"), *extra], out)
        lines = _count_lines(out) if status == 0 else 0
        results.append(Measurement(label, docs, size, seconds, peak, cpu,
                                   status == 0 and lines == docs, f"{lines} records written"))

    newswash = [python, "-m", "pipeline", "run", "--input", str(corpus)]
    everything = [f"--skip={stage}" for stage in ALL_STAGES]
    for name, label, extra in (
            ("newswash-none", "newswash 1 worker, no stages (framework only)",
             ["--direct_num_workers=1", *everything]),
            ("newswash-1w", "newswash 1 worker", ["--direct_num_workers=1"]),
            ("newswash-2w", "newswash 2 workers (multi_processing)",
             ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])):
        if name not in runs:
            continue
        out = workdir / f"{name}-{docs}"
        command = [*newswash, "--output", str(out), "--overwrite",
                   *(skips if name != "newswash-none" else []), *extra]
        seconds, peak, cpu, status = child(name, command, out)
        ok, note = _newswash_check(out, docs) if status == 0 else (False, f"exit {status}")
        results.append(Measurement(label, docs, size, seconds, peak, cpu, ok, note))

    if "stages" in runs:
        log = workdir / f"stages-{docs}.log"
        command = [python, me, "stages", str(corpus)]
        seconds, peak, cpu, status = child("stages", command, None)
        for line in log.read_text().splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            stage = record["stage"]
            if "skipped" in record:
                results.append(Measurement(f"stage {stage}", docs, size, float("nan"),
                                           None, None, True, "not run: " + record["skipped"], skipped=True))
                continue
            if stage == "parse":
                results.append(Measurement("parse JSONL -> Document (in-process)", docs, size,
                                           record["seconds"], None, None, True,
                                           f"process peak {peak:.0f} MiB for all stages"))
                continue
            if stage == "dedupe":
                note = f"in-memory `transforms.dedupe.deduplicate`: kept {record['kept']}, duplicates {record['dropped']}"
            else:
                note = (f"errors {record['errors']}, dropped {record['dropped']}, "
                        f"side records {record['side_records']}")
            if record.get("first_error"):
                note += f"; first error: {record['first_error'][:120]}"
            if stage == "dedupe-fingerprint":
                note = f"fingerprints + bucket-index entries, in batches of 256; {record['dropped']} without text"
            label = "stage dedupe (in memory, not per document)" if stage == "dedupe" else \
                f"stage {stage} (pure function)"
            results.append(Measurement(label, docs, size, record["seconds"],
                                       None, None, record["errors"] == 0, note))


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def results_table(results: Sequence[Measurement]) -> str:
    lines = ["| measurement | docs | wall s | docs/s | MB/s | peak RSS MiB | CPU s | ok | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for m in results:
        lines.append(
            f"| {m.name} | {m.docs:,} | {_fmt(m.seconds, 1)} | {_fmt(m.docs_per_second)} | "
            f"{_fmt(m.mb_per_second, 2)} | {_fmt(m.peak_rss_mib)} | {_fmt(m.cpu_seconds, 1)} | "
            f"{'skipped' if m.skipped else 'yes' if m.ok else 'NO'} | {m.note} |")
    return "\n".join(lines)


def _find(results: Sequence[Measurement], name: str, docs: int) -> Measurement | None:
    for m in results:
        if m.name.split(" (")[0] == name and m.docs == docs and not math.isnan(m.seconds):
            return m
    return None


def ratios(results: Sequence[Measurement], sizes: Sequence[int]) -> list[str]:
    lines = []
    for docs in sizes:
        one = _find(results, "newswash 1 worker", docs)
        two = _find(results, "newswash 2 workers", docs)
        ref = _find(results, "reference", docs)
        floor = _find(results, "io-floor", docs)
        if one and ref:
            ratio = one.docs_per_second / ref.docs_per_second
            lines.append(f"- {docs:,} docs: newswash 1 worker / reference = {ratio:.2f}x docs/s "
                         f"(target >= {TARGET_VS_REFERENCE:g}x: {'met' if ratio >= TARGET_VS_REFERENCE else 'MISSED'})")
        bare = _find(results, "newswash 1 worker, no stages", docs)
        if one and bare:
            lines.append(f"- {docs:,} docs: the framework alone (no stages) takes {bare.seconds:.1f} s, "
                         f"{100 * bare.seconds / one.seconds:.0f}% of the full 1-worker wall time")
        ref_two = _find(results, "reference 2 workers", docs)
        if two and ref_two:
            ratio = two.docs_per_second / ref_two.docs_per_second
            lines.append(f"- {docs:,} docs: newswash 2 workers / reference 2 workers = {ratio:.2f}x docs/s "
                         "(the same comparison with both cores in use)")
        if one and two:
            ratio = two.docs_per_second / one.docs_per_second
            lines.append(f"- {docs:,} docs: newswash 2 workers / 1 worker = {ratio:.2f}x docs/s "
                         f"(target >= {TARGET_TWO_WORKERS:g}x: {'met' if ratio >= TARGET_TWO_WORKERS else 'MISSED'})")
        if floor:
            for other in (ref, one):
                if other:
                    lines.append(f"- {docs:,} docs: {other.name} takes {other.seconds / floor.seconds:.0f}x "
                                 "the I/O floor's wall time")
    ordered = sorted(sizes)
    for small, large in zip(ordered, ordered[1:]):
        factor = large / small
        for name in ("io-floor", "reference", "reference 2 workers", "newswash 1 worker, no stages",
                     "newswash 1 worker", "newswash 2 workers"):
            a, b = _find(results, name, small), _find(results, name, large)
            if not (a and b):
                continue
            growth = b.seconds / a.seconds
            exponent = math.log(growth) / math.log(factor)
            memory = (f", peak memory x{b.peak_rss_mib / a.peak_rss_mib:.2f} "
                      f"({a.peak_rss_mib:.0f} -> {b.peak_rss_mib:.0f} MiB)"
                      if a.peak_rss_mib and b.peak_rss_mib else "")
            verdict = "linear or better" if growth <= factor * 1.15 else "SUPERLINEAR"
            marginal = (large - small) / (b.seconds - a.seconds) if b.seconds > a.seconds else float("nan")
            lines.append(f"- {name}: {small:,} -> {large:,} docs (x{factor:.3g}): wall time x{growth:.2f} "
                         f"(exponent {exponent:.2f}, {verdict}); marginal {_fmt(marginal)} docs/s "
                         f"(start-up excluded){memory}")
    return lines


def profile_pass(args: argparse.Namespace, missing: dict[str, str]) -> list[str]:
    """cProfile, untimed: each pure stage function, and the whole 1-worker newswash run.

    Profiling slows Python code down 1.5-3x, so none of this feeds the table.
    """
    workdir = Path(args.workdir).resolve()
    docs = args.profile_docs or min(args.docs or [10000])
    corpus, _ = ensure_corpus(workdir, docs, args.seed)
    profile_dir = workdir / f"profile-{docs}"
    profile_dir.mkdir(parents=True, exist_ok=True)
    python, me = sys.executable, str(Path(__file__).resolve())
    lines = [f"Profiled on {docs:,} documents (cProfile; % of the profiled total; untimed pass). "
             f"Profiles: `{profile_dir}`."]

    log = profile_dir / "stages.log"
    print(f"  profile stages on {docs:,} docs", flush=True)
    with open(log, "wb") as handle:
        subprocess.run([python, me, "stages", str(corpus), "--profile-dir", str(profile_dir)],
                       cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT, check=False)
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "profile" not in record:
            continue
        what = ("in-memory `transforms.dedupe.deduplicate`" if record["stage"] == "dedupe"
                else f"pure stage function `{record['stage']}`")
        lines.append(f"- {what} ({record['seconds']:.2f} s under the "
                     f"profiler, {record['docs'] / record['seconds']:,.0f} docs/s), top own time:")
        lines += _profile_rows(record["profile"], 8)

    out = workdir / f"profile-run-{docs}"
    stats_path = profile_dir / "newswash-1w.prof"
    command = [python, "-m", "cProfile", "-o", str(stats_path), "-m", "pipeline", "run",
               "--input", str(corpus), "--output", str(out), "--overwrite",
               *[f"--skip={stage}" for stage in missing], "--direct_num_workers=1"]
    print(f"  profile: {shlex.join(command)}", flush=True)
    with open(profile_dir / "newswash-1w.log", "wb") as handle:
        status = subprocess.run(command, cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT,
                                check=False).returncode
    if status == 0 and stats_path.exists():
        rows = _stats_rows(stats_path, 12)
        lines.append(f"- whole `newswash run`, 1 worker, in_memory (everything runs in the profiled "
                     f"process), top own time:")
        lines += _profile_rows(rows, 12)
        lines.append("- the same run, newswash's own functions (pipeline/, transforms/) by cumulative time:")
        lines += _profile_rows(_stats_rows(stats_path, 12, "cumtime_pct", project_only=True), 12)
    else:
        lines.append(f"- whole `newswash run` profile failed (exit {status}), see {profile_dir}/newswash-1w.log")
    return lines


def _profile_rows(rows: Sequence[dict[str, Any]], top: int) -> list[str]:
    return [f"  - {row['tottime_pct']:.1f}% own, {row['cumtime_pct']:.1f}% cumulative, "
            f"{row['calls']:,} calls: `{row['function']}`" for row in rows[:top]]


def machine_description() -> list[str]:
    import apache_beam  # pylint: disable=import-outside-toplevel
    import ftfy  # pylint: disable=import-outside-toplevel
    import orjson  # pylint: disable=import-outside-toplevel

    meminfo = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            meminfo[key] = value.strip()
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()
    return [
        f"- machine: {os.cpu_count()} cores ({model}), MemTotal {meminfo.get('MemTotal', '?')}, "
        f"MemAvailable at start {meminfo.get('MemAvailable', '?')}, load average at start "
        f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, {platform.platform()}",
        f"- software: Python {platform.python_version()}, apache-beam {apache_beam.__version__}, "
        f"ftfy {ftfy.__version__}, orjson {orjson.__version__}, {_numba_version()}",
    ]


def _numba_version() -> str:
    try:
        import numba  # pylint: disable=import-outside-toplevel
    except ImportError:
        return "numba not installed (dedupe's MinHash runs with numpy)"
    return f"numba {numba.__version__}"


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def orchestrate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    # SIGTERM (and SIGINT, even when a non-interactive shell started us in the
    # background with SIGINT ignored) end the run early but still write the
    # measurements that finished.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # Largest first: if the run has to be interrupted, the most telling size is done.
    sizes = sorted(dict.fromkeys(args.docs or [10000]), reverse=True)
    present, missing = available_stages()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    header = machine_description()
    print("\n".join(header), flush=True)
    if missing:
        print("stages not importable, skipped in newswash runs: " + "; ".join(missing.values()), flush=True)
    results: list[Measurement] = []
    interrupted = ""
    try:
        for docs in sizes if not args.profile_only else []:
            print(f"== {docs:,} documents", flush=True)
            measure_size(docs, args, missing, results)
    except KeyboardInterrupt:
        interrupted = (f"INTERRUPTED after {len(results)} measurements; the table holds only the "
                       "measurements that finished")
        print(interrupted, flush=True)
    prof: list[str] = []
    if (args.profile or args.profile_only) and not interrupted:
        prof = profile_pass(args, missing)
    finished_at = datetime.datetime.now(datetime.timezone.utc)
    table = results_table(results)
    ratio_lines = ratios(results, sizes)
    command = "python benchmarks/run_benchmarks.py " + shlex.join(list(argv))
    section = [
        f"## {started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command.strip()}` (from {PROJECT}, {sys.executable}); "
        f"finished {finished_at:%H:%M:%S} UTC, {(finished_at - started_at).total_seconds() / 60:.1f} min",
        *header,
        f"- corpus: `generate_corpus.py N --seed {args.seed}`",
        f"- newswash stages run: {', '.join(present) or 'none'}"
        + (f"; skipped (not importable): {', '.join(missing)}" if missing else ""),
        *([f"- **{interrupted}**"] if interrupted else []),
    ]
    if results:
        section += ["", table, "", "Ratios:", "",
                    *(ratio_lines or ["- (need both measurements for a ratio)"])]
    if prof:
        section += ["", "Profile (`--profile`):", "", *prof]
    if args.note:
        section += ["", f"Note: {args.note}"]
    text = "\n".join(section) + "\n"
    print()
    print(text)
    if not args.no_results:
        results_path = Path(args.results)
        if not results_path.exists():
            results_path.write_text("# newswash benchmark results\n\nSections are appended by "
                                    "`benchmarks/run_benchmarks.py`; see `benchmarks/README.md`.\n\n")
        with open(results_path, "a") as handle:
            handle.write("\n" + text)
        print(f"appended to {results_path}")
    return 0 if all(m.ok for m in results) and not interrupted else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "io-floor":
        return io_floor(argv[1], argv[2])
    if argv and argv[0] == "reference":
        return reference(argv[1], argv[2], argv[3:])
    if argv and argv[0] == "stages":
        parser = argparse.ArgumentParser(prog="run_benchmarks.py stages")
        parser.add_argument("input")
        parser.add_argument("--profile-dir", default=None)
        parsed = parser.parse_args(argv[1:])
        return stages(parsed.input, parsed.profile_dir)
    parser = argparse.ArgumentParser(
        description="Benchmark newswash against the I/O floor and a plain Beam + ftfy pipeline.",
        epilog="Sub-commands used internally: io-floor IN OUT | reference IN OUT_PREFIX | stages IN "
               "[--profile-dir DIR]. See benchmarks/README.md.")
    parser.add_argument("--docs", type=int, action="append", metavar="N",
                        help="corpus size; repeat for several (default 10000)")
    parser.add_argument("--workdir", default=str(HERE / "work"),
                        help="corpora, outputs and logs (default benchmarks/work)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument("--only", action="append", choices=MEASUREMENTS,
                        help="run only these measurements; repeatable (default all)")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, cProfile each pure stage function and a whole 1-worker "
                             "newswash run (untimed) and report the hot spots")
    parser.add_argument("--profile-only", action="store_true",
                        help="skip the measurements, run only the --profile pass")
    parser.add_argument("--profile-docs", type=int, default=None, metavar="N",
                        help="corpus size for --profile (default: the smallest --docs)")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"),
                        help="markdown file to append a dated section to")
    parser.add_argument("--no-results", action="store_true", help="print only, do not append")
    parser.add_argument("--note", default="", help="free text added to the section")
    args = parser.parse_args(argv)
    if any(n <= 0 for n in args.docs or []):
        parser.error("--docs must be positive")
    return orchestrate(args, argv)


if __name__ == "__main__":
    sys.exit(main())
