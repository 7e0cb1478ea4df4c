"""Hostile input: every run completes and every record is accounted for.

The corpus is ``tests/hostile/corpus`` (committed) plus large cases the test
generates (``tests/hostile/make_corpus.py --large``).
"""

from __future__ import annotations

import importlib.util
import pathlib

import orjson
import pytest

from outputs import read_jsonl_dir, sorted_lines  # tests/outputs.py
from pipeline.cli import main as newswash_main

HOSTILE = pathlib.Path(__file__).resolve().parent / "hostile"
_spec = importlib.util.spec_from_file_location("make_corpus", HOSTILE / "make_corpus.py")
make_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_corpus)




def test_committed_corpus_is_what_the_generator_writes(tmp_path):
    make_corpus.write_small(tmp_path)
    committed = sorted(p.name for p in (HOSTILE / "corpus").iterdir())
    assert committed == sorted(p.name for p in tmp_path.iterdir())
    for name in committed:
        assert (HOSTILE / "corpus" / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.slow
def test_hostile_corpus_runs_clean_with_expected_dead_letters(tmp_path):
    corpus = tmp_path / "in"
    expected_reasons = make_corpus.write_small(corpus)
    make_corpus.write_large(corpus)
    out = tmp_path / "out"
    assert newswash_main(["run", "--input", str(corpus / "*"), "--output", str(out)]) == 0
    report = orjson.loads((out / "report.json").read_bytes())

    text_files = [p for p in corpus.iterdir() if p.suffix == ".txt"]
    jsonl_records = sum(1 for p in corpus.glob("*.jsonl") for line in p.read_bytes().splitlines() if line.strip())
    assert report["input_records"] == len(text_files) + jsonl_records
    assert report["accounting"]["balanced"] is True

    dead = read_jsonl_dir(out / "dead_letter")
    assert {f"read:{reason}": n for reason, n in expected_reasons.items()} == report["dead_letter_reasons"]
    for record in dead:
        assert record["stage"] == "read" and record["reason"] and record["error"]
    # No stage ever failed on hostile text: failures would be stage_error dead letters.
    assert not [r for r in dead if r["reason"] == "stage_error"]

    documents = {d["source"].rsplit("/", 1)[-1]: d for d in read_jsonl_dir(out / "documents")}
    assert "invalid_utf8" in documents["hostile.jsonl:16"]["newswash"]["flags"]
    assert documents["ten-megabytes.txt"]["text"].startswith("The council met")


@pytest.mark.slow
def test_oversized_documents_go_to_dead_letter_whole(tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    big = b"x" * 5000
    (corpus / "big.txt").write_bytes(big)
    (corpus / "small.txt").write_bytes(b"small")
    out = tmp_path / "out"
    assert newswash_main(["run", "--input", str(corpus / "*"), "--output", str(out),
                          "--max-document-bytes", "1000"]) == 0
    dead = read_jsonl_dir(out / "dead_letter")
    assert [(d["reason"], d["original"]) for d in dead] == [("too_large", big.decode())]
    assert [d["id"] for d in read_jsonl_dir(out / "documents")] == ["small.txt"]
