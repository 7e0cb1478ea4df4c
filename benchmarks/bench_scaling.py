"""Scaling benchmark: no per-document stage may be superlinear in document size (not a test).

    .venv/bin/python benchmarks/bench_scaling.py [--base-kb 128] [--repeat 5] [--min-ms 20]
                                                 [--stage NAME]... [--shape NAME]...

For each per-document stage function (``pipeline.wiring.stage_function``, in
pipeline order) and each document shape, the stage is timed on documents of
about 1x, 2x, 4x, 8x and 16x the base size (base 128 KB, so up to ~2 MB). A
stage gets what it would get in the pipeline: the document after the earlier
stages (built once, not timed), so related-links sees the parsed values
php-leaks left it and typography sees the text without the leaks php-leaks
could remove.

Timing: CPU time of this process (``time.process_time``, nanosecond clock),
not wall time: on this shared 2-core machine, while other jobs ran, the
wall-clock minimum of five batches of the same calls moved by up to 1.8x
between trials, the CPU-time minimum by 2-13 %. Each timing is a batch of as many calls as
make at least ``--min-ms`` (20 ms) of CPU time, so a 0.01 ms call is timed
over ~2000 calls; ``gc.collect()`` runs before each batch (with the objects
alive before timing frozen out of it) and the collector is off during it.
The time per call is the minimum over ``--repeat`` (5) rounds, a round timing
one batch of every (stage, size) of a shape in turn, so that a busy spell on
the machine spoils one round of many timings rather than every round of one.

Verdict per (stage, shape), from the growth exponent ``p``: the least-squares
slope of log t against log size over the five sizes (linear code gives ~1,
quadratic code ~2; n log n would give ~1.05 here and passes):

* ``linear``: p <= 1.2 and the marginal exponent over the top two
  doublings, m = log(t(16x) / t(4x)) / log 4, <= 1.2 as well (m catches
  growth that starts late, e.g. [1, 2, 4, 8, 32] ms gives p = 1.2 but m = 1.5).
* otherwise the case is re-timed at 8x, 16x and 32x, and the exponent ``q``
  fitted over those three sizes says whether the growth goes on:
  ``linear above a step`` when q <= 1.2 (the cost per byte rose once between
  two sizes and is flat above, e.g. typography's extra check of texts longer
  than ftfy's 1,000,000-character segment limit, between 4x and 8x here),
  ``SUPERLINEAR`` when q > 1.2 again after a second re-timing (per-size
  minimum of both). A step between 8x and 32x therefore counts as
  superlinear: the benchmark errs towards failing.
* ``too fast to measure``: p or m > 1.2 but the call takes under 0.02 ms even at
  16x, so its time cannot depend on reading the document and the exponent is
  noise. Not a failure, but reported as what it is.

The script prints a table (stage, shape, sizes, CPU ms per call at each size,
p, m, throughput at 16x, verdict), the 8x/16x/32x times of every re-timed case,
and a cProfile of the 16x run of each superlinear case. It exits 1 if any
case is superlinear, else 0. ``--self-check`` (not in --help) runs the same
measuring and verdict code on toy functions (quadratic; linear; linear with a
4x step) and exits 1 unless they get SUPERLINEAR, linear and a passing
verdict respectively.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import pstats
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = (1, 2, 4, 8, 16)
TAIL_SIZES = (8, 16, 32)  # re-timed for a case whose exponent p or m is over the limit
LINEAR_MAX = 1.2  # growth exponent above which a case is not linear
TOO_FAST = 20e-6  # seconds per call at the largest size under which the exponent is noise
CLOCK = time.process_time

LINEAR = "linear"
STEP = "linear above a step"
SUPERLINEAR = "SUPERLINEAR"
TOO_FAST_LABEL = "too fast to measure"

PROSE = (
    "Raging clashes between Takfiri terrorists in Idlib are raising fears of widespread violence "
    "in the north. The fighting between Ahrar al-Sham which is backed by Saudi Arabia,Qatar and "
    "Turkey and al-Qaeda\u2019s Syria offshoot is the the first major escalation since February. "
    "\u201cWe will not stop,\u201d a commander said on Sunday \u2014 talks resumed in Astana .\n\n"
)


def _repeat_to(unit: str, chars: int) -> str:
    return unit * max(1, chars // len(unit))


def _related_dump(n_links: int) -> str:
    links = [{"id": str(1995016 + i), "sort": str(5058101 - i), "contenttypeid": "21",
              "pic": f"/2017/07/11/alalam_{i}_25f_4x3.jpg", "title": f"Related story number {i} \u2019s title"}
             for i in range(n_links)]
    payload = json.dumps(links, ensure_ascii=False, separators=(",", ":"))
    return f'string({len(payload.encode("utf-8"))}) "{payload}"'


def _many_leaks_unit() -> str:
    return (PROSE + _related_dump(3) + "\n\n" + PROSE
            + 'array(2) {\n  ["id"]=>\n  int(7)\n  ["title"]=>\n  string(5) "Hello"\n}\n\n'
            + PROSE + "Array\n(\n    [id] => 12\n    [title] => A print_r title\n)\n\n"
            + PROSE + "<b>Warning</b>:  Undefined variable $x in <b>/var/www/html/a.php</b> on line <b>12</b><br />\n\n")


def _one_huge_leak(chars: int) -> str:
    n_links = max(1, (chars - 2 * len(PROSE)) // 150)
    return "Headline of the day\n\n" + PROSE + _related_dump(n_links) + "\n\n" + PROSE


# name -> function(target number of characters) -> text
SHAPES: dict[str, Callable[[int], str]] = {
    "clean prose": lambda n: "A headline about Idlib\n\n" + _repeat_to(PROSE, n),
    "prose, many leaks": lambda n: "A headline about Idlib\n\n" + _repeat_to(_many_leaks_unit(), n),
    "one huge leak": _one_huge_leak,
    "string( fragments": lambda n: PROSE + _repeat_to("string(", n),
    "array(999999) { open": lambda n: PROSE + "array(999999) {\n" + _repeat_to('  ["k"]=>\n  int(1)\n', n),
    "deep nesting collapsed": lambda n: PROSE + _repeat_to("array(1) { [0]=> ", n) + "\n\n" + PROSE,
    "one long line": lambda n: _repeat_to("word ", n),
    "many short lines": lambda n: _repeat_to("ab\n", n),
}


# ---------------------------------------------------------------- verdict (pure)

def growth_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Least-squares slope of log(time) against log(size): t ~ size ** slope."""
    if len(sizes) != len(times) or len(sizes) < 2:
        raise ValueError("need the same number (>= 2) of sizes and times")
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(t, 1e-12)) for t in times]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("sizes must not all be equal")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def top_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """The exponent of the marginal ratio over the top two doublings,
    e.g. log(t(16x) / t(4x)) / log(4): growth that starts late, which the fit
    over all sizes would dilute."""
    if len(sizes) < 3:
        return growth_exponent(sizes, times)
    return math.log(max(times[-1], 1e-12) / max(times[-3], 1e-12)) / math.log(sizes[-1] / sizes[-3])


