"""Stage ``headlines``: move a scraped article's header block into fields.

Scraped news text often starts with the headline printed twice (page title
and ``<h1>``) and a dateline, before the first body paragraph::

    Takfiris Fight Each Other as Assad Ouster Fades Away
                                                    (blank)
    Takfiris Fight Each Other as Assad Ouster Fades Away
    Sun Jul 16, 2017 13:18:15
                                                    (blank)
    Raging clashes between Takfiri terrorists in Idlib ...

becomes ``title="Takfiris Fight Each Other as Assad Ouster Fades Away"``,
``published="2017-07-16T13:18:15"`` and a body that starts with "Raging
clashes".

The exact rule (see :func:`split_header`)
-----------------------------------------
Only the *header block* is ever touched: the leading non-blank lines of the
text, at most ``max_header_lines`` of them, up to the first line that is
neither a headline copy nor a dateline. Nothing after the first body line is
ever removed, so repeated lines elsewhere in the body always stay.

1. Headline key of a line (:func:`headline_key`): NFKC, curly quotes, nbsp and
   dashes folded to ASCII, casefolded, every punctuation/symbol character
   treated as a space, whitespace collapsed. Two lines are the *same
   headline* when their keys are equal, or when one key equals the other's
   key without a site suffix (`` - Site``, `` | Site``, `` — Site``,
   `` :: Site``; the suffix is at most ``max_site_suffix_words`` words).
2. The headline to look for: the record's ``title`` field when it is set
   (non-blank); otherwise the first header line that is not a dateline
   (a *tentative* title).
3. Scan the header block: a line that is the same headline as the title is a
   copy; a line that is entirely a dateline (:func:`parse_dateline`) is the
   dateline (only the first one is parsed into ``published``); any other
   line ends the header block and starts the body. Lines longer than
   ``max_title_chars`` always end the header block. If more than
   ``max_header_lines`` leading lines are all header-like, the text has no
   header block at all and is left unchanged (``header_too_long_unchanged``).
4. With a title field: every copy in the header block is removed (the first
   counts as ``title_field_prefix_removed``, more as ``title_repeats_removed``)
   and the title field is kept as it is.
   Without a title field, the tentative title is accepted only when
   (a) it is printed two or more times in the header block, or
   (b) ``title_above_dateline`` is on, it is printed once, it is directly
   followed by a dateline line, it has at most ``max_title_words`` words and
   does not end like a sentence (``.``, ``!``, ``?`` ... are allowed in
   (a) only). The title becomes the first printed form; a site suffix is
   dropped only when another printed copy lacks it (the evidence that it is
   a suffix and not part of the headline).
   Otherwise the first line is body and nothing is removed at all.
5. A dateline is removed and parsed into ``published`` (ISO 8601, the given
   UTC offset kept, none invented) only if it lies in an accepted header
   block (before any body line). An existing ``published`` field wins; the
   dateline is still removed (``dateline_published_kept``).
6. If removing the header would leave an empty body, nothing is changed
   (``header_only_unchanged``): the text stays as it was.

Lines are compared, never rewritten: the body is the original text from the
first body line on, byte for byte (line endings included).

Counts (Beam counters ``newswash/headlines.<name>``): ``title_repeats_removed``,
``title_field_prefix_removed``, ``title_from_body``, ``dateline_parsed``,
``dateline_published_kept``, ``site_suffix_dropped``, ``header_only_unchanged``,
``header_too_long_unchanged``.
The stage's change count is the number of header lines removed.

Run it alone: ``newswash run --input 'scrape/*.jsonl' --output out/ --skip dedupe``
(DirectRunner by default; add ``--runner FlinkRunner ...`` for a cluster).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import re
import unicodedata
from typing import Callable, Iterator

import apache_beam as beam

from transforms.document import Document
from transforms.stage import StageResult, apply_stage

__all__ = [
    "STAGE",
    "HeadlinesConfig",
    "Header",
    "headline_key",
    "strip_site_suffix",
    "same_headline",
    "parse_dateline",
    "split_header",
    "make_stage_function",
    "RemoveRepeatedHeadlines",
]

STAGE = "headlines"

COUNT_NAMES = (
    "title_repeats_removed",
    "title_field_prefix_removed",
    "title_from_body",
    "dateline_parsed",
    "dateline_published_kept",
    "site_suffix_dropped",
    "header_only_unchanged",
    "header_too_long_unchanged",
)


@dataclasses.dataclass(frozen=True)
class HeadlinesConfig:
    """Tunables of the headlines stage (all have safe defaults).

    Attributes:
      max_header_lines: how many leading non-blank lines may form the header.
      max_title_chars: a longer line is never a headline.
      max_title_words: word limit for a headline accepted by rule 4(b).
      max_site_suffix_words: longest site name after `` - `` / `` | ``.
      title_above_dateline: accept a single unrepeated first line as the
        title when a dateline line directly follows it (rule 4(b)).
    """

    max_header_lines: int = 6
    max_title_chars: int = 300
    max_title_words: int = 30
    max_site_suffix_words: int = 4
    title_above_dateline: bool = True

    def __post_init__(self) -> None:
        for name in ("max_header_lines", "max_title_chars", "max_title_words", "max_site_suffix_words"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.title_above_dateline, bool):
            raise ValueError(f"title_above_dateline must be a bool, got {self.title_above_dateline!r}")


# --------------------------------------------------------------------------
# Headline keys
# --------------------------------------------------------------------------

class _Table(dict):
    """A complete ``str.translate`` table, filled on first sight of each code point.

    ``str.translate`` raises and catches a ``KeyError`` for every character
    a plain dict lacks, which costs ~10x the lookup; a table that answers
    every code point (and remembers it) avoids that. At most
    ``_TABLE_LIMIT`` code points are remembered, so hostile input that shows
    every code point cannot grow a table without bound.
    """

    __slots__ = ()

    def __missing__(self, code: int) -> int | str | None:
        value = self._value(code)
        if len(self) < _TABLE_LIMIT:
            self[code] = value
        return value

    def _value(self, code: int) -> int | str | None:
        return code  # unchanged


class _KeyChars(_Table):
    """The per-character rule of :func:`headline_key`: ``None`` (deleted),
    ``" "`` (punctuation, symbols, separators, other controls) or unchanged,
    decided by ``unicodedata.category`` exactly."""

    __slots__ = ()

    def _value(self, code: int) -> int | str | None:
        ch = chr(code)
        category = unicodedata.category(ch)
        if category == "Cf" or (category == "Cc" and ch not in "\t\n\r"):
            # Deleted, not spaced: the typography stage (after this one)
            # deletes control and format characters, so "Fa\x0blls" must
            # already match "Falls" here or a second run would differ.
            return None
        return " " if category[0] in "PSZC" else code


_TABLE_LIMIT = 1 << 16
_FOLD = _Table(str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-", "\ufe58": "-", "\ufe63": "-", "\uff0d": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u200b": "", "\ufeff": "", "\u00ad": "",
}))
_KEY_CHARS = _KeyChars()
# Separator + short site name at the end of a headline. The separator must be
# surrounded by spaces so "al-Sham" or "9-11" never look like a suffix.
_SUFFIX = re.compile(r"^(?P<head>.*\S)\s+(?:-{1,2}|\u2013|\u2014|\||::|\u00b7|\u2022)\s+(?P<site>\S(?:.*\S)?)\s*$")
# What every _SUFFIX match holds: a cheap search that most lines fail.
_SEPARATOR = re.compile(r"\s(?:-{1,2}|\u2013|\u2014|\||::|\u00b7|\u2022)\s")


def _may_have_separator(line: str) -> bool:
    """False only if ``_SEPARATOR`` cannot match: each of its forms starts
    with one of these characters, and a few ``in`` tests are ~10x cheaper
    than the search, which stops at every space of a paragraph."""
    return ("-" in line or "|" in line or ":" in line or "\u2013" in line or "\u2014" in line
            or "\u00b7" in line or "\u2022" in line)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text if text.isascii() else text.translate(_FOLD)  # _FOLD maps no ASCII


# A line is blank when it holds only whitespace and characters the
# typography stage deletes (ftfy's control characters, zero-width
# characters, soft hyphens): were such a line content here, deleting it
# later could leave a repeated headline behind (not idempotent).
_NON_SPACE = re.compile(r"[^\s\x00-\x08\x0b\x0e-\x1f\x7f\u00ad\u180e\u200b\u2060\u206a-\u206f\ufeff\ufff9-\ufffc]")


def _content_lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line that is not blank (holds a character that
    :data:`_NON_SPACE` matches), its CR, LF or CRLF included.

    The lines are the matches of ``[^\\r\\n]*(?:\\r\\n|\\r|\\n)|[^\\r\\n]+\\Z``;
    here they are found with ``str.find`` (a header line is short, but the
    body line after it is a long paragraph) and runs of blank lines are
    jumped over with one search. The next LF is searched again only once
    passed, and a CR only up to it (a line's own CR; most texts have none,
    and the caller stops after a few lines), so the whole is linear, also
    for a million CRs and no LF.
    """
    n = len(text)
    pos = 0
    lf = text.find("\n")
    while pos < n:
        content = _NON_SPACE.search(text, pos)
        if content is None:
            return
        q = content.start()
        if q > pos:  # the line holding q starts after the last break before it
            pos = max(pos, text.rfind("\n", pos, q) + 1, text.rfind("\r", pos, q) + 1)
        if 0 <= lf < pos:
            lf = text.find("\n", pos)
        cr = text.find("\r", pos, lf if lf >= 0 else n)
        if lf < 0 and cr < 0:
            yield pos, n
            return
        end = cr if cr >= 0 else lf
        end += 2 if text.startswith("\r\n", end) else 1
        yield pos, end
        pos = end


