"""Bounded, iterative parsers for leaked PHP debug output (helpers of ``php_leaks``).

Everything here works on the UTF-8 *bytes* of a document, so that PHP's
``string(N)`` / ``(length=N)`` byte counts are checked in O(1) (``b[q + N]``)
instead of by walking characters. Offsets are converted back to character
offsets by :mod:`transforms.php_leaks`.

Guarantees against hostile input:

* No recursion: nested arrays/objects use an explicit stack.
* Every regex is anchored (``match`` at a position) or searched with bounded
  quantifiers, so none can backtrack super-linearly.
* "Find the next candidate end" queries go through :class:`_LazyPositions`,
  which finds every position once per document (amortised linear).
* A start position whose parse failed is remembered (``_dead``); a later
  attempt that reaches it fails at once, so nested garbage such as
  ``array(1) {`` x 10 000 costs one pass, not a quadratic number.
* A global work budget (steps ~ tokens/lines) per document; when a candidate
  runs out of it, :class:`Unresolved` is raised and the caller leaves the
  structure in place and counts it ``unresolved``.

Each ``parse_*`` method returns a :class:`Parsed` or ``None`` (not a leak).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from typing import Any, Callable

import orjson

__all__ = ["Parsed", "Scanner", "Unresolved", "LEVELS"]

_LEGACY_MULTIBYTE = ("gbk", "big5", "shift_jis", "euc-jp", "euc-kr")


class Unresolved(Exception):
    """The document's work budget ran out while parsing a candidate."""


class _Fail(Exception):
    """The candidate is not a complete leak."""


@dataclasses.dataclass
class Parsed:
    start: int           # byte offset
    end: int             # byte offset, exclusive
    format: str
    value: Any
    length_matched: bool | None
    json_payloads: list[Any] = dataclasses.field(default_factory=list)
    weak: bool = False   # a bare scalar (int(5), NULL ...) that needs line context


_Finder = Callable[[bytes, int, int], "tuple[int, int] | None"]


class _LazyPositions:
    """Sorted start positions of ``pattern`` in ``data``, found lazily, each once.

    ``finder(data, pos, hi)`` may replace ``pattern.search(data, pos)``: for
    patterns that start with a lookbehind, which the regex engine tries at
    every byte. It returns the (start, end) of that search's match when it
    starts before ``hi``, else None, and need not look much beyond ``hi``
    (the search would walk to the end of the text when nothing follows).
    """

    __slots__ = ("_pat", "_find", "_data", "_pos", "_scanned")

    def __init__(self, pattern: re.Pattern, data: bytes, finder: _Finder | None = None):
        self._pat = pattern
        self._find = finder
        self._data = data
        self._pos: list[int] = []
        self._scanned = 0

    def between(self, lo: int, hi: int, limit: int) -> list[int]:
        """Up to ``limit`` positions p with lo <= p < hi (the first ones)."""
        pos = self._pos
        # Positions are found in increasing order: once the last ``limit``
        # found are all >= lo, scanning on would only append larger ones.
        while self._scanned < hi and (len(pos) < limit or pos[-limit] < lo):
            if self._find is not None:
                span = self._find(self._data, self._scanned, hi)
                if span is None:  # nothing starts in [scanned, hi)
                    self._scanned = hi
                    break
            else:
                m = self._pat.search(self._data, self._scanned)
                span = None if m is None else m.span()
            if span is None:
                self._scanned = len(self._data) + 1
                break
            self._pos.append(span[0])
            self._scanned = max(span[1], span[0] + 1)
        i = bisect.bisect_left(self._pos, lo)
        out = []
        while i < len(self._pos) and self._pos[i] < hi and len(out) < limit:
            out.append(self._pos[i])
            i += 1
        return out


# ---------------------------------------------------------------- tokens
_WS = b" \t\r\n"
_FLOAT = rb"-?(?:INF|NAN|\d{1,400}(?:\.\d{1,400})?(?:E[+-]?\d{1,4})?)"

_VD_ITEM = re.compile(rb"""
    (?P<xamp>&(?:array|object)(?![(\w]))
  | (?P<ref>&)?(?:
    (?P<null>NULL)
  | bool\((?P<bool>true|false)\)
  | int\((?P<int>-?\d{1,20})\)
  | (?P<fkw>float|double)\((?P<float>""" + _FLOAT + rb""")\)
  | string\((?P<slen>\d{1,12})\)\ "
  | array\((?P<alen>\d{1,12})\)(?P<arc>\ refcount\(\d{1,12}\)|\ interned)?\ ?\{
  | object\((?P<ocls>[\w\\]{1,300})\)\#\d{1,12}\ \(\d{1,12}\)(?P<orc>\ refcount\(\d{1,12}\))?\ ?\{
  | class\ (?P<xcls>[\w\\]{1,300})\#\d{1,12}\ \(\d{1,12}\)\ \{
  | enum\((?P<enum>[\w\\]{1,300}::\w{1,300})\)
  | enum\ (?P<xenum>[\w\\]{1,300}::\w{1,300})(?:\ :\ \w{1,20}\((?:"[^"\n]{0,1000}"|-?\d{1,20})\))?;
  | uninitialized\((?P<uninit>[^)\n]{1,300})\)
  | (?P<xuninit>\*uninitialized\*)
  | (?P<rec>\*RECURSION\*)
  | (?P<zref>reference\ refcount\(\d{1,12}\)\ ?\{)
  | (?P<xdots>\.\.\.)
  )""", re.X)
_KEY_END = re.compile(rb'"(?::protected|:"[^"\n]{0,300}":private)?\]=>')
_XKEY_END = re.compile(rb"' =>")
_ZVAL_SUFFIX = re.compile(rb" (?:refcount\(\d{1,12}\)|interned)")
_VD_KEY = re.compile(rb"""
    \[(?P<int>-?\d{1,20})\]\ ?=>
  | \["(?P<str>)
  | '(?P<xstr>)
  | (?P<xvis>public|protected|private)(?:\ readonly)?(?:\ [^\s$]{1,300})?\ \$(?P<xprop>\w{1,300})\ =>
  | (?P<more>\(more\ elements\)\.\.\.)
  | (?P<dots>\.\.\.)(?=\s)
  """, re.X)
