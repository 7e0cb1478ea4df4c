"""End to end through the ``newswash`` CLI over ``samples/``.

The expectations in ``samples/expected/`` were written by hand from the
cleaning rules, not copied from a run.
"""

from __future__ import annotations

import glob
import os
import pathlib

import orjson
import pytest

from outputs import read_jsonl_dir, sorted_lines  # tests/outputs.py
from pipeline.cli import main as newswash_main
from pipeline.cli import run
from pipeline.options import RunConfig

REPO = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
EXPECTED = SAMPLES / "expected"
OUTPUTS = ("documents", "php_leaks", "related_links", "duplicates", "dead_letter")




def read_expected(name: str) -> list[dict]:
    with open(EXPECTED / name, "rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]




def newswash(*args: str) -> int:
    return newswash_main(list(args))


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("e2e") / "out"
    cwd = os.getcwd()
    os.chdir(REPO)  # ids and sources are relative, as in the README command
    try:
        assert newswash("run", "--input", "samples/*", "--output", str(out)) == 0
    finally:
        os.chdir(cwd)
    return out


@pytest.fixture(scope="module")
def sample_run_two_workers(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("e2e2") / "out"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert newswash(
            "run", "--input", "samples/*", "--output", str(out),
            "--direct_num_workers=2", "--direct_running_mode=multi_processing") == 0
    finally:
        os.chdir(cwd)
    return out


def load_report(out: pathlib.Path) -> dict:
    return orjson.loads((out / "report.json").read_bytes())


@pytest.mark.slow
def test_every_output_folder_and_report_written(sample_run):
    for name in OUTPUTS:
        assert glob.glob(str(sample_run / name / "part-*.jsonl")), name
    assert (sample_run / "report.json").is_file()


@pytest.mark.slow
def test_accounting_identity_holds_and_matches_the_files(sample_run):
    report = load_report(sample_run)
    on_disk = {name: len(read_jsonl_dir(sample_run / name)) for name in OUTPUTS}
    assert report["outputs"] == on_disk
    input_records = len(glob.glob(str(SAMPLES / "*.txt"))) + sum(
        1 for line in (SAMPLES / "articles.jsonl").read_bytes().splitlines() if line.strip())
    assert report["input_records"] == input_records
    assert report["accounting"]["balanced"] is True
    assert input_records == on_disk["documents"] + on_disk["duplicates"] + on_disk["dead_letter"]


@pytest.mark.slow
def test_documents_match_hand_written_expectations(sample_run):
    documents = {d["id"]: d for d in read_jsonl_dir(sample_run / "documents")}
    expected = {e["id"]: e for e in read_expected("documents.jsonl")}
    assert sorted(documents) == sorted(expected)
    for doc_id, want in expected.items():
        got = documents[doc_id]
        assert got["title"] == want["title"], doc_id
        assert got["published"] == want["published"], doc_id
        body = (EXPECTED / "documents" / (doc_id.replace("/", "__") + ".txt")).read_text("utf-8")
        assert got["text"] == body.rstrip("\n"), doc_id


@pytest.mark.slow
def test_duplicates_dead_letters_and_side_outputs_match(sample_run):
    duplicates = sorted((d["id"], d["duplicate_of"], d["reason"]) for d in read_jsonl_dir(sample_run / "duplicates"))
    assert duplicates == sorted((d["id"], d["duplicate_of"], d["reason"]) for d in read_expected("duplicates.jsonl"))

    dead = sorted((d["source"].rsplit("/", 1)[-1], d["reason"]) for d in read_jsonl_dir(sample_run / "dead_letter"))
    assert dead == sorted((d["source_suffix"], d["reason"]) for d in read_expected("dead_letter.jsonl"))
    for record in read_jsonl_dir(sample_run / "dead_letter"):
        line = int(record["source"].rsplit(":", 1)[1])
        original = (SAMPLES / "articles.jsonl").read_bytes().splitlines()[line - 1]
        assert record["original"].encode("utf-8") == original

    leaks = sorted((r["doc_id"], r["format"]) for r in read_jsonl_dir(sample_run / "php_leaks"))
    assert leaks == sorted((r["doc_id"], r["format"]) for r in read_expected("php_leaks.jsonl"))

    def link(r: dict) -> tuple:
        return (r["doc_id"], r["position"], r["link_id"], r["title"], r.get("image"), r.get("url"),
                r.get("image_absolute"), r.get("url_absolute"))

    links = sorted(link(r) for r in read_jsonl_dir(sample_run / "related_links"))
    want = sorted(link(r) for r in read_expected("related_links.jsonl"))
    assert links == want


@pytest.mark.slow
def test_two_worker_processes_give_identical_outputs(sample_run, sample_run_two_workers):
    for name in OUTPUTS:
        assert sorted_lines(sample_run / name) == sorted_lines(sample_run_two_workers / name), name
    assert load_report(sample_run_two_workers)["accounting"]["balanced"] is True


@pytest.mark.slow
def test_rerun_on_own_output_changes_nothing(sample_run, tmp_path):
    out = tmp_path / "again"
    assert newswash("run", "--input", str(sample_run / "documents" / "*.jsonl"), "--output", str(out)) == 0
    first = {d["id"]: d for d in read_jsonl_dir(sample_run / "documents")}
    second = {d["id"]: d for d in read_jsonl_dir(out / "documents")}
    assert sorted(first) == sorted(second)
    for doc_id, doc in first.items():
        again = second[doc_id]
        assert (again["title"], again["published"], again["text"]) == (doc["title"], doc["published"], doc["text"])
        assert not any(again["newswash"]["changes"].values()), (doc_id, again["newswash"]["changes"])
    assert not read_jsonl_dir(out / "duplicates")
    assert not read_jsonl_dir(out / "dead_letter")


def test_refuses_to_overwrite_without_flag(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "x"}\n')
    out = tmp_path / "out"
    config = RunConfig(inputs=(str(tmp_path / "in.jsonl"),), output=str(out), skip=("dedupe",))
    run(config, [])
    with pytest.raises(FileExistsError):
        run(config, [])
    report = run(config, [], overwrite=True)
    assert report["accounting"]["balanced"]


def test_usage_errors_exit_2(tmp_path, capsys):
    assert newswash("run", "--input", str(tmp_path / "none-*.jsonl"), "--output", str(tmp_path / "o")) == 2
    assert "matched no files" in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        newswash("run", "--help")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--input", "--output", "--format", "--id-field", "--text-field", "--title-field",
                 "--skip", "--num-shards", "--related-links-format", "--base-url", "--split-bytes", "examples:",
                 "PipelineOptions"):
        assert flag in text, flag


def test_hostile_records_never_crash_and_are_accounted(tmp_path):
    lines = [
        b'{"id": "ok", "text": "Plain text."}',
        b'{"id": "trunc", "text": "cut',
        b'["not", "an", "object"]',
        b'{"id": "nt"}',
        b'{"id": "num", "text": 5}',
        b'{"id": "nul", "text": "a\\u0000b"}',
        b'{"id": "bad-utf8", "text": "caf\xe9 \xff"}',
        b'{"id": "empty", "text": ""}',
        b'{"id": "ws", "text": "   \\n  "}',
        b'{"id": "ok", "text": "Same id twice, different body."}',
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "cr.txt").write_bytes(b"Line one.\rLine two.\r")
    (tmp_path / "empty.txt").write_bytes(b"")
    out = tmp_path / "out"
    assert newswash("run", "--input", str(tmp_path / "*"), "--output", str(out)) == 0
    report = load_report(out)
    assert report["input_records"] == len(lines) + 2
    assert report["accounting"]["balanced"]
    reasons = {r["source"].rsplit(":", 1)[-1]: r["reason"] for r in read_jsonl_dir(out / "dead_letter")}
    assert reasons == {"2": "invalid_json", "3": "not_an_object", "4": "missing_text_field", "5": "text_not_a_string"}
    assert report["dead_letter_reasons"] == {
        "read:invalid_json": 1, "read:missing_text_field": 1, "read:not_an_object": 1, "read:text_not_a_string": 1}


@pytest.mark.slow
def test_input_order_does_not_change_outputs(sample_run, tmp_path):
    out = tmp_path / "reordered"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        # The same files named in another order, one of them twice.
        assert newswash("run", "--input", "samples/articles.jsonl", "--input", "samples/01*",
                        "--input", "samples/00*", "--input", "samples/*", "--output", str(out),
                        "--num-shards", "3") == 0
    finally:
        os.chdir(cwd)
    for name in OUTPUTS:
        assert sorted_lines(sample_run / name) == sorted_lines(out / name), name


def test_byte_ranges_and_spill_change_nothing(sample_run, tmp_path):
    # samples/articles.jsonl cut into ~200-byte ranges: many more read units,
    # the same outputs; the dedupe spill is gone after the run.
    out = tmp_path / "ranges"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert newswash("run", "--input", "samples/*", "--output", str(out), "--split-bytes", "200") == 0
    finally:
        os.chdir(cwd)
    for name in OUTPUTS:
        assert sorted_lines(sample_run / name) == sorted_lines(out / name), name
    ranges = load_report(out)["stages"]["read"]["ranges"]
    files = load_report(out)["stages"]["read"]["files"]
    assert ranges > files, (ranges, files)
    assert not (out / "_run" / "spill").exists()