@functools.lru_cache(maxsize=4096)
def headline_key(line: str) -> str:
    """The comparison key of a headline line.

    >>> headline_key("  \u201cAssad\u201d \u2014 Ouster  Fades\u00a0Away! ")
    'assad ouster fades away'
    """
    # After the translation the only whitespace left is " " (every other
    # separator or control is spaced or deleted), so split/join collapses
    # runs and strips the ends exactly like a \s+ substitution and strip().
    return " ".join(_fold(line).casefold().translate(_KEY_CHARS).split())


def strip_site_suffix(line: str, max_words: int = 4) -> str | None:
    """``line`` without a trailing `` - Site`` / `` | Site``, or ``None``.

    >>> strip_site_suffix("Assad Ouster Fades Away | Press TV")
    'Assad Ouster Fades Away'
    >>> strip_site_suffix("No suffix here") is None
    True
    """
    if not _may_have_separator(line) or _SEPARATOR.search(line) is None:
        return None
    match = _SUFFIX.match(line.strip())
    if match is None:
        return None
    site = match.group("site")
    if len(site.split()) > max_words or not headline_key(site) or not headline_key(match.group("head")):
        return None
    return match.group("head")


_ASCII_NON_ALNUM = bytes(code for code in range(128) if not chr(code).isalnum())