# A closing quote of a string(N) payload, followed by what may follow a value.
_VD_STR_END = re.compile(
    rb'"(?=\.\.\.|[ \t]*(?:\r?\n|\}|\[|\'|(?:public|protected|private) |\Z)| refcount\(| interned)')

_SPACED_END = re.compile(rb'"(?=[ \t])')
_XH_ITEM = re.compile(rb"""
    (?P<null>null)
  | boolean\ (?P<bool>true|false)
  | int\ (?P<int>-?\d{1,20})
  | float\ (?P<float>""" + _FLOAT + rb""")
  | string\ '
  | array\ \(size=(?P<alen>\d{1,12})\)
  | object\((?P<ocls>[\w\\]{1,300})\)\[\d{1,12}\]
  | enum\((?P<enum>[\w\\]{1,300}::\w{1,300})\)(?:\ :\ (?:int\ -?\d{1,20}|string\ '(?P<eb>[^'\n]{0,1000})'\ \(length=\d{1,12}\)))?
  | (?P<xuninit>\*uninitialized\*)
  | (?P<ref>&)(?:array|object\([\w\\]{1,300}\)\[\d{1,12}\])
  | (?P<dots>\.\.\.)
  """, re.X)
_XH_KEY = re.compile(rb"""
    (?P<int>-?\d{1,20})\ =>\ ?
  | '(?P<str>[^\n]{0,4096}?)'\ =>\ ?
  """, re.X)
_XH_INT_KEY = re.compile(rb"(?P<int>-?\d{1,20}) => ?")
_XH_KEY_END = re.compile(rb"' => ?")
_XH_VIRTUAL = re.compile(rb"virtual '[^'\n]{1,300}' '[^'\n]{0,300}'")
_XH_PROP = re.compile(
    rb"(?:public|protected|private)(?: readonly)?(?: [^\s']{1,300})? '(?P<name>[^'\n]{1,300})' => ?")
_XH_LEN_END = re.compile(rb"'(?:\.\.\.)? \(length=\d{1,12}\)")
_XH_EMPTY = re.compile(rb"\s{0,200}empty")
_XH_MORE = re.compile(rb"\s{0,200}more elements\.\.\.")

_PR_OPEN = re.compile(
    rb"(?:(?P<arr>Array)|(?P<cls>[\w\\]{1,300}) (?:(?P<obj>Object)|(?P<enum>Enum)(?::\w{1,20})?))"
    rb"(?P<ws>[ \t]*\r?\n[ \t]{0,400}|[ \t]{0,3})\(")
_PR_REC = re.compile(rb"(?:Array|[\w\\]{1,300} Object)\s{1,400}\*RECURSION\*")
_PR_KEY = re.compile(rb"\[(?P<k>[^\]\n]{0,1000})\] =>(?: |(?=\r?\n))")
_PR_COLLAPSED_END = re.compile(rb"\s(?:\[[^\]\n]{0,1000}\] =>|\))")

_VE_SCALAR = re.compile(rb"""
    (?P<null>NULL|null)
  | (?P<bool>true|false)
  | (?P<intmin>-9223372036854775807-1)
  | (?P<float>-?\d{1,400}\.\d{1,400}(?:E[+-]?\d{1,4})?|-?\d{1,400}E[+-]?\d{1,4}|-?INF|NAN)
  | (?P<int>-?\d{1,20})(?![\w.])
  | (?P<enum>\\[\w\\]{1,300}::\w{1,300})(?!\()
  """, re.X)
_VE_OPEN = re.compile(rb"""
    (?P<arr>array\ ?\()
  | \\?(?P<cls>[\w\\]{1,300})::__set_state\(array\(
  | (?P<std>\(object\)\ array\()
  """, re.X)
_VE_KEY = re.compile(rb"(?:(?P<int>-?\d{1,20})|'(?P<str>(?:[^'\\]|\\.){0,4096})') => ?", re.S)
_VE_CONCAT = re.compile(rb'\s?\.\s?"\\0"\s?\.\s?')

LEVELS = (b"Recoverable fatal error", b"Catchable fatal error", b"Fatal error", b"Parse error",
          b"Warning", b"Notice", b"Strict Standards", b"Deprecated", b"Unknown error")
_LEVEL_RE = re.compile(
    rb"(?<![\w*])(?:\( ! \) )?(?:\[[^\]\n]{1,40}\] )?(?:PHP )?(?:\*\*)?(?P<level>"
    + b"|".join(LEVELS) + rb")(?:\*\*)? ?:(?P<sp> {1,2})")
_THROWN = re.compile(rb"(?<=\s)thrown in ")
_BYTES_SPACE = b" \t\n\r\x0b\x0c"  # \s of a bytes pattern
_LEVEL_WORD = re.compile(b"|".join(LEVELS))
# The longest text _LEVEL_RE allows before its level word: "( ! ) ", a
# bracketed log prefix of up to 40 bytes, "PHP " and "**".
_LEVEL_LEAD = len(b"( ! ) ") + len(b"[] ") + 40 + len(b"PHP ") + len(b"**")
_LEVEL_WORD_MAX = max(len(level) for level in LEVELS)
_LEAD_BYTE = re.compile(rb"[(\[P*]")  # what a match can start with, if not its level word
_FILE_RE = re.compile(
    rb"(?:\*\*)?(?P<file>(?:[A-Za-z]:[\\/]|/|\.\.\./|phar://)[^\s*]{0,1000}(?: : (?:eval\(\)'d|runtime-created function|regexp) code)?|Unknown|[^\s*]{0,1000}\.(?:php|inc|phtml)\d?)(?:\*\*)?\Z")
