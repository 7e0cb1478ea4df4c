"""``newswash explain``: per-stage diffs of one document, no Beam."""

from __future__ import annotations

import io
import pathlib

from pipeline.cli import main as newswash_main
from pipeline.explain import _diff, _word_diff

SAMPLES = pathlib.Path(__file__).resolve().parent.parent / "samples"


def test_word_diff_marks_only_changed_tokens_and_shows_invisibles():
    assert _word_diff("Arabia,Qatar and the the end", "Arabia, Qatar and the end") == \
        "Arabia,{+ +}Qatar and the [-the -]end"
    assert _word_diff("Takfiri\u00a0 groups", "Takfiri groups") == "Takfiri[-\u2423 -]{+ +}groups"


def test_diff_lists_removed_and_changed_lines():
    assert _diff("a\nb\nc", "a\nc") == "- 2: b\n"
    assert _diff("x y\nz", "x  y\nz") == "~ 1: x[- -]{+  +}y\n"
    assert _diff("same", "same") == ""


def test_explain_seed_shows_each_stage(capsys):
    assert newswash_main(["explain", str(SAMPLES / "000_564ceb310d2225dc.txt")]) == 0
    out = capsys.readouterr().out
    php, headlines, typography, links = (out.index(f"== {s}:") for s in
                                         ("php-leaks", "headlines", "typography", "related-links"))
    assert php < headlines < typography < links
    assert "removed.var_dump=1" in out[php:headlines]
    assert "published: None -> '2017-07-16T13:18:15'" in out[headlines:typography]
    assert "Arabia,{+ +}Qatar" in out[typography:links] and "[-the -]" in out[typography:links]
    assert out[links:].count("+ related_links:") == 5


def test_explain_jsonl_record_by_id_and_skip(capsys):
    assert newswash_main(["explain", str(SAMPLES / "articles.jsonl"), "--id", "jsonl-002",
                          "--skip", "typography"]) == 0
    out = capsys.readouterr().out
    assert "document jsonl-002" in out and "== typography: skipped" in out