def _ascii_alnum_count(text: str) -> int:
    return len(text.encode("ascii", "ignore").translate(None, _ASCII_NON_ALNUM))


def _key_length_bound(headline: str, max_suffix_words: int) -> int:
    """At least ``len(headline_key(h))`` for ``h`` the headline and its
    suffix-stripped form (:func:`same_headline` compares a line with both).

    NFKC then casefold is where a key can grow; the fold, the key table and
    the join map a character to at most one."""
    bound = len(unicodedata.normalize("NFKC", headline).casefold())
    stripped = strip_site_suffix(headline, max_suffix_words)
    if stripped is not None:
        bound = max(bound, len(unicodedata.normalize("NFKC", stripped).casefold()))
    return bound


def _may_be_same_headline(line: str, key_length_bound: int) -> bool:
    """False only if ``same_headline(headline, line)`` is surely False, for
    a headline whose :func:`_key_length_bound` is ``key_length_bound``.

    A line without a site separator is the same headline only if its key
    equals the headline's key or its suffix-stripped key. Every ASCII letter
    or digit of a line keeps a character of its own in the key (under NFKC
    it is a starter that nothing composes into; a composite built on it
    casefolds to a letter or mark, which the key keeps; tests check both on
    every code point), so a line with more of them than the bound is another
    line. That rules out the body paragraph after the header without
    computing its key, which costs ~70 ns a character.
    """
    return (_ascii_alnum_count(line) <= key_length_bound
            or (_may_have_separator(line) and _SEPARATOR.search(line) is not None))


