"""Scaling benchmark: no per-document stage may be superlinear in document size (not a test).

    .venv/bin/python benchmarks/bench_scaling.py [--base-kb 128] [--repeat 3] [--stage NAME]... [--shape NAME]...

For each per-document stage function (``pipeline.wiring.stage_function``, in
pipeline order) and each document shape, the stage is timed on documents of
about 1x, 2x, 4x and 8x the base size (base 128 KB, so up to ~1 MB), best of
``--repeat`` runs. A stage gets what it would get in the pipeline: the
document after the earlier stages (built once, not timed), so related-links
sees the parsed values php-leaks left it and typography sees the text without
the leaks php-leaks could remove.

Verdict per (stage, shape): ``linear`` when t(8x) / t(1x) <= 8 * 1.5 = 12,
or when t(8x) is below 10 ms (too fast to measure a ratio reliably; headlines
reads only the top of a document, so its times are microseconds);
``SUPERLINEAR`` otherwise. The script prints a table; for every superlinear
case it then times 8x, 16x and 32x (to tell a one-off step, e.g. a fast path
that stops at some size, from growth that keeps getting worse) and prints a
cProfile of the 8x run. It exits 1 if any case is superlinear.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.options import RunConfig  # noqa: E402
from pipeline.wiring import CLEANING_STAGES, stage_function  # noqa: E402
from transforms.document import Document  # noqa: E402

SIZES = (1, 2, 4, 8)
LIMIT = 8 * 1.5
FAST_ENOUGH = 0.010  # seconds at 8x under which the ratio is noise

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


def _best(function, doc: Document, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        function(doc)
        best = min(best, time.perf_counter() - t0)
    return best


def _inputs(functions: dict[str, Callable], text: str) -> dict[str, Document]:
    """The document each stage sees in the pipeline (earlier stages applied)."""
    doc = Document(id="bench", text=text, source="bench")
    seen = {}
    for name, function in functions.items():
        seen[name] = doc
        result = function(doc)
        if result.document is not None:
            doc = result.document
    return seen


def _profile(function, doc: Document, top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    function(doc)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-kb", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stage", action="append", choices=list(CLEANING_STAGES))
    parser.add_argument("--shape", action="append", choices=list(SHAPES))
    args = parser.parse_args(argv)

    config = RunConfig(inputs=("x",), output="")
    functions = {name: stage_function(name, config) for name in CLEANING_STAGES}
    stages = [s for s in CLEANING_STAGES if not args.stage or s in args.stage]
    shapes = [s for s in SHAPES if not args.shape or s in args.shape]
    base = args.base_kb * 1024

    times: dict[tuple[str, str], list[float]] = {}
    docs_8x: dict[tuple[str, str], Document] = {}
    sizes_kb: dict[str, list[int]] = {}
    for shape in shapes:
        sizes_kb[shape] = []
        per_size = []
        for k in SIZES:
            text = SHAPES[shape](base * k)
            sizes_kb[shape].append(len(text.encode("utf-8", "surrogatepass")) // 1024)
            per_size.append(_inputs(functions, text))
        for stage in stages:
            times[stage, shape] = [_best(functions[stage], per_size[i][stage], args.repeat)
                                   for i in range(len(SIZES))]
            docs_8x[stage, shape] = per_size[-1][stage]

    header = (f"{'stage':<14} {'shape':<24} {'KB at 1x..8x':<20} {'t(1x) ms':>9} {'t(8x) ms':>9} "
              f"{'2x/1x':>6} {'4x/1x':>6} {'8x/1x':>6} {'MB/s@8x':>8}  verdict")
    print(f"stage functions, best of {args.repeat}; linear if t(8x)/t(1x) <= {LIMIT:g} "
          f"or t(8x) < {FAST_ENOUGH * 1000:g} ms")
    print(header)
    print("-" * len(header))
    superlinear = []
    for stage in stages:
        for shape in shapes:
            t = times[stage, shape]
            ratios = [x / max(t[0], 1e-9) for x in t]
            ok = ratios[-1] <= LIMIT or t[-1] < FAST_ENOUGH
            if not ok:
                superlinear.append((stage, shape))
            kb = sizes_kb[shape]
            mbps = kb[-1] / 1024 / t[-1] if t[-1] > 0 else float("inf")
            print(f"{stage:<14} {shape:<24} {f'{kb[0]}..{kb[-1]}':<20} {t[0] * 1e3:9.2f} {t[-1] * 1e3:9.2f} "
                  f"{ratios[1]:6.2f} {ratios[2]:6.2f} {ratios[3]:6.2f} {mbps:8.1f}  "
                  f"{'linear' if ok else 'SUPERLINEAR'}")
    if not superlinear:
        print("\nverdict: every stage is linear on every shape")
        return 0
    print(f"\nverdict: {len(superlinear)} superlinear case(s)")
    print("\nstep or growth? the same cases at 8x, 16x, 32x (a step: t(32x)/t(8x) near 4; "
          "superlinear growth: well above 6)")
    for stage, shape in superlinear:
        tail = []
        for k in (8, 16, 32):
            doc = _inputs(functions, SHAPES[shape](base * k))[stage]
            tail.append(_best(functions[stage], doc, min(args.repeat, 2)))
        growth = tail[-1] / max(tail[0], 1e-9)
        print(f"  {stage:<14} {shape:<24} t(8x..32x) ms: " + " ".join(f"{t * 1e3:.1f}" for t in tail)
              + f"  32x/8x = {growth:.2f}  -> "
              + ("a step between 1x and 8x, linear above" if growth <= 4 * 1.5 else "grows superlinearly"))
    for stage, shape in superlinear:
        print(f"\n=== cProfile of {stage} on {shape!r} at 8x (top functions by own time) ===")
        print(_profile(functions[stage], docs_8x[stage, shape]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
