"""Typography normalisation: ftfy plus newswash's own rules, with a fast path.

Stage ``typography``. Applied to the body (``Document.text``) and the title
(``Document.title``) of every document.

Two layers run in this order, repeated until neither changes the text (at
most :data:`MAX_PASSES` times), which makes the result idempotent:

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
     ``&``, only where unambiguous (``Syria #39;s`` -> ``Syria's``,
     ``quot;``, ``amp;``, ``apos;``, ``nbsp;``, ``#038;``);
   - ``space_runs``: runs of spaces to one;
   - ``space_before_punctuation``: ``word ,`` -> ``word,`` for ``, . ; : ! ?``
     followed by whitespace, a quote or the end (ellipses, ``.NET``, ``:)``
     and ``.5`` stay), and ``Hello ,world`` -> ``Hello, world``;
   - ``space_after_punctuation``: ``Arabia,Qatar`` -> ``Arabia, Qatar`` for
     ``, ; : ! ?`` between two letters (not CJK); numbers (``1,000``,
     ``3.5``), times (``13:18:15``), URLs, e-mail addresses and
     abbreviations (``U.S.``) never match;
   - ``repeated_words``: ``the the first`` -> ``the first`` for words whose
     repetition is never grammatical (:data:`REPEATABLE_NEVER`); "that that",
     "had had", "is is", "in in" and the like are left alone, and so is a
     capitalised repeat (the band "The The");
   - ``trailing_whitespace``: spaces and tabs at the end of a line (count:
     lines);
   - ``blank_lines``: three or more newlines to one blank line (count: runs).

Counts: rule name -> number of fixes (characters, occurrences or lines as
noted). The ftfy layer reports ``ftfy_*`` counts (see
:data:`~transforms._typography_ftfy.FTFY_COUNT_NAMES`): the number of lines
(ftfy segments) each ftfy fixer changed. They become Beam counters
``newswash/typography.<name>``. The stage records the sum of all counts as its
number of changes.

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
from typing import Any, Callable, Literal, Mapping

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
)
COUNT_NAMES = FTFY_COUNT_NAMES + RULES

# Function words whose immediate repetition is never grammatical in English.
# Deliberately absent: that, had, is, do, will, can, in, on, at, by, with,
# from, up, out, so, very ... ("he gave in in the end", "what it is is ...").
REPEATABLE_NEVER = ("the", "a", "an", "of", "to", "and", "or", "its", "their", "our", "your")

MAX_PASSES = 6

_QUOTES = ("straight", "keep")
_DASHES = ("keep", "ascii")
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
    normalize_title: bool = True

    def __post_init__(self) -> None:
        if self.quotes not in _QUOTES:
            raise ValueError(f"quotes must be one of {_QUOTES}, got {self.quotes!r}")
        if self.dashes not in _DASHES:
            raise ValueError(f"dashes must be one of {_DASHES}, got {self.dashes!r}")
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

_ZERO_WIDTH_RE = re.compile("[\u200b\u2060\ufeff\u180e]")
_SOFT_HYPHEN_RE = re.compile("\u00ad")
_ODD_SPACE_RE = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f]")
_DASH_RE = re.compile("[\u2010-\u2013\u2212\ufe58\ufe63\uff0d]|[\u2014\u2015]")
_EM_DASHES = frozenset("\u2014\u2015")

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
_RESIDUE_TOKEN = r"(?:amp|quot|apos|nbsp|#0*39|#x0*27|#0*34|#x0*22|#0*38|#x0*26|#0*160|#x0*a0);"
_RESIDUE_RE = re.compile(
    rf"(?P<glued>(?<={_LETTER}) *(?:(?:amp|#0*38);)*(?:#0*39|#x0*27|apos);(?={_LETTER}))"
    rf"|(?<![\w&#;])(?P<run>(?:{_RESIDUE_TOKEN})+)"
    r"|(?<![&#;])(?P<wordpress>#038;)"
)
_RESIDUE_TOKEN_RE = re.compile(_RESIDUE_TOKEN)
_RESIDUE_VALUES = {"amp": "&", "quot": '"', "apos": "'", "nbsp": " ", "#38": "&",
                   "#39": "'", "#34": '"', "#160": " ", "#x26": "&", "#x27": "'",
                   "#x22": '"', "#xa0": " "}
_CAPITAL_AFTER_SPACE_RE = re.compile(r"\s+[^\W\d_]")


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
    while len(tokens) > 1 and _RESIDUE_VALUES[tokens[0]] == "&":
        tokens.pop(0)  # an escaped "&" of the entity that follows
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


_SPACE_RUN_RE = re.compile(" {2,}")
_MISPLACED_COMMA_RE = re.compile(rf"(?<={_SPACED_LETTER}) +,(?={_SPACED_LETTER})")
_SPACE_BEFORE_RE = re.compile(r"(?:(?<=[^\W_])|(?<=[\"'\)\]])) +([,.;:!?])(?=[\s\"']|\Z)")
_SPACE_AFTER_FIX_RE = re.compile(rf"(?<={_SPACED_LETTER})[,;:!?](?={_SPACED_LETTER})")
# A URL, e-mail address or entity, matched whole so the fix alternative skips it.
_PROTECTED = (
    r"(?i:\b[a-z][a-z0-9+.\-]*://\S*"
    r"|\bwww\.\S*"
    r"|\b(?:mailto|news|urn|tel|sms|xmpp|sip|magnet|javascript|data):\S*"
    r"|(?<![^\s(<\"'\[])[^\s@(<\"'\[]+@[^\s@]+"
    # an entity ftfy left alone (HTML context) or entity residue
    r"|&#?[0-9a-z]{1,24};|\b(?:amp|quot|apos|nbsp|lt|gt);)"
)
_SPACE_AFTER_RE = re.compile(
    rf"(?P<skip>{_PROTECTED})|(?<={_SPACED_LETTER})(?P<fix>[,;:!?])(?={_SPACED_LETTER})")
_REPEAT_ALTERNATIVES = "|".join(
    rf"(?i:{word})(?: +{word})+" for word in sorted(REPEATABLE_NEVER, key=len, reverse=True))
_REPEAT_RE = re.compile(rf"(?<![\w'’\-])(?:{_REPEAT_ALTERNATIVES})(?![\w'’\-])")
_TRAILING_RE = re.compile(r"[ \t]+(?=\n|\Z)")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def _dash_value(match: re.Match[str]) -> str:
    return "--" if match.group(0) in _EM_DASHES else "-"


def _first_word(match: re.Match[str]) -> str:
    return match.group(0).split(" ", 1)[0]


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


def _rules_function(config: TypographyConfig) -> Callable[[str, dict[str, int]], str]:
    """The rule layer: ``(text, counts) -> text``, adding to ``counts``."""
    non_ascii_subs: list[tuple[str, Any, Any]] = []  # can only fire on non-ASCII text
    if config.zero_width:
        non_ascii_subs.append(("zero_width", _ZERO_WIDTH_RE.subn, ""))
    if config.soft_hyphens:
        non_ascii_subs.append(("soft_hyphens", _SOFT_HYPHEN_RE.subn, ""))
    if config.odd_spaces:
        non_ascii_subs.append(("odd_spaces", _ODD_SPACE_RE.subn, " "))
    if config.dashes == "ascii":
        non_ascii_subs.append(("dashes", _DASH_RE.subn, _dash_value))
    subs: list[tuple[str, Any, Any]] = []
    if config.space_runs:
        subs.append(("space_runs", _SPACE_RUN_RE.subn, " "))
    if config.space_before_punctuation:
        subs.append(("space_before_punctuation", _SPACE_BEFORE_RE.subn, r"\1"))
        subs.append(("space_before_punctuation", _MISPLACED_COMMA_RE.subn, ", "))
    space_after = config.space_after_punctuation
    late: list[tuple[str, Any, Any]] = []
    if config.repeated_words:
        late.append(("repeated_words", _REPEAT_RE.subn, _first_word))
    if config.trailing_whitespace:
        late.append(("trailing_whitespace", _TRAILING_RE.subn, ""))
    if config.blank_lines:
        late.append(("blank_lines", _BLANK_LINES_RE.subn, "\n\n"))
    residue = config.entity_residue
    residue_search = _RESIDUE_RE.search
    residue_sub = _RESIDUE_RE.sub
    fix_search = _SPACE_AFTER_FIX_RE.search
    space_after_sub = _SPACE_AFTER_RE.sub

    def apply_rules(text: str, counts: dict[str, int]) -> str:
        if not text.isascii():
            for name, subn, replacement in non_ascii_subs:
                text, n = subn(replacement, text)
                if n:
                    counts[name] = counts.get(name, 0) + n
        if residue and residue_search(text) is not None:
            text = _sub_counting(residue_sub, _decode_residue, text, counts, "entity_residue")
        for name, subn, replacement in subs:
            text, n = subn(replacement, text)
            if n:
                counts[name] = counts.get(name, 0) + n
        if space_after and fix_search(text) is not None:
            text = _sub_counting(space_after_sub, _space_after, text, counts,
                                 "space_after_punctuation")
        for name, subn, replacement in late:
            text, n = subn(replacement, text)
            if n:
                counts[name] = counts.get(name, 0) + n
        return text

    return apply_rules


# --- the normaliser --------------------------------------------------------


class TypographyNormalizer:
    """Build once, then ``normalize(text) -> (text, counts)`` many times.

    ``reference=True`` runs plain ``ftfy.fix_text`` instead of the fast path
    (for tests and the benchmark); its counts then hold only our rules.
    Thread-compatible: it holds only immutable compiled state.
    """

    def __init__(self, config: TypographyConfig | None = None, *, reference: bool = False):
        self.config = config if config is not None else TypographyConfig()
        self.reference = reference
        self._rules = _rules_function(self.config)
        self._ftfy: Callable[[str], tuple[str, dict[str, int]]] | None = None
        self._needs_ftfy: Callable[[str], bool] | None = None
        if self.config.ftfy:
            ftfy_config = self.config.ftfy_config()
            fast = FtfyFastPath(ftfy_config)
            self._needs_ftfy = fast.needs_ftfy
            if reference:
                self._ftfy = functools.partial(_reference_ftfy, config=ftfy_config)
            else:
                self._ftfy = fast.fix

    def normalize(self, text: str) -> tuple[str, dict[str, int]]:
        """The normalised text and rule name -> number of fixes."""
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
        for passes in range(MAX_PASSES):
            fixed, ftfy_counts = ftfy_fix(text)
            for name, n in ftfy_counts.items():
                counts[name] = counts.get(name, 0) + n
            if passes and fixed == text:  # text is already rules' output
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