def same_headline(a: str, b: str, max_suffix_words: int = 4) -> bool:
    """Whether two lines are copies of one headline (rule 1)."""
    ka, kb = headline_key(a), headline_key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    sa = strip_site_suffix(a, max_suffix_words)
    if sa is not None and headline_key(sa) == kb:
        return True
    sb = strip_site_suffix(b, max_suffix_words)
    return sb is not None and headline_key(sb) == ka


# --------------------------------------------------------------------------
# Datelines
# --------------------------------------------------------------------------

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3,
    "apr": 4, "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7,
    "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9, "oct": 10,
    "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_WEEKDAY = r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)"
_PREFIX = (r"(?:(?:last\s+)?(?:updated|modified)(?:\s+on)?|(?:first\s+)?published(?:\s+on)?"
           r"|posted(?:\s+on)?|date(?:line)?|on)\s*:?\s*")
_ORD = r"(?:st|nd|rd|th)?"
_TIME = (r"(?:\s*(?:,|at|-|\u2013|\||/|T)?\s*(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d{1,9})?)?"
         r"(?:\s*(?P<ampm>[ap])\.?\s?m\.?)?"
         r"(?:\s*\(?\s*(?P<tz>z|(?:utc|gmt)\s*(?:[+-]\s*\d{1,2}(?::?\d{2})?)?|[+-]\d{2}:?\d{2}|[a-z]{2,5})\s*\)?)?)?")
_DATE = (
    r"(?:" + _WEEKDAY + r"\.?,?\s+)?(?:"
    r"(?P<mon1>" + _MONTH + r")\.?\s+(?P<day1>\d{1,2})" + _ORD + r",?\s+(?P<year1>\d{4})"
    r"|(?P<day2>\d{1,2})" + _ORD + r"\s+(?:of\s+)?(?P<mon2>" + _MONTH + r")\.?,?\s+(?P<year2>\d{4})"
    r"|(?P<year3>\d{4})(?P<sep>[-/])(?P<mon3>\d{1,2})(?P=sep)(?P<day3>\d{1,2})"
    r")")
# "1:18 PM EDT, July 16, 2017" (AP style): the time before the date.
_DATELINE_TIME_FIRST = re.compile(
    r"^\s*(?:" + _PREFIX + r")?" + _TIME.replace(r"(?:\s*(?:,|at|-|\u2013|\||/|T)?\s*", r"(?:\s*", 1)[:-1]
    + r"\s*(?:,|-|\u2013|\||on)?\s*" + _DATE + r"\s*$",
    re.IGNORECASE,
)
_DATELINE = re.compile(
    r"^\s*(?:" + _PREFIX + r")?" + _DATE + _TIME + r"\s*$", re.IGNORECASE)
# Every form of _DATE holds a four-digit year: most header lines (headlines)
# have none and skip the two long patterns.
_YEAR = re.compile(r"\d{4}")


def _offset(tz: str | None) -> str | None:
    """ISO offset for a given zone, or None when none may be stated."""
    if not tz:
        return None
    tz = tz.replace(" ", "").lower()
    if tz == "z":
        return "Z"
    match = re.fullmatch(r"(?:utc|gmt)?([+-])(\d{1,2})(?::?(\d{2}))?", tz)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            return None
        return f"{sign}{hours:02d}:{minutes:02d}"
    if tz in ("utc", "gmt"):
        return "+00:00"
    # Named zones (EST, IST, CST ...) are ambiguous: keep the local time, no offset.
    return None


