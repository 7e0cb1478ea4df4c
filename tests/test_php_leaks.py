"""Tests of the php-leaks stage on the seed, on golden cases from
``/work/shared/docs/php-dump-formats.md``, on decoys and on hostile input.

Fixture-driven tests (real PHP output) are in ``test_php_leaks_fixtures.py``;
property tests in ``test_php_leaks_properties.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.document import Document
from transforms.php_leaks import (
    PHP_LEAKS, STAGE, PhpLeaksConfig, StripPhpLeaks, find_leaks, make_stage_function,
    remove_spans, strip_php_leaks)
from transforms.stage import DEAD_LETTER, DOCUMENTS, ApplyStageFn

SEED = Path("/work/shared/seeds/000_564ceb310d2225dc.txt")
P1 = "The ministry has not responded."
P2 = "Talks resume today in Geneva."


def strip(text: str) -> str:
    return strip_php_leaks(text)[0]


def values(text: str) -> list:
    return [leak.value for leak in find_leaks(text)[0]]


# ------------------------------------------------------------------ the seed
def test_seed_leak_removed_and_payload_parsed():
    text = SEED.read_text(encoding="utf-8")
    new_text, records, counts = strip_php_leaks(text, "seed")
    assert new_text.endswith("with the mediation of Russia, Iran and Turkey.")
    assert "string(946)" not in new_text
    assert new_text == text[:text.index("\n\nstring(946)")]
    assert len(records) == 1
    rec = records[0]
    assert rec["format"] == "var_dump" and rec["parsed"] and rec["length_matched"] is True
    assert text[rec["start"]:rec["end"]] == rec["text"]
    assert rec["text"].startswith('string(946) "[{"id":"1995016"')
    assert len(rec["value"]) == 942 and len(rec["value"].encode("utf-8")) == 946
    assert isinstance(rec["json"], list) and len(rec["json"]) == 5
    assert rec["json"][0]["id"] == "1995016" and rec["json"][0]["sort"] == "5058101"
    assert counts["removed.var_dump"] == 1 and counts["documents_with_leaks"] == 1
    assert counts["length_mismatch"] == 0 and counts["unresolved"] == 0


def test_seed_glued_to_sentence():
    text = SEED.read_text(encoding="utf-8")
    i = text.index("\n\nstring(946)")
    glued = text[:i] + text[i + 2:]          # "...Turkey.string(946) "[{..."
    assert strip(glued) == text[:i]


# ------------------------------------------------------------ whitespace rule
DUMP = 'array(1) {\n  ["id"]=>\n  string(7) "1995016"\n}\n'


@pytest.mark.parametrize("text, expected", [
    (DUMP + "\n" + P1, P1),                                  # start
    (P1 + "\n\n" + DUMP, P1),                                # end
    (P1 + "\n\n" + DUMP + "\n\n" + P2, P1 + "\n\n" + P2),     # own paragraph
    (P1 + "\n" + DUMP + P2, P1 + "\n\n" + P2),                # own lines
    (P1 + DUMP.rstrip("\n"), P1),                            # glued at the end
    (P1 + " " + DUMP + P2, P1 + "\n\n" + P2),                 # glued, spans lines
    (P1 + ' string(3) "abc" ' + P2, P1 + " " + P2),           # inline
    ("Its response." + 'string(3) "abc"' + "More.", "Its response. More."),
])
def test_whitespace_rule(text, expected):
    assert strip(text) == expected


def test_remove_spans_merges_runs_separated_by_whitespace():
    text = "A.\n\nX\n\nY\n\nB."
    assert remove_spans(text, [(4, 5), (7, 8)]) == "A.\n\nB."
    assert remove_spans("X Y", [(0, 1), (2, 3)]) == ""


# ----------------------------------------------------------- var_dump (plain)
ARTICLE_DUMP = '''array(12) {
  ["title"]=>
  string(27) "‘She Bled’ — "quoted""
  ["body"]=>
  string(11) "line1
line2"
  ["n"]=>
  float(0.1)
  ["z"]=>
  float(-0)
  ["big"]=>
  float(1.0E+25)
  ["inf"]=>
  float(INF)
  ["ok"]=>
  bool(true)
  ["none"]=>
  NULL
  [7]=>
  array(2) {
    [0]=>
    int(1)
    [1]=>
    array(1) {
      [0]=>
      int(2)
    }
  }
  ["obj"]=>
  object(Article)#1 (3) {
    ["id"]=>
    int(7)
    ["slug":protected]=>
    string(3) "a-b"
    ["note":"Article":private]=>
    NULL
    ["views"]=>
    uninitialized(?int)
  }
  ["sec"]=>
  enum(Section::World)
  ["ref"]=>
  &string(6) "shared"
}
'''
ARTICLE_VALUE = {
    "title": "‘She Bled’ — \"quoted\"", "body": "line1\nline2", "n": 0.1, "z": -0.0,
    "big": 1e25, "inf": "INF", "ok": True, "none": None, "7": [1, [2]],
    "obj": {"__class__": "Article", "id": 7, "slug": "a-b", "note": None},
    "sec": {"__enum__": "Section::World"}, "ref": "shared",
}


def test_var_dump_article_from_the_doc():
    new_text, records, _ = strip_php_leaks(P1 + "\n\n" + ARTICLE_DUMP + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["value"] == ARTICLE_VALUE
    assert list(records[0]["value"]["obj"])[0] == "__class__"
    assert records[0]["length_matched"] is True


@pytest.mark.parametrize("dump, value", [
    ("float(-0)\n", -0.0), ("float(1.0E+25)\n", 1e25), ("float(INF)\n", "INF"),
    ("float(-INF)\n", "-INF"), ("float(NAN)\n", "NAN"), ("float(1.0E-5)\n", 1e-5),
    ("int(-9223372036854775808)\n", -9223372036854775808), ("NULL\n", None),
    ("bool(false)\n", False), ('string(0) ""\n', ""), ("array(0) {\n}\n", []),
    ('array(2) {\n  [""]=>\n  int(1)\n  [-3]=>\n  int(2)\n}\n', {"": 1, "-3": 2}),
    ('array(2) {\n  ["05"]=>\n  int(1)\n  [5]=>\n  int(2)\n}\n', {"05": 1, "5": 2}),
    ('array(1) {\n  ["self"]=>\n  *RECURSION*\n}\n', {"self": "*RECURSION*"}),
    ('object(stdClass)#1 (1) {\n  ["self"]=>\n  *RECURSION*\n}\n',
     {"__class__": "stdClass", "self": "*RECURSION*"}),
    ("enum(Suit::Hearts)\n", {"__enum__": "Suit::Hearts"}),
])
def test_var_dump_scalars_and_edge_forms(dump, value):
    text = P1 + "\n\n" + dump + "\n" + P2
    assert strip(text) == P1 + "\n\n" + P2
    got = values(text)
    assert got == [value]
    if value == -0.0 and isinstance(value, float):
        assert str(got[0]) == "-0.0"


def test_several_dumps_in_a_row_are_separate_records_one_removal():
    text = P1 + '\nstring(1) "a"\nint(5)\narray(1) {\n  [0]=>\n  bool(true)\n}\n' + P2
    new_text, records, counts = strip_php_leaks(text)
    assert new_text == P1 + "\n\n" + P2
    assert [r["value"] for r in records] == ["a", 5, [True]]
    assert counts["removed.var_dump"] == 3


def test_error_text_inside_a_dumped_string_belongs_to_the_dump():
    payload = "Warning: x in /var/www/a.php on line 3"
    text = P1 + f'\n\nstring({len(payload)}) "{payload}"\n\n' + P2
    new_text, records, _ = strip_php_leaks(text)
    assert new_text == P1 + "\n\n" + P2
    assert [(r["format"], r["value"]) for r in records] == [("var_dump", payload)]


def test_trafilatura_collapsed_dump_with_count_mismatch():
    dump = ('array(3) { ["id"]=> int(7) ["title"]=> string(27) "Talks "resume" today" '
            '["tags"]=> array(2) { [0]=> string(1) "a" [1]=> string(1) "b" } }')
    new_text, records, counts = strip_php_leaks(P1 + " " + dump + " " + P2)
    assert new_text == P1 + " " + P2
    assert records[0]["value"] == {"id": 7, "title": 'Talks "resume" today', "tags": ["a", "b"]}
    assert records[0]["length_matched"] is False
    assert counts["length_mismatch"] == 1


@pytest.mark.parametrize("payload, count", [
    ("‘She’ Ù…Ø±Ø­Ø¨Ø§", None),            # cp1252 mojibake: count = characters
    ("مرحبا", 5),                          # windows-1256 site: one byte per letter
    ("新闻", 4),                            # GBK: two bytes per character
])
def test_legacy_charset_counts_match(payload, count):
    n = len(payload) if count is None else count
    text = P1 + f'\n\nstring({n}) "{payload}"\n'
    _, records, counts = strip_php_leaks(text)
    assert records[0]["value"] == payload
    assert records[0]["length_matched"] is True and counts["length_mismatch"] == 0


def test_count_broken_by_extraction_falls_back_to_tolerant_end():
    # tags inside the string were dropped by the extractor: 20 bytes left of 27
    text = P1 + '\n\narray(2) {\n  ["t"]=>\n  string(27) "Talks "resume" today"\n  ["n"]=>\n  int(1)\n}\n\n' + P2
    new_text, records, counts = strip_php_leaks(text)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["value"] == {"t": 'Talks "resume" today', "n": 1}
    assert records[0]["length_matched"] is False and counts["length_mismatch"] == 1


def test_nested_json_payload_is_parsed():
    text = 'array(1) {\n  ["related"]=>\n  string(17) "[{"id":"1","x":2}]"\n}\n' + P1
    _, records, _ = strip_php_leaks(text)
    assert records[0]["json"] == [{"id": "1", "x": 2}]


def test_debug_zval_dump():
    dump = ('array(2) refcount(2){\n  ["t"]=>\n  reference refcount(2) {\n    string(2) "x1" refcount(1)\n  }\n'
            '  ["l"]=>\n  array(0) interned {\n  }\n}\n')
    new_text, records, _ = strip_php_leaks(P1 + "\n\n" + dump + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["format"] == "debug_zval_dump"
    assert records[0]["value"] == {"t": "x1", "l": []}


# --------------------------------------------------------------------- Xdebug
XDEBUG_TEXT = '''/var/www/html/a.php:5:
array(4) {
  'title' =>
  string(13) "‘She’ "q""
  'n' =>
  double(0.1)
  'obj' =>
  class Article#1 (3) {
    public int $id =>
    int(7)
    protected $slug =>
    string(3) "a-b"
    public ?int $views =>
    *uninitialized*
  }
  'sec' =>
  enum Section::World : string("world");
}
'''
XDEBUG_HTML = '''
/var/www/html/demo/demo.php:10:
array (size=5)
  'title' => string '‘She Bled’ — "quoted"' (length=27)
  'it' => string 'it's' (length=4)
  7 => 
    array (size=2)
      0 => int 1
      1 => boolean true
  'obj' => 
    object(Article)[1]
      public 'id' => int 7
      public ?int 'views' => *uninitialized*
  'sec' => enum(Section::World) : string 'world' (length=5)
'''


def test_xdebug_text():
    new_text, records, _ = strip_php_leaks(P1 + "\n\n" + XDEBUG_TEXT + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["format"] == "xdebug_text"
    assert records[0]["text"].startswith("/var/www/html/a.php:5:\narray(4) {")
    assert records[0]["value"] == {
        "title": "‘She’ \"q\"", "n": 0.1, "obj": {"__class__": "Article", "id": 7, "slug": "a-b"},
        "sec": {"__enum__": "Section::World"}}


def test_xdebug_html_stripped():
    new_text, records, _ = strip_php_leaks(P1 + "\n" + XDEBUG_HTML + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["format"] == "xdebug_html"
    assert records[0]["value"] == {
        "title": "‘She Bled’ — \"quoted\"", "it": "it's", "7": [1, True],
        "obj": {"__class__": "Article", "id": 7}, "sec": {"__enum__": "Section::World"}}
    assert records[0]["length_matched"] is True


def test_xdebug_html_scalar_and_truncation():
    text = P1 + "\n/var/www/html/t2.php:10:string 'abc' (length=3)\n" + P2
    assert strip(text) == P1 + "\n\n" + P2
    assert values(text) == ["abc"]
    cut = P1 + "\n/var/www/html/t.php:3:string 'abcdef'... (length=600)\n" + P2
    assert strip(cut) == P1 + "\n\n" + P2
    assert values(cut) == ["abcdef"]


def test_xdebug_text_truncated_string_and_more_elements():
    dump = ('/var/www/html/t.php:3:\narray(200) {\n  [0] =>\n  string(600) "abc"...\n'
            '\n  (more elements)...\n}\n')
    new_text, records, counts = strip_php_leaks(P1 + "\n\n" + dump + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["value"] == ["abc"]
    assert records[0]["length_matched"] is False and counts["length_mismatch"] == 1


# ------------------------------------------------------- print_r / var_export
PRINT_R = '''Array
(
    [title] => ‘She Bled’ — "quoted"
    [body] => line1
line2
    [ok] => 1
    [none] => 
    [7] => Array
        (
            [0] => 1
            [1] => Array
                (
                    [0] => 2
                )

        )

    [obj] => Article Object
        (
            [id] => 7
            [slug:protected] => a-b
            [note:Article:private] => 
        )

    [sec] => Section Enum:string
        (
            [name] => World
            [value] => world
        )

    [ref] => shared
)
'''


def test_print_r():
    new_text, records, counts = strip_php_leaks(P1 + "\n\n" + PRINT_R + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["format"] == "print_r" and records[0]["length_matched"] is None
    assert records[0]["value"] == {
        "title": "‘She Bled’ — \"quoted\"", "body": "line1\nline2", "ok": "1", "none": "",
        "7": ["1", ["2"]], "obj": {"__class__": "Article", "id": "7", "slug": "a-b", "note": ""},
        "sec": {"__class__": "Section", "name": "World", "value": "world"}, "ref": "shared"}
    assert counts["removed.print_r"] == 1


def test_print_r_collapsed_glued_to_next_sentence():
    text = P1 + " stdClass Object ( [id] => 1 [title] => Talks ) " + P2
    assert strip(text) == P1 + " " + P2
    assert values(text) == [{"__class__": "stdClass", "id": "1", "title": "Talks"}]


VAR_EXPORT = """array (
  'title' => '‘She Bled’ — "quoted"',
  'esc' => 'it\\'s \\\\ a' . "\\0" . 'b',
  'n' => 1.0,
  'z' => -0.0,
  'min' => -9223372036854775807-1,
  'nested' => 
  array (
    0 => true,
    1 => NULL,
  ),
  'obj' => 
  \\Article::__set_state(array(
     'id' => 7,
  )),
  'std' => 
  (object) array(
     'x' => 1,
  ),
  'sec' => 
  \\Section::World,
)"""


def test_var_export():
    new_text, records, _ = strip_php_leaks(P1 + "\n\n" + VAR_EXPORT + "\n\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["format"] == "var_export"
    assert records[0]["value"] == {
        "title": "‘She Bled’ — \"quoted\"", "esc": "it's \\ a\0b", "n": 1.0, "z": -0.0,
        "min": -9223372036854775808, "nested": [True, None],
        "obj": {"__class__": "Article", "id": 7}, "std": {"__class__": "stdClass", "x": 1},
        "sec": {"__enum__": "Section::World"}}


def test_var_export_glued_to_following_text():
    text = P1 + "\narray (\n  0 => 1,\n)" + "The talks went on."
    assert strip(text) == P1 + "\n\nThe talks went on."


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize("error, level, message, file, line", [
    ("\nWarning: Undefined variable $x in /var/www/html/page.php on line 10\n",
     "Warning", "Undefined variable $x", "/var/www/html/page.php", 10),
    ("\nWarning:  Undefined array key \"thumb\" in /var/www/html/e1.php on line 3\n",
     "Warning", 'Undefined array key "thumb"', "/var/www/html/e1.php", 3),
    ("\nNotice: Undefined index: foo in C:\\xampp\\htdocs\\news\\single.php on line 42\n",
     "Notice", "Undefined index: foo", "C:\\xampp\\htdocs\\news\\single.php", 42),
    ("\nDeprecated: Creation of dynamic property D::$dyn is deprecated in /a/b.php on line 7\n",
     "Deprecated", "Creation of dynamic property D::$dyn is deprecated", "/a/b.php", 7),
    ("\nStrict Standards: Non-static method A::b() should not be called statically in /x.php on line 2\n",
     "Strict Standards", "Non-static method A::b() should not be called statically", "/x.php", 2),
    ("\nParse error: syntax error, unexpected token \";\" in /var/www/html/t.php on line 3\n",
     "Parse error", 'syntax error, unexpected token ";"', "/var/www/html/t.php", 3),
    ("\nCatchable fatal error: Object of class X could not be converted to string in /x.php on line 9\n",
     "Catchable fatal error", "Object of class X could not be converted to string", "/x.php", 9),
    ("\nRecoverable fatal error: Object of class X could not be converted to string in /x.php on line 9\n",
     "Recoverable fatal error", "Object of class X could not be converted to string", "/x.php", 9),
    ("**Warning** : Undefined variable $u in **/var/www/html/page.php** on line **10**",
     "Warning", "Undefined variable $u", "/var/www/html/page.php", 10),
    ("[24-Nov-2026 15:06:06 UTC] PHP Warning:  Undefined variable $u in /p.php on line 4",
     "Warning", "Undefined variable $u", "/p.php", 4),
    ("Warning: PHP Startup: Unable to load dynamic library 'x' (tried: /usr/lib/x.so) in Unknown on line 0",
     "Warning", "PHP Startup: Unable to load dynamic library 'x' (tried: /usr/lib/x.so)", "Unknown", 0),
])
def test_php_errors(error, level, message, file, line):
    new_text, records, counts = strip_php_leaks(P1 + "\n" + error + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["value"] == {"level": level, "message": message, "file": file, "line": line}
    assert records[0]["format"] == "php_error" and counts["removed.php_error"] == 1


UNCAUGHT = """
Fatal error: Uncaught PDOException: SQLSTATE[HY000] [2002] No such file or directory in /var/www/html/db.php:3
Stack trace:
#0 /var/www/html/db.php(3): PDO->__construct('mysql:host=loca...', 'news_user', Object(SensitiveParameterValue))
#1 {main}
  thrown in /var/www/html/db.php on line 3