_LINE_TAIL = re.compile(rb"(?:\*\*)?(?P<line>\d{1,9})(?:\*\*)?")
_UNCAUGHT_HEAD = re.compile(rb"Uncaught (?P<msg>[^\n]{0,4000}?) in (?P<file>\S{1,1000}):(?P<line>\d{1,9})\s{1,10}Stack trace:")
_TRACE_FRAME = re.compile(rb"\s{0,10}(?P<frame>#\d{1,6} [^\n]{0,4000}?)(?=\s{1,10}(?:#\d{1,6} |thrown\b)|\n)")
_XD_SECOND = re.compile(
    rb"\s{0,20}(?:\( ! \) )?[\w\\]{1,300}: [^\n]{0,4000}? in \S{1,1000} on line \d{1,9}")
_XD_CALLSTACK = re.compile(
    rb"(?:[ \t]*\r?\n[ \t]*\|[-| :]{1,200}\|[ \t]*)?"       # a markdown table's |---| row
    rb"\s{0,20}(?:\|[ \t]*)?(?:\*\*)?Call Stack(?:\*\*)?:?[ \t]*\|?[ \t]*(?:\r?\n|\Z)")
_TABLE_ROW_END = re.compile(rb"[ \t]*\|[ \t]*(?=\r?\n|\Z)")
_XD_FRAME_LINE = re.compile(
    rb"[ \t]{0,40}(?:"
    rb"\d{1,4}\.\d{4}[ \t]{1,20}\d{1,12}[ \t]{1,10}\d{1,6}\. [^\n]{0,4000}"      # text mode
    rb"|#\t?Time\t?Memory\t?Function\t?Location[^\n]{0,100}"                    # html header
    rb"|\d{1,6}\t?\d{1,4}\.\d{4}\t?\d{1,12}\t?[^\n]{0,4000}:\d{1,9}"           # html frame
    rb"|\|[^\n]{0,4000}\|"                                                      # markdown row
    rb")[ \t]*(?:\r?\n|\Z)")


def _find_thrown(data: bytes, pos: int, hi: int | None = None) -> tuple[int, int] | None:
    """``_THROWN.search(data, pos)`` at ``bytes.find`` speed; with ``hi``,
    only a match that starts before ``hi`` (see :class:`_LazyPositions`)."""
    end = len(data) if hi is None else hi + len(b"thrown in ") - 1
    i = data.find(b"thrown in ", pos, end)
    while i >= 0:
        if i > 0 and data[i - 1] in _BYTES_SPACE:
            return i, i + len(b"thrown in ")
        i = data.find(b"thrown in ", i + 1, end)
    return None


def _find_level(data: bytes, pos: int, hi: int | None = None) -> tuple[int, int] | None:
    """``_LEVEL_RE.search(data, pos)``, trying the pattern only near a level word.

    Every match holds a level word at most ``_LEVEL_LEAD`` bytes after its
    start, and starts with that word or with ``(``, ``[``, ``P`` or ``*``;
    the windows before successive level words are tried left to right, so
    the first match found is the leftmost, as ``search`` would return.

    With ``hi``, only a match that starts before ``hi`` (see
    :class:`_LazyPositions`): its word starts before ``hi + _LEVEL_LEAD``, so
    words are searched no further, and the words before it are the same
    ones in the same order.
    """
    end = len(data) if hi is None else hi + _LEVEL_LEAD + _LEVEL_WORD_MAX
    lo = pos
    word = _LEVEL_WORD.search(data, pos, end)
    while word is not None:
        w = word.start()
        a = max(lo, w - _LEVEL_LEAD)
        if hi is not None and a >= hi:
            return None  # this window and every later one start at or after hi
        # the window's candidates, found by the regex engine rather than a
        # Python loop over its ~55 bytes
        cands = [m.start() for m in _LEAD_BYTE.finditer(data, a, w)]
        cands.append(w)
        for c in cands:
            m = _LEVEL_RE.match(data, c)
            if m is not None:
                return m.span() if hi is None or c < hi else None
        lo = w + 1
        word = _LEVEL_WORD.search(data, lo, end)
    return None


def _pr_end_pattern(indent: int) -> re.Pattern:
    """A line that ends a print_r scalar in a block at ``indent``: the
    block's ``)`` or its next ``[key] =>``."""
    return re.compile(b"\\r?\\n(?: {%d}\\)| {%d}\\[[^\\]\\n]{0,1000}\\] =>)" % (indent, indent + 4))


def _pr_end_finder(indent: int) -> _Finder:
    """``_pr_end_pattern(indent).search``, for :class:`_LazyPositions`.

    The leading ``\\r?`` leaves the regex engine no literal to skip ahead
    to, and it tries the pattern at every byte (~9 ns/byte); the same
    pattern without it starts with ``\\n`` and spaces, which it finds at
    C speed. A match of ``\\r?\\nX`` starts at the ``\\r`` before a match of
    ``\\nX`` when there is one, else at the ``\\n``, and ends where it ends;
    the leftmost such match is the one from the leftmost ``\\nX``.
    """
    pat = re.compile(b"\\n(?: {%d}\\)| {%d}\\[[^\\]\\n]{0,1000}\\] =>)" % (indent, indent + 4))
    reach = indent + len(b"\n    [") + 1000 + len(b"] =>")  # the longest match

    def find(data: bytes, pos: int, hi: int) -> tuple[int, int] | None:
        # a match of "\nX" starting at or before hi lies within hi + reach
        m = pat.search(data, pos, hi + reach)
        if m is None:
            return None
        start = m.start()
        if start > pos and data[start - 1] == 13:  # "\r"
            start -= 1
        return (start, m.end()) if start < hi else None

    return find


