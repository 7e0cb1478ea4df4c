"""Typography normalisation: ftfy plus newswash's own rules, with a fast path.

Stage ``typography``. Applied to the body (``Document.text``) and the title
(``Document.title``) of every document.

Two layers run in this order, repeated until ftfy has nothing left to do
(at most :data:`MAX_PASSES` times; ftfy alone is not idempotent, our rules
are), which makes the result idempotent:

1. **ftfy** (``ftfy.fix_text`` semantics, byte for byte): mojibake in several
   layers, HTML entities, C1 and other control characters, terminal escapes,
   line breaks (``\\r\\n``, ``\\r``, U+2028/9, U+0085), surrogates, Latin
   ligatures, curly quotes (policy ``quotes``), width folding (option,
   ``fold_width``) and Unicode normalisation (``normalization``, NFC by
   default; NFKC on request). :class:`~transforms._typography_ftfy.FtfyFastPath`
   sends to ftfy's fixers only the lines, and only the fixers, that could
   change something; tests prove it equals ``ftfy.fix_text`` on everything.
2. **Our rules**, each counted (:data:`RULES`, in application order):

   - ``zero_width``: U+200B, U+2060, U+FEFF, U+180E removed (ZWJ/ZWNJ kept:
     emoji sequences and Persian/Indic spelling need them);
   - ``soft_hyphens``: U+00AD removed;
   - ``odd_spaces``: NBSP, U+1680, U+2000-U+200A, U+202F, U+205F to a space
     (U+3000, the ideographic space, is CJK punctuation; ``fold_width``
     handles it);
   - ``dashes`` (policy ``dashes="ascii"``): hyphen/en-dash/minus forms to
     ``-``, em dash and horizontal bar to ``--``;
   - ``entity_residue``: what a scraper leaves of an entity after eating its
     ``&``, only where unambiguous: an apostrophe code glued to letters
     (``Syria #39;s`` -> ``Syria's``), ``quot;``/``apos;``/``nbsp;`` not
     inside a word, ``#038;`` (``AT#038;T``), ``amp;`` only between spaces
     before a capital (``Tom amp; Jerry``), runs such as ``amp;quot;``;
     ``issue #39; it`` and ``the amp; it`` stay;
   - ``space_runs``: runs of spaces to one;
   - ``space_before_punctuation``: ``word ,`` -> ``word,`` for ``, . ; :``
     and runs of ``!?`` after a letter, digit, quote or bracket and followed
     by whitespace, a quote or the end (ellipses, ``.NET``, ``:)`` and
     ``.5`` stay), and ``Hello ,world`` -> ``Hello, world``;
   - ``space_after_punctuation``: ``Arabia,Qatar`` -> ``Arabia, Qatar`` for
     ``, ; : ! ?`` between two letters (not CJK); numbers (``1,000``,
     ``3.5``), times (``13:18:15``), abbreviations (``U.S.``) never match,
     and tokens that are URLs, e-mail addresses or entities are skipped;
   - ``repeated_words``: ``the the first`` -> ``the first`` for words whose
     repetition is never grammatical (:data:`REPEATABLE_NEVER`); "that that",
     "had had", "is is", "in in" and the like are left alone, and so is a
     capitalised repeat (the band "The The"); the first word keeps its case;
   - ``trailing_whitespace``: spaces and tabs at the end of a line (count:
     lines);
   - ``blank_lines``: three or more newlines to one blank line (count: runs);
   - ``document_edges``: whitespace before the first and after the last
     character of the whole text (a body or a title) removed (count: texts).

Counts: rule name -> number of fixes (characters, occurrences or lines as
noted). The ftfy layer reports ``ftfy_*`` counts (see
:data:`~transforms._typography_ftfy.FTFY_COUNT_NAMES`): the number of lines
(ftfy segments) each ftfy fixer changed. They become Beam counters
``newswash/typography.<name>``. The stage records the sum of all counts as its
number of changes.

The rule layer also has a fast form (pre-checks, line-local application) that
tests prove equal to applying each rule to the whole text
(``TypographyNormalizer(config, reference=True)`` runs the plain forms: plain
``ftfy.fix_text`` and whole-text rules).

Public API: :class:`TypographyConfig` (with :data:`PROFILES` and
:meth:`TypographyConfig.from_profile`), :func:`normalize_text`,
:class:`TypographyNormalizer` (build once, call ``.normalize`` many times:
the related-links stage uses it on link titles), :func:`make_stage_function`
and the composite :class:`NormalizeTypography`. No side outputs.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

import apache_beam as beam
import ftfy

from transforms._typography_ftfy import FTFY_COUNT_NAMES, FtfyFastPath, reference_fix
from transforms.document import Document
from transforms.stage import StageResult, apply_stage

__all__ = [
    "STAGE",
    "RULES",
    "COUNT_NAMES",
    "REPEATABLE_NEVER",
    "MAX_PASSES",
    "PROFILES",
    "TypographyConfig",
    "TypographyNormalizer",
    "normalize_text",
    "make_stage_function",
    "NormalizeTypography",
]

STAGE = "typography"

# Our rules, in the order they run.
RULES = (
    "zero_width",
    "soft_hyphens",
    "odd_spaces",
    "dashes",
    "entity_residue",
    "space_runs",
    "space_before_punctuation",
    "space_after_punctuation",
    "repeated_words",
    "trailing_whitespace",
    "blank_lines",
    "document_edges",
)
COUNT_NAMES = FTFY_COUNT_NAMES + RULES

# Function words whose immediate repetition is never grammatical in English.
# Deliberately absent: that, had, is, do, will, can, in, on, at, by, with,
# from, up, out, so, very ... ("he gave in in the end", "what it is is ...").
REPEATABLE_NEVER = ("the", "a", "an", "of", "to", "and", "or", "its", "their", "our", "your")

MAX_PASSES = 6

# Rules whose edits can give ftfy something new to do (deleted characters can
# join mojibake or a base letter and a combining mark; residue makes "&").
_MAY_WAKE_FTFY = frozenset({"zero_width", "soft_hyphens", "entity_residue"})

_QUOTES = ("straight", "keep")
_DASH_POLICIES = ("keep", "ascii")
_NORMALIZATIONS = (None, "NFC", "NFD", "NFKC", "NFKD")


@dataclasses.dataclass(frozen=True)
class TypographyConfig:
    """What the typography stage does. Immutable; see :data:`PROFILES`.

    ftfy layer (field -> ``ftfy.TextFixerConfig`` field):
      ftfy: run the ftfy layer at all.
      unescape_html: ``"auto"`` (ftfy's default: off from the first line
        containing ``<``), True or False.
      fix_encoding: mojibake repair (ftfy's encoding sub-options stay at
        their defaults; the fast path relies on it).
      remove_terminal_escapes, fix_line_breaks, fix_surrogates,
      remove_control_chars, fix_latin_ligatures: the ftfy fixers of the
        same name.
      quotes: ``"straight"`` (ftfy ``uncurl_quotes``) or ``"keep"``.
      fold_width: ftfy ``fix_character_width`` (fullwidth Latin, halfwidth
        kana, U+3000). Off by default: it changes CJK text.
      normalization: ``"NFC"`` (default), ``"NFKC"`` (changes CJK
        compatibility characters, superscripts), ``"NFD"``, ``"NFKD"`` or None.
      max_decode_length: ftfy's segment bound.
    Our rules: one bool per rule in :data:`RULES` except ``dashes``, which is
      the policy ``dashes``: ``"keep"`` (default) or ``"ascii"``.
    Fields:
      normalize_title: also normalise ``Document.title``.
    """

    ftfy: bool = True
    unescape_html: bool | Literal["auto"] = "auto"
    fix_encoding: bool = True
    remove_terminal_escapes: bool = True
    fix_line_breaks: bool = True
    fix_surrogates: bool = True
    remove_control_chars: bool = True
    fix_latin_ligatures: bool = True
    quotes: Literal["straight", "keep"] = "straight"
    fold_width: bool = False
    normalization: Literal["NFC", "NFD", "NFKC", "NFKD"] | None = "NFC"
    max_decode_length: int = 1_000_000
    zero_width: bool = True
    soft_hyphens: bool = True
    odd_spaces: bool = True
    dashes: Literal["keep", "ascii"] = "keep"
    entity_residue: bool = True
    space_runs: bool = True
    space_before_punctuation: bool = True
    space_after_punctuation: bool = True
    repeated_words: bool = True
    trailing_whitespace: bool = True
    blank_lines: bool = True
    document_edges: bool = True
    normalize_title: bool = True

    def __post_init__(self) -> None:
        if self.quotes not in _QUOTES:
            raise ValueError(f"quotes must be one of {_QUOTES}, got {self.quotes!r}")
        if self.dashes not in _DASH_POLICIES:
            raise ValueError(f"dashes must be one of {_DASH_POLICIES}, got {self.dashes!r}")
        if self.normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS}, got {self.normalization!r}")
        if not (self.unescape_html is True or self.unescape_html is False
                or self.unescape_html == "auto"):
            raise ValueError(f"unescape_html must be True, False or 'auto', "
                             f"got {self.unescape_html!r}")
        if isinstance(self.max_decode_length, bool) or \
                not isinstance(self.max_decode_length, int) or self.max_decode_length < 1:
            raise ValueError(
                f"max_decode_length must be a positive int, got {self.max_decode_length!r}")
        for field in dataclasses.fields(self):
            if field.type in ("bool",) and not isinstance(getattr(self, field.name), bool):
                raise ValueError(f"{field.name} must be a bool, got {getattr(self, field.name)!r}")

    @classmethod
    def from_profile(cls, name: str, **overrides: Any) -> "TypographyConfig":
        """The named profile (see :data:`PROFILES`) with ``overrides``."""
        try:
            base = PROFILES[name]
        except KeyError:
            raise ValueError(f"unknown profile {name!r}; known: {sorted(PROFILES)}") from None
        return dataclasses.replace(base, **overrides)

    def ftfy_config(self) -> ftfy.TextFixerConfig:
        """The ``ftfy.TextFixerConfig`` this config runs ftfy with."""
        return ftfy.TextFixerConfig(
            unescape_html=self.unescape_html,
            remove_terminal_escapes=self.remove_terminal_escapes,
            fix_encoding=self.fix_encoding,
            fix_latin_ligatures=self.fix_latin_ligatures,
            fix_character_width=self.fold_width,
            uncurl_quotes=self.quotes == "straight",
            fix_line_breaks=self.fix_line_breaks,
            fix_surrogates=self.fix_surrogates,
            remove_control_chars=self.remove_control_chars,
            normalization=self.normalization,
            max_decode_length=self.max_decode_length,
            explain=False,
        )


_NO_RULES = {rule: False for rule in RULES if rule != "dashes"}

PROFILES: Mapping[str, TypographyConfig] = {
    # Everything on: what newswash runs on scraped news.
    "news": TypographyConfig(),
    # Encoding repair and spacing hygiene only (zero-width characters, runs of
    # spaces, trailing whitespace, blank lines): no quote, ligature, width
    # or normalisation changes (datatrove's and NeMo Curator's ftfy settings,
    # safe for CJK), no punctuation or word rules.
    "conservative": TypographyConfig(
        quotes="keep", fix_latin_ligatures=False, normalization=None,
        odd_spaces=False, soft_hyphens=False, entity_residue=False,
        space_before_punctuation=False, space_after_punctuation=False,
        repeated_words=False),
    # Exactly ftfy.fix_text with its default TextFixerConfig, none of our rules.
    "ftfy-default": TypographyConfig(fold_width=True, **_NO_RULES),
}


# --- our rules -------------------------------------------------------------

_LETTER = r"[^\W\d_]"
# Letters of scripts written with spaces between words (not CJK/kana/fullwidth).
_SPACED_LETTER = r"[^\W\d_\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]"

# The character-level rules: rule -> {character: replacement}. No replacement
# is a character any of them acts on.
_ZERO_WIDTH = {char: "" for char in "\u200b\u2060\ufeff\u180e"}
_SOFT_HYPHEN = {"\u00ad": ""}
_ODD_SPACES = {char: " " for char in
               "\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f"}
_ASCII_DASHES = {**{char: "-" for char in "\u2010\u2011\u2012\u2013\u2212\ufe58\ufe63\uff0d"},
           "\u2014": "--", "\u2015": "--"}
_CHAR_RULES = (("zero_width", _ZERO_WIDTH), ("soft_hyphens", _SOFT_HYPHEN),
               ("odd_spaces", _ODD_SPACES), ("dashes", _ASCII_DASHES))


def _class_of(chars: Iterable[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]")


_ZERO_WIDTH_RE = _class_of(_ZERO_WIDTH)
_SOFT_HYPHEN_RE = _class_of(_SOFT_HYPHEN)
_ODD_SPACE_RE = _class_of(_ODD_SPACES)
_DASH_RE = _class_of(_ASCII_DASHES)

# Entity residue: what is left of an entity whose "&" a scraper ate, as a run
# of tokens ("amp;quot;" was "&amp;quot;", i.e. '"' escaped twice). Decoded
# only where unambiguous:
# - an apostrophe glued to letters, spaces before it eaten: "Syria #39;s";
# - a run that does not follow a word character, "&", "#" or ";" and is not
#   a lone numeric code ("issue #39; it" and "#34;" stay) nor a lone "amp;"
#   ("the amp; it" stays) unless that is followed by spaces and a capital
#   ("Tom amp; Jerry"); "#038;" (WordPress's "&") counts as unambiguous.
# Each decision reads only context that no later rule changes, which keeps
# the rules idempotent.
_RESIDUE_TOKEN = (r"(?:amp|quot|apos|nbsp|#0{0,3}39|#x0{0,3}27|#0{0,3}34|#x0{0,3}22"
                  r"|#0{0,3}38|#x0{0,3}26|#0{0,3}160|#x0{0,3}a0);")
_RESIDUE_RE = re.compile(
    rf"(?P<glued>(?<={_LETTER}) *(?:(?:amp|#0{{0,3}}38);)*(?:#0{{0,3}}39|#x0{{0,3}}27|apos);"
    rf"(?={_LETTER})(?!{_RESIDUE_TOKEN}))"
    rf"|(?<![\w&#;])(?P<run>(?:{_RESIDUE_TOKEN})+)"
    r"|(?<![&#;])(?P<wordpress>#038;)"
)
_RESIDUE_TOKEN_RE = re.compile(_RESIDUE_TOKEN)
_RESIDUE_VALUES = {"amp": "&", "quot": '"', "apos": "'", "nbsp": " ", "#38": "&",
                   "#39": "'", "#34": '"', "#160": " ", "#x26": "&", "#x27": "'",
                   "#x22": '"', "#xa0": " "}
_CAPITAL_AFTER_SPACE_RE = re.compile(r"[ \t]+[^\W\d_]")
# Every residue match ends with a token; the longest token is 9 characters.
_RESIDUE_TAIL_RE = re.compile(_RESIDUE_TOKEN + r"\Z")
_RESIDUE_TAIL_WINDOW = 9


def _is_letter(char: str) -> bool:
    return char.isalpha()


def _residue_key(token: str) -> str:
    name = token[:-1]
    if name.startswith("#x"):
        return "#x" + name[2:].lstrip("0")
    if name.startswith("#"):
        return "#" + name[1:].lstrip("0")
    return name


def _decode_residue(match: re.Match[str]) -> str:
    if match.group("glued") is not None:
        return "'"
    if match.group("wordpress") is not None:
        return "&"
    tokens = [_residue_key(t) for t in _RESIDUE_TOKEN_RE.findall(match.group("run"))]
    skip = 0  # leading "&"s: each escapes the "&" of the entity that follows
    while skip < len(tokens) - 1 and _RESIDUE_VALUES[tokens[skip]] == "&":
        skip += 1
    tokens = tokens[skip:]
    if len(tokens) == 1 and len(match.group("run")) == len(match.group(0)):
        only = tokens[0]
        raw = match.group("run")
        if only.startswith("#") and raw != "#038;":
            end = match.end()
            if end == len(match.string) or not _is_letter(match.string[end]):
                return match.group(0)  # "issue #39; it": a number, maybe
        if only == "amp":
            after = _CAPITAL_AFTER_SPACE_RE.match(match.string, match.end())
            if after is None or not after.group(0)[-1].isupper():
                return match.group(0)  # "the amp; it"
    return "".join(_RESIDUE_VALUES[t] for t in tokens)


_SPACE_RUN_RE = re.compile("  +")
# Both start with a literal space (fast to search); the character before the
# spaces is checked by the callbacks (a letter or digit, a closing quote or
# bracket; a letter for the comma), which is the same as a look-behind.
_MISPLACED_COMMA_RE = re.compile(rf" +,(?={_SPACED_LETTER})")
_SPACE_BEFORE_RE = re.compile(r" +([,.;:]|[!?]+)(?=[\s\"']|\Z)")
_SPACE_BEFORE_AFTER_RE = re.compile(r"[^\W_]|[\"'\)\]]")
_SPACED_LETTER_RE = re.compile(_SPACED_LETTER)
# A URL, e-mail address or entity, matched whole so the fix alternative skips it.
_PROTECTED = (
    r"(?i:\b[a-z][a-z0-9+.\-]*://\S*"
    r"|\bwww\.\S*"
    r"|\b(?:mailto|news|urn|tel|sms|xmpp|sip|magnet|javascript|data):\S*"
    r"|(?<![^\s(<\"'\[])[^\s@(<\"'\[]+@[^\s@]+"
    # an entity ftfy left alone (HTML context) or entity residue
    r"|&#?[0-9a-z]{1,24};|\b(?:amp|quot|apos|nbsp|lt|gt);"
    # a semicolon that ends an entity residue token right before another one
    rf"|;(?={_RESIDUE_TOKEN}))"
)
_SPACE_AFTER_RE = re.compile(
    rf"(?P<skip>{_PROTECTED})|(?<={_SPACED_LETTER})(?P<fix>[,;:!?])(?={_SPACED_LETTER})")
_REPEAT_ALTERNATIVES = "|".join(
    rf"(?i:{word})(?: +{word})+" for word in sorted(REPEATABLE_NEVER, key=len, reverse=True))
_REPEAT_RE = re.compile(rf"(?<![\w'’\-])(?:{_REPEAT_ALTERNATIVES})(?![\w'’\-])")
_TRAILING_RE = re.compile(r"[ \t]+(?=\n|\Z)")
_BLANK_LINES_RE = re.compile("\n\n\n+")


# Pre-checks for the fast rule layer: each is implied by any match of the rule.
# The same matches as _SPACE_RUN_RE; with a two-space literal prefix, re
# passes a single space in its prefix scan instead of starting a match there.
_SPACE_RUN_FAST_RE = re.compile("   *")
# A space before a newline or punctuation, found from the mark (one regex per
# mark, each with a one-character literal prefix): a regex led by the space
# would start a match at each of the ~700 spaces of a 4 KB article.
_SPACE_LED_MARKS = "\n,.;:!?"
_MARK_AFTER_SPACE = tuple((mark, re.compile(f"{re.escape(mark)}(?<= {re.escape(mark)})"))
                          for mark in _SPACE_LED_MARKS)
# Punctuation before a letter, one mark at a time (a literal prefix searches
# much faster than a class).
_SPACE_AFTER_CANDIDATES = tuple((mark, re.compile(rf"{re.escape(mark)}(?={_SPACED_LETTER})"))
                                for mark in ",;:!?")
# " w w" with a literal-space prefix (fast); the first w in any case. The
# words are grouped by first letter: at the many spaces followed by none of
# those letters one class test fails instead of a test per word. (At most
# one word can match at a position, so the order does not matter.)
_REPEAT_CANDIDATE_RE = re.compile(" (?:" + "|".join(
    f"{initial}(?:" + "|".join(
        rf"{word[1:]}(?<=(?i:{word}) {word})" for word in REPEATABLE_NEVER if word[0] == initial)
    + ")" for initial in sorted({word[0] for word in REPEATABLE_NEVER})) + r")(?![\w'’\-])")


def _dash_value(match: re.Match[str]) -> str:
    return _ASCII_DASHES[match.group(0)]


def _first_word(match: re.Match[str]) -> str:
    return match.group(0).split(" ", 1)[0]


def _space_before(match: re.Match[str]) -> str:
    start = match.start()
    if start and _SPACE_BEFORE_AFTER_RE.match(match.string, start - 1):
        return match.group(1)
    return match.group(0)


def _misplaced_comma(match: re.Match[str]) -> str:
    start = match.start()
    if start and _SPACED_LETTER_RE.match(match.string, start - 1):
        return ", "
    return match.group(0)


def _space_after(match: re.Match[str]) -> str:
    if match.group("skip") is not None:
        return match.group(0)
    return match.group(0) + " "


def _sub_counting(sub: Callable[..., str], replace: Callable[[re.Match[str]], str],
                  text: str, counts: dict[str, int], name: str) -> str:
    """``sub(replace, text)``, counting the matches ``replace`` changed."""
    changed = 0

    def counting(match: re.Match[str]) -> str:
        nonlocal changed
        value = replace(match)
        if value != match.group(0):
            changed += 1
        return value

    text = sub(counting, text)
    if changed:
        counts[name] = counts.get(name, 0) + changed
    return text


_CALLBACKS_THAT_MAY_DECLINE = frozenset(
    {_decode_residue, _space_after, _space_before, _misplaced_comma})


def _rule_steps(config: TypographyConfig) -> list[tuple[str, Any, Any]]:
    """(count name, compiled pattern, replacement) in application order."""
    steps: list[tuple[str, Any, Any]] = []
    if config.zero_width:
        steps.append(("zero_width", _ZERO_WIDTH_RE, ""))
    if config.soft_hyphens:
        steps.append(("soft_hyphens", _SOFT_HYPHEN_RE, ""))
    if config.odd_spaces:
        steps.append(("odd_spaces", _ODD_SPACE_RE, " "))
    if config.dashes == "ascii":
        steps.append(("dashes", _DASH_RE, _dash_value))
    if config.entity_residue:
        steps.append(("entity_residue", _RESIDUE_RE, _decode_residue))
    if config.space_runs:
        steps.append(("space_runs", _SPACE_RUN_RE, " "))
    if config.space_before_punctuation:
        steps.append(("space_before_punctuation", _SPACE_BEFORE_RE, _space_before))
        steps.append(("space_before_punctuation", _MISPLACED_COMMA_RE, _misplaced_comma))
    if config.space_after_punctuation:
        steps.append(("space_after_punctuation", _SPACE_AFTER_RE, _space_after))
    if config.repeated_words:
        steps.append(("repeated_words", _REPEAT_RE, _first_word))
    if config.trailing_whitespace:
        steps.append(("trailing_whitespace", _TRAILING_RE, ""))
    if config.blank_lines:
        steps.append(("blank_lines", _BLANK_LINES_RE, "\n\n"))
    return steps


def _apply_step(pattern: re.Pattern[str], replacement: Any, text: str,
                counts: dict[str, int], name: str) -> str:
    """One rule on ``text``; counts only the matches that changed something."""
    if callable(replacement) and replacement in _CALLBACKS_THAT_MAY_DECLINE:
        return _sub_counting(pattern.sub, replacement, text, counts, name)
    text, n = pattern.subn(replacement, text)
    if n:
        counts[name] = counts.get(name, 0) + n
    return text


def _plain_rules_function(config: TypographyConfig) -> Callable[[str, dict[str, int]], str]:
    """Our rules, each applied to the whole text: the reference behaviour."""
    steps = _rule_steps(config)

    def apply_rules(text: str, counts: dict[str, int]) -> str:
        for name, pattern, replacement in steps:
            text = _apply_step(pattern, replacement, text, counts, name)
        return text

    return apply_rules


def _candidate_lines(text: str, positions: Iterable[int],
                     function: Callable[[str], str], tokens: bool = False) -> str:
    """``text`` with ``function`` applied to each line (with its ``\n``) that
    contains one of the sorted ``positions``; with ``tokens``, to the span of
    whitespace-delimited tokens around the position instead (the line when
    no whitespace is near)."""
    out: list[str] = []
    pos = 0
    for candidate in positions:
        if candidate < pos:
            continue
        start = end = -1
        if tokens:
            found = _LAST_SPACE_RE.search(text, max(pos, candidate - _TOKEN_WINDOW), candidate)
            if found is not None:
                start = found.end()
            found = _SPACE_RE.search(text, candidate, candidate + _TOKEN_WINDOW)
            if found is not None:
                end = found.start()
        if start < 0:
            start = max(pos, text.rfind("\n", 0, candidate) + 1)
        if end < 0:
            end = text.find("\n", candidate) + 1 or len(text)
        out.append(text[pos:start])
        out.append(function(text[start:end]))
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


_TOKEN_WINDOW = 80
_SPACE_RE = re.compile(r"\s")
_LAST_SPACE_RE = re.compile(r"\s(?=\S*\Z)")


def _residue_candidates(text: str) -> Iterator[int]:
    tail = _RESIDUE_TAIL_RE.search
    pos = text.find(";")
    while pos != -1:
        if tail(text, max(0, pos - _RESIDUE_TAIL_WINDOW + 1), pos + 1) is not None:
            yield pos
        pos = text.find(";", pos + 1)


def _match_starts(pattern: re.Pattern[str], text: str) -> Iterator[int]:
    return (match.start() for match in pattern.finditer(text))


def _spaces_before_marks(text: str) -> list[tuple[int, str]]:
    """(position, mark) of each space directly before a character of
    :data:`_SPACE_LED_MARKS`, in text order."""
    found = [(match.start() - 1, mark) for mark, pattern in _MARK_AFTER_SPACE if mark in text
             for match in pattern.finditer(text)]
    found.sort()
    return found


def _fast_rules_function(config: TypographyConfig) -> Callable[[str, dict[str, int]], str]:
    """The same rules as :func:`_plain_rules_function`, with the same results
    and counts (tests check it on a large corpus and with hypothesis), but
    cheap on text that needs little:

    - each rule runs only if a necessary condition for a match holds (a
      substring test, or a regex with a literal prefix, which ``re`` searches
      fast); one scan per mark finds the spaces before punctuation and
      before newlines;
    - the character rules are ``str.replace`` calls after ``in`` tests;
    - rules whose matches never cross a line run only on the lines (for
      comma spacing: the whitespace-delimited tokens) around a candidate.
      Every look-around in them treats a line's or token's edge like the
      whitespace next to it, so the result is the same as on the whole text.
    """
    steps = {name: [] for name in RULES}
    for name, pattern, replacement in _rule_steps(config):
        steps[name].append((pattern, replacement))
    # The character-level rules map single characters to fixed strings that
    # none of them acts on, so replacing character by character (str.replace,
    # after a memchr-fast membership test) equals the rules in turn.
    char_items = tuple((char, name, value) for name, table in _CHAR_RULES
                       if steps[name] for char, value in table.items())
    exact_repeat_precheck = config.space_runs  # else pairs may be spaced widely

    def line_function(name: str, counts: dict[str, int]) -> Callable[[str], str]:
        def apply(line: str) -> str:
            for pattern, replacement in steps[name]:
                line = _apply_step(pattern, replacement, line, counts, name)
            return line
        return apply

    def apply_rules(text: str, counts: dict[str, int]) -> str:
        if char_items and not text.isascii():
            for char, name, value in char_items:
                if char in text:
                    counts[name] = counts.get(name, 0) + text.count(char)
                    text = text.replace(char, value)
        if steps["entity_residue"] and ";" in text:
            text = _candidate_lines(text, _residue_candidates(text),
                                    line_function("entity_residue", counts))
        if steps["space_runs"]:
            text = _apply_step(_SPACE_RUN_FAST_RE, " ", text, counts, "space_runs")
        # The candidates of space_before_punctuation and the pre-check of
        # trailing_whitespace: no rule from here on makes a new space before
        # a newline (and space_runs keeps one wherever there was one).
        spaces_before_marks = _spaces_before_marks(text)
        space_before_newline = any(mark == "\n" for _, mark in spaces_before_marks)
        if steps["space_before_punctuation"]:
            positions = [pos for pos, mark in spaces_before_marks if mark != "\n"]
            if positions:
                text = _candidate_lines(text, positions,
                                        line_function("space_before_punctuation", counts))
        if steps["space_after_punctuation"]:
            positions = [match.start() for mark, candidate_re in _SPACE_AFTER_CANDIDATES
                         if mark in text for match in candidate_re.finditer(text)]
            if positions:
                positions.sort()
                text = _candidate_lines(text, positions,
                                        line_function("space_after_punctuation", counts), tokens=True)
        if steps["repeated_words"]:
            if not exact_repeat_precheck:
                text = line_function("repeated_words", counts)(text)
            else:
                text = _candidate_lines(text, _match_starts(_REPEAT_CANDIDATE_RE, text),
                                        line_function("repeated_words", counts))
        if steps["trailing_whitespace"] and (
                space_before_newline or text.endswith((" ", "\t"))
                or ("\t" in text and "\t\n" in text)):
            lines = text.split("\n")
            stripped = [line.rstrip(" \t") for line in lines]
            n = sum(len(a) != len(b) for a, b in zip(lines, stripped))
            if n:
                counts["trailing_whitespace"] = counts.get("trailing_whitespace", 0) + n
                text = "\n".join(stripped)
        if steps["blank_lines"]:  # re scans for the "\n\n" prefix faster than `in` finds "\n\n\n"
            text = _apply_step(_BLANK_LINES_RE, "\n\n", text, counts, "blank_lines")
        return text

    return apply_rules


# --- the normaliser --------------------------------------------------------


class TypographyNormalizer:
    """Build once, then ``normalize(text) -> (text, counts)`` many times.

    ``reference=True`` runs plain ``ftfy.fix_text`` and our rules applied
    plainly to the whole text, instead of the fast paths (for tests and the
    benchmark); its counts then hold only our rules.
    Thread-compatible: it holds only immutable compiled state.
    """

    def __init__(self, config: TypographyConfig | None = None, *, reference: bool = False):
        self.config = config if config is not None else TypographyConfig()
        self.reference = reference
        self._rules = (_plain_rules_function if reference else _fast_rules_function)(self.config)
        self._ftfy: Callable[[str], tuple[str, dict[str, int]]] | None = None
        self._needs_ftfy: Callable[[str], bool] | None = None
        if self.config.ftfy:
            ftfy_config = self.config.ftfy_config()
            fast = FtfyFastPath(ftfy_config)
            self._needs_ftfy = fast.needs_ftfy
            self._fast_fix_with_state = fast.fix_with_state
            self._max_length = ftfy_config.max_decode_length
            if reference:
                self._ftfy = functools.partial(_reference_ftfy, config=ftfy_config)
            else:
                self._ftfy = fast.fix

    def normalize(self, text: str) -> tuple[str, dict[str, int]]:
        """The normalised text and rule name -> number of fixes."""
        text, counts = self._normalize(text)
        if self.config.document_edges:
            # Last, so that neither ftfy nor a rule can leave whitespace at an
            # edge again; stripping whitespace wakes neither of them.
            stripped = text.strip()
            if len(stripped) != len(text):
                counts["document_edges"] = 1
                text = stripped
        return text, counts

    def _normalize(self, text: str) -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}
        if not text:
            return text, counts
        ftfy_fix = self._ftfy
        rules = self._rules
        if ftfy_fix is None:
            return rules(text, counts), counts
        # Iterate ftfy then our rules to a fixed point: neither ftfy itself
        # (new line breaks make new segments) nor ftfy after our rules (a
        # removed zero-width character can join mojibake) is idempotent.
        # Our rules are (tests check it), so the check after a pass is only
        # "would ftfy change this?", cheap with the fast path.
        if not self.reference:
            # Shortcut of the first pass: when ftfy's result has nothing for
            # ftfy to act on (no trigger character, normalised) and our rules only edited
            # ASCII spaces, punctuation and words or replaced odd spaces and
            # dashes by ASCII, the result has no trigger character and is
            # still normalised (nothing they add or remove composes), so ftfy
            # would leave it alone: no need to look again.
            fixed, ftfy_counts, clean = self._fast_fix_with_state(text)
            counts.update(ftfy_counts)
            if clean:
                text = rules(fixed, counts)
                if not (counts.keys() & _MAY_WAKE_FTFY) and len(text) <= self._max_length:
                    return text, counts
            else:
                text = rules(fixed, counts)
            if not self._needs_ftfy(text):
                return text, counts
        for passes in range(MAX_PASSES):
            fixed, ftfy_counts = ftfy_fix(text)
            for name, n in ftfy_counts.items():
                counts[name] = counts.get(name, 0) + n
            if (passes or not self.reference) and fixed == text:  # rules' output
                return text, counts
            text = rules(fixed, counts)
            if not self.reference and not self._needs_ftfy(text):
                return text, counts
        return text, counts


def _reference_ftfy(text: str, config: ftfy.TextFixerConfig) -> tuple[str, dict[str, int]]:
    return reference_fix(text, config), {}


@functools.lru_cache(maxsize=16)
def _normalizer_for(config: TypographyConfig) -> TypographyNormalizer:
    return TypographyNormalizer(config)


def normalize_text(text: str, config: TypographyConfig | None = None) -> tuple[str, dict[str, int]]:
    """Normalise one string: ``(new_text, {rule_name: number_of_fixes})``.

    Pure; the compiled normaliser for ``config`` is built once per process.
    """
    return _normalizer_for(config if config is not None else TypographyConfig()).normalize(text)


# --- the stage -------------------------------------------------------------


def make_stage_function(config: TypographyConfig) -> Callable[[Document], StageResult]:
    """Builds the normaliser once; returns the per-document function."""
    normalizer = TypographyNormalizer(config)
    normalize = normalizer.normalize
    do_title = config.normalize_title

    def normalize_document(doc: Document) -> StageResult:
        text, counts = normalize(doc.text)
        title = doc.title
        if do_title and title:
            title, title_counts = normalize(title)
            for name, n in title_counts.items():
                counts[name] = counts.get(name, 0) + n
        changes = sum(counts.values())
        if text == doc.text and title == doc.title:
            return StageResult(document=doc.record_stage(STAGE, 0), counts=counts)
        return StageResult(
            document=doc.replace_text(STAGE, text, changes, title=title), counts=counts)

    return normalize_document


class NormalizeTypography(beam.PTransform):
    """Normalises the typography of each document's body and title.

    Outputs: ``DOCUMENTS`` and ``DEAD_LETTER`` (see ``transforms.stage``).
    Counters ``newswash/typography.<name>`` for every name in
    :data:`COUNT_NAMES` that fired, plus ``documents_in``,
    ``documents_changed`` and ``dead_letter``.
    """

    def __init__(self, config: TypographyConfig | None = None, label: str | None = None):
        super().__init__(label)
        self._config = config if config is not None else TypographyConfig()

    def expand(self, pcoll):
        return apply_stage(pcoll, STAGE, functools.partial(make_stage_function, self._config))