class Verdict(NamedTuple):
    label: str  # LINEAR, STEP, SUPERLINEAR, TOO_FAST_LABEL, or "" while the tail is needed
    exponent: float  # p, fitted over all sizes
    top_exponent: float  # m, over the top two doublings
    tail_exponent: float | None = None  # q, over TAIL_SIZES (only when p or m is over the limit)

    @property
    def needs_tail(self) -> bool:
        return not self.label

    @property
    def ok(self) -> bool:
        return self.label in (LINEAR, STEP, TOO_FAST_LABEL)


def verdict(sizes: Sequence[float], times: Sequence[float],
            tail_sizes: Sequence[float] | None = None,
            tail_times: Sequence[float] | None = None) -> Verdict:
    """The verdict of one case (see the module docstring). Without tail times,
    a case whose exponent (over all sizes or over the top two doublings) is
    over the limit, and is not too fast, comes back with ``needs_tail``: time
    it at TAIL_SIZES and call again with them."""
    p = growth_exponent(sizes, times)
    m = top_exponent(sizes, times)
    if p <= LINEAR_MAX and m <= LINEAR_MAX:
        return Verdict(LINEAR, p, m)
    if max(times) < TOO_FAST:
        return Verdict(TOO_FAST_LABEL, p, m)
    if tail_times is None:
        return Verdict("", p, m)
    q = growth_exponent(tail_sizes, tail_times)
    return Verdict(STEP if q <= LINEAR_MAX else SUPERLINEAR, p, m, q)