def _float(raw: bytes) -> Any:
    s = raw.decode("ascii")
    if s in ("INF", "-INF", "NAN", "-NAN"):
        return "NAN" if s.endswith("NAN") else s
    value = float(s)
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return value


def _container(pairs: list[tuple[Any, Any]], cls: str | None) -> Any:
    if cls is not None:
        out: dict[str, Any] = {"__class__": cls}
        for k, v in pairs:
            out[str(k)] = v
        return out
    if all(isinstance(k, int) and k == i for i, (k, _) in enumerate(pairs)):
        return [v for _, v in pairs]
    return {str(k): v for k, v in pairs}


_CANONICAL_INT = re.compile(r"-?[1-9][0-9]{0,18}")


def _int_key(raw: str) -> Any:
    """print_r shows keys without quotes: canonical decimal keys are ints."""
    if raw == "0" or (raw[:1] != "0" and raw.lstrip("-")[:1] != "0" and
                      _CANONICAL_INT.fullmatch(raw)):
        return int(raw)
    return raw


class Scanner:
    """Parsers over one document's bytes, sharing memo tables and a work budget."""

    def __init__(self, data: bytes, budget: int, max_window: int):
        self.b = data
        self.n = len(data)
        self.budget = budget
        self.max_window = max_window
        self._dead: set[tuple] = set()
        self._vd_ends = _LazyPositions(_VD_STR_END, data)
        self._xh_ends = _LazyPositions(_XH_LEN_END, data)
        self._spaced_ends = _LazyPositions(_SPACED_END, data)
        self._alt_done: dict[int, tuple[int, bytes | None]] = {}
        self._heads = _LazyPositions(_LEVEL_RE, data, _find_level)
        self._thrown = _LazyPositions(_THROWN, data, _find_thrown)
        self._pr_ends: dict[int, _LazyPositions] = {}
        self._matched = True
        self._json: list[Any] = []
        self._flags: set[str] = set()

    # -------------------------------------------------------------- helpers
    def _step(self, k: int = 1) -> None:
        self.budget -= k
        if self.budget < 0:
            raise Unresolved()

    def _skip_ws(self, p: int) -> int:
        b, n = self.b, self.n
        while p < n and b[p] in _WS:
            p += 1
        return p

    def _begin(self) -> None:
        self._matched = True
        self._json = []
        self._flags = set()

    def _string_value(self, raw: bytes) -> str:
        s = raw.decode("utf-8", "surrogatepass")
        if s[:1] in ("[", "{") and len(s) <= self.max_window:
            try:
                self._json.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                pass
        return s

    def _alt_match(self, q: int, c: int, count: int) -> bytes | None:
        """The payload b[q:c] when another reading of ``count`` fits it: a
        charset count (see :meth:`_alt_count_ok`) or Xdebug's NUL as ``\\000``.

        Each candidate end ``c`` is checked for one start only (a real payload
        has one start; the result is remembered for re-parses from the same
        start), with the work charged to the budget, so that many overlapping
        fragments cannot make these checks quadratic.
        """
        n = c - q
        if n < count or n > 4 * count + 4:
            return None
        done = self._alt_done.get(c)
        if done is not None:
            return done[1] if done[0] == q else None
        self._step(1 + n // 256)
        raw = self.b[q:c]
        result = None
        if b"\\000" in raw and len(raw.replace(b"\\000", b"\0")) == count:
            result = raw.replace(b"\\000", b"\0")
        elif self._alt_count_ok(raw, count):
            result = raw
        self._alt_done[c] = (q, result)
        return result

    @staticmethod
    def _alt_count_ok(raw: bytes, count: int) -> bool:
        """Counts PHP could have printed for this text in another charset."""
        try:
            s = raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return False
        chars = len(s)
        if chars == count:  # cp1252/latin-1 mojibake or a single-byte charset
            return True
        if not chars < count <= 2 * chars:
            return False
        for charset in _LEGACY_MULTIBYTE:
            try:
                if len(s.encode(charset)) == count:
                    return True
            except UnicodeEncodeError:
                continue
        return False

    def _counted_string(self, q: int, count: int, ends: _LazyPositions, closer: bytes,
                        nested: bool) -> tuple[int, bytes, bool]:
        """Payload starting at ``q``; returns (closing-quote offset, raw, matched)."""
        b = self.b
        e = q + count
        if e < self.n and b[e:e + 1] == closer:
            ok = True
            if nested and closer == b'"':
                ok = _VD_STR_END.match(b, e) is not None
            elif closer == b"'":
                ok = _XH_LEN_END.match(b, e) is not None
            if ok:
                return e, b[q:e], True
        hi = min(self.n, q + min(4 * count + 256, self.max_window))
        cands = ends.between(q, hi + 1, 64)
        # At top level a string may be followed by prose on the same line:
        # quotes followed by a space are weaker candidates, used only when
        # their length is close to the count.
        spaced = [] if nested else self._spaced_ends.between(q, hi + 1, 64)
        self._step(1 + len(cands) + len(spaced))
        if not cands and not spaced:
            raise _Fail()
        for c in sorted(set(cands) | set(spaced)):
            raw = self._alt_match(q, c, count)
            if raw is not None:
                return c, raw, True
        best = None
        for c in cands:
            if c - q <= count:
                best = c
        if best is None and spaced:
            close = min(spaced, key=lambda c: abs(c - q - count))
            if abs(close - q - count) <= max(4, count // 4):
                best = close
        if best is None:
            # a longer payload (U+FFFD for invalid bytes, Xdebug escapes): only
            # within 3x the count, so that prose quoting "string(5) ..." and a
            # later quote at a line end is never taken for a payload
            if not cands or cands[0] - q > 3 * count + 8:
                raise _Fail()
            best = cands[0]
        return best, b[q:best], False

    def _fail_dead(self, kind: str, positions: list[int]) -> None:
        for p in positions:
            self._dead.add((kind, p))

    # ------------------------------------------------------- var_dump family
    def parse_vd(self, pos: int) -> Parsed | None:
        """var_dump / Xdebug text / debug_zval_dump value starting at ``pos``."""
        if ("vd", pos) in self._dead:
            return None
        self._begin()
        b = self.b
        stack: list[list[Any]] = []  # [start, pairs, cls, closer_kind, pending_key]
        p = pos
        try:
            while True:
                # ---- a value at p
                self._step()
                p = self._skip_ws(p) if stack else p
                if ("vd", p) in self._dead:
                    raise _Fail()
                m = _VD_ITEM.match(b, p)
                if m is None:
                    raise _Fail()
                end = m.end()
                value: Any
                push = None
                if m.group("null") is not None:
                    value = None
                elif m.group("bool") is not None:
                    value = m.group("bool") == b"true"
                elif m.group("int") is not None:
                    value = int(m.group("int"))
                elif m.group("float") is not None:
                    value = _float(m.group("float"))
                    if m.group("fkw") == b"double":
                        self._flags.add("xdebug")
                elif m.group("slen") is not None:
                    e, raw, ok = self._counted_string(end, int(m.group("slen")), self._vd_ends,
                                                      b'"', bool(stack))
                    self._matched &= ok
                    end = e + 1
                    if b[end:end + 3] == b"...":
                        end += 3
                        self._flags.add("xdebug")
                    value = self._string_value(raw)
                elif m.group("alen") is not None:
                    if m.group("arc"):
                        self._flags.add("zval")
                    push = [p, [], None, "}", None]
                elif m.group("ocls") is not None:
                    if m.group("orc"):
                        self._flags.add("zval")
                    push = [p, [], m.group("ocls").decode("ascii", "replace"), "}", None]
                elif m.group("xcls") is not None:
                    self._flags.add("xdebug")
                    push = [p, [], m.group("xcls").decode("ascii", "replace"), "}", None]
                elif m.group("enum") is not None:
                    value = {"__enum__": m.group("enum").decode("ascii", "replace")}
                elif m.group("xenum") is not None:
                    self._flags.add("xdebug")
                    value = {"__enum__": m.group("xenum").decode("ascii", "replace")}
                elif m.group("uninit") is not None or m.group("xuninit") is not None:
                    value = _UNINIT
                elif m.group("rec") is not None or m.group("xamp") is not None:
                    value = "*RECURSION*"
                elif m.group("zref") is not None:
                    self._flags.add("zval")
                    push = [p, [], None, "ref", None]
                else:  # xdebug "..." (depth limit / recursion)
                    if not stack:
                        raise _Fail()
                    self._flags.add("xdebug")
                    value = "*RECURSION*"  # a value "..." is Xdebug's object recursion
                if push is None:
                    zs = _ZVAL_SUFFIX.match(b, end)
                    if zs is not None and m.group("slen") is not None or (
                            zs is not None and stack and "zval" in self._flags):
                        self._flags.add("zval")
                        end = zs.end()
                    p = end
                else:
                    stack.append(push)
                    p = end
                # ---- close containers / read the next key
                while True:
                    if push is None:
                        if not stack:
                            return Parsed(pos, p, self._vd_format(), value, self._matched,
                                          self._json)
                        top = stack[-1]
                        if top[3] == "ref":
                            top[1].append((None, value))
                        elif value is not _UNINIT:
                            top[1].append((top[4], value))
                    push = None
                    top = stack[-1]
                    self._step()
                    q = self._skip_ws(p)
                    if top[3] == "ref":
                        if not top[1]:
                            p = q
                            break  # read the referenced value
                        if b[q:q + 1] != b"}":
                            raise _Fail()
                        stack.pop()
                        value = top[1][0][1]
                        p = q + 1
                        continue
                    # Xdebug markers: "(more elements)..." (children limit) and a
                    # body of "..." (depth limit: the container's value is cut)
                    k = _VD_KEY.match(b, q) if b[q:q + 1] != b"}" else None
                    while k is not None and (k.group("more") is not None
                                             or k.group("dots") is not None):
                        self._flags.add("xdebug")
                        if k.group("dots") is not None:
                            top[3] = "cut"
                        self._step()
                        p = k.end()
                        q = self._skip_ws(p)
                        k = _VD_KEY.match(b, q) if b[q:q + 1] != b"}" else None
                    if b[q:q + 1] == b"}":
                        stack.pop()
                        value = None if (top[3] == "cut" and not top[1]) else \
                            _container(top[1], top[2])
                        p = q + 1
                        continue
                    if k is None:
                        raise _Fail()
                    if k.group("int") is not None:
                        top[4] = int(k.group("int"))
                        p = k.end()
                    elif k.group("str") is not None or k.group("xstr") is not None:
                        xd = k.group("xstr") is not None
                        if xd:
                            self._flags.add("xdebug")
                        top[4], p = self._vd_string_key(k.end(), xd)
                    else:
                        self._flags.add("xdebug")
                        top[4] = k.group("xprop").decode("utf-8", "surrogatepass")
                        p = k.end()
                    break
        except _Fail:
            self._fail_dead("vd", [pos] + [f[0] for f in stack])
            return None

    def _vd_string_key(self, q: int, xdebug: bool) -> tuple[str, int]:
        """A quoted key (not length-prefixed): the shortest one whose value parses."""
        b = self.b
        pat = _XKEY_END if xdebug else _KEY_END
        for m in pat.finditer(b, q, min(self.n, q + 4096 + 320)):
            self._step()
            v = self._skip_ws(m.end())
            if _VD_ITEM.match(b, v) is not None:
                raw = b[q:m.start()]
                if xdebug:
                    raw = raw.replace(b"\\'", b"'")
                return raw.decode("utf-8", "surrogatepass"), m.end()
        raise _Fail()

    def _vd_format(self) -> str:
        if "xdebug" in self._flags:
            return "xdebug_text"
        if "zval" in self._flags:
            return "debug_zval_dump"
        return "var_dump"

    # ------------------------------------------------------ Xdebug HTML (stripped)
    def parse_xdebug_html(self, pos: int) -> Parsed | None:
        if ("xh", pos) in self._dead:
            return None
        self._begin()
        b = self.b
        stack: list[list[Any]] = []  # [start, pairs, cls, remaining(None=object), key]
        p = pos
        try:
            while True:
                self._step()
                if stack:
                    p = self._skip_ws(p)
                m = _XH_ITEM.match(b, p)
                if m is None:
                    raise _Fail()
                end = m.end()
                push = None
                value: Any = None
                if m.group("null") is not None:
                    value = None
                elif m.group("bool") is not None:
                    value = m.group("bool") == b"true"
                elif m.group("int") is not None:
                    value = int(m.group("int"))
                elif m.group("float") is not None:
                    value = _float(m.group("float"))
                elif m.group("alen") is not None:
                    push = [p, [], None, int(m.group("alen")), None]
                elif m.group("ocls") is not None:
                    push = [p, [], m.group("ocls").decode("ascii", "replace"), None, None]
                elif m.group("enum") is not None:
                    value = {"__enum__": m.group("enum").decode("ascii", "replace")}
                elif m.group("xuninit") is not None:
                    value = _UNINIT
                elif m.group("ref") is not None or m.group("dots") is not None:
                    if not stack:
                        raise _Fail()
                    value = "*RECURSION*" if m.group("ref") is not None else "..."
                else:  # string '
                    # the count sits after the payload: found from the markers
                    e, raw, ok = self._xh_string(end)
                    self._matched &= ok
                    value = self._string_value(raw)
                    end = _XH_LEN_END.match(b, e).end()
                p = end
                if push is not None:
                    stack.append(push)
                    if push[3] == 0 or push[3] is not None:
                        em = _XH_EMPTY.match(b, p)
                        if push[3] == 0 and em is not None:
                            p = em.end()
                while True:
                    if push is None:
                        if not stack:
                            return Parsed(pos, p, "xdebug_html", value, self._matched, self._json)
                        top = stack[-1]
                        if value is not _UNINIT:
                            top[1].append((top[4], value))
                        if top[3] is not None:
                            top[3] -= 1
                    push = None
                    top = stack[-1]
                    self._step()
                    if top[3] is not None:  # array: size=N entries
                        if top[3] <= 0:
                            mm = _XH_MORE.match(b, p)
                            if mm is not None:
                                p = mm.end()
                            stack.pop()
                            value = _container(top[1], None)
                            continue
                        q = self._skip_ws(p)
                        if b.startswith(b"...", q) and q > p:  # depth limit: body cut
                            p = q + 3
                            stack.pop()
                            value = None if not top[1] else _container(top[1], None)
                            continue
                        mm = _XH_MORE.match(b, p)
                        if mm is not None:  # children limit: the rest is not shown
                            p = mm.end()
                            stack.pop()
                            value = _container(top[1], None)
                            continue
                        if q == p:
                            raise _Fail()
                        k = _XH_INT_KEY.match(b, q)
                        if k is not None:
                            top[4] = int(k.group("int"))
                            p = k.end()
                        elif b[q:q + 1] == b"'":
                            top[4], p = self._xh_string_key(q + 1)
                        else:
                            raise _Fail()
                        break
                    q = self._skip_ws(p)
                    vm = _XH_VIRTUAL.match(b, q) if q > p else None
                    if vm is not None:  # a closure's "virtual 'closure' '{closure}'" line
                        p = vm.end()
                        q = self._skip_ws(p)
                    k = _XH_PROP.match(b, q) if q > p else None
                    if k is None:
                        stack.pop()
                        value = _container(top[1], top[2])
                        continue
                    top[4] = k.group("name").decode("utf-8", "surrogatepass")
                    p = k.end()
                    break
        except _Fail:
            self._fail_dead("xh", [pos] + [f[0] for f in stack])
            return None

    def _xh_string(self, q: int) -> tuple[int, bytes, bool]:
        """``string '…' (length=N)``: returns (closing quote, raw, matched)."""
        b = self.b
        cands = self._xh_ends.between(q, min(self.n, q + self.max_window) + 1, 16)
        self._step(1 + len(cands))
        if not cands:
            raise _Fail()
        # The payload may itself contain "' (length=": the marker whose count
        # ends exactly at it wins.
        for c in cands:
            m = _XH_LEN_END.match(b, c)
            count = int(str_digits(b, m.end() - 1))
            raw = b[q:c]
            if len(raw) == count or (b.startswith(b"'...", c) and len(raw) <= count):
                return c, raw, True
        c = cands[0]
        m = _XH_LEN_END.match(b, c)
        count = int(str_digits(b, m.end() - 1))
        return c, b[q:c], self._alt_match(q, c, count) is not None

    def _xh_string_key(self, q: int) -> tuple[str, int]:
        """A quoted Xdebug HTML key: the shortest one followed by a value."""
        b = self.b
        for m in _XH_KEY_END.finditer(b, q, min(self.n, q + 4096 + 8)):
            self._step()
            v = self._skip_ws(m.end())
            if _XH_ITEM.match(b, v) is not None:
                return b[q:m.start()].decode("utf-8", "surrogatepass"), m.end()
        raise _Fail()

    # ----------------------------------------------------------------- print_r
    def parse_print_r(self, pos: int) -> Parsed | None:
        if ("pr", pos) in self._dead:
            return None
        self._begin()
        b = self.b
        stack: list[list[Any]] = []  # [start, pairs, cls, enum, indent, multiline, key, key lines]
        p = pos
        try:
            value: Any = None
            while True:
                self._step()
                rec = _PR_REC.match(b, p)
                m = _PR_OPEN.match(b, p) if rec is None else None
                if rec is not None and stack:
                    value = "*RECURSION*"
                    p = rec.end()
                elif m is not None:
                    ws = m.group("ws")
                    multiline = b"\n" in ws
                    paren = m.end() - 1
                    line_start = b.rfind(b"\n", 0, paren) + 1
                    indent = paren - line_start
                    cls = None if m.group("arr") else m.group("cls").decode("ascii", "replace")
                    stack.append([p, [], cls, m.group("enum") is not None, indent, multiline, None,
                                  []])
                    p = m.end()
                    value = _OPEN
                elif stack:
                    value, p = self._pr_scalar(p, stack[-1])
                else:
                    raise _Fail()
                while True:
                    top = stack[-1]
                    if value is not _OPEN:
                        top[1].append((top[6], value))
                    value = None
                    self._step()
                    q = self._skip_ws(p)
                    if b[q:q + 1] == b")":
                        if top[5] and (q - (b.rfind(b"\n", p, q) + 1)) != top[4]:
                            raise _Fail()  # ")" not at the block's own indentation
                        stack.pop()
                        p = q + 1
                        pairs = top[1]
                        if top[2] is None:   # unquoted keys: canonical decimals are ints
                            pairs = [(_int_key(k), v) for k, v in pairs]
                        else:                # "name:protected", "name:Class:private"
                            pairs = [(k.split(":", 1)[0], v) for k, v in pairs]
                        value = _container(pairs, top[2])
                        if not stack:
                            return Parsed(pos, p, "print_r", value, None, self._json)
                        continue
                    if top[5] and b[p:q].count(b"\n") < 1:
                        raise _Fail()
                    if top[5]:
                        # the rest of a block from a key line depends only on
                        # (position, indent): remember the ones that failed
                        if ("prk", top[4], q) in self._dead:
                            raise _Fail()
                        top[7].append(q)
                    k = _PR_KEY.match(b, q)
                    if k is None:
                        raise _Fail()
                    top[6] = k.group("k").decode("utf-8", "surrogatepass")
                    p = k.end()
                    break
        except _Fail:
            self._fail_dead("pr", [pos] + [f[0] for f in stack])
            for f in stack:
                for q in f[7]:
                    self._dead.add(("prk", f[4], q))
            return None

    def _pr_scalar(self, p: int, frame: list[Any]) -> tuple[str, int]:
        """An unquoted print_r scalar: up to the next key or ``)`` of the block."""
        b = self.b
        if frame[5]:
            indent = frame[4]
            ends = self._pr_ends.get(indent)
            if ends is None:
                if len(self._pr_ends) > 64:
                    raise _Fail()
                ends = self._pr_ends[indent] = _LazyPositions(
                    _pr_end_pattern(indent), b, _pr_end_finder(indent))
            found = ends.between(p, min(self.n, p + self.max_window), 1)
            self._step()
            if not found:
                raise _Fail()
            return self._string_value(b[p:found[0]]), found[0]
        m = _PR_COLLAPSED_END.search(b, p, min(self.n, p + self.max_window))
        self._step()
        if m is None:
            raise _Fail()
        return self._string_value(b[p:m.start()]), m.start()

    # ---------------------------------------------------------------- var_export
    def parse_var_export(self, pos: int) -> Parsed | None:
        if ("ve", pos) in self._dead:
            return None
        self._begin()
        b = self.b
        stack: list[list[Any]] = []  # [start, pairs, cls, closer, key]
        p = pos
        try:
            while True:
                self._step()
                if stack:
                    p = self._skip_ws(p)
                o = _VE_OPEN.match(b, p)
                value: Any = _OPEN
                if o is not None:
                    if o.group("arr"):
                        stack.append([p, [], None, b")", None])
                    elif o.group("std"):
                        stack.append([p, [], "stdClass", b")", None])
                    else:
                        stack.append([p, [], o.group("cls").decode("ascii", "replace"), b"))", None])
                    p = o.end()
                elif not stack:
                    raise _Fail()
                elif b[p:p + 1] == b"'":
                    parts = []
                    while True:
                        raw, p = self._ve_string(p)
                        parts.append(raw)
                        c = _VE_CONCAT.match(b, p)
                        if c is None or b[c.end():c.end() + 1] != b"'":
                            break
                        parts.append(b"\0")
                        p = c.end()
                    value = self._string_value(b"".join(parts))
                else:
                    s = _VE_SCALAR.match(b, p)
                    if s is None:
                        raise _Fail()
                    if s.group("null") is not None:
                        value = None
                    elif s.group("bool") is not None:
                        value = s.group("bool") == b"true"
                    elif s.group("intmin") is not None:
                        value = -9223372036854775808
                    elif s.group("float") is not None:
                        value = _float(s.group("float"))
                    elif s.group("int") is not None:
                        value = int(s.group("int"))
                    else:
                        value = {"__enum__": s.group("enum")[1:].decode("ascii", "replace")}
                    p = s.end()
                while True:
                    top = stack[-1]
                    if value is not _OPEN:
                        top[1].append((top[4], value))
                        q = self._skip_ws(p)
                        if b[q:q + 1] != b",":
                            raise _Fail()
                        p = q + 1
                    value = None
                    self._step()
                    q = self._skip_ws(p)
                    if b.startswith(top[3], q):
                        stack.pop()
                        p = q + len(top[3])
                        value = _container(top[1], top[2])
                        if not stack:
                            return Parsed(pos, p, "var_export", value, None, self._json)
                        continue
                    k = _VE_KEY.match(b, q)
                    if k is None:
                        raise _Fail()
                    if k.group("int") is not None:
                        top[4] = int(k.group("int"))
                    else:
                        top[4] = k.group("str").replace(b"\\'", b"'").replace(
                            b"\\\\", b"\\").decode("utf-8", "surrogatepass")
                    p = k.end()
                    break
        except _Fail:
            self._fail_dead("ve", [pos] + [f[0] for f in stack])
            return None

    def _ve_string(self, p: int) -> tuple[bytes, int]:
        b = self.b
        out = []
        q = p + 1
        limit = min(self.n, p + self.max_window)
        while True:
            self._step()
            i = b.find(b"'", q, limit)
            j = b.find(b"\\", q, i if i >= 0 else limit)
            if i < 0:
                raise _Fail()
            if 0 <= j < i:
                out.append(b[q:j])
                out.append(b[j + 1:j + 2])
                q = j + 2
                continue
            out.append(b[q:i])
            return b"".join(out), i + 1

    # -------------------------------------------------------------------- errors
    def parse_error(self, anchor: int, anchor_end: int, floor: int) -> Parsed | None:
        """A PHP error whose `` on line N`` starts at ``anchor``; the headline
        must start at or after ``floor``."""
        b = self.b
        self._step()
        lt = _LINE_TAIL.match(b, anchor_end)
        if lt is None:
            return None
        line = int(lt.group("line"))
        end = lt.end()
        # the text between the level word and " on line"
        seg_lo = max(floor, anchor - 4200)
        nl = b.rfind(b"\n", seg_lo, anchor)
        line_lo = nl + 1 if nl >= 0 else seg_lo
        th = self._thrown.between(max(line_lo, anchor - 2100), anchor, 1 << 30)
        self._step(1 + len(th))
        if th:
            t_start = th[-1]
            t_end = t_start + len(b"thrown in ")
            fm = _FILE_RE.match(b, t_end, anchor)
            if fm is None:
                return None
            # search back for "Fatal error: Uncaught ... Stack trace:"
            heads = self._heads.between(max(floor, anchor - 65536), t_start, 1 << 30)[-8:]
            self._step(1 + len(heads))
            for h in reversed(heads):
                hm = _LEVEL_RE.match(b, h)
                u = _UNCAUGHT_HEAD.match(b, hm.end())
                if u is None:
                    continue
                frames = []
                q = u.end()
                while q < t_start:
                    self._step()
                    f = _TRACE_FRAME.match(b, q)
                    if f is None:
                        break
                    frames.append(f.group("frame").decode("utf-8", "surrogatepass").strip())
                    q = f.end()
                if self._skip_ws(q) != t_start:
                    continue
                value = {"level": hm.group("level").decode(), "message":
                         "Uncaught " + u.group("msg").decode("utf-8", "surrogatepass"),
                         "file": fm.group("file").decode("utf-8", "surrogatepass"),
                         "line": line, "trace": frames}
                fmt = "xdebug_error" if b[h:h + 1] == b"(" else "php_error"
                return self._error_tail(h, end, value, fmt)
            return None
        heads = self._heads.between(line_lo, anchor, 1 << 30)[-8:]
        self._step(1 + len(heads))
        for h in reversed(heads):
            hm = _LEVEL_RE.match(b, h)
            i = b.rfind(b" in ", hm.end(), anchor)
            if i < 0:
                continue
            fm = _FILE_RE.match(b, i + 4, anchor)
            if fm is None:
                continue
            msg = b[hm.end():i]
            if not msg.strip():
                continue
            value = {"level": hm.group("level").decode(),
                     "message": msg.decode("utf-8", "surrogatepass").replace("**", "").strip(),
                     "file": fm.group("file").decode("utf-8", "surrogatepass"),
                     "line": line}
            fmt = "xdebug_error" if b[h:h + 1] == b"(" else "php_error"
            return self._error_tail(h, end, value, fmt)
        return None

    def _error_tail(self, start: int, end: int, value: dict, fmt: str) -> Parsed:
        """Xdebug's second headline and ``Call Stack`` block after an error.

        Also the markdown-table form (trafilatura) of Xdebug's HTML error:
        ``| ( ! ) Warning: … on line 3 |`` rows, ``|---|``, ``| Call Stack |``.
        """
        b = self.b
        row = _TABLE_ROW_END.match(b, end)
        if row is not None:
            i = start
            while i > 0 and b[i - 1:i] in (b" ", b"\t"):
                i -= 1
            if b[i - 1:i] == b"|" and (i == 1 or b[i - 2:i - 1] in (b"\n", b"\r")):
                start, end = i - 1, row.end()
        if value["message"].startswith("Uncaught ") and "trace" not in value:
            s = _XD_SECOND.match(b, end)
            if s is not None and b"\n" in b[end:s.end()] and b"Call Stack" in b[s.end():s.end() + 40]:
                end = s.end()
                fmt = "xdebug_error"
        cs = _XD_CALLSTACK.match(b, end)
        if cs is not None:
            q = cs.end()
            frames = []
            while True:
                self._step()
                f = _XD_FRAME_LINE.match(b, q)
                if f is None or f.end() == q:
                    break
                frames.append(b[q:f.end()].decode("utf-8", "surrogatepass").strip())
                q = f.end()
            if frames:
                end = q
                while end > 0 and b[end - 1:end] in (b"\n", b"\r", b" ", b"\t"):
                    end -= 1
                value = dict(value, trace=[f for f in frames if not _is_stack_header(f)])
                fmt = "xdebug_error"
        return Parsed(start, end, fmt, value, None, [])


def _is_stack_header(row: str) -> bool:
    """The ``#TimeMemoryFunctionLocation`` / ``| # | Time | ...`` / ``|---|`` rows."""
    return ("Time" in row and "Memory" in row and "Function" in row) or not row.strip("|-: ")


def str_digits(b: bytes, end: int) -> bytes:
    """The run of ASCII digits ending just before ``end``."""
    i = end
    while i > 0 and 48 <= b[i - 1] <= 57:
        i -= 1
    return b[i:end]


_UNINIT = object()   # an uninitialized property: listed by the dump, omitted from the value
_OPEN = object()     # a container was opened: nothing to append yet
