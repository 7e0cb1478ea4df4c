"""Benchmark: the typography stage vs plain ``ftfy.fix_text`` on seed-like news.

Builds a deterministic seed-like news corpus (``transforms._typography_corpus.
news_corpus``: headline, dateline, paragraphs, curly quotes, NBSP,
``Arabia,Qatar``, ``the the``, leaked ``string(N) "..."`` lines), then in one
run and on the same documents times

- ``ftfy.fix_text`` on each body and title (ftfy's default config), and
- the typography stage function (``make_stage_function``, profile ``news``:
  ftfy's fixes plus all our rules, new ``Document`` included) on the same
  documents, and, for information, the fast ftfy layer alone,

alternating them ``--repeats`` times and keeping each one's best time. It
then checks the stage's outputs byte for byte against the reference path
(plain ``ftfy.fix_text`` followed by our rules applied plainly to the whole
text) and the fast ftfy layer against ``ftfy.fix_text``, and exits non-zero
if anything differs or the stage is less than ``--min-ratio`` times faster.

Usage::

    .venv/bin/python benchmarks/bench_typography.py [--docs 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ftfy  # noqa: E402

from transforms._typography_corpus import news_corpus  # noqa: E402
from transforms._typography_ftfy import FtfyFastPath, reference_fix  # noqa: E402
from transforms.document import Document  # noqa: E402
from transforms.typography import (  # noqa: E402
    TypographyConfig,
    TypographyNormalizer,
    make_stage_function,
)

_TITLES = ("Takfiris Fight Each Other as Assad Ouster Fades Away",
           "\u2018She Bled to Death\u2019: ISIS Wives Share Chilling Stories",
           "UN Says Aid Convoys Reach Besieged Districts")


def build_documents(n_docs: int, seed: int) -> list[Document]:
    texts = news_corpus(n_docs, seed=seed)
    return [Document(id=str(i), text=text, title=_TITLES[i % len(_TITLES)])
            for i, text in enumerate(texts)]


def run_ftfy(documents: list[Document]) -> list[tuple[str, str]]:
    fix = ftfy.fix_text
    return [(fix(doc.text), fix(doc.title)) for doc in documents]


def run_stage(function, documents: list[Document]) -> list[Document]:
    return [function(doc).document for doc in documents]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="news")
    parser.add_argument("--min-ratio", type=float, default=5.0)
    args = parser.parse_args(argv)

    config = TypographyConfig.from_profile(args.profile)
    documents = build_documents(args.docs, args.seed)
    n_bytes = sum(len(d.text.encode("utf-8")) + len(d.title.encode("utf-8")) for d in documents)
    function = make_stage_function(config)

    fast_ftfy = FtfyFastPath(config.ftfy_config())
    best = {"ftfy.fix_text": float("inf"), "typography stage": float("inf"),
            "(ftfy layer alone)": float("inf")}
    for _ in range(args.repeats):
        start = time.perf_counter()
        run_ftfy(documents)
        best["ftfy.fix_text"] = min(best["ftfy.fix_text"], time.perf_counter() - start)
        start = time.perf_counter()
        stage_out = run_stage(function, documents)
        best["typography stage"] = min(best["typography stage"], time.perf_counter() - start)
        start = time.perf_counter()
        for doc in documents:
            fast_ftfy.fix(doc.text)
            fast_ftfy.fix(doc.title)
        best["(ftfy layer alone)"] = min(best["(ftfy layer alone)"],
                                         time.perf_counter() - start)

    print(f"corpus: {len(documents)} seed-like news documents (body + title), "
          f"{n_bytes / 1e6:.2f} MB UTF-8, seed {args.seed}; profile {args.profile!r}; "
          f"best of {args.repeats}")
    for name, seconds in best.items():
        print(f"  {name:19s} {seconds:7.3f} s  {len(documents) / seconds:9.0f} docs/s  "
              f"{n_bytes / 1e6 / seconds:7.2f} MB/s")
    ratio = best["ftfy.fix_text"] / best["typography stage"]
    print(f"  ratio: the stage is {ratio:.2f}x faster than ftfy.fix_text (required >= "
          f"{args.min_ratio})")

    # Byte-identity with the reference path, and of the ftfy layer with ftfy.
    reference = TypographyNormalizer(config, reference=True)
    mismatches = 0
    for doc, out in zip(documents, stage_out):
        if (out.text, out.title) != (reference.normalize(doc.text)[0],
                                     reference.normalize(doc.title)[0]):
            mismatches += 1
        for text in (doc.text, doc.title):
            if fast_ftfy.fix(text)[0] != reference_fix(text, config.ftfy_config()):
                mismatches += 1
    changed = sum(out.text != doc.text or out.title != doc.title
                  for doc, out in zip(documents, stage_out))
    print(f"  outputs: {changed} of {len(documents)} documents changed; "
          f"{mismatches} mismatches against plain ftfy + plain rules")
    if mismatches:
        return 1
    if ratio < args.min_ratio:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
