"""Property tests: values rendered by a Python port of PHP's printers
(var_dump, print_r, var_export, following php-dump-formats.md §3), embedded in
generated prose at random places. Stripping must return exactly the prose
under the whitespace rule, and the parsed value must round-trip.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.php_leaks import strip_php_leaks

# (python value, var_dump, print_r, var_export, canonical value)
FLOATS = [
    (0.1, "0.1", "0.1", "0.1", 0.1),
    (-0.0, "-0", "-0", "-0.0", -0.0),
    (1.0, "1", "1", "1.0", 1.0),
    (1e25, "1.0E+25", "1.0E+25", "1.0E+25", 1e25),
    (1.5, "1.5", "1.5", "1.5", 1.5),
    (-2.25, "-2.25", "-2.25", "-2.25", -2.25),
    (1e-05, "1.0E-5", "1.0E-5", "1.0E-5", 1e-05),
    (float("inf"), "INF", "INF", "INF", "INF"),
    (float("-inf"), "-INF", "-INF", "-INF", "-INF"),
]


class F:
    """A PHP float with its printed forms (hashable, compared by index)."""

    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"F({FLOATS[self.i][0]!r})"


KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
ANY_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    max_size=40)
# print_r has no quotes: a value must not look like a key line or a block end.
PR_TEXT = st.text(alphabet="abcdefghij KLMNOP.,!?'\"-—‘’مرحبا0123", max_size=30)


def scalars(text):
    return st.one_of(
        st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
        st.integers(0, len(FLOATS) - 1).map(F), text)


def values(text, max_leaves=25):
    def extend(children):
        return st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(KEYS, children, max_size=4))
    return extend(st.recursive(scalars(text), extend, max_leaves=max_leaves))


# ------------------------------------------------------------------ renderers
def var_dump(v: Any, i: int = 0) -> str:
    sp = " " * i
    if v is None:
        return sp + "NULL\n"
    if isinstance(v, bool):
        return sp + f"bool({'true' if v else 'false'})\n"
    if isinstance(v, int):
        return sp + f"int({v})\n"
    if isinstance(v, F):
        return sp + f"float({FLOATS[v.i][1]})\n"
    if isinstance(v, str):
        return sp + f'string({len(v.encode("utf-8"))}) "{v}"\n'
    items = list(enumerate(v)) if isinstance(v, list) else list(v.items())
    out = [sp + f"array({len(items)}) {{\n"]
    for k, child in items:
        key = f"[{k}]" if isinstance(k, int) else f'["{k}"]'
        out.append(" " * (i + 2) + key + "=>\n" + var_dump(child, i + 2))
    out.append(sp + "}\n")
    return "".join(out)


def _pr_scalar(v: Any) -> str:
    if v is None or v is False:
        return ""
    if v is True:
        return "1"
    if isinstance(v, F):
        return FLOATS[v.i][2]
    return str(v)


def print_r(v: Any, i: int = 0) -> str:
    if not isinstance(v, (list, dict)):
        return _pr_scalar(v)
    items = list(enumerate(v)) if isinstance(v, list) else list(v.items())
    out = ["Array\n", " " * i + "(\n"]
    for k, child in items:
        out.append(" " * (i + 4) + f"[{k}] => ")
        if isinstance(child, (list, dict)):
            out.append(print_r(child, i + 8) + "\n")
        else:
            out.append(_pr_scalar(child) + "\n")
    out.append(" " * i + ")\n")
    return "".join(out)


def var_export(v: Any, i: int = 0) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "-9223372036854775807-1" if v == -2**63 else str(v)
    if isinstance(v, F):
        return FLOATS[v.i][3]
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    items = list(enumerate(v)) if isinstance(v, list) else list(v.items())
    out = ["array (\n"]
    for k, child in items:
        key = str(k) if isinstance(k, int) else var_export(k)
        out.append(" " * (i + 2) + key + " => ")
        if isinstance(child, (list, dict)):
            out.append("\n" + " " * (i + 2) + var_export(child, i + 2) + ",\n")
        else:
            out.append(var_export(child) + ",\n")
    out.append(" " * i + ")")
    return "".join(out)


def canonical(v: Any, view: str) -> Any:
    if isinstance(v, list):
        return [canonical(x, view) for x in v]
    if isinstance(v, dict):
        return {k: canonical(x, view) for k, x in v.items()} if v else []
    if view == "print_r":
        return _pr_scalar(v)
    if isinstance(v, F):
        return FLOATS[v.i][4]
    return v


RENDERERS = {"var_dump": var_dump, "print_r": print_r, "var_export": var_export}

# ------------------------------------------------------------------- prose
WORDS = ["Officials", "said", "the", "talks", "in", "Geneva", "resumed", "Warning:", "Notice:",
         "Update:", "array", "string", "(five)", "on", "line", "Idlib", "‘quoted’", "Turkey",
         "NULL", "int", "a", "deal", "—", "مرحبا", "in/out", "3", "percent"]
SENTENCE = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(
    lambda ws: ws[0].capitalize() + (" " + " ".join(ws[1:]) if ws[1:] else "") + ".")
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=3).map(" ".join)
PROSE = st.lists(PARAGRAPH, min_size=1, max_size=4).map("\n\n".join)


def embed(dump: str, a: str, b: str, where: str) -> tuple[str, str]:
    inner = dump.strip()
    if where == "start":
        return dump + "\n" + b, b
    if where == "end":
        return a + "\n\n" + dump, a
    if where == "middle":
        return a + "\n\n" + dump + "\n\n" + b, a + "\n\n" + b
    if where == "glued_end":
        return a + dump, a
    sep = "\n\n" if "\n" in inner else " "
    return a + " " + inner + " " + b, a + sep + b


WHERE = st.sampled_from(["start", "end", "middle", "glued_end", "inline"])


def _check(view: str, value: Any, a: str, b: str, where: str) -> None:
    dump = RENDERERS[view](value)
    text, expected = embed(dump, a, b, where)
    new_text, records, counts = strip_php_leaks(text)
    assert new_text == expected
    assert len(records) == 1, records
    rec = records[0]
    assert rec["format"] == view
    assert text[rec["start"]:rec["end"]] == rec["text"]
    assert rec["value"] == canonical(value, view)
    if view == "var_dump":
        assert rec["length_matched"] is True and counts["length_mismatch"] == 0


SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(values(ANY_TEXT), PROSE, PROSE, WHERE)
def test_var_dump_round_trip(value, a, b, where):
    _check("var_dump", value, a, b, where)


@SETTINGS
@given(values(PR_TEXT), PROSE, PROSE, WHERE)
def test_print_r_round_trip(value, a, b, where):
    _check("print_r", value, a, b, where)


@SETTINGS
@given(values(ANY_TEXT), PROSE, PROSE, WHERE)
def test_var_export_round_trip(value, a, b, where):
    _check("var_export", value, a, b, where)


@settings(max_examples=80, deadline=None)
@given(ANY_TEXT, PROSE, PROSE, st.sampled_from(["start", "end", "middle", "glued_end"]))
def test_top_level_var_dump_string_round_trip(s, a, b, where):
    _check("var_dump", s, a, b, where)


@settings(max_examples=80, deadline=None)
@given(PROSE)
def test_generated_prose_is_never_touched(prose):
    new_text, records, _ = strip_php_leaks(prose)
    assert records == [] and new_text == prose


# ------------------------------------------------------------ fuzzing
FRAGMENTS = [
    "string(", "5", "12", ') "', '"', "array(", "2", ") {", "{", "}", "\n", "  ", '["k"]=>', "[0]=>",
    "[0] =>", "'k' =>", "int(1)", "float(1.0E+25)", "bool(true)", "NULL", "*RECURSION*", "&",
    "object(Foo)#1 (1) {", "class Foo#1 (1) {", "public $x =>", "uninitialized(int)",
    " refcount(2)", " interned", "reference refcount(2) {", "enum(A::B)", "...",
    "(more elements)...", "/var/www/a.php:3:", "array (size=2)", "string 'x' (length=1)",
    "object(Foo)[1]", "public 'a' => ", "int 5", "boolean true", "null", "empty",
    "Array", "Array\n(", "    [a] => ", " Object", "(", ")", "array (", " => ", ",", "'",
    "\\Foo::__set_state(array(", "(object) array(", "Warning: ", "Fatal error: Uncaught E: m",
    " in /a.php", ":3", " on line ", "3", "Stack trace:", "#0 {main}", "  thrown in /a.php",
    "Call Stack:", "    0.0001     1234   1. {main}() /a.php:0", "( ! ) ", "**Warning** :",
    "Talks", " resumed.", "‘She’", "مرحبا", "\r\n", "\t", "\\000",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join))
def test_fuzzed_fragments_never_crash_and_records_are_exact(text):
    from transforms.php_leaks import find_leaks, remove_spans
    leaks, unresolved = find_leaks(text)
    prev_end = 0
    for leak in leaks:
        assert text[leak.start:leak.end] == leak.text
        assert leak.start >= prev_end and leak.end > leak.start
        prev_end = leak.end
    new_text, records, counts = strip_php_leaks(text)
    assert new_text == remove_spans(text, [(l.start, l.end) for l in leaks])
    assert len(records) == len(leaks)
    assert sum(v for k, v in counts.items() if k.startswith("removed.")) == len(leaks)