# ---------------------------------------------------------------- timing

def _batch(function: Callable[[Any], Any], arg: Any, n: int) -> float:
    """CPU seconds of ``n`` calls, gc collected before and off during."""
    gc.collect()
    gc.disable()
    try:
        t0 = CLOCK()
        for _ in range(n):
            function(arg)
        return CLOCK() - t0
    finally:
        gc.enable()


def measure_many(jobs: Sequence[tuple[Callable[[Any], Any], Any]], repeat: int,
                 min_time: float) -> list[float]:
    """CPU seconds per call of each ``function(arg)`` job: the minimum over
    ``repeat`` rounds. A round times one batch of every job in turn (so a busy
    spell on the machine hits one round of many jobs, not every batch of one
    job); a job's batch is as many calls as make ``min_time`` seconds, as
    estimated from a timed warm-up call (which counts as the first round when
    it alone takes ``min_time``)."""
    was_enabled = gc.isenabled()
    # Everything alive now (Beam's modules, the inputs) is left out of the
    # collections: a full gc.collect() of it costs ~60 ms, per batch.
    gc.freeze()
    try:
        counts = []
        rounds = []
        best = [math.inf] * len(jobs)
        for i, (function, arg) in enumerate(jobs):
            once = _batch(function, arg, 1)
            if once >= min_time:
                counts.append(1)
                best[i] = once
                rounds.append(repeat - 1)
            else:
                counts.append(math.ceil(1.1 * min_time / max(once, 1e-7)))
                rounds.append(repeat)
        for round_ in range(repeat):
            for i, (function, arg) in enumerate(jobs):
                if round_ >= rounds[i]:
                    continue
                elapsed = _batch(function, arg, counts[i])
                best[i] = min(best[i], elapsed / counts[i])
                if elapsed < min_time / 2:  # the warm-up call was slow: longer batches from now on
                    counts[i] = math.ceil(1.1 * counts[i] * min_time / max(elapsed, 1e-7))
        return best
    finally:
        gc.unfreeze()
        if not was_enabled:
            gc.disable()


def measure(function: Callable[[Any], Any], arg_at: Callable[[int], Any], sizes: Sequence[int],
            repeat: int, min_time: float) -> list[float]:
    """Time per call of ``function(arg_at(k))`` for every size multiple k."""
    return measure_many([(function, arg_at(k)) for k in sizes], repeat, min_time)


def judge(function: Callable[[Any], Any], arg_at: Callable[[int], Any], repeat: int, min_time: float,
          times: list[float] | None = None) -> tuple[Verdict, list[float], list[float] | None]:
    """Time a case at SIZES (unless ``times`` are given), and at TAIL_SIZES if
    its exponent asks for it; return the verdict and both lists of times."""
    if times is None:
        times = measure(function, arg_at, SIZES, repeat, min_time)
    result = verdict(SIZES, times)
    tail = None
    if result.needs_tail:
        tail = measure(function, arg_at, TAIL_SIZES, repeat, min_time)
        result = verdict(SIZES, times, TAIL_SIZES, tail)
        if not result.ok:  # confirm with a second timing: per-size minimum of both
            again = measure(function, arg_at, TAIL_SIZES, repeat, min_time)
            tail = [min(a, b) for a, b in zip(tail, again)]
            result = verdict(SIZES, times, TAIL_SIZES, tail)
    return result, times, tail


# ---------------------------------------------------------------- self-check

_WORD = re.compile(r"\w+")