def parse_dateline(line: str) -> str | None:
    """The ISO 8601 time of a line that is entirely a dateline, else ``None``.

    The given precision is kept (a date alone gives ``YYYY-MM-DD``; a time
    gives seconds); a numeric offset, ``Z``, ``UTC`` or ``GMT`` is kept as an
    offset; named zones such as ``EST`` are ambiguous and dropped, never
    guessed.

    >>> parse_dateline("Sun Jul 16, 2017 13:18:15")
    '2017-07-16T13:18:15'
    >>> parse_dateline("Updated: Jul 16, 2017 1:18 PM GMT")
    '2017-07-16T13:18:00+00:00'
    >>> parse_dateline("Raging clashes on July 16, 2017") is None
    True
    """
    if len(line) > 120 or _YEAR.search(line) is None:
        return None
    match = _DATELINE.match(line) or _DATELINE_TIME_FIRST.match(line)
    if match is None:
        return None
    g = match.groupdict()
    if g["year1"]:
        year, month, day = int(g["year1"]), _MONTHS[g["mon1"].lower()], int(g["day1"])
    elif g["year2"]:
        year, month, day = int(g["year2"]), _MONTHS[g["mon2"].lower()], int(g["day2"])
    else:
        year, month, day = int(g["year3"]), int(g["mon3"]), int(g["day3"])
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        return None
    if not 1900 <= year <= 2100:
        return None
    if g["hour"] is None:
        return date.isoformat()
    hour, minute, second = int(g["hour"]), int(g["minute"]), int(g["second"] or 0)
    if g["ampm"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if g["ampm"].lower() == "p" else 0)
    try:
        time = datetime.time(hour, minute, second)
    except ValueError:
        return None
    offset = _offset(g["tz"])
    return f"{date.isoformat()}T{time.isoformat()}" + (offset or "")


# --------------------------------------------------------------------------
# The header block
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Header:
    """What :func:`split_header` found.

    ``body`` is the text from the first body line on (the input text when
    nothing was removed); ``counts`` has every name in ``COUNT_NAMES``.
    """

    title: str | None
    published: str | None
    body: str
    lines_removed: int
    counts: dict[str, int]


_SENTENCE_END = re.compile(r"[.!?\u2026;,:]['\"\u2019\u201d)\]]*\s*$")


