"""A fast path in front of ``ftfy.fix_text`` that gives byte-identical results.

``ftfy.fix_text`` cuts the text into segments (lines, each with its ``\n``,
and at most ``max_decode_length`` code points) and runs ``fix_and_explain`` on
each one: about ten regex and translate passes plus the mojibake heuristic per
line, in Python, repeated until a pass changes nothing. Most lines of real
news need none of it.

:class:`FtfyFastPath` reproduces ``fix_text`` exactly, doing only the work
that can change something:

- a text with no *trigger character* that is already normalised is returned
  as it is, after one regex scan and one ``unicodedata.is_normalized`` call;
- otherwise only the lines that contain a trigger character are processed
  (the others are copied), and on those lines ``fix_and_explain``'s loop is
  replayed step for step with ftfy's own fixer functions, in ftfy's order,
  skipping each fixer whose trigger characters are absent from the current
  text (where it would be a no-op).

The trigger characters are derived here, at construction, from ftfy's own
tables and patterns, never typed in by hand (tests probe every code point):

- every fixer except normalisation and the encoding fix acts on a known set
  of characters: a regex that is one character class or starts with a literal
  (``&`` for entities, ESC for terminal escapes), or a translate table;
- the encoding fix returns its input unless ``badness.is_bad`` matches. Every
  branch of ``badness.BADNESS_RE`` requires, at some position, a character
  from an explicit set of non-ASCII characters; the union over the branches of
  one such set per branch (found by parsing the compiled pattern) is the
  encoding fix's trigger set. When one is present, ``is_bad`` itself is
  evaluated, but only in windows around those characters (a match is at most
  ``_BADNESS_WIDTH`` long and uses no look-arounds);
- normalisation is a no-op iff ``unicodedata.is_normalized`` is true. ``\n``
  neither composes nor reorders with its neighbours, so a text normalised as a
  whole is normalised line by line.

ftfy's ``unescape_html="auto"`` is stateful across segments: from the first
segment containing ``<`` on, HTML unescaping stays off. The fast path
reproduces that from the position of the first ``<``.

One more ftfy detail matters: with ``explain=False`` (what ``fix_text`` uses)
``fix_and_explain`` calls ``fix_encoding(text)`` with ftfy's *default*
encoding options, while with ``explain=True`` it passes the caller's config.
The fast path reports which fixers acted (for counts), so it only accepts
configs whose encoding sub-options (``restore_byte_a0``,
``replace_lossy_sequences``, ``decode_inconsistent_utf8``,
``fix_c1_controls``) are ftfy's defaults; then both calls are the same.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Iterable, Iterator

import ftfy
from ftfy import badness, chardata, fixes

try:  # Python >= 3.11
    from re import _constants as _sre_constants, _parser as _sre_parser
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parser  # type: ignore[no-redef]

__all__ = [
    "FTFY_COUNT_NAMES",
    "FtfyFastPath",
    "badness_anchor_chars",
    "badness_neighbours",
    "trigger_chars",
    "reference_fix",
]

# ftfy explanation steps -> our count names (number of segments, i.e. lines,
# that the fixer changed).
_STEP_COUNT_NAMES = {
    "unescape_html": "ftfy_html_entities",
    "decode_inconsistent_utf8": "ftfy_mojibake",
    "fix_c1_controls": "ftfy_c1_controls",
    "fix_latin_ligatures": "ftfy_ligatures",
    "fix_character_width": "ftfy_width",
    "uncurl_quotes": "ftfy_quotes",
    "fix_line_breaks": "ftfy_line_breaks",
    "fix_surrogates": "ftfy_surrogates",
    "remove_terminal_escapes": "ftfy_terminal_escapes",
    "remove_control_chars": "ftfy_control_chars",
}
FTFY_COUNT_NAMES = tuple(sorted(set(_STEP_COUNT_NAMES.values()) | {
    "ftfy_mojibake", "ftfy_normalization"}))

# The encoding sub-options the fast path requires to be at ftfy's defaults.
_ENCODING_SUBOPTIONS = (
    "restore_byte_a0", "replace_lossy_sequences", "decode_inconsistent_utf8",
    "fix_c1_controls")

# fix_line_breaks is a chain of str.replace calls, not a table; these are the
# characters it replaces (tests probe every code point to confirm).
_LINE_BREAK_CHARS = "\r\u2028\u2029\x85"


def _item_chars(op, av) -> set[str] | None:
    """The explicit characters a one-character regex item matches, or None
    when the item is anything else (a category, a negated set, a group)."""
    if op is _sre_constants.LITERAL:
        return {chr(av)}
    if op is _sre_constants.IN:
        chars: set[str] = set()
        for sub_op, sub_av in av:
            if sub_op is _sre_constants.LITERAL:
                chars.add(chr(sub_av))
            elif sub_op is _sre_constants.RANGE:
                chars.update(chr(c) for c in range(sub_av[0], sub_av[1] + 1))
            else:
                return None
        return chars
    return None


def _single_class_chars(pattern: re.Pattern[str]) -> set[str]:
    """Characters of a pattern that is one character class (``[...]``)."""
    if pattern.flags & re.IGNORECASE:
        raise ValueError(f"case-insensitive pattern {pattern.pattern!r}")
    items = list(_sre_parser.parse(pattern.pattern, pattern.flags))
    chars = _item_chars(*items[0]) if len(items) == 1 else None
    if chars is None:
        raise ValueError(f"not a single character class: {pattern.pattern!r}")
    return chars


def _first_literal(pattern: re.Pattern[str]) -> str:
    """The literal character every match of ``pattern`` starts with."""
    if pattern.flags & re.IGNORECASE:
        raise ValueError(f"case-insensitive pattern {pattern.pattern!r}")
    items = list(_sre_parser.parse(pattern.pattern, pattern.flags))
    op, av = items[0]
    if op is not _sre_constants.LITERAL:
        raise ValueError(f"pattern does not start with a literal: {pattern.pattern!r}")
    return chr(av)


# Non-ASCII characters frequent in clean news (typographic quotes, dashes,
# ellipsis, NBSP, common accented letters).
_COMMON_IN_NEWS = frozenset("\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a0\u00e9\u00e8\u00e1\u00f3")


def _anchor_cost(chars: set[str]) -> tuple[int, int]:
    return (len(chars & _COMMON_IN_NEWS), len(chars))


def _badness_branches() -> list[tuple[list[tuple[int, int, set[str] | None]], int]]:
    """``BADNESS_RE``'s top-level branches, each as its items and the index of
    its anchor item.

    An item is ``(run, offset, chars)``: items of one *run* consume exactly
    one character each, consecutively, so two items of a run match characters
    ``offset`` apart; zero-width items (``^``) are left out and anything else
    (an optional item) starts a new run. ``chars`` are the item's explicit
    characters (None: a category, a negated set, ...). The anchor item is the
    one with the cheapest all-non-ASCII explicit set (see
    :func:`badness_anchor_chars`). Raises ValueError if the pattern has a
    shape this derivation does not understand (a newer ftfy), rather than
    guess.
    """
    pattern = badness.BADNESS_RE
    if pattern.flags & re.IGNORECASE:
        raise ValueError("BADNESS_RE became case-insensitive")
    items = list(_sre_parser.parse(pattern.pattern, pattern.flags))
    if len(items) != 1 or items[0][0] is not _sre_constants.BRANCH:
        raise ValueError("BADNESS_RE is not a top-level alternation")
    one_char_ops = (_sre_constants.LITERAL, _sre_constants.NOT_LITERAL, _sre_constants.IN,
                    _sre_constants.ANY)
    branches = []
    for branch in items[0][1][1]:
        described: list[tuple[int, int, set[str] | None]] = []
        run = offset = 0
        best = -1
        for op, av in branch:  # top-level items of a branch are all required
            if op is _sre_constants.AT:
                continue  # zero width: consumes nothing, needs nothing here
            if op not in one_char_ops:
                run, offset = run + 1, 0  # variable width: offsets restart
                continue
            chars = _item_chars(op, av)
            if chars and all(ord(c) > 0x7F for c in chars):
                # Prefer sets without characters common in clean news text
                # (then smaller sets): fewer lines need the is_bad check.
                if best < 0 or _anchor_cost(chars) < _anchor_cost(described[best][2]):
                    best = len(described)
            described.append((run, offset, chars))
            offset += 1
        if best < 0:
            raise ValueError(f"BADNESS_RE branch without a non-ASCII anchor: {branch}")
        branches.append((described, best))
    return branches


@functools.lru_cache(maxsize=None)
def badness_anchor_chars() -> frozenset[str]:
    """A set of characters without which ``ftfy.badness.is_bad`` is false.

    For each top-level branch of ``BADNESS_RE``, the smallest explicit
    character set among the branch's required one-character items whose
    characters are all non-ASCII (the branch's anchor item).
    """
    anchors: set[str] = set()
    for described, best in _badness_branches():
        anchors |= described[best][2]
    return frozenset(anchors)


@functools.lru_cache(maxsize=None)
def badness_neighbours() -> tuple[frozenset[str], dict[str, tuple[tuple[int, frozenset[str]], ...]]]:
    """What must surround an anchor character for ``BADNESS_RE`` to match there.

    Returns ``(lone, needs)``. Every match holds, at its branch's anchor
    item, an anchor character ``c``; if the branch has another item with
    explicit characters in the same run (at a fixed distance ``d``), the
    character ``d`` away from ``c`` is one of those. ``needs[c]`` lists, per
    distance, the union of those sets over the branches whose anchor item
    holds ``c``; ``lone`` holds the anchor characters of branches without
    such an item (every occurrence of one may start a match). So a match
    exists only near a ``lone`` character or a ``c`` with, for some
    ``(d, chars)`` in ``needs[c]``, the character ``d`` away in ``chars``: a
    few set look-ups instead of a slow ``BADNESS_RE`` search per anchor (the
    curly quotes of clean news are anchors, followed by plain letters).
    """
    lone: set[str] = set()
    needs: dict[str, dict[int, set[str]]] = {}
    for described, best in _badness_branches():
        run, offset, anchor_chars = described[best]
        # The partner: the explicit item of the same run with the fewest characters.
        partners = [(len(chars), item_offset - offset, chars)
                    for index, (item_run, item_offset, chars) in enumerate(described)
                    if index != best and item_run == run and chars]
        if not partners:
            lone |= anchor_chars
            continue
        _, distance, chars = min(partners, key=lambda partner: partner[:2])
        for char in anchor_chars:
            needs.setdefault(char, {}).setdefault(distance, set()).update(chars)
    return frozenset(lone), {
        char: tuple((distance, frozenset(chars)) for distance, chars in sorted(by_distance.items()))
        for char, by_distance in needs.items() if char not in lone}


def _badness_width() -> int:
    """The longest possible match of ``BADNESS_RE``; raises ValueError if the
    pattern uses anything but consuming items and ``^`` (see ``_is_bad``)."""
    pattern = badness.BADNESS_RE
    parsed = _sre_parser.parse(pattern.pattern, pattern.flags)

    def check(items) -> None:
        for op, av in items:
            if op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT,
                      _sre_constants.GROUPREF, _sre_constants.GROUPREF_EXISTS):
                raise ValueError(f"BADNESS_RE uses {op}")
            if op is _sre_constants.AT and av is not _sre_constants.AT_BEGINNING:
                raise ValueError(f"BADNESS_RE uses {av}")
            if op is _sre_constants.BRANCH:
                for branch in av[1]:
                    check(branch)
            elif op is _sre_constants.SUBPATTERN:
                check(av[-1])
            elif op in (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT):
                check(av[2])

    check(parsed)
    low, high = parsed.getwidth()
    if high >= _sre_constants.MAXREPEAT or high > 64:
        raise ValueError("BADNESS_RE has unbounded matches")
    return high


_BADNESS_WIDTH = _badness_width()
_BADNESS_SEARCH = badness.BADNESS_RE.search


def _lossy_needs() -> bytes:
    """Bytes without which ``chardata.LOSSY_UTF8_RE`` cannot match: the union
    over its branches of a required one-byte item made only of the SUBSTITUTE
    byte and ``?`` (raises ValueError for a branch without one)."""
    pattern = chardata.LOSSY_UTF8_RE
    items = list(_sre_parser.parse(pattern.pattern.decode("latin-1"), pattern.flags))
    if len(items) != 1 or items[0][0] is not _sre_constants.BRANCH:
        raise ValueError("LOSSY_UTF8_RE is not a top-level alternation")
    needed: set[str] = set()
    for branch in items[0][1][1]:
        sets = [chars for chars in (_item_chars(op, av) for op, av in branch)
                if chars and chars <= {"\x1a", "?"}]
        if not sets:
            raise ValueError(f"LOSSY_UTF8_RE branch without SUBSTITUTE or '?': {branch}")
        needed |= min(sets, key=len)
    return "".join(sorted(needed)).encode("latin-1")


_LOSSY_NEEDS = tuple(bytes([byte]) for byte in _lossy_needs())


def _fix_encoding_one_step(text: str, config: ftfy.TextFixerConfig) -> tuple[str, list]:
    """ftfy 6.3.1's ``_fix_encoding_one_step_and_explain(text, config)`` for a
    ``text`` that ``is_bad`` (the caller decides that in a few microseconds;
    ftfy's first check is a full ``BADNESS_RE`` search, tens of them), copied
    step for step otherwise, except that ``replace_lossy_sequences`` is only
    called on bytes holding one of :data:`_LOSSY_NEEDS` (without one its
    regex cannot match and it returns its input). A test pins ftfy's source.
    """
    if not text or chardata.possible_encoding(text, "ascii"):
        return text, []
    possible_1byte_encodings = []
    for encoding in chardata.CHARMAP_ENCODINGS:
        if chardata.possible_encoding(text, encoding):
            possible_1byte_encodings.append(encoding)
            encoded_bytes = text.encode(encoding)
            encode_step = ftfy.ExplanationStep("encode", encoding)
            transcode_steps = []
            try:
                decoding = "utf-8"
                if (config.restore_byte_a0 and encoding != "macroman"
                        and chardata.ALTERED_UTF8_RE.search(encoded_bytes)):
                    replaced_bytes = fixes.restore_byte_a0(encoded_bytes)
                    if replaced_bytes != encoded_bytes:
                        transcode_steps.append(ftfy.ExplanationStep("transcode", "restore_byte_a0"))
                        encoded_bytes = replaced_bytes
                if (config.replace_lossy_sequences and encoding.startswith("sloppy")
                        and any(byte in encoded_bytes for byte in _LOSSY_NEEDS)):
                    replaced_bytes = fixes.replace_lossy_sequences(encoded_bytes)
                    if replaced_bytes != encoded_bytes:
                        transcode_steps.append(
                            ftfy.ExplanationStep("transcode", "replace_lossy_sequences"))
                        encoded_bytes = replaced_bytes
                if 0xED in encoded_bytes or 0xC0 in encoded_bytes:
                    decoding = "utf-8-variants"
                decode_step = ftfy.ExplanationStep("decode", decoding)
                steps = [encode_step] + transcode_steps + [decode_step]
                return encoded_bytes.decode(decoding), steps
            except UnicodeDecodeError:
                pass
    if config.decode_inconsistent_utf8 and chardata.UTF8_DETECTOR_RE.search(text):
        steps = [ftfy.ExplanationStep("apply", "decode_inconsistent_utf8")]
        fixed = fixes.decode_inconsistent_utf8(text)
        if fixed != text:
            return fixed, steps
    if "latin-1" in possible_1byte_encodings:
        if "windows-1252" in possible_1byte_encodings:
            return text, []
        try:
            fixed = text.encode("latin-1").decode("windows-1252")
            if fixed != text:
                steps = [ftfy.ExplanationStep("encode", "latin-1"),
                         ftfy.ExplanationStep("decode", "windows-1252")]
                return fixed, steps
        except UnicodeDecodeError:
            pass
    if config.fix_c1_controls and chardata.C1_CONTROL_RE.search(text):
        steps = [ftfy.ExplanationStep("transcode", "fix_c1_controls")]
        return fixes.fix_c1_controls(text), steps
    return text, []


def _table_chars(table: dict[int, object]) -> set[str]:
    return {chr(code) for code, value in table.items()
            if not (isinstance(value, str) and value == chr(code))
            and not (isinstance(value, int) and value == code)}


# The fixers fix_and_explain runs after the encoding fix, in its order
# (ftfy 6.3.1 ``__init__.py:fix_and_explain``; tests pin this).
_FIXER_ORDER = (
    "fix_c1_controls", "fix_latin_ligatures", "fix_character_width", "uncurl_quotes",
    "fix_line_breaks", "fix_surrogates", "remove_terminal_escapes", "remove_control_chars")


def _fixer_chars(name: str) -> set[str]:
    """The characters without which the ftfy fixer ``name`` is a no-op."""
    if name == "fix_c1_controls":
        return _single_class_chars(chardata.C1_CONTROL_RE)
    if name == "fix_latin_ligatures":
        return _table_chars(chardata.LIGATURES)
    if name == "fix_character_width":
        return _table_chars(chardata.WIDTH_MAP)
    if name == "uncurl_quotes":
        return (_single_class_chars(chardata.SINGLE_QUOTE_RE)
                | _single_class_chars(chardata.DOUBLE_QUOTE_RE))
    if name == "fix_line_breaks":
        return set(_LINE_BREAK_CHARS)
    if name == "fix_surrogates":
        return _single_class_chars(fixes.SURROGATE_RE)
    if name == "remove_terminal_escapes":
        return {_first_literal(fixes.ANSI_RE)}
    if name == "remove_control_chars":
        return _table_chars(chardata.CONTROL_CHARS)
    raise ValueError(f"unknown ftfy fixer {name!r}")


def trigger_chars(config: ftfy.TextFixerConfig) -> frozenset[str]:
    """Every character whose presence may let ``fix_and_explain`` change a
    segment under ``config``, apart from normalisation (checked separately)."""
    chars: set[str] = set()
    if config.unescape_html:  # True or "auto"
        chars.add(_first_literal(chardata.HTML_ENTITY_RE))
    if config.fix_encoding:
        chars |= badness_anchor_chars() | _single_class_chars(chardata.C1_CONTROL_RE)
    for name in _FIXER_ORDER:
        if getattr(config, name):
            chars |= _fixer_chars(name)
    return frozenset(chars)


def _char_class(chars: Iterable[str]) -> str:
    """A regex character class matching exactly ``chars`` (as ranges)."""
    codes = sorted(ord(c) for c in chars)
    if not codes:
        return "(?!)"
    parts = []
    start = prev = codes[0]
    for code in codes[1:] + [-1]:
        if code == prev + 1:
            prev = code
            continue
        parts.append(_escape(start) if start == prev else f"{_escape(start)}-{_escape(prev)}")
        start = prev = code
    return "[" + "".join(parts) + "]"


def _escape(code: int) -> str:
    return f"\\U{code:08x}"


# Fixers that replace single characters, each on its own, by fixed strings
# (a one-class regex substitution, a translate table): the lane of
# _fix_segment for lines that only they act on.
_CHAR_MAP_FIXERS = ("fix_latin_ligatures", "uncurl_quotes")


def _char_map_lane(config: ftfy.TextFixerConfig,
                   triggers: frozenset[str]) -> dict[str, tuple[str, str]]:
    """character -> (replacement, count name) for the characters a line may
    hold and still be fixed by plain replacement (see
    ``FtfyFastPath._fix_char_map_line``).

    Derived by calling each fixer of :data:`_CHAR_MAP_FIXERS` on each of its
    trigger characters. A character qualifies only if no other fixer (the
    encoding fix apart, which is checked per line) acts on it and its
    replacement holds no trigger character: then a line whose triggers all
    qualify needs exactly one pass of ``fix_and_explain``, in which each
    character is replaced independently.
    """
    lane: dict[str, tuple[str, str]] = {}
    others: set[str] = set()
    if config.unescape_html:
        others.add(_first_literal(chardata.HTML_ENTITY_RE))
    for name in _FIXER_ORDER:
        if getattr(config, name) and name not in _CHAR_MAP_FIXERS:
            others |= _fixer_chars(name)
    if config.fix_encoding:
        others |= _single_class_chars(chardata.C1_CONTROL_RE)
    for name in _CHAR_MAP_FIXERS:
        if not getattr(config, name):
            continue
        fixer = ftfy.FIXERS[name]
        for char in _fixer_chars(name):
            value = fixer(char)
            if value != char and char not in others and char in triggers \
                    and triggers.isdisjoint(value):
                lane[char] = (value, _STEP_COUNT_NAMES[name])
    for char in lane:  # each character belongs to one fixer
        if sum(char in _fixer_chars(name) for name in _CHAR_MAP_FIXERS) != 1:
            raise ValueError(f"{char!r} belongs to several character-map fixers")
    return lane


def reference_fix(text: str, config: ftfy.TextFixerConfig) -> str:
    """Plain ftfy, the behaviour the fast path must reproduce byte for byte."""
    return ftfy.fix_text(text, config._replace(explain=False))


def _positions(text: str, chars: Iterable[str]) -> Iterator[int]:
    """The positions in ``text`` of each of ``chars`` (grouped by character)."""
    find = text.find
    for char in chars:
        pos = find(char)
        while pos != -1:
            yield pos
            pos = find(char, pos + 1)


class FtfyFastPath:
    """``ftfy.fix_text(text, config)``, calling ftfy only where it can act.

    Build once (derives the trigger class from ftfy's tables); ``fix`` is
    then cheap on text that needs nothing.
    """

    def __init__(self, config: ftfy.TextFixerConfig):
        defaults = ftfy.TextFixerConfig()
        for name in _ENCODING_SUBOPTIONS:
            if getattr(config, name) != getattr(defaults, name):
                raise ValueError(
                    f"the ftfy fast path needs {name}={getattr(defaults, name)!r} "
                    f"(got {getattr(config, name)!r})")
        if config.max_decode_length < 1:
            raise ValueError(f"max_decode_length must be positive: {config.max_decode_length}")
        self.config = config._replace(explain=True)
        self._config_no_html = self.config._replace(unescape_html=False)
        self._auto_html = config.unescape_html == "auto"
        self._normalization = config.normalization
        self._max_length = config.max_decode_length
        self.trigger_chars = trigger_chars(config)
        self.trigger_re = re.compile(_char_class(self.trigger_chars))
        self._search = self.trigger_re.search
        self._findall = self.trigger_re.findall
        self._anchor_finditer = re.compile(_char_class(badness_anchor_chars())).finditer
        self._anchor_chars = badness_anchor_chars()
        self._lone_anchors, self._anchor_needs = badness_neighbours()
        if self._lone_anchors | self._anchor_needs.keys() != badness_anchor_chars():
            raise ValueError("badness_neighbours does not cover every anchor character")
        self._steps = self._build_steps(config, html=bool(config.unescape_html))
        self._steps_no_html = self._build_steps(config, html=False)
        self._encoding_chars = frozenset(
            badness_anchor_chars() | _single_class_chars(chardata.C1_CONTROL_RE)
            if config.fix_encoding else ())
        self._char_map = _char_map_lane(config, self.trigger_chars)
        self._char_map_chars = frozenset(self._char_map)
        # True when every lane character the encoding fix looks at needs, for
        # a BADNESS_RE match, a non-ASCII character right next to it (true of
        # the curly quotes): then a lane line without two adjacent non-ASCII
        # characters is not bad, which one encode and one find decide.
        self._lane_bad_needs_pair = all(
            char not in self._lone_anchors
            and all(abs(distance) == 1 and all(ord(c) > 0x7F for c in chars)
                    for distance, chars in self._anchor_needs[char])
            for char in self._char_map_chars & self._encoding_chars)

    @staticmethod
    def _build_steps(config: ftfy.TextFixerConfig, html: bool) -> tuple:
        """(count name, trigger characters, fixer) in ``fix_and_explain``'s order."""
        steps = []
        if html:
            steps.append(("unescape_html", {_first_literal(chardata.HTML_ENTITY_RE)}))
        if config.fix_encoding:
            steps.append(("fix_encoding", badness_anchor_chars()
                          | _single_class_chars(chardata.C1_CONTROL_RE)))
        for name in _FIXER_ORDER:
            if getattr(config, name):
                steps.append((name, _fixer_chars(name)))
        return tuple((_STEP_COUNT_NAMES.get(name, name), frozenset(chars),
                      None if name == "fix_encoding" else ftfy.FIXERS[name])
                     for name, chars in steps)

    def _is_bad(self, text: str, anchors: Iterable[str] | None = None) -> bool:
        """``ftfy.badness.is_bad(text)``, searching only near anchor characters
        that have the neighbour a match there needs.

        Every match of ``BADNESS_RE`` holds, at its branch's anchor item, an
        anchor character with the neighbour :func:`badness_neighbours` names
        (or a lone one), and is at most ``_BADNESS_WIDTH`` long; the pattern
        only consumes characters (no look-arounds, no ``$``), so a match
        exists iff one exists within ``_BADNESS_WIDTH - 1`` characters of such
        an anchor. The neighbour test is a few set look-ups; a ``BADNESS_RE``
        search costs microseconds even on a short window. ``anchors``, when
        given, are the anchor characters ``text`` holds (the caller knows
        them): each is then found with ``str.find``, cheaper than a scan for
        the whole anchor class.
        """
        lone = self._lone_anchors
        needs = self._anchor_needs
        length = len(text)
        candidates: list[int] = []
        if anchors is None:
            positions: Iterable[int] = (match.start() for match in self._anchor_finditer(text))
        else:
            positions = _positions(text, anchors)
        for pos in positions:
            char = text[pos]
            if char not in lone:
                for distance, chars in needs[char]:
                    near = pos + distance
                    if 0 <= near < length and text[near] in chars:
                        break
                else:
                    continue  # no match holds this character at its anchor item
            candidates.append(pos)
        if not candidates:
            return False
        candidates.sort()
        width = _BADNESS_WIDTH
        search = _BADNESS_SEARCH
        lo = hi = -1
        for pos in candidates:
            if hi >= 0 and pos - width + 1 <= hi:  # overlaps the current window
                hi = min(length, pos + width)
                continue
            if hi >= 0 and search(text, lo, hi):
                return True
            lo, hi = max(0, pos - width + 1), min(length, pos + width)
        return search(text, lo, hi) is not None

    def _fix_bad_encoding(self, text: str) -> tuple[str, list]:
        """``ftfy.fix_encoding_and_explain(text, config)`` for a ``text`` that
        ``is_bad``.

        Its loop, except that the loop ends when the text is no longer bad
        (the one step returns such a text unchanged) and the one step is
        :func:`_fix_encoding_one_step`, which leaves the "is it bad" check
        (a full ``BADNESS_RE`` search, tens of microseconds on a line) to
        :meth:`_is_bad`, which decides it in a few.
        """
        plan: list = []
        while True:
            fixed, step_plan = _fix_encoding_one_step(text, self.config)
            if step_plan:
                plan.extend(step_plan)
            if fixed == text or not self._is_bad(fixed):
                return fixed, plan
            text = fixed

    def needs_ftfy(self, text: str) -> bool:
        """False only if ``fix_text`` would return ``text`` unchanged."""
        if self._search(text) is not None:
            return True
        if self._normalization is not None and not text.isascii() and \
                not unicodedata.is_normalized(self._normalization, text):
            return True
        return not self._unchanged_when_clean(text)

    def _unchanged_when_clean(self, text: str) -> bool:
        """For a text with no trigger character and normalised: True when
        ftfy's segmenting cannot matter either. ASCII pieces of a cut line are
        ASCII (normalised, trigger-free) too; otherwise the segments must be
        exactly the lines."""
        return text.isascii() or self._segments_are_lines(text)

    def _segments_are_lines(self, text: str) -> bool:
        """True when ftfy would cut ``text`` at its newlines only: no line is
        max_decode_length long. Exact and cheap: if every window of half that
        length holds a newline, no newline-free stretch reaches the limit (a
        few C-level finds however many lines there are)."""
        limit = self._max_length
        if len(text) <= limit:
            return True
        half = max(1, limit // 2)
        return all(text.find("\n", start, start + half) != -1
                   for start in range(0, len(text) - half + 1, half))

    def fix(self, text: str) -> tuple[str, dict[str, int]]:
        """The text ``ftfy.fix_text`` returns, and per-fixer counts of the
        segments it changed (names in :data:`FTFY_COUNT_NAMES`)."""
        fixed, counts, _ = self.fix_with_state(text)
        return fixed, counts

    def fix_with_state(self, text: str) -> tuple[str, dict[str, int], bool]:
        """:meth:`fix`, and whether the result is clean: no trigger character,
        normalised, no longer than ``max_decode_length`` (so ``fix`` of it
        would return it unchanged)."""
        if not text:
            return text, {}, True
        search = self._search
        first = search(text)
        normalized = (self._normalization is None or text.isascii()
                      or unicodedata.is_normalized(self._normalization, text))
        if first is None and normalized and self._unchanged_when_clean(text):
            return text, {}, True
        return self._fix_dirty(text, first, normalized)

    def _fix_dirty(self, text: str, first, normalized: bool) -> tuple[str, dict[str, int], bool]:
        """The segment walk; the flag says whether the *result* is clean (no
        trigger left in any fixed line, all lines normalised), which the
        jump path knows for free."""
        search = self._search
        counts: dict[str, int] = {}
        unclean: list[bool] = []
        lt_pos = text.find("<") if self._auto_html else -1
        out: list[str] = []
        if normalized:
            # Segments are exactly the lines, unless one is longer than
            # max_decode_length (ftfy cuts it). Jump from trigger to trigger;
            # lines without a trigger are copied as they are, whatever their
            # length, so only the lines with a trigger need the check.
            pos = 0
            match = first
            while match is not None:
                start = text.rfind("\n", 0, match.start()) + 1
                end = text.find("\n", match.start()) + 1 or len(text)
                if end - start > self._max_length:
                    counts.clear()
                    unclean.clear()
                    out.clear()
                    break
                if start > pos:
                    out.append(text[pos:start])
                out.append(self._fix_segment(text[start:end], lt_pos != -1 and lt_pos < end,
                                             counts, unclean))
                pos = end
                match = search(text, pos)
            else:
                out.append(text[pos:])
                fixed = "".join(out)
                return fixed, counts, not unclean and self._unchanged_when_clean(fixed)
        # General case: walk the segments exactly as ftfy.fix_text does.
        pos = 0
        length = len(text)
        form = self._normalization
        while pos < length:
            end = text.find("\n", pos) + 1 or length
            if end - pos > self._max_length:
                end = pos + self._max_length
            segment = text[pos:end]
            if search(segment) is None and (
                    form is None or segment.isascii()
                    or unicodedata.is_normalized(form, segment)):
                out.append(segment)
            else:
                out.append(self._fix_segment(segment, lt_pos != -1 and lt_pos < end, counts,
                                             unclean))
            pos = end
        return "".join(out), counts, False

    def _fix_char_map_line(self, segment: str, present: set[str],
                           counts: dict[str, int]) -> str | None:
        """``_fix_segment`` for a segment whose trigger characters ``present``
        are all in the character-map lane, or None if it needs the full walk.

        In ``fix_and_explain``'s first pass the encoding fix is a no-op when
        the segment is not bad, every other step but the character-map fixers
        finds none of its characters, and those replace each character
        independently by text holding no trigger character; so unless the
        result needs normalising, the pass ends with nothing left to do. Plain
        ``str.replace`` per character is several times faster than the
        fixers' regex substitutions.
        """
        if not present.isdisjoint(self._encoding_chars) and (
                not self._lane_bad_needs_pair
                or b"??" in segment.encode("ascii", "replace")  # non-ASCII pairs, or "??"
        ) and self._is_bad(segment, present & self._anchor_chars):
            return None
        text = segment
        fired = set()
        char_map = self._char_map
        for char in present:
            value, name = char_map[char]
            text = text.replace(char, value)
            fired.add(name)
        form = self._normalization
        if form is not None and not text.isascii() and not unicodedata.is_normalized(form, text):
            return None
        for name in fired:
            counts[name] = counts.get(name, 0) + 1
        return text

    def _fix_segment(self, segment: str, html_off: bool, counts: dict[str, int],
                     unclean: list[bool]) -> str:
        """``ftfy.fix_and_explain(segment, config).text``, step for step.

        The same loop and the same fixer functions in the same order as
        ``fix_and_explain``; a fixer is skipped when its trigger characters are
        absent from the current text, where it would be a no-op anyway.
        """
        findall = self._findall
        present = set(findall(segment))  # the trigger characters in text
        if present <= self._char_map_chars:
            fixed = self._fix_char_map_line(segment, present, counts)
            if fixed is not None:
                return fixed
        steps = self._steps_no_html if (html_off and self._auto_html) else self._steps
        form = self._normalization
        fired: set[str] = set()
        text = segment
        while True:
            original = text
            for name, chars, fixer in steps:
                if present.isdisjoint(chars):
                    continue
                if fixer is None:  # the encoding fix, which explains itself
                    if not self._is_bad(text, present & self._anchor_chars):
                        continue  # fix_encoding returns text when not is_bad
                    fixed, plan = self._fix_bad_encoding(text)
                    if fixed != text:
                        for action, parameter in plan:
                            fired.add(_STEP_COUNT_NAMES.get(parameter, "ftfy_mojibake")
                                      if action == "transcode" else "ftfy_mojibake")
                else:
                    fixed = fixer(text)
                    if fixed != text:
                        fired.add(name)
                if fixed != text:
                    text = fixed
                    present = set(findall(text))
            if form is not None and not text.isascii() and \
                    not unicodedata.is_normalized(form, text):
                text = unicodedata.normalize(form, text)
                fired.add("ftfy_normalization")
                present = set(findall(text))
            if text == original:
                break
            if not present and (form is None or text.isascii()
                                or unicodedata.is_normalized(form, text)):
                break  # the next pass would skip every step: fix_and_explain's end
        if text != segment:
            for name in fired:
                counts[name] = counts.get(name, 0) + 1
        if present:  # the last pass saw triggers (and fixed nothing more)
            unclean.append(True)
        return text