def _toy_linear(text: str) -> int:
    """One regex pass, a match object at a time. (Not ``str.split``: building a
    list of ~10^5 strings costs more per item once it outgrows the caches,
    p ~ 1.4 here.)"""
    return sum(1 for _ in _WORD.finditer(text))


def _toy_quadratic(text: str) -> int:
    """A find over the whole prefix every 2048 characters: O(n^2)."""
    return sum(text.find("\0", 0, i) for i in range(0, len(text), 2048))


def _toy_step(threshold: int) -> Callable[[str], int]:
    def step(text: str) -> int:
        n = _toy_linear(text)
        if len(text) > threshold:  # three more linear passes on long texts
            n += _toy_linear(text) + _toy_linear(text) + _toy_linear(text)
        return n
    return step


def self_check(repeat: int, min_time: float, base_kb: int = 64) -> int:
    """The verdict code on toys with known growth; 0 when every verdict is the expected one."""
    base = base_kb * 1024
    texts: dict[int, str] = {}

    def text_at(k: int) -> str:
        if k not in texts:
            texts[k] = _repeat_to("word ", base * k)
        return texts[k]

    toys = [
        ("quadratic (prefix find every 2048 chars)", _toy_quadratic, {SUPERLINEAR}),
        ("linear (regex finditer)", _toy_linear, {LINEAR}),
        ("linear, 4x the work above 6x base", _toy_step(6 * base), {LINEAR, STEP}),
    ]
    failures = 0
    print(f"self-check: toy functions on 'word ' text, base {base_kb} KB, sizes "
          f"{'/'.join(f'{k}x' for k in SIZES)}, tail {'/'.join(f'{k}x' for k in TAIL_SIZES)}")
    for name, function, expected in toys:
        result, times, tail = judge(function, text_at, repeat, min_time)
        good = result.label in expected
        failures += not good
        tail_text = ("" if tail is None else
                     f"; tail ms {' '.join(_ms(t) for t in tail)} q={result.tail_exponent:.2f}")
        print(f"  {name:<42} ms {' '.join(_ms(t) for t in times)}  p={result.exponent:.2f} "
              f"m={result.top_exponent:.2f}{tail_text}"
              f"  -> {result.label}  (expected {' or '.join(sorted(expected))}: "
              f"{'ok' if good else 'WRONG'})")
    print("self-check " + ("passed" if not failures else f"FAILED ({failures} wrong verdict(s))"))
    return 1 if failures else 0


# ---------------------------------------------------------------- stages

def _inputs(functions: dict[str, Callable], text: str) -> dict[str, Any]:
    """The document each stage sees in the pipeline (earlier stages applied)."""
    from transforms.document import Document  # pylint: disable=import-outside-toplevel

    doc = Document(id="bench", text=text, source="bench")
    seen = {}
    for name, function in functions.items():
        seen[name] = doc
        result = function(doc)
        if result.document is not None:
            doc = result.document
    return seen