def split_header(text: str, title: str | None = None, published: str | None = None,
                 config: HeadlinesConfig = HeadlinesConfig()) -> Header:
    """Finds the header block of ``text`` (module docstring, rules 1-6).

    >>> h = split_header("Big News\\n\\nBig news!\\nJuly 16, 2017\\n\\nIt happened.\\n")
    >>> (h.title, h.published, h.body)
    ('Big News', '2017-07-16', 'It happened.\\n')
    """
    counts = dict.fromkeys(COUNT_NAMES, 0)
    # Only CR/LF end a line: str.splitlines also breaks at \x0b, \x1c, U+2028
    # ..., characters the typography stage later deletes or keeps inline.
    # Lines are read lazily: only the header block is ever looked at, and
    # the body is the text from the offset of its first line on (the lines
    # tile the text, so that is the join of the remaining lines).
    # A title of nothing but characters typography deletes is no title (see _NON_SPACE).
    has_title = bool(title and _NON_SPACE.search(title))

    title_line: str | None = title if has_title else None
    key_length_bound = -1  # of title_line, computed at its first comparison
    tentative: int | None = None             # entry index of a title taken from the body
    entries: list[tuple[str, int, str]] = []  # (kind "t"/"d", line offset, stripped line)
    body_start = len(text)
    for index, end in _content_lines(text):
        line = text[index:end].strip()  # never empty: blank lines are not listed
        if len(line) > config.max_title_chars:
            body_start = index
            break
        if len(entries) > config.max_header_lines:
            # Too many header-like lines: this is not a header block (rule 3).
            counts["header_too_long_unchanged"] = 1
            return Header(title, published, text, 0, counts)
        if title_line is not None:
            if key_length_bound < 0:
                key_length_bound = _key_length_bound(title_line, config.max_site_suffix_words)
            if (_may_be_same_headline(line, key_length_bound)
                    and same_headline(title_line, line, config.max_site_suffix_words)):
                entries.append(("t", index, line))
                continue
        if parse_dateline(line) is not None:
            entries.append(("d", index, line))
            continue
        if title_line is None and headline_key(line):
            title_line = line  # tentative (rule 2)
            tentative = len(entries)
            entries.append(("t", index, line))
            continue
        body_start = index
        break

    new_title = title
    copies = [line for kind, _, line in entries if kind == "t"]
    if tentative is not None:
        first = copies[0]
        above_dateline = (
            config.title_above_dateline and len(copies) == 1
            and tentative + 1 < len(entries) and entries[tentative + 1][0] == "d"
            and len(first.split()) <= config.max_title_words
            and not _SENTENCE_END.search(first))
        if len(copies) >= 2 or above_dateline:
            new_title = first
            stripped = strip_site_suffix(first, config.max_site_suffix_words)
            if stripped is not None and any(headline_key(c) == headline_key(stripped) for c in copies[1:]):
                new_title = stripped
                counts["site_suffix_dropped"] = 1
            counts["title_from_body"] = 1
            counts["title_repeats_removed"] = len(copies) - 1
        else:
            # Not a headline: the body starts at that line; only datelines
            # above it (if any) form the header.
            body_start = entries[tentative][1]
            entries = entries[:tentative]
            copies = []
    elif copies:
        counts["title_field_prefix_removed"] = 1
        counts["title_repeats_removed"] = len(copies) - 1
    if not entries:
        return Header(title, published, text, 0, counts)

    body = text[body_start:]
    if not body or body.isspace():  # what strip() would empty, without copying the body
        counts = dict.fromkeys(COUNT_NAMES, 0)
        counts["header_only_unchanged"] = 1
        return Header(title, published, text, 0, counts)
    datelines = [line for kind, _, line in entries if kind == "d"]
    new_published = published
    if datelines:
        if published:
            counts["dateline_published_kept"] = 1
        else:
            new_published = parse_dateline(datelines[0])
            counts["dateline_parsed"] = 1
    return Header(new_title, new_published, body, len(entries), counts)


# --------------------------------------------------------------------------
# Stage
# --------------------------------------------------------------------------


def _apply(config: HeadlinesConfig, document: Document) -> StageResult:
    header = split_header(document.text, document.title, document.published, config)
    if header.lines_removed == 0:
        return StageResult(document.record_stage(STAGE, 0), counts=header.counts)
    updated = document.replace_text(
        STAGE, header.body, header.lines_removed, title=header.title, published=header.published)
    return StageResult(updated, counts=header.counts)


def make_stage_function(config: HeadlinesConfig = HeadlinesConfig()) -> Callable[[Document], StageResult]:
    """The per-document function of the ``headlines`` stage."""
    if not isinstance(config, HeadlinesConfig):
        raise ValueError(f"expected a HeadlinesConfig, got {type(config).__name__}")
    return functools.partial(_apply, config)


class RemoveRepeatedHeadlines(beam.PTransform):
    """Moves repeated headlines and the dateline at the top of each article
    into ``title`` / ``published``.

    Input: ``Document``. Outputs: ``DOCUMENTS`` (``Document``) and
    ``DEAD_LETTER`` (``DeadLetter``). Counters (namespace ``newswash``):
    ``headlines.documents_in``, ``headlines.documents_changed``,
    ``headlines.dead_letter`` and ``headlines.<name>`` for every name in
    ``COUNT_NAMES``.
    """

    def __init__(self, config: HeadlinesConfig = HeadlinesConfig()):
        super().__init__()
        if not isinstance(config, HeadlinesConfig):
            raise ValueError(f"expected a HeadlinesConfig, got {type(config).__name__}")
        self._config = config

    def expand(self, documents):
        return apply_stage(documents, STAGE, functools.partial(make_stage_function, self._config))
