"""Benchmark of the php-leaks pure function (not a test).

    .venv/bin/python benchmarks/bench_php_leaks.py [--corpus benchmarks/work/c10k.jsonl] [--max-docs N]

1. Hostile inputs at sizes 1x, 2x, 4x, 8x: prints the seconds and the ratio
   to the 1x time. Linear growth shows as ratios near 2, 4, 8.
2. Clean news text (the seed article's body, repeated to ~10 MB): MB/s.
3. Optionally a JSONL corpus (``benchmarks/generate_corpus.py`` output):
   documents/s, MB/s and the stage's counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transforms.php_leaks import strip_php_leaks  # noqa: E402

SEED = Path("/work/shared/seeds/000_564ceb310d2225dc.txt")

# name -> text for a size unit k (k = 1, 2, 4, 8)
HOSTILE: dict[str, Callable[[int], str]] = {
    "string( fragments": lambda k: "string(" * (25_000 * k),
    'string(999) " fragments': lambda k: 'string(999) "' * (25_000 * k),
    'string(5) "ab\\n fragments': lambda k: 'string(5) "ab\n' * (25_000 * k),
    "array(999999) { without end": lambda k: "array(999999) {\n" + '  ["k"]=>\n  int(1)\n' * (25_000 * k),
    "10k-style nesting, open": lambda k: "array(1) {\n  [0]=>\n" * (2_500 * k),
    "nesting, closed": lambda k: "array(1) {\n[0]=>\n" * (2_500 * k) + "int(1)\n" + "}\n" * (2_500 * k),
    "print_r fragments": lambda k: "Array\n(\n    [a] => x\n" * (5_000 * k),
    "var_export fragments": lambda k: "array (\n  'a' => 'x" * (12_500 * k),
    "error anchors": lambda k: "Warning: " * (12_500 * k) + " on line 3" * (12_500 * k),
    "complete errors": lambda k: "Warning: x in /a.php on line 1\n" * (12_500 * k),
    "Xdebug HTML fragments": lambda k: "array (size=5)\n  'a' => string 'x' (length=9)\n" * (7_500 * k),
    "many real dumps": lambda k: 'Text.\n\narray(1) {\n  ["id"]=>\n  string(7) "1995016"\n}\n' * (5_000 * k),
}


def timed(text: str) -> float:
    t0 = time.perf_counter()
    strip_php_leaks(text)
    return time.perf_counter() - t0


def bench_hostile() -> None:
    print("hostile inputs: seconds at 1x/2x/4x/8x, ratio to 1x (linear = 2, 4, 8)")
    for name, make in HOSTILE.items():
        times = []
        sizes = []
        for k in (1, 2, 4, 8):
            text = make(k)
            sizes.append(len(text.encode("utf-8")) / 1e6)
            times.append(timed(text))
        base = max(times[0], 1e-9)
        ratios = " ".join(f"{t / base:5.2f}" for t in times[1:])
        secs = " ".join(f"{t:6.3f}" for t in times)
        print(f"  {name:32s} {sizes[0]:5.2f}..{sizes[-1]:5.2f} MB  s: {secs}  ratios: {ratios}")


def bench_clean() -> None:
    seed = SEED.read_text(encoding="utf-8")
    body = seed[:seed.index("\n\nstring(946)")]
    text = (body + "\n\n") * (10_000_000 // len(body.encode("utf-8")) + 1)
    mb = len(text.encode("utf-8")) / 1e6
    t = timed(text)
    print(f"clean news text (seed body repeated): {mb:.1f} MB in {t:.2f} s = {mb / t:.1f} MB/s")
    one = body
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        strip_php_leaks(one)
    t = time.perf_counter() - t0
    print(f"clean seed-sized documents: {n / t:,.0f} docs/s ({len(one.encode()) * n / 1e6 / t:.1f} MB/s)")
    t0 = time.perf_counter()
    for _ in range(n):
        strip_php_leaks(seed)
    t = time.perf_counter() - t0
    print(f"the seed with its leak: {n / t:,.0f} docs/s")


def bench_corpus(path: Path, max_docs: int) -> None:
    texts = []
    with path.open("rb") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) >= max_docs:
                break
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    totals: dict[str, int] = {}
    t0 = time.perf_counter()
    for t in texts:
        counts = strip_php_leaks(t)[2]
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    dt = time.perf_counter() - t0
    print(f"corpus {path.name}: {len(texts)} docs, {mb:.1f} MB in {dt:.2f} s = "
          f"{len(texts) / dt:,.0f} docs/s, {mb / dt:.1f} MB/s")
    print("  counts:", {k: v for k, v in sorted(totals.items()) if v})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--max-docs", type=int, default=10_000)
    args = ap.parse_args(argv)
    bench_hostile()
    bench_clean()
    if args.corpus is not None:
        bench_corpus(args.corpus, args.max_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
