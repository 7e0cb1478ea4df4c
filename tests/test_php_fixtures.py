"""The PHP leak fixtures (tests/fixtures/php) are consistent, and PHP regenerates them.

The first group always runs: the manifest points at files that exist, the expected
values load, every format is present. The regeneration test runs where the `php`
binary is installed (`apt-get install -y php-cli php-xdebug`): it reruns
generate.py into a temporary folder and compares byte for byte, after masking the
only volatile parts (Xdebug Call Stack time/memory columns and object handles).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "php"
MANIFEST = FIXTURES / "manifest.json"

DUMP_FORMATS = {
    "var_dump", "var_dump_multi", "xdebug_text", "xdebug_html_raw", "xdebug_html",
    "print_r", "var_export", "debug_zval_dump",
}
ERROR_FORMATS = {
    "error_text", "error_html_raw", "error_html",
    "xdebug_error_text", "xdebug_error_html_raw", "xdebug_error_html",
}
STRIPPED = {
    "xdebug_html": "xdebug_html_raw",
    "error_html": "error_html_raw",
    "xdebug_error_html": "xdebug_error_html_raw",
}
COMPARES = {
    "exact", "lossy-print_r", "lossy-xdebug", "lossy-xdebug-html", "lossy-var_export", "lossy-html-strip",
    "truncated", "error",
}
LEVELS = {
    "Fatal error", "Recoverable fatal error", "Warning", "Parse error", "Notice",
    "Strict Standards", "Deprecated",
}
KEYS = {
    "name", "format", "dump_file", "expected_file", "error_level", "errors", "compare",
    "utf8", "synthetic_wording", "exit_code", "notes", "php_version", "xdebug_version",
}


def _load_generator():
    spec = importlib.util.spec_from_file_location("php_fixture_generate", FIXTURES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest() -> list[dict]:
    return json.loads(MANIFEST.read_text("utf-8"))


def test_manifest_entries_have_the_schema(manifest):
    assert isinstance(manifest, list)
    assert len(manifest) >= 150
    seen = set()
    for e in manifest:
        assert set(e) == KEYS, e["name"]
        assert (e["format"], e["name"]) not in seen
        seen.add((e["format"], e["name"]))
        assert e["format"] in DUMP_FORMATS | ERROR_FORMATS
        assert e["compare"] in COMPARES
        assert isinstance(e["utf8"], bool)
        assert e["php_version"].startswith("8.2.")
        assert (e["xdebug_version"] is not None) == e["format"].startswith("xdebug")


def test_every_format_is_present_with_many_fixtures(manifest):
    counts: dict[str, int] = {}
    for e in manifest:
        counts[e["format"]] = counts.get(e["format"], 0) + 1
    assert set(counts) == DUMP_FORMATS | ERROR_FORMATS
    for fmt, n in counts.items():
        assert n >= (5 if fmt == "var_dump_multi" else 30), fmt


def test_files_exist_and_expected_values_load(manifest):
    for e in manifest:
        dump = FIXTURES / e["dump_file"]
        assert dump.is_file(), e["dump_file"]
        data = dump.read_bytes()
        try:
            data.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        assert valid == e["utf8"], e["dump_file"]
        if e["format"] in DUMP_FORMATS:
            assert e["expected_file"] is not None
            assert e["error_level"] is None and e["errors"] is None
            json.loads((FIXTURES / e["expected_file"]).read_text("utf-8"))
        else:
            assert e["expected_file"] is None
            assert e["compare"] == "error"
            assert e["error_level"] in LEVELS
            assert e["errors"] and e["errors"][0]["level"] == e["error_level"]
            for err in e["errors"]:
                assert {"type", "level", "message", "file", "line"} <= set(err)


def test_error_fixtures_show_what_php_reported(manifest):
    """Each recorded error's message headline appears in the text forms of its fixture.

    (Not checked on the HTML forms: there only E_ERROR/E_PARSE messages are escaped, so a
    message holding markup loses its tags once the HTML is stripped.)
    """
    for e in manifest:
        if e["format"] not in {"error_text", "xdebug_error_text"}:
            continue
        text = (FIXTURES / e["dump_file"]).read_bytes().decode("utf-8", "replace")
        for err in e["errors"]:
            headline = err["message"].split("\n")[0]
            if e["format"].startswith("xdebug") and headline.startswith("Uncaught "):
                # Xdebug rewrites "in FILE:N" of the uncaught headline as "in FILE on line N"
                headline = headline.rsplit(" in ", 1)[0]
            assert headline in text, (e["dump_file"], headline)
            assert err["level"] in text, e["dump_file"]


def test_stripped_formats_are_the_text_of_their_raw_html(manifest):
    gen = _load_generator()
    by_key = {(e["format"], e["name"]): e for e in manifest}
    n = 0
    for e in manifest:
        raw_fmt = STRIPPED.get(e["format"])
        if raw_fmt is None:
            continue
        raw = by_key[(raw_fmt, e["name"])]
        assert (FIXTURES / e["dump_file"]).read_bytes() == gen.strip_html((FIXTURES / raw["dump_file"]).read_bytes())
        n += 1
    assert n >= 100


def test_required_cases_are_covered(manifest):
    names = {e["name"] for e in manifest}
    for required in (
        "float_neg_zero", "float_nan", "int_min", "string_nul", "string_crlf", "string_curly_arabic",
        "string_invalid_utf8", "string_long_curly_700", "array_130_elements", "array_deep_6",
        "array_recursive", "object_recursive", "object_article", "object_closure", "object_datetime",
        "enum_pure", "enum_backed_string", "array_related_native", "string_related_json",
        "fatal_uncaught_exception", "parse_error_eval", "parse_error_include", "warning_headers_already_sent",
        "warning_include_missing", "fatal_user_error", "legacy_undefined_index",
    ):
        assert required in names, required
    synthetic = {e["name"] for e in manifest if e["synthetic_wording"]}
    assert synthetic and all(n.startswith("legacy_") for n in synthetic)


def test_seed_style_related_json_is_valid_json_with_space_comma_separators(manifest):
    expected = json.loads((FIXTURES / "expected/var_dump/string_related_json.json").read_text("utf-8"))
    assert expected.startswith("[{") and " ,{" in expected and expected.endswith("} ]")
    items = json.loads(expected)
    native = json.loads((FIXTURES / "expected/var_dump/array_related_native.json").read_text("utf-8"))
    assert items == native


# ----------------------------------------------------------------- regeneration

_XDEBUG_STACK_TEXT = re.compile(rb"^( +)\d+\.\d{4}( +)\d+( +\d+\. )", re.M)
_XDEBUG_STACK_HTML = re.compile(
    rb"(<td bgcolor='#eeeeec' align='center'>)\d+\.\d{4}(</td><td bgcolor='#eeeeec' align='right'>)\d+(</td>)"
)
_HANDLES = [
    (re.compile(rb"(object\([^)\n]*\)#|class [^ \n]+#)\d+"), rb"\1H"),
    (re.compile(rb"(\)\[<i>)\d+(</i>\])"), rb"\1H\2"),
]


def mask_volatile(data: bytes) -> bytes:
    data = _XDEBUG_STACK_TEXT.sub(rb"\1T\2M\3", data)
    data = _XDEBUG_STACK_HTML.sub(rb"\1T\2M\3", data)
    for pattern, repl in _HANDLES:
        data = pattern.sub(repl, data)
    return data


def test_mask_volatile_hides_only_times_memory_and_handles():
    text = b"Call Stack:\n    0.0005     458880   1. {main}() /x.php:0\n"
    assert mask_volatile(text) == b"Call Stack:\n    T     M   1. {main}() /x.php:0\n"
    assert mask_volatile(b"object(Foo)#12 (1) {") == b"object(Foo)#H (1) {"
    assert mask_volatile(b"class Foo#3 (0) {") == b"class Foo#H (0) {"
    assert mask_volatile(b"(<i>Foo</i>)[<i>82</i>]") == b"(<i>Foo</i>)[<i>H</i>]"
    assert mask_volatile(b'string(9) "#12 (1) {"') == b'string(9) "#12 (1) {"'


@pytest.mark.skipif(shutil.which("php") is None,
                    reason="php not installed (apt-get install -y php-cli php-xdebug)")
def test_php_regenerates_the_committed_fixtures(tmp_path, manifest):
    proc = subprocess.run(
        [sys.executable, str(FIXTURES / "generate.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    fresh = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    version = fresh[0]["php_version"].rsplit(".", 1)[0]
    assert version == manifest[0]["php_version"].rsplit(".", 1)[0], (
        f"PHP {fresh[0]['php_version']} here, fixtures made with {manifest[0]['php_version']}: "
        "output formats differ between PHP minor versions; regenerate deliberately")
    assert [(e["format"], e["name"]) for e in fresh] == [(e["format"], e["name"]) for e in manifest]
    for old, new in zip(manifest, fresh):
        for key in KEYS - {"php_version", "xdebug_version"}:
            assert old[key] == new[key], (old["dump_file"], key)
        if old["format"] in STRIPPED:
            continue  # checked through its raw HTML and test_stripped_formats_are_the_text_of_their_raw_html
        committed = mask_volatile((FIXTURES / old["dump_file"]).read_bytes())
        regenerated = mask_volatile((tmp_path / new["dump_file"]).read_bytes())
        assert committed == regenerated, old["dump_file"]
        if old["expected_file"]:
            assert (FIXTURES / old["expected_file"]).read_bytes() == (tmp_path / new["expected_file"]).read_bytes()
