"""Stage ``php-leaks``: strip leaked PHP debug output, byte-exact, and parse it.

A PHP site that forgets a ``var_dump($related)`` or shows its errors prints
them into the page, and the scraper keeps them::

    ...mediation of Russia, Iran and Turkey.

    string(946) "[{"id":"1995016","sort":"5058101",...} ,{...} ]"

This stage runs first, on untouched text (before ftfy or any normalisation,
which would break the byte counts). It finds every leak anywhere in the body
(start, end, own paragraph, glued to prose), removes it, parses it into a
JSON-compatible value and emits one side record per leak on ``PHP_LEAKS``.

Formats (``format`` of a record): ``var_dump``, ``debug_zval_dump``,
``xdebug_text`` (``/path.php:N:`` + ``'k' =>``, ``double(..)``, ``class C#H``),
``xdebug_html`` (the HTML form once tags are stripped: ``array (size=N)``,
``'k' => string 'v' (length=N)``), ``print_r``, ``var_export``, ``php_error``
(``Level: msg in FILE on line N``, HTML-stripped, html2text ``**Warning** :``,
log prefix, uncaught exceptions with ``Stack trace``), ``xdebug_error``
(``( ! ) Warning: ...`` and/or a ``Call Stack`` block). See
``/work/shared/docs/php-dump-formats.md`` for the grammar.

Rules (see :func:`find_leaks`, :func:`strip_php_leaks`):

* ``string(N)`` / ``(length=N)`` count bytes. The payload end is found from
  the count (payloads contain quotes). When the count fails, it is retried as
  a character count (cp1252/latin-1 mojibake, single-byte charsets such as
  windows-1256), as a GBK/Big5/Shift_JIS/EUC count, and with Xdebug's ``\\000``
  read as one NUL byte; a fit there still counts as ``length_matched=True``.
  Otherwise a tolerant end search takes a closing quote followed by a
  newline, ``}``, ``[``, a key, a refcount or the end of the text (the last
  such quote within N bytes, else the first within 3N); at top level a quote
  followed by prose on the same line is accepted when within N/4 of the
  count. The record then has ``length_matched=False`` (``length_mismatch``).
  Xdebug truncation (``"...``, ``'...``, ``(more elements)...``, a body of
  ``...``) keeps what is shown; a cut container is ``null``.
* Prose is never removed: errors need `` in FILE on line N`` (FILE a path,
  ``Unknown`` or ``x.php``); dumps need a complete structure. A bare scalar
  dump (``int(5)``, ``float(..)``, ``bool(..)``, ``NULL``, ``enum(..)``) is a
  leak only when it fills its line, is glued after a sentence at a line end
  (``said.int(5)``), stands between two sentences (``said. int(5) Talks``;
  never a bare ``NULL``), or shares a whitespace-separated run with a
  structural leak (``var_dump($a, $b)``). Top-level print_r/var_export
  scalars and var_export enums have no signature and are never matched.
* Whitespace: a removed run of leaks (leaks separated only by whitespace are
  one run) takes its surrounding whitespace with it. At the start or end of
  the text nothing replaces it; if the run or its surrounding whitespace
  contains a line break the two sides are joined by exactly ``"\\n\\n"``;
  otherwise (inline) by one space. Glued at the end (``responded.string(..``)
  the sentence keeps its period and nothing else.
* Linear time: prefilters (a search of the text for the literals every leak
  holds, where a ``(`` counts only after a word a dump can start with: a
  document without any is not even encoded; then ``bytes.find`` of the same
  literals, and the parsers only where a signature matches); bounded,
  iterative parsers with an explicit stack (see :mod:`transforms._php_parse`);
  failed start positions (and failed print_r key lines) are memoised; end
  candidates are found once per document; a work budget per document
  (``budget_per_byte`` x bytes + ``budget_base`` steps). A candidate that
  exhausts it stays in place and is counted ``unresolved``, and the rest of
  that document is left as it is.

Side record (tag ``PHP_LEAKS``), one per leak, keys:
``doc_id``, ``format``, ``start``, ``end`` (character offsets into the input
text, end exclusive), ``text`` (== input[start:end]), ``value`` (canonical
value: null/bool/int/float; INF/-INF/NAN as strings; PHP arrays as lists when
keyed 0..n-1 in order, else dicts with string keys; objects as dicts with
``__class__`` first and bare property names, uninitialized omitted; enums as
``{"__enum__": "C::Case"}``; recursion as ``"*RECURSION*"``; errors as
``{"level", "message", "file", "line"[, "trace"]}``), ``parsed`` (bool),
``length_matched`` (bool for the formats with counts: var_dump,
debug_zval_dump, xdebug_text, xdebug_html; null for print_r, var_export and
errors), ``json`` (the orjson-parsed payload when exactly one string in the
leak, top level or nested, is JSON (starts with ``[`` or ``{``); a list of
the parsed payloads when several are; else null). ``parsed`` is always true:
a structure that does not parse is not removed.

The returned Document has the leaks removed and ``php_values`` = each leak's
value followed by its JSON payloads.

Counts (Beam counters ``newswash/php-leaks.<name>``): ``removed.<format>``,
``length_mismatch``, ``unresolved``, ``documents_with_leaks``.
The stage's change count is the number of leaks removed.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from typing import Any, AnyStr, Callable, Iterable, Iterator

import apache_beam as beam

from transforms._php_parse import Parsed, Scanner, Unresolved
from transforms.document import Document
from transforms.stage import StageResult, apply_stage

__all__ = [
    "STAGE",
    "PHP_LEAKS",
    "FORMATS",
    "PhpLeaksConfig",
    "Leak",
    "find_leaks",
    "remove_spans",
    "strip_php_leaks",
    "make_stage_function",
    "StripPhpLeaks",
]

STAGE = "php-leaks"
PHP_LEAKS = "php_leaks"
FORMATS = ("var_dump", "xdebug_text", "xdebug_html", "print_r", "var_export",
           "debug_zval_dump", "php_error", "xdebug_error")


@dataclasses.dataclass(frozen=True)
class PhpLeaksConfig:
    """Bounds of the work done per document.

    Attributes:
      budget_per_byte / budget_base: parser steps allowed per document
        (``budget_per_byte * len(utf8) + budget_base``).
      max_window: the longest byte span one string payload, print_r scalar
        or tolerant end search may cover.
    """

    budget_per_byte: float = 2.0
    budget_base: int = 200_000
    max_window: int = 1 << 20

    def __post_init__(self) -> None:
        if self.budget_per_byte <= 0 or self.budget_base < 1000:
            raise ValueError("budget_per_byte must be > 0 and budget_base >= 1000")
        if self.max_window < 1024:
            raise ValueError("max_window must be >= 1024")


@dataclasses.dataclass(frozen=True)
class Leak:
    """One leak, in character offsets of the input text."""

    format: str
    start: int
    end: int
    text: str
    value: Any
    length_matched: bool | None
    json: Any
    json_payloads: tuple[Any, ...] = ()


# Every signature a dump can start with (anchored matches, see _signatures).
_DUMP_SIGNATURES = re.compile(rb"""
    (?P<loc>\.php:\d{1,9}:|Command\ line\ code:\d{1,9}:)
  | (?P<vd>&?(?:string\(\d{1,12}\)\ "|array\(\d{1,12}\)(?:\ refcount\(\d{1,12}\)|\ interned)?\ ?\{
            |object\([\w\\]{1,300}\)\#\d|class\ [\w\\]{1,300}\#\d|enum\(|reference\ refcount
            |bool\((?:true|false)\)|int\(-?\d{1,20}\)|(?:float|double)\([-\dIN]|NULL))
  | (?P<xh>array\ \(size=\d|object\([\w\\]{1,300}\)\[\d)
  | (?P<pr>Array[ \t]*\r?\n?[ \t]{0,400}\(|\ (?:Object|Enum(?::\w{1,20})?)[ \t]*\r?\n?[ \t]{0,400}\()
  | (?P<ve>(?:array\ \(|\(object\)\ array\()\s{0,400}(?:-?\d|'|\))|::__set_state\(array\()
""", re.X)
# The literals every signature holds (see _signature_hits); a location needs a
# digit after them.
_HIT_LITERALS = (b"(", b"NULL")
_LOC_LITERALS = (b".php:", b"Command line code:")
_DIGITS = frozenset(b"0123456789")
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_\\:&")
_ERROR_ANCHOR = re.compile(rb"(?: on line |\*\* on line \*\*)(?=\*{0,2}\d)")
_LOC_PATH = re.compile(rb"(?:[A-Za-z]:[\\/]|/|Command line code)[^\s]{0,1000}\Z")
_XH_START = re.compile(rb"[ \t]{0,4}\r?\n?(?:array \(size=|string '|int -?\d|float |boolean |null|object\([\w\\]{1,300}\)\[|enum\()")
_WEAK_VD = re.compile(rb"&?(?:NULL|bool\(|int\(|float\(|double\(|enum\()")


@dataclasses.dataclass(frozen=True)
class _ParenLiterals:
    """What :func:`_may_open_signature` looks for, as bytes or as str."""

    blanks: Any
    # what the word before the "(" can end with: glued to it, any keyword of
    # the var_dump family or "::__set_state"; across blanks only "array (",
    # "Array\n(" and print_r's " Object (" / " Enum (" (" Enum:string (" is
    # looked for apart)
    glued: tuple[Any, ...]
    spaced: tuple[Any, ...]
    object_array: Any
    enum_colon: Any
    hash: Any
    digits: tuple[Any, ...]


_PAREN_TEXT = _ParenLiterals(
    blanks=" \t\r\n",
    glued=("string", "array", "Array", "object", "enum", "bool", "int", "float", "double",
           "::__set_state", " Object", " Enum"),
    spaced=("array", "Array", " Object", " Enum"),
    object_array="(object) array(", enum_colon=" Enum:", hash="#", digits=tuple("0123456789"))
_PAREN_BYTES = _ParenLiterals(*(
    v.encode("ascii") if isinstance(v, str) else tuple(x.encode("ascii") for x in v)
    for v in dataclasses.astuple(_PAREN_TEXT)))


def _char_offsets(data: bytes, points: list[int], n_chars: int) -> dict[int, int]:
    """Byte offset -> character offset for ``points`` (character boundaries
    of ``data``, which decodes to ``n_chars`` characters).

    One pass, decoding the bytes before the last point or, when shorter
    (leaks tend to sit at the end), those after the first point.
    """
    out: dict[int, int] = {}
    if data.isascii():
        return {p: p for p in points}
    ordered = sorted(set(points))
    if not ordered or ordered[-1] <= len(data) - ordered[0]:
        prev_b = prev_c = 0
        for p in ordered:
            prev_c += len(data[prev_b:p].decode("utf-8", "surrogatepass"))
            prev_b = p
            out[p] = prev_c
    else:
        prev_b, prev_c = len(data), n_chars
        for p in reversed(ordered):
            prev_c -= len(data[p:prev_b].decode("utf-8", "surrogatepass"))
            prev_b = p
            out[p] = prev_c
    return out


def _signature_hits(data: bytes) -> list[int]:
    """Sorted offsets of every ``(``, ``NULL``, ``.php:<digit>`` and
    ``Command line code:<digit>`` in ``data``.

    ``bytes.find`` runs at memchr speed; one alternation regex over the same
    literals scans ~5x slower, and most documents hold none of them, so
    this scan is most of the stage's cost on a clean document. The literals
    cannot overlap one another, so the union of their occurrences is what
    the alternation's ``finditer`` would find.
    """
    hits: list[int] = []
    find = data.find
    for literal in _HIT_LITERALS:
        i = find(literal)
        while i >= 0:
            hits.append(i)
            i = find(literal, i + 1)
    for literal in _LOC_LITERALS:
        i = find(literal)
        while i >= 0:
            j = i + len(literal)
            if j < len(data) and data[j] in _DIGITS:
                hits.append(i)
            i = find(literal, j)
    hits.sort()
    return hits


def _blank_start(data: AnyStr, p: int, lit: _ParenLiterals) -> int:
    """Where the blanks that end right before ``p`` begin (at most 420 back)."""
    q = p
    while q > 0 and p - q < 420 and data[q - 1] in lit.blanks:
        q -= 1
    return q


def _may_open_signature(data: AnyStr, p: int, q: int, lit: _ParenLiterals) -> bool:
    """False only when no start that :func:`_signatures` tries for the ``(``
    at ``p`` (``q``: :func:`_blank_start`) can yield a match.

    Prose has parentheses ("(Reuters)"); this rejects them in a few C calls,
    before the ~25 regex attempts. Why it is a necessary condition, by the
    start tried (``_DUMP_SIGNATURES``'s branches):

    * ``p`` itself: only ``(object) array(`` starts with ``(``.
    * a start in the word ``data[ws:q]`` (bytes of ``_WORD_BYTES``, which has
      no ``(``, ``.``, ``#`` or blank): a branch holding a ``(`` needs it right
      after its keyword, or after the blanks of ``array (`` / ``Array\\n(``; the
      first byte after the word is ``data[q]`` (a blank, or the ``(`` when
      ``q == p``), so the keyword ends the word. The location, ``class`` and
      ``reference refcount`` branches need a ``.`` or a blank followed by a
      word byte inside the word, and fail. A bare ``NULL`` (or ``&NULL``) in
      the word is a hit of its own, sorted before ``p``: once it is tried,
      ``last`` is at least its position, so it never yields here.
    * ``ws - 1`` (a space before ``Object`` / ``Enum``): only print_r's
      `` Object (`` / `` Enum (`` / `` Enum:string (``, which end the word.
    * the ``class`` of Xdebug's ``class Foo#1 (``: needs ``#`` right before the
      word and a digit after it, i.e. the last ``#`` within 301 bytes of ``q``.

    On the text (``str``, see :func:`_may_hold_leak`) the blanks and the
    ASCII literals next to ``p`` and ``q`` are the same characters, and the
    windows of 26 and 301 characters hold at least as many bytes, so it
    passes wherever it passes on the bytes.
    """
    endings = lit.glued if q == p else lit.spaced
    if data.endswith(endings, 0, q) or data.startswith(lit.object_array, p):
        return True
    if data.find(lit.enum_colon, max(0, q - 26), q) >= 0:  # " Enum:" + up to 20 word bytes
        return True
    h = data.rfind(lit.hash, max(0, q - 301), q)
    return h >= 0 and data[h + 1:h + 2] in lit.digits


def _signatures(data: bytes, prefilter: bool = True) -> Iterator[re.Match]:
    """Matches of :data:`_DUMP_SIGNATURES`, in increasing start order.

    Scanning with that many-branch regex costs ~10 MB/s; every signature
    holds a ``(`` (or is ``NULL`` / a location), which :func:`_signature_hits`
    finds at C speed. From each hit the signature's possible starts (the word
    before the ``(``, across the whitespace of ``Array\\n    (``) are tried,
    unless :func:`_may_open_signature` rules them all out (``prefilter=False``
    tries them all; the matches are the same, which the tests check).
    """
    last = -1
    for p in _signature_hits(data):
        if data[p:p + 1] != b"(":
            starts: Iterable[int] = (p - 1, p) if data[p - 1:p] == b"&" else (p,)
        else:
            q = _blank_start(data, p, _PAREN_BYTES)
            if prefilter and not _may_open_signature(data, p, q, _PAREN_BYTES):
                continue
            ws = q
            while ws > 0 and q - ws < 300 and data[ws - 1] in _WORD_BYTES:
                ws -= 1
            starts = list(range(max(ws, q - 24), q)) + [p]
            if ws > 0 and data[ws - 1:ws] == b" " and data[ws:ws + 1] in (b"O", b"E"):
                starts.insert(0, ws - 1)  # " Object(" / " Enum:string("
            elif ws > 0 and data[ws - 1:ws] == b"#":  # Xdebug text "class Foo#1 ("
                w2 = ws - 1
                while w2 > 0 and ws - w2 < 300 and data[w2 - 1] in _WORD_BYTES:
                    w2 -= 1
                if data[w2 - 6:w2] == b"class ":
                    starts.insert(0, w2 - 6)
                    if data[w2 - 7:w2 - 6] == b"&":
                        starts.insert(0, w2 - 7)
        for c in starts:
            if c <= last or c < 0:
                continue
            m = _DUMP_SIGNATURES.match(data, c)
            if m is not None:
                last = c
                yield m


def _after_arrow(data: bytes, pos: int) -> bool:
    """True when the last non-blank bytes before ``pos`` are ``=>``."""
    i = pos
    while i > 0 and pos - i < 4096 and data[i - 1] in b" \t\r\n":
        i -= 1
    return data[max(0, i - 2):i] == b"=>"


def _blanks_before(data: bytes, start: int) -> int:
    """The position before the spaces/tabs that end right at ``start``."""
    while start > 0 and data[start - 1] in b" \t":
        start -= 1
    return start


def _blanks_after(data: bytes, end: int) -> int:
    """The position after the spaces/tabs that start right at ``end``."""
    while end < len(data) and data[end] in b" \t":
        end += 1
    return end


def _at_line_end(data: bytes, end: int) -> bool:
    j = _blanks_after(data, end)
    return j == len(data) or data[j] in b"\r\n"


def _glued_at_line_end(data: bytes, start: int, end: int) -> bool:
    """``responded.int(5)`` at a line end: glued right after a sentence's end."""
    if start == 0 or data[start - 1] not in b".!?;:\"')]>":
        return False
    return _at_line_end(data, end)


def _between_sentences(data: bytes, start: int, end: int) -> bool:
    """``said. int(5) Talks``: a parenthesised scalar between two sentences
    (never a bare ``NULL``, which is also an English word)."""
    if data[start:start + 4] in (b"NULL", b"&NUL"):
        return False
    i = _blanks_before(data, start)
    if i > 0 and data[i - 1] not in b".!?\"'\r\n":
        return False
    j = _blanks_after(data, end)
    return j == len(data) or data[j] in b"\r\n" or (j > end and 65 <= data[j] <= 90)


def _line_bounded(data: bytes, start: int, end: int) -> bool:
    """True when only spaces/tabs separate [start, end) from line ends."""
    i = _blanks_before(data, start)
    if i > 0 and data[i - 1] not in b"\r\n":
        return False
    return _at_line_end(data, end)


def _find_parsed(data: bytes, config: PhpLeaksConfig) -> tuple[list[Parsed], int]:
    """All leaks in ``data`` (bytes offsets) and the number of unresolved candidates."""
    # Both anchors of an error hold " on line " (the html2text form starts
    # two bytes before it); most documents have neither that nor a dump
    # signature, and skip the Scanner altogether.
    first_anchor = data.find(b" on line ")
    signatures = _signatures(data)
    first_signature = next(signatures, None)
    if first_anchor < 0 and first_signature is None:
        return [], 0
    budget = int(config.budget_per_byte * len(data)) + config.budget_base
    scanner = Scanner(data, budget, config.max_window)
    found: list[Parsed] = []
    unresolved = 0
    try:
        # Pass 1: errors, anchored on " on line N".
        floor = 0
        anchors = _ERROR_ANCHOR.finditer(data, max(0, first_anchor - 2)) if first_anchor >= 0 else ()
        for m in anchors:
            if m.start() < floor:
                continue
            leak = scanner.parse_error(m.start(), m.end(), floor)
            if leak is not None:
                found.append(leak)
                floor = leak.end
        errors = found[:]
        dumps: list[Parsed] = []
        # Pass 2: dumps, skipping error spans.
        err_i = 0
        pos = 0
        for m in itertools.chain(() if first_signature is None else (first_signature,), signatures):
            s = m.start()
            if s < pos:
                continue
            while err_i < len(errors) and errors[err_i].end <= s:
                err_i += 1
            if err_i < len(errors) and errors[err_i].start <= s:
                pos = errors[err_i].end
                continue
            kind = m.lastgroup
            leak = None
            if kind == "loc":
                leak = _parse_located(scanner, data, m, dumps[-1].end if dumps else 0)
            elif kind == "vd":
                if _WEAK_VD.match(data, s) and _after_arrow(data, s):
                    pos = s + 1  # a bare scalar that is an entry of an unresolved structure
                    continue
                leak = scanner.parse_vd(s)
                if leak is None and data.startswith(b"object(", s):
                    leak = scanner.parse_xdebug_html(s)  # Xdebug HTML: object(C)[H]
                if leak is not None and _WEAK_VD.match(data, s):
                    leak.weak = True  # a bare scalar: judged by its context below
            elif kind == "xh":
                leak = scanner.parse_xdebug_html(s)
            elif kind == "pr":
                st = s
                if data[s:s + 1] == b" ":  # " Object(" / " Enum(": class name before
                    st = s
                    while st > 0 and st > s - 300 and (chr(data[st - 1]).isalnum() or data[st - 1] in b"_\\"):
                        st -= 1
                    if st == s:
                        st = -1
                if st >= 0:
                    leak = scanner.parse_print_r(st)
            else:
                st = s
                if kind == "ve" and data[s:s + 2] == b"::":
                    st = s
                    while st > 0 and st > s - 300 and (chr(data[st - 1]).isalnum() or data[st - 1] in b"_\\"):
                        st -= 1
                leak = scanner.parse_var_export(st)
            if leak is not None and (not dumps or leak.start >= dumps[-1].end):
                dumps.append(leak)
                found.append(leak)
                pos = max(leak.end, s + 1)
            else:
                pos = s + 1
    except Unresolved:
        unresolved += 1
    # An error message can sit inside a dumped string: the dump, which
    # started first, wins over any leak that overlaps it.
    found.sort(key=lambda p: (p.start, -p.end))
    found = _drop_overlaps(found)
    # Bare scalars need line context or a structural leak in their run
    # (leaks separated only by whitespace), e.g. var_dump($a, $b, $c).
    kept: list[Parsed] = []
    i = 0
    while i < len(found):
        j = i + 1
        while j < len(found) and not data[found[j - 1].end:found[j].start].strip():
            j += 1
        run = found[i:j]
        # A run is judged as a whole first: ``bool(true)bool(true)`` alone on
        # its line is two dumps, though neither fills the line by itself.
        structural = any(not leak.weak for leak in run) or (
            _line_bounded(data, run[0].start, run[-1].end)
            or _glued_at_line_end(data, run[0].start, run[-1].end)
            or _between_sentences(data, run[0].start, run[-1].end))
        for leak in run:
            # Inside a rejected run of several scalars none is taken alone:
            # the ")" of one would pass for a sentence end before the next,
            # and each pass would strip one more (not idempotent).
            if leak.weak and not structural and (len(run) > 1 or not (
                    _line_bounded(data, leak.start, leak.end)
                    or _glued_at_line_end(data, leak.start, leak.end)
                    or _between_sentences(data, leak.start, leak.end))):
                continue
            kept.append(leak)
        i = j
    return kept, unresolved


def _drop_overlaps(leaks: list[Parsed]) -> list[Parsed]:
    out: list[Parsed] = []
    for leak in leaks:
        if out and leak.start < out[-1].end:
            continue
        out.append(leak)
    return out


def _parse_located(scanner: Scanner, data: bytes, m: re.Match, floor: int) -> Parsed | None:
    """``/path/file.php:LINE:`` then an Xdebug dump (text or HTML-stripped)."""
    if m.group(0).startswith(b"Command"):
        start = m.start()
    else:
        # the path: from its first "/" (or drive letter), so that text glued
        # before it ("responded./var/www/x.php:3:") stays
        lo = m.start()
        while lo > floor and m.start() - lo < 1000 and data[lo - 1] not in b" \t\r\n":
            lo -= 1
        tail = _LOC_PATH.search(data, lo, m.start())
        if tail is None:
            return None
        start = tail.start()
    after = m.end()
    xh = _XH_START.match(data, after)
    if xh is not None:
        q = after
        while q < len(data) and data[q] in b" \t\r\n" and q - after < 8:
            q += 1
        leak = scanner.parse_xdebug_html(q)
        fmt = "xdebug_html"
    else:
        q = after
        while q < len(data) and data[q] in b" \t\r" and q - after < 8:
            q += 1
        if data[q:q + 1] == b"\n":
            q += 1
        elif q == after:  # text mode prints a newline (a space once collapsed)
            return None
        leak = scanner.parse_vd(q)
        fmt = "xdebug_text"
    if leak is None:
        return None
    return Parsed(start, leak.end, fmt, leak.value, leak.length_matched, leak.json_payloads)


def _holds(text: str, literal: str, pivot: int, tries: int = 8) -> bool:
    """``literal in text``, found from its character ``literal[pivot]``.

    A search for several characters walks the text at ~1 character/ns, a
    search for one runs at memchr speed, and news text holds few ``U`` or
    ``:``. After ``tries`` candidates the plain search takes over from the
    next one, so a text full of them costs about one search more.
    """
    ch = literal[pivot]
    i = text.find(ch, pivot)
    for _ in range(tries):
        if i < 0:
            return False
        if text.startswith(literal, i - pivot):
            return True
        i = text.find(ch, i + 1)
    return i >= 0 and text.find(literal, i - pivot) >= 0


def _parens_may_open(text: str, tries: int = 16) -> bool:
    """False only when no ``(`` of ``text`` passes :func:`_may_open_signature`
    (True after ``tries`` of them, to bound the work done twice)."""
    i = text.find("(")
    for _ in range(tries):
        if i < 0:
            return False
        if _may_open_signature(text, i, _blank_start(text, i, _PAREN_TEXT), _PAREN_TEXT):
            return True
        i = text.find("(", i + 1)
    return i >= 0


def _may_hold_leak(text: str) -> bool:
    """False only when :func:`_find_parsed` finds nothing in ``text``'s bytes:
    no ``NULL``, location or `` on line `` (the error anchor), and no ``(``
    that :func:`_may_open_signature` lets through.

    UTF-8 encodes ASCII characters as themselves and nothing else as ASCII
    bytes (nor do lone surrogates under ``surrogatepass``), so the literals
    are in ``text`` exactly when they are in its bytes; without a ``NULL``
    the ``(`` are all the hits :func:`_signatures` has. Such a text is not
    even encoded: the encoding costs as much as the searches.
    """
    return (_parens_may_open(text) or _holds(text, "NULL", 1) or _holds(text, ".php:", 4)
            or _holds(text, "Command line code:", 17) or " on line " in text)


def find_leaks(text: str, config: PhpLeaksConfig | None = None) -> tuple[list[Leak], int]:
    """Every leak in ``text`` (character offsets) and the unresolved count."""
    config = config or PhpLeaksConfig()
    if not _may_hold_leak(text):
        return [], 0
    data = text.encode("utf-8", "surrogatepass")
    parsed, unresolved = _find_parsed(data, config)
    offsets = _char_offsets(data, [p for leak in parsed for p in (leak.start, leak.end)], len(text))
    leaks = []
    for p in parsed:
        s, e = offsets[p.start], offsets[p.end]
        js = p.json_payloads
        leaks.append(Leak(p.format, s, e, text[s:e], p.value, p.length_matched,
                          None if not js else (js[0] if len(js) == 1 else list(js)),
                          tuple(js)))
    return leaks, unresolved


def remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Removes sorted, non-overlapping ``spans`` under the whitespace rule."""
    if not spans:
        return text
    # merge spans separated only by whitespace
    runs: list[list[int]] = []
    for s, e in spans:
        if runs and not text[runs[-1][1]:s].strip():
            runs[-1][1] = max(runs[-1][1], e)
        else:
            runs.append([s, e])
    out = []
    cursor = 0
    n = len(text)
    for s, e in runs:
        ls = s
        while ls > cursor and text[ls - 1].isspace():
            ls -= 1
        re_ = e
        while re_ < n and text[re_].isspace():
            re_ += 1
        out.append(text[cursor:ls])
        # runs are separated by prose, so only the first can reach the start
        if ls == 0 or re_ == n:
            sep = ""
        elif "\n" in text[ls:s] or "\n" in text[s:e] or "\n" in text[e:re_]:
            sep = "\n\n"
        else:
            sep = " "
        out.append(sep)
        cursor = re_
    out.append(text[cursor:])
    return "".join(out)


def strip_php_leaks(text: str, doc_id: str = "", config: PhpLeaksConfig | None = None
                    ) -> tuple[str, list[dict[str, Any]], dict[str, int]]:
    """The text without leaks, one side record per leak, and the counts."""
    new_text, records, counts, _ = _strip(text, doc_id, config)
    return new_text, records, counts


def _strip(text: str, doc_id: str, config: PhpLeaksConfig | None
           ) -> tuple[str, list[dict[str, Any]], dict[str, int], tuple[Any, ...]]:
    leaks, unresolved = find_leaks(text, config)
    counts: dict[str, int] = {"unresolved": unresolved, "length_mismatch": 0,
                              "documents_with_leaks": 1 if leaks else 0}
    records = []
    php_values: list[Any] = []
    for leak in leaks:
        key = f"removed.{leak.format}"
        counts[key] = counts.get(key, 0) + 1
        if leak.length_matched is False:
            counts["length_mismatch"] += 1
        records.append({
            "doc_id": doc_id, "format": leak.format, "start": leak.start, "end": leak.end,
            "text": leak.text, "value": leak.value, "parsed": True,
            "length_matched": leak.length_matched, "json": leak.json,
        })
        php_values.append(leak.value)
        php_values.extend(leak.json_payloads)
    new_text = remove_spans(text, [(leak.start, leak.end) for leak in leaks])
    return new_text, records, counts, tuple(php_values)


def make_stage_function(config: PhpLeaksConfig | None = None) -> Callable[[Document], StageResult]:
    """The per-document function of the stage."""
    config = config or PhpLeaksConfig()

    def strip_leaks(doc: Document) -> StageResult:
        new_text, records, counts, php_values = _strip(doc.text, doc.id, config)
        if not records:
            return StageResult(document=doc.record_stage(STAGE, 0), counts=counts)
        new_doc = doc.replace_text(STAGE, new_text, len(records),
                                   php_values=doc.php_values + php_values)
        return StageResult(document=new_doc,
                           side_records=tuple((PHP_LEAKS, r) for r in records),
                           counts=counts)

    return strip_leaks


class StripPhpLeaks(beam.PTransform):
    """Removes leaked PHP debug output; side output ``PHP_LEAKS`` holds the records.

    The result has ``DOCUMENTS``, ``DEAD_LETTER`` and ``PHP_LEAKS``.
    """

    def __init__(self, config: PhpLeaksConfig | None = None):
        super().__init__()
        self._config = config or PhpLeaksConfig()

    def expand(self, pcoll):
        return apply_stage(pcoll, STAGE, functools.partial(make_stage_function, self._config),
                           side_tags=(PHP_LEAKS,))