def _profile(function, doc, top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    function(doc)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _ms(t: float) -> str:
    ms = t * 1e3
    return f"{ms:8.3f}" if ms < 100 else f"{ms:8.1f}"


def main(argv: list[str] | None = None) -> int:
    # Imported here, not at the top: the verdict functions stay importable
    # (by tests) without Beam.
    from pipeline.options import RunConfig  # pylint: disable=import-outside-toplevel
    from pipeline.wiring import CLEANING_STAGES, stage_function  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-kb", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5, help="rounds per timing (the minimum is kept)")
    parser.add_argument("--min-ms", type=float, default=20.0, help="CPU time a timing batch holds at least")
    parser.add_argument("--stage", action="append", choices=list(CLEANING_STAGES))
    parser.add_argument("--shape", action="append", choices=list(SHAPES))
    parser.add_argument("--self-check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.min_ms < 0 or args.base_kb < 1:
        parser.error("--repeat and --base-kb must be >= 1, --min-ms >= 0")
    min_time = args.min_ms / 1000
    if args.self_check:
        return self_check(args.repeat, min_time)

    config = RunConfig(inputs=("x",), output="")
    functions = {name: stage_function(name, config) for name in CLEANING_STAGES}
    stages = [s for s in CLEANING_STAGES if not args.stage or s in args.stage]
    shapes = [s for s in SHAPES if not args.shape or s in args.shape]
    base = args.base_kb * 1024
    started = time.perf_counter()

    results: dict[tuple[str, str], tuple[Verdict, list[float], list[float] | None]] = {}
    sizes_kb: dict[str, list[int]] = {}
    for shape in shapes:
        texts = {k: SHAPES[shape](base * k) for k in SIZES}
        sizes_kb[shape] = [len(texts[k].encode("utf-8", "surrogatepass")) // 1024 for k in SIZES]
        docs = {k: _inputs(functions, texts.pop(k)) for k in SIZES}
        jobs = [(stage, k) for k in SIZES for stage in stages]
        timed = dict(zip(jobs, measure_many([(functions[stage], docs[k][stage]) for stage, k in jobs],
                                            args.repeat, min_time)))
        del docs
        for stage in stages:
            def input_at(k: int, stage: str = stage, shape: str = shape) -> Any:
                return _inputs(functions, SHAPES[shape](base * k))[stage]

            results[stage, shape] = judge(functions[stage], input_at, args.repeat, min_time,
                                          times=[timed[stage, k] for k in SIZES])

    sizes_text = "/".join(f"{k}x" for k in SIZES)
    print(f"stage functions, CPU ms per call (process_time), min of {args.repeat} rounds of a batch of "
          f">= {args.min_ms:g} ms;\np = growth exponent fitted over {sizes_text}, m = exponent of "
          f"t({SIZES[-1]}x)/t({SIZES[-3]}x); linear if p and m <= {LINEAR_MAX:g}, "
          f"else re-timed at {'/'.join(f'{k}x' for k in TAIL_SIZES)}")
    header = (f"{'stage':<14} {'shape':<24} {'KB ' + sizes_text[:2] + '..' + sizes_text[-3:]:<11} "
              + " ".join(f"{f'ms {k}x':>8}" for k in SIZES)
              + f" {'p':>5} {'m':>5} {f'MB/s@{SIZES[-1]}x':>9}  verdict")
    print(header)
    print("-" * len(header))
    for stage in stages:
        for shape in shapes:
            result, times, _ = results[stage, shape]
            kb = sizes_kb[shape]
            mbps = kb[-1] / 1024 / times[-1] if times[-1] > 0 else float("inf")
            print(f"{stage:<14} {shape:<24} {f'{kb[0]}..{kb[-1]}':<11} "
                  + " ".join(_ms(t) for t in times)
                  + f" {result.exponent:5.2f} {result.top_exponent:5.2f} {mbps:9.1f}  {result.label}")

    retimed = [(key, value) for key, value in results.items() if value[2] is not None]
    superlinear = [key for key, (result, _, _) in results.items() if not result.ok]
    counts = {label: sum(r.label == label for r, _, _ in results.values())
              for label in (LINEAR, STEP, TOO_FAST_LABEL, SUPERLINEAR)}
    if retimed:
        print(f"\nre-timed (p or m > {LINEAR_MAX:g}): q = exponent over {'/'.join(f'{k}x' for k in TAIL_SIZES)}; "
              f"a step gives q ~ 1, growth that goes on q > {LINEAR_MAX:g}")
        for (stage, shape), (result, _, tail) in retimed:
            print(f"  {stage:<14} {shape:<24} ms " + " ".join(_ms(t) for t in tail)
                  + f"  q={result.tail_exponent:.2f}  -> {result.label}")
    print(f"\n{len(results)} cases: " + ", ".join(f"{n} {label}" for label, n in counts.items() if n)
          + f" ({time.perf_counter() - started:.0f} s)")
    if not superlinear:
        print("verdict: no stage is superlinear in document size on any shape")
        return 0
    print(f"verdict: {len(superlinear)} superlinear case(s)")
    for stage, shape in superlinear:
        print(f"\n=== cProfile of {stage} on {shape!r} at {SIZES[-1]}x (top functions by own time) ===")
        print(_profile(functions[stage], _inputs(functions, SHAPES[shape](base * SIZES[-1]))[stage]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