"""


def test_uncaught_exception_with_stack_trace():
    new_text, records, _ = strip_php_leaks(P1 + "\n" + UNCAUGHT + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    value = records[0]["value"]
    assert value["level"] == "Fatal error" and value["line"] == 3
    assert value["message"] == "Uncaught PDOException: SQLSTATE[HY000] [2002] No such file or directory"
    assert value["file"] == "/var/www/html/db.php"
    assert value["trace"] == [
        "#0 /var/www/html/db.php(3): PDO->__construct('mysql:host=loca...', 'news_user', "
        "Object(SensitiveParameterValue))", "#1 {main}"]
    collapsed = " ".join(UNCAUGHT.split())
    assert strip(P1 + " " + collapsed + " " + P2) == P1 + " " + P2


XDEBUG_ERROR_TEXT = """
Warning: Undefined array key "thumb" in /var/www/html/e1.php on line 3

Call Stack:
    0.0003     401064   1. {main}() /var/www/html/e1.php:0
    0.0003     401064   2. render_related($items = [0 => ['id' => 1, 'title' => 'x']]) /var/www/html/e1.php:5

"""
XDEBUG_ERROR_HTML = """
( ! ) Warning: Undefined array key "thumb" in /var/www/html/e1.php on line 3
Call Stack
#TimeMemoryFunctionLocation
10.0005401064{main}(  ).../e1.php:0
20.0005401064render_related( $items = [0 => ['id' => 1, 'title' => 'x']] ).../e1.php:5
"""


XDEBUG_ERROR_MARKDOWN = """
| ( ! ) Warning: Undefined array key "thumb" in /var/www/html/e1.php on line 3 |
|---|
| Call Stack |
| # | Time | Memory | Function | Location |
| 1 | 0.0001 | 397432 | {main}( ) | .../e1.php:0 |
| 2 | 0.0001 | 397432 | render_related( $items = [] ) | .../e1.php:5 |
"""


@pytest.mark.parametrize("error", [XDEBUG_ERROR_TEXT, XDEBUG_ERROR_HTML, XDEBUG_ERROR_MARKDOWN])
def test_xdebug_errors_with_call_stack(error):
    new_text, records, _ = strip_php_leaks(P1 + "\n" + error + "\n" + P2)
    assert new_text == P1 + "\n\n" + P2
    assert records[0]["format"] == "xdebug_error"
    assert records[0]["value"]["message"] == 'Undefined array key "thumb"'
    trace = records[0]["value"]["trace"]
    assert len(trace) == 2 and "{main}" in trace[0] and "render_related" in trace[1]


# ------------------------------------------------------------------- decoys
DECOYS = [
    "Warning: the storm is expected to hit the coast on Friday.",
    "Notice: this article was updated on line 3 of the timeline.",
    "Update: officials said the array(5) of sensors failed in the north.",
    "The function returns string(5) values, engineers said, and array( is not closed.",
    "Fatal error: the regime's fatal error was made in Aleppo, not on the front line.",
    'Coders write var_dump($x) or print_r($y) to see "Array" contents; NULL is a value.',
    "He said: Array\n(\nthe list was long) and nothing else.",
    "In PHP, int(5) and bool(true) appear in dumps, and float( precision matters.",
    "Deprecated: the old law in Idlib on line 12 of the treaty.",
    "The error appeared in /var/www on line five.",
    "NULL and void, the court said of the contract.",
    "Her speech (about the array (of reforms)) was welcomed.",
    'He wrote string(5) "hello world" in the log and left.\nShe said "yes"\nThen: "no"',
]


@pytest.mark.parametrize("decoy", DECOYS)
def test_no_false_positive_on_decoys(decoy):
    text = P1 + "\n\n" + decoy + "\n\n" + P2
    new_text, records, counts = strip_php_leaks(text)
    assert records == [] and new_text == text
    assert counts["documents_with_leaks"] == 0


def test_clean_news_is_unchanged():
    text = SEED.read_text(encoding="utf-8")
    text = text[:text.index("\n\nstring(946)")]
    assert strip(text) == text
    assert find_leaks(text * 50)[0] == []


# ------------------------------------------------------------------ hostile
HOSTILE = {
    "string_fragments": "string(" * 100_000,
    "string_counted_fragments": 'string(99999) "' * 100_000,
    "array_without_end": "array(999999) {\n" + '  ["k"]=>\n  int(1)\n' * 50_000,
    "deep_nesting_open": "array(1) {\n  [0]=>\n" * 10_000,
    "deep_nesting_closed": "array(1) {\n[0]=>\n" * 10_000 + "int(1)\n" + "}\n" * 10_000,
    "print_r_fragments": "Array\n(\n    [a] => x\n" * 20_000,
    "var_export_fragments": "array (\n  'a' => 'x" * 50_000,
    "error_anchors": "Warning: " * 50_000 + " on line 3" * 50_000,
    "ten_megabytes": ("Officials said the array (of options) was limited, Warning: string(5) "
                      "and int(3) appear. ") * 110_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_finish_fast(name):
    text = HOSTILE[name]
    t0 = time.perf_counter()
    new_text, records, counts = strip_php_leaks(text)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, f"{name} took {elapsed:.2f}s"
    for r in records:
        assert text[r["start"]:r["end"]] == r["text"]


def test_deep_nesting_closed_parses_without_recursion():
    text = HOSTILE["deep_nesting_closed"]
    leaks, unresolved = find_leaks(text)
    assert unresolved == 0 and len(leaks) == 1
    depth, v = 0, leaks[0].value
    while isinstance(v, list):
        v, depth = v[0], depth + 1
    assert depth == 10_000 and v == 1


def test_budget_exhaustion_is_counted_unresolved_and_text_kept():
    config = PhpLeaksConfig(budget_per_byte=0.001, budget_base=1000)
    text = "Array\n(\n    [a] => x\n" * 2000
    new_text, records, counts = strip_php_leaks(text, config=config)
    assert counts["unresolved"] >= 1 and new_text == text and records == []


def test_config_validation():
    with pytest.raises(ValueError):
        PhpLeaksConfig(budget_per_byte=0)
    with pytest.raises(ValueError):
        PhpLeaksConfig(max_window=10)


# ------------------------------------------------------- stage and composite
def _doc(text: str, doc_id: str = "d1") -> Document:
    return Document(id=doc_id, text=text, source="s.jsonl:1")


def test_stage_function():
    fn = make_stage_function(PhpLeaksConfig())
    seed = SEED.read_text(encoding="utf-8")
    result = fn(_doc(seed, "seed"))
    doc = result.document
    assert doc.text.endswith("Russia, Iran and Turkey.")
    assert doc.changes[-1] == (STAGE, 1)
    assert len(doc.php_values) == 2            # the string, then its JSON payload
    assert doc.php_values[1][0]["id"] == "1995016"
    assert [tag for tag, _ in result.side_records] == [PHP_LEAKS]
    assert result.side_records[0][1]["doc_id"] == "seed"
    assert result.counts["removed.var_dump"] == 1
    clean = fn(_doc(P1))
    assert clean.document.text == P1 and clean.document.changes[-1] == (STAGE, 0)
    assert clean.side_records == ()


def test_stage_php_values_hold_every_json_payload():
    fn = make_stage_function()
    dump = ('array(2) {\n  ["a"]=>\n  string(9) "[{"x":1}]"\n  ["b"]=>\n  string(7) "{"y":2}"\n}\n')
    result = fn(_doc(P1 + "\n\n" + dump))
    assert result.document.php_values == ({"a": '[{"x":1}]', "b": '{"y":2}'}, [{"x": 1}], {"y": 2})
    assert result.side_records[0][1]["json"] == [[{"x": 1}], {"y": 2}]


def test_apply_stage_fn_directly():
    dofn = ApplyStageFn(STAGE, make_stage_function)
    dofn.setup()
    out = list(dofn.process(_doc(P1 + "\n\nNULL\n\n" + P2)))
    docs = [o for o in out if isinstance(o, Document)]
    side = [o for o in out if not isinstance(o, Document)]
    assert docs[0].text == P1 + "\n\n" + P2
    assert side[0].tag == PHP_LEAKS and side[0].value["value"] is None


def _text_of(doc: Document) -> tuple[str, str]:
    return doc.id, doc.text


def _record_key(record: dict) -> tuple:
    return record["doc_id"], record["format"], record["start"], record["end"]


def test_composite_under_test_pipeline():
    seed = SEED.read_text(encoding="utf-8")
    body = seed[:seed.index("\n\nstring(946)")]
    error = "\nWarning: Undefined variable $x in /var/www/html/page.php on line 10\n"
    with TestPipeline() as p:
        results = (p | beam.Create([_doc(seed, "seed"), _doc(P1 + error + P2, "err"),
                                    _doc(P1, "clean")])
                   | StripPhpLeaks())
        assert_that(results[DOCUMENTS] | "Texts" >> beam.Map(_text_of),
                    equal_to([("seed", body), ("err", P1 + "\n\n" + P2), ("clean", P1)]),
                    label="CheckDocs")
        assert_that(results[PHP_LEAKS] | "Keys" >> beam.Map(_record_key),
                    equal_to([("seed", "var_dump", len(body) + 2, len(seed.rstrip("\n"))),
                              ("err", "php_error", len(P1) + 1, len(P1) + len(error) - 1)]),
                    label="CheckLeaks")
        assert_that(results[DEAD_LETTER], equal_to([]), label="CheckDeadLetter")


# ------------------------------------------- one-line (collapsed) extractions
@pytest.mark.parametrize("leak, fmt, value", [
    ("array ( 'id' => 1, 'title' => 'Talks \\'x\\'', 'n' => array ( 0 => true, ), )",
     "var_export", {"id": 1, "title": "Talks 'x'", "n": [True]}),
    ("/var/www/html/a.php:3: array (size=2) 'a' => int 1 'b' => string 'x y' (length=3)",
     "xdebug_html", {"a": 1, "b": "x y"}),
    ("/var/www/html/a.php:3: object(Foo)[1] public 'a' => int 1 protected 'b' => string 'x' (length=1)",
     "xdebug_html", {"__class__": "Foo", "a": 1, "b": "x"}),
    ("/var/www/html/a.php:3: array(1) { [0] => int(1) }", "xdebug_text", [1]),
    ("Array ( [id] => 1 [tags] => Array ( [0] => a [1] => b ) )",
     "print_r", {"id": "1", "tags": ["a", "b"]}),
    ('array(2) { ["id"]=> int(7) ["ok"]=> bool(true) }', "var_dump", {"id": 7, "ok": True}),
])
def test_collapsed_one_line_forms_inline(leak, fmt, value):
    new_text, records, _ = strip_php_leaks(P1 + " " + leak + " " + P2)
    assert new_text == P1 + " " + P2
    assert [(r["format"], r["value"]) for r in records] == [(fmt, value)]


def test_xdebug_location_glued_to_sentence_keeps_the_sentence():
    text = P1 + "/var/www/html/a.php:3:\narray(1) {\n  [0]=>\n  int(1)\n}\n"
    new_text, records, _ = strip_php_leaks(text)
    assert new_text == P1
    assert records[0]["text"].startswith("/var/www/html/a.php:3:")


def test_bare_scalars_join_a_structural_run_only():
    text = P1 + ' int(42)\nstring(2) "hi"\nfloat(0.1)\nNULL ' + P2
    assert strip(text) == P1 + "\n\n" + P2
    assert values(text) == [42, "hi", 0.1, None]
    prose = "Officials said NULL NULL and bool(true) matter."
    assert strip(prose) == prose


@pytest.mark.parametrize("text, expected", [
    ("Prose.\nbool(true)bool(true)\nMore.", "Prose.\n\nMore."),
    ("Talks resumed.\n\nint(0)int(0)\n\nMore prose.", "Talks resumed.\n\nMore prose."),
    ("He said int(5) is fine.", "He said int(5) is fine."),
    ("Values: int(1) int(2) in the list.", "Values: int(1) int(2) in the list."),
])
def test_runs_of_glued_scalars_are_judged_as_a_whole_and_stripping_is_idempotent(text, expected):
    once = strip_php_leaks(text)[0]
    assert once == expected
    assert strip_php_leaks(once)[0] == once


# ------------------------------------------------------------------ fast paths
@pytest.mark.parametrize("data", [
    b"", b"(", b"NULL", b"NULLNULL(", b"x.php:", b"x.php:7:", b".php:.php:1", b"Command line code:",
    b"Command line code:12:Command line code:x", b"a (b) NULL c /v/x.php:3: d (e",
    "caf\u00e9 (NULL) \u2019.php:9".encode(),
])
def test_signature_hits_are_the_literal_occurrences(data):
    import re
    from transforms.php_leaks import _signature_hits
    one_regex = re.compile(rb"\(|NULL|\.php:\d|Command line code:\d")
    assert _signature_hits(data) == [m.start() for m in one_regex.finditer(data)]


@pytest.mark.parametrize("text", [
    "Prose with no dump at all, only words.",
    "Prose (with parentheses) but no dump, and the word NULL.",
    "An error-like phrase on line 5 of the poem, with no file.",
])
def test_texts_without_a_leak_skip_the_parser_and_stay(text):
    leaks, unresolved = find_leaks(text)
    assert (leaks, unresolved) == ([], 0)
    assert strip(text) == text


def test_error_anchor_in_html2text_form_is_found_after_the_fast_precheck():
    # "** on line **" starts two bytes before " on line ": the search starts there.
    text = f"{P1}\n\n**Warning** : Division by zero in **/var/www/a.php** on line **3**\n\n{P2}"
    assert strip(text) == f"{P1}\n\n{P2}"


@pytest.mark.parametrize("data", [
    b"", b"Warning: x", b"( ! ) Warning: x", b"[12-Jan-2020 10:00:00 UTC] PHP Warning:  x",
    b"**Warning** : x", b"xWarning: x", b"*Warning: x", b"Warning Notice: y", b"(( ! ) Fatal error: z",
    b"[" + b"a" * 41 + b"] Warning: x", b"Strict Standards: s\nDeprecated: d", b"Unknown error: u",
])
def test_level_finder_is_the_level_pattern_search(data):
    from transforms._php_parse import _LEVEL_RE, _find_level
    for pos in range(len(data) + 1):
        m = _LEVEL_RE.search(data, pos)
        assert _find_level(data, pos) == (m.span() if m else None)


@pytest.mark.parametrize("data", [b"", b"thrown in x", b" thrown in x", b"\tthrown in \nthrown in ", b"xthrown in  thrown in "])
def test_thrown_finder_is_the_thrown_pattern_search(data):
    from transforms._php_parse import _THROWN, _find_thrown
    for pos in range(len(data) + 1):
        m = _THROWN.search(data, pos)
        assert _find_thrown(data, pos) == (m.span() if m else None)


# ------------------------------------------------- prefilters change no result
def _unfiltered_find_leaks(monkeypatch, text: str):
    """``find_leaks`` with neither prefilter: every text is encoded and every
    start before every ``(`` is tried."""
    from transforms import php_leaks
    signatures = php_leaks._signatures
    with monkeypatch.context() as m:
        m.setattr(php_leaks, "_may_hold_leak", lambda text: True)
        m.setattr(php_leaks, "_signatures", lambda data: signatures(data, prefilter=False))
        return find_leaks(text)


def _signature_spans(data: bytes, prefilter: bool) -> list:
    from transforms.php_leaks import _signatures
    return [(m.span(), m.lastgroup) for m in _signatures(data, prefilter=prefilter)]


# Every start _signatures tries before a "(": the keyword glued to it or across
# blanks, "&", " Object" / " Enum" / " Enum:string", "class Foo#1 (", "::",
# "(object)", and words that only end like a keyword; after prose with
# parentheses, glued to words, and alone.
PAREN_CASES = [
    "string(3) \"abc\"", "&string(3) \"abc\"", "Xstring(3) \"abc\"", "substring(3) \"abc\"",
    "array(1) {\n  [0]=>\n  int(1)\n}", "&array(1) {\n  [0]=>\n  int(1)\n}", "Xarray(1) {\n}",
    "array(1) refcount(2){\n  [0]=>\n  int(1) refcount(1)\n}", "array(0) interned {\n}",
    "object(Foo)#1 (1) {\n  [\"a\"]=>\n  int(1)\n}", "bool(true)", "bool(false)", "Xbool(true)",
    "int(5)", "print(5)", "int(-5)", "float(0.5)", "double(0.5)", "float(INF)", "enum(Suit::Hearts)",
    "NULL", "&NULL", "NULL(", "xNULLbool(true)", "uninitialized(int)",
    "Array\n(\n    [a] => 1\n)\n", "Array\n    (\n    [a] => 1\n    )\n", "Array (\n    [a] => 1\n)",
    "Array\r\n(\r\n    [a] => 1\r\n)\r\n", "XArray\n(\n    [a] => 1\n)\n",
    "Foo Object\n(\n    [a] => 1\n)\n", "stdClass Object ( [id] => 1 [t] => x )",
    "Foo Object(\n    [a] => 1\n)\n", "Suit Enum\n(\n    [name] => Hearts\n)\n",
    "Suit Enum:string\n(\n    [name] => Hearts\n    [value] => H\n)\n",
    "Suit Enum:string (\n    [name] => Hearts\n    [value] => H\n)\n",
    "Suit Enum:abcdefghijklmnopqrst (\n    [name] => Hearts\n)\n",
    "Suit Enum:abcdefghijklmnopqrstu (\n    [name] => Hearts\n)\n",
    "/var/www/a.php:3:\nclass Foo#1 (1) {\n  public $a =>\n  int(1)\n}",
    "/var/www/a.php:3:\n&class Foo#1 (1) {\n  public $a =>\n  int(1)\n}",
    "class Foo#1 (1) {\n  public $a =>\n  int(1)\n}", "class Foo#x (", "#1 (Reuters)", "Foo#12(",
    "class Foo#" + "1" * 300 + " (", "class Foo#" + "1" * 301 + " (",
    "/var/www/a.php:3:\narray (size=1)\n  0 => int 1", "array (size=1)\n  'a' => int 1",
    "/var/www/a.php:3:\nobject(Foo)[1]\n  public 'a' => int 1", "object(Foo)[1]",
    "array (\n  0 => 1,\n  'a' => 'x',\n)", "array (\n)", "Xarray (\n  0 => 1,\n)",
    "(object) array(\n   'a' => 1,\n)", "\\Foo::__set_state(array(\n   'a' => 1,\n))",
    "Foo::__set_state(array(\n   'a' => 1,\n))", "reference refcount(2) {\n  int(1)\n}",
    "(Reuters)", "(AP) ", "said (in 2019) that", "the array (of reforms)", "point (", "an Object (",
    "\u2019(", "\u00e9string(3) \"abc\"", "caf\u00e9 (NULL) int(5)",
]
PAREN_CONTEXTS = [
    "{}", "Officials (Reuters) said.\n\n{}\n\nTalks (AP) resumed.", "responded.{}",
    "He said (twice) {} and (later) left.", "(\n{}\n)", "x {} (y)",
]


@pytest.mark.parametrize("context", PAREN_CONTEXTS)
@pytest.mark.parametrize("case", PAREN_CASES)
def test_paren_prefilter_changes_no_signature_and_no_leak(case, context, monkeypatch):
    text = context.format(case)
    data = text.encode("utf-8", "surrogatepass")
    assert _signature_spans(data, True) == _signature_spans(data, False)
    assert find_leaks(text) == _unfiltered_find_leaks(monkeypatch, text)


PAREN_FRAGMENTS = [
    "(", "(", " (", "\n(", "\n    (", "\t", " ", "\n", "\r\n", "string", "array", "Array", "object",
    "enum", "bool", "int", "float", "double", "::__set_state", " Object", " Enum", " Enum:string",
    "Object", "Enum", "class ", "Foo", "#", "#1", "1", "(5)", ")", " {", "{", "}", "NULL", "&",
    "(object) array(", "array (", "(size=1)", "x", "X", ".php:", "/a.php:3:", "Command line code:1:",
    " on line 3", "Warning: x in /a.php", "\u00e9", "\u2019", "\u4e2d", '"', "'", "=>", "[0]",
    "(true)", "(3) \"abc\"", "(1) {\n  [0]=>\n  int(1)\n}", "\n    [a] => 1\n)\n", "refcount(1)",
    "reference refcount", "(Reuters)", "said",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PAREN_FRAGMENTS), max_size=40).map("".join))
def test_prefilters_change_no_result_on_fuzzed_fragments(text):
    from transforms.php_leaks import _find_parsed, _may_hold_leak
    data = text.encode("utf-8", "surrogatepass")
    assert _signature_spans(data, True) == _signature_spans(data, False)
    if not _may_hold_leak(text):
        assert _find_parsed(data, PhpLeaksConfig()) == ([], 0)
        assert not _signature_spans(data, False) and b" on line " not in data


@pytest.mark.parametrize("text", [
    "Officials (Reuters) said the talks (in Geneva) resumed.",
    "LONDON (AP) \u2014 The minister (pictured) said (twice) that the point (of it) stood.",
    "Prices rose (about 5%) in the (second) quarter (Q2).",
])
def test_prose_parentheses_are_rejected_before_encoding(text):
    from transforms.php_leaks import _may_hold_leak
    assert not _may_hold_leak(text)
    assert find_leaks(text) == ([], 0)


@pytest.mark.parametrize("dump", ['string(3) "abc"', "NULL", "/var/www/a.php:3:\nint(1)",
                                  "Warning: x in /var/www/a.php on line 3"])
def test_a_dump_after_many_prose_parentheses_is_found(dump):
    # the text check gives up on parentheses after a few (True): it must not
    # then report the text clean
    text = "Talks (in Geneva) resumed. " * 40 + "\n" + dump + "\n"
    leaks, _ = find_leaks(text)
    assert [leak.text for leak in leaks] == [dump]


@pytest.mark.parametrize("literal, pivot", [("NULL", 1), (".php:", 4), ("Command line code:", 17)])
@pytest.mark.parametrize("text", [
    "", "U", ":", "NULL", "xNULL", "ULL NUL NULL", "UUUUUUUUUUUUUUUUUUUUNULL", "U" * 30,
    "::::::::::::::::::.php:", ": " * 20 + "Command line code:", ".php", "Command line code",
    "\u00e9" * 5 + "NULL" + "U" * 10, "U" * 8 + "NULL", "U" * 9 + "NULL", "U" * 7 + "NULL",
    ":" * 8 + ".php:", ":" * 9 + "x.php:", ":" * 7 + ".php:",
])
def test_holds_is_the_substring_test(text, literal, pivot):
    from transforms.php_leaks import _holds
    for tries in (0, 1, 8):
        assert _holds(text, literal, pivot, tries) == (literal in text)


# ------------------------------------------------- lazy scans stop where they may
@pytest.mark.parametrize("data", [
    b"", b"Warning: a\nNotice: b", b"( ! ) Warning: x in /a.php on line 3\n" * 3,
    b"x" * 200 + b"[" + b"a" * 30 + b"] PHP Fatal error: z" + b"y" * 100 + b"Deprecated: d",
    b"Parse error: p Parse error: q", b"**Warning** : w" + b" " * 60 + b"Notice: n",
    # the longest lead before the longest level word
    b"x ( ! ) [" + b"a" * 40 + b"] PHP **Recoverable fatal error** : x",
])
def test_level_finder_bounded_by_hi_is_the_search_before_hi(data):
    from transforms._php_parse import _LEVEL_RE, _find_level
    for pos in range(len(data) + 1):
        m = _LEVEL_RE.search(data, pos)
        for hi in range(pos + 1, len(data) + 2):
            want = m.span() if m is not None and m.start() < hi else None
            assert _find_level(data, pos, hi) == want


@pytest.mark.parametrize("data", [
    b"", b"thrown in x", b" thrown in x\tthrown in ", b"xthrown in  thrown in "])
def test_thrown_finder_bounded_by_hi_is_the_search_before_hi(data):
    from transforms._php_parse import _THROWN, _find_thrown
    for pos in range(len(data) + 1):
        m = _THROWN.search(data, pos)
        for hi in range(pos + 1, len(data) + 2):
            assert _find_thrown(data, pos, hi) == (m.span() if m and m.start() < hi else None)


@pytest.mark.parametrize("indent", [0, 4, 8])
@pytest.mark.parametrize("data", [
    b"", b"\n)", b"\r\n)", b"x\r\n    [a] => 1\r\n)", b"\n\r\n    [a] =>\n    [b] => \n)",
    b"\r\r\n)\n    )\n        )\n            [k] =>", b"\n    [" + b"k" * 1001 + b"] =>\n)",
    b"Array\n(\n    [a] => x\n    [b] => Array\n        (\n            [0] => 1\n        )\n\n)\n",
])
def test_print_r_end_finder_is_the_pattern_search(data, indent):
    from transforms._php_parse import _pr_end_finder, _pr_end_pattern
    pattern, find = _pr_end_pattern(indent), _pr_end_finder(indent)
    for pos in range(len(data) + 1):
        m = pattern.search(data, pos)
        for hi in range(pos + 1, len(data) + 2):
            assert find(data, pos, hi) == (m.span() if m and m.start() < hi else None)


def test_lazy_positions_answer_as_a_full_scan_does():
    import random

    from transforms._php_parse import _LEVEL_RE, _LazyPositions, _VD_STR_END, _find_level
    data = (b'x "\n Warning: a "} ( ! ) Notice: b" interned" \n' * 40)
    rng = random.Random(0)

    def full(pattern):
        out, p = [], 0
        while (m := pattern.search(data, p)) is not None:
            out.append(m.start())
            p = max(m.end(), m.start() + 1)
        return out

    for pattern, finder in ((_VD_STR_END, None), (_LEVEL_RE, _find_level)):
        everything = full(pattern)
        lazy = _LazyPositions(pattern, data, finder)
        for _ in range(300):
            lo = rng.randrange(len(data) + 1)
            hi = rng.randrange(len(data) + 2)
            limit = rng.choice([1, 2, 16, 1 << 30])
            assert lazy.between(lo, hi, limit) == [p for p in everything if lo <= p < hi][:limit]
