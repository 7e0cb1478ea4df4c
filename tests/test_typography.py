"""Typography stage: golden cases for every rule, the seed article, config and
profiles, the stage function, ApplyStageFn and the composite under
TestPipeline, and the fast rule layer's scans against the plain rules. ftfy
parity, differential and property tests are in ``test_typography_ftfy.py``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings, strategies as st

from transforms import typography
from transforms.document import Document
from transforms.stage import DEAD_LETTER, DOCUMENTS, ApplyStageFn
from transforms.typography import (
    COUNT_NAMES,
    PROFILES,
    RULES,
    STAGE,
    NormalizeTypography,
    TypographyConfig,
    TypographyNormalizer,
    _fast_rules_function,
    _plain_rules_function,
    _spaces_before_marks,
    _SPACE_RUN_FAST_RE,
    _SPACE_RUN_RE,
    make_stage_function,
    normalize_text,
)

SEED = Path("/work/shared/seeds/000_564ceb310d2225dc.txt")
NEWS = TypographyConfig.from_profile("news")
ASCII_DASHES = TypographyConfig.from_profile("news", dashes="ascii")


def norm(text: str, config: TypographyConfig = NEWS) -> str:
    return normalize_text(text, config)[0]


# --- golden cases, one group per rule ------------------------------------

GOLDEN = [
    # (input, expected, counts that must be present)
    ("a\u200bb\u2060c\ufeffd", "abcd", {"zero_width": 2}),  # U+FEFF: ftfy control chars
    ("emoji \U0001f468\u200d\U0001f469\u200d\U0001f467 and \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
     "emoji \U0001f468\u200d\U0001f469\u200d\U0001f467 and \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", {}),
    ("co\u00adop\u00aderation", "cooperation", {"soft_hyphens": 2}),
    ("Takfiri\u00a0 groups", "Takfiri groups", {"odd_spaces": 1, "space_runs": 1}),
    ("10\u202fkm and 5\u2009%", "10 km and 5 %", {"odd_spaces": 2}),
    ("\u6771\u4eac\u3000\u65b0\u805e", "\u6771\u4eac\u3000\u65b0\u805e", {}),  # ideographic space kept
    ("a  b   c", "a b c", {"space_runs": 2}),
    ("word , next .", "word, next.", {"space_before_punctuation": 2}),
    ("Really ?! Yes !", "Really?! Yes!", {"space_before_punctuation": 2}),
    ("Hello ,world", "Hello, world", {"space_before_punctuation": 1}),
    ("wait ... what", "wait ... what", {}),
    ("use .NET and a .45 pistol :)", "use .NET and a .45 pistol :)", {}),
    ("Saudi Arabia,Qatar and Turkey", "Saudi Arabia, Qatar and Turkey", {"space_after_punctuation": 1}),
    ("Note:this;that!Then?Now", "Note: this; that! Then? Now", {"space_after_punctuation": 4}),
    ("1,000 people, 3.5 percent, at 13:18:15", "1,000 people, 3.5 percent, at 13:18:15", {}),
    ("the U.S. and e.g. this", "the U.S. and e.g. this", {}),
    ("see http://example.com/a,b?x=1;y=2 or www.example.org/a,b",
     "see http://example.com/a,b?x=1;y=2 or www.example.org/a,b", {}),
    ("mail john,doe@example.com or mailto:press@example.org",
     "mail john,doe@example.com or mailto:press@example.org", {}),
    ("\u4e2d\u6587,\u4e2d\u6587", "\u4e2d\u6587,\u4e2d\u6587", {}),  # no space inserted in CJK
    ("Syria #39;s war", "Syria's war", {"entity_residue": 1}),
    ("Syria&#39;s", "Syria's", {"ftfy_html_entities": 1}),  # a whole entity is ftfy's job
    ("quot;Hello quot; he said", '"Hello " he said', {"entity_residue": 2}),
    ("Tom amp; Jerry", "Tom & Jerry", {"entity_residue": 1}),
    ("AT#038;T", "AT&T", {"entity_residue": 1}),
    ("amp;quot;x", '"x', {"entity_residue": 1}),
    ("issue #39; it and the amp; it", "issue #39; it and the amp; it", {}),
    ("a#39;quot; x;quot;", "a#39;quot; x;quot;", {}),  # part of a run: left alone
    ("line one  \nline two\t\nend ", "line one\nline two\nend", {"trailing_whitespace": 3}),
    ("a\n\n\n\nb\n\n\nc\n\nd", "a\n\nb\n\nc\n\nd", {"blank_lines": 2}),
    ("is the the first", "is the first", {"repeated_words": 1}),
    ("The the first, of of it, a a b, and and, to to", "The first, of it, a b, and, to",
     {"repeated_words": 5}),
    ("the the the end", "the end", {"repeated_words": 1}),
    ("that that is, he had had it, what it is is fine, gave in in the end",
     "that that is, he had had it, what it is is fine, gave in in the end", {}),
    ("The The are a band; bathe the dog; the-the", "The The are a band; bathe the dog; the-the", {}),
    ("al-Qaeda\u2019s \u201cquoted\u201d", "al-Qaeda's \"quoted\"", {"ftfy_quotes": 1}),
    ("caf\u00c3\u00a9", "caf\u00e9", {"ftfy_mojibake": 1}),
    ("e\u0301", "\u00e9", {"ftfy_normalization": 1}),
    ("a\r\nb\rc\u2028d", "a\nb\nc\nd", {"ftfy_line_breaks": 2}),  # 2 ftfy segments
    ("bell\x07 \x1b[36mblue\x1b[0m", "bell blue", {"ftfy_control_chars": 1, "ftfy_terminal_escapes": 1}),
    ("\ufb01ne", "fine", {"ftfy_ligatures": 1}),
    ("\uff2c\uff2f\uff35\uff24", "\uff2c\uff2f\uff35\uff24", {}),  # width folding off by default
    ("en\u2013dash em\u2014dash", "en\u2013dash em\u2014dash", {}),  # dashes=keep by default
]


@pytest.mark.parametrize("text,expected,expected_counts", GOLDEN)
def test_golden(text, expected, expected_counts):
    fixed, counts = normalize_text(text, NEWS)
    assert fixed == expected
    for name, value in expected_counts.items():
        assert counts.get(name) == value, (name, counts)
    if not expected_counts:
        assert all(name.startswith("ftfy_") or not value for name, value in counts.items()), counts
    assert set(counts) <= set(COUNT_NAMES)


def test_dashes_ascii_policy():
    fixed, counts = normalize_text("1990\u20131995 \u2014 a \u2212 b \u2010x", ASCII_DASHES)
    assert fixed == "1990-1995 -- a - b -x"
    assert counts["dashes"] == 4


def test_quotes_keep_policy():
    config = TypographyConfig.from_profile("news", quotes="keep")
    assert norm("al-Qaeda\u2019s \u201cq\u201d", config) == "al-Qaeda\u2019s \u201cq\u201d"


def test_width_folding_and_nfkc_are_options():
    assert norm("\uff2c\uff2f\uff35\uff24", TypographyConfig(fold_width=True)) == "LOUD"
    assert norm("x\u00b2", TypographyConfig()) == "x\u00b2"  # NFC keeps it
    assert norm("x\u00b2", TypographyConfig(normalization="NFKC")) == "x2"
    # NFC maps CJK compatibility ideographs (U+FA10 -> U+585A); the
    # conservative profile normalises nothing.
    assert norm("\ufa10", TypographyConfig()) == "\u585a"
    assert norm("\ufa10", PROFILES["conservative"]) == "\ufa10"


def test_rules_can_be_switched_off():
    config = TypographyConfig(space_after_punctuation=False, repeated_words=False)
    assert norm("Arabia,Qatar is the the first", config) == "Arabia,Qatar is the the first"


# --- the seed article ----------------------------------------------------


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def test_seed_article(seed_text):
    fixed, counts = normalize_text(seed_text, NEWS)
    assert "Saudi Arabia, Qatar and Turkey" in fixed
    assert "is the first major escalation" in fixed and "the the" not in fixed
    assert "among Takfiri groups since" in fixed
    assert "al-Qaeda's Syria offshoot" in fixed
    assert "over the past year.\n" in fixed  # trailing NBSP removed
    assert "\u00a0" not in fixed and "\u2019" not in fixed and "\u2018" not in fixed
    assert "'She Bled to Death, Nobody Paid Attention': ISIS Wives" in fixed
    # Numbers, the time and the leaked JSON keep their bytes.
    assert "Sun Jul 16, 2017 13:18:15" in fixed
    assert '"sort":"5058101","contenttypeid":"21"' in fixed
    assert counts == {"ftfy_quotes": 2, "odd_spaces": 2, "space_runs": 1,
                      "space_after_punctuation": 1, "repeated_words": 1,
                      "trailing_whitespace": 1}
    # Only the lines that needed a fix differ.
    changed = [a for a, b in zip(seed_text.split("\n"), fixed.split("\n")) if a != b]
    assert len(changed) == 4 and len(seed_text.split("\n")) == len(fixed.split("\n"))
    assert normalize_text(fixed, NEWS) == (fixed, {})


# --- config and profiles ---------------------------------------------------


def test_profiles():
    assert set(PROFILES) == {"news", "conservative", "ftfy-default"}
    assert PROFILES["news"] == TypographyConfig()
    ftfy_default = PROFILES["ftfy-default"].ftfy_config()
    import ftfy
    assert ftfy_default == ftfy.TextFixerConfig(explain=False)
    assert not any(getattr(PROFILES["ftfy-default"], rule) for rule in RULES if rule != "dashes")
    conservative = PROFILES["conservative"]
    assert conservative.quotes == "keep" and conservative.normalization is None
    assert not conservative.fold_width and not conservative.repeated_words


def test_from_profile_overrides_and_immutability():
    config = TypographyConfig.from_profile("conservative", dashes="ascii")
    assert config.dashes == "ascii" and config.quotes == "keep"
    assert PROFILES["conservative"].dashes == "keep"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.quotes = "straight"  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown profile"):
        TypographyConfig.from_profile("loud")


@pytest.mark.parametrize("bad", [
    {"quotes": "curly"}, {"dashes": "unicode"}, {"normalization": "NFX"},
    {"unescape_html": "yes"}, {"max_decode_length": 0}, {"max_decode_length": True},
    {"repeated_words": "yes"},
])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        TypographyConfig(**bad)


def test_normalizer_is_reusable_and_agrees_with_normalize_text():
    normalizer = TypographyNormalizer(NEWS)
    for text, _, _ in GOLDEN:
        assert normalizer.normalize(text) == normalize_text(text, NEWS)
    assert normalizer.normalize("") == ("", {})


def test_ftfy_off():
    config = TypographyConfig(ftfy=False)
    assert norm("caf\u00c3\u00a9 the the x", config) == "caf\u00c3\u00a9 the x"


# --- the stage function, the DoFn, the composite ---------------------------


def _doc(text: str, title: str | None = None, doc_id: str = "d1") -> Document:
    return Document(id=doc_id, text=text, title=title, source="s.jsonl:1", original=b"raw")


def test_stage_function_normalises_body_and_title():
    function = make_stage_function(NEWS)
    result = function(_doc("Arabia,Qatar and the the rest\u00a0", title="al-Qaeda\u2019s  news"))
    assert result.document.text == "Arabia, Qatar and the rest"
    assert result.document.title == "al-Qaeda's news"
    assert result.counts == {"space_after_punctuation": 1, "repeated_words": 1,
                             "odd_spaces": 1, "trailing_whitespace": 1,
                             "ftfy_quotes": 1, "space_runs": 1}
    assert result.document.changes == ((STAGE, 6),)
    assert result.side_records == ()


def test_stage_function_records_unchanged_documents_and_titles_off():
    function = make_stage_function(NEWS)
    doc = _doc("Clean text.", title=None)
    result = function(doc)
    assert result.document.text == "Clean text." and result.document.changes == ((STAGE, 0),)
    function = make_stage_function(TypographyConfig(normalize_title=False))
    result = function(_doc("x", title="the the title"))
    assert result.document.title == "the the title"


def test_apply_stage_fn_directly():
    fn = ApplyStageFn(STAGE, lambda: make_stage_function(NEWS))
    fn.setup()
    outputs = list(fn.process(_doc("a  b")))
    assert len(outputs) == 1 and outputs[0].text == "a b"


def test_apply_stage_fn_dead_letters_on_error(monkeypatch):
    def broken(config):
        def function(doc):
            raise RuntimeError("boom")
        return function

    fn = ApplyStageFn(STAGE, lambda: broken(NEWS))
    fn.setup()
    (output,) = list(fn.process(_doc("x")))
    assert output.tag == DEAD_LETTER and output.value.reason == "stage_error"
    assert output.value.original == b"raw"


def test_composite_under_test_pipeline():
    docs = [_doc("Saudi Arabia,Qatar", title="the the title", doc_id="a"),
            _doc("Nothing to do.", doc_id="b")]
    with TestPipeline() as pipeline:
        results = (pipeline | beam.Create(docs)
                   | "NormalizeTypography" >> NormalizeTypography(NEWS))
        texts = results[DOCUMENTS] | "Texts" >> beam.Map(lambda d: (d.id, d.text, d.title, d.changes))
        assert_that(texts, equal_to([
            ("a", "Saudi Arabia, Qatar", "the title", ((STAGE, 2),)),
            ("b", "Nothing to do.", None, ((STAGE, 0),)),
        ]))
        assert_that(results[DEAD_LETTER], equal_to([]), label="NoDeadLetters")


def test_composite_default_config_is_news():
    assert NormalizeTypography()._config == PROFILES["news"]  # pylint: disable=protected-access
    assert typography.STAGE == "typography"


def test_document_edges_are_trimmed_and_counted_once():
    text, counts = normalize_text("\n\n  Body line.  \n\nLast line.\n\n\u00a0", TypographyConfig())
    assert text == "Body line.\n\nLast line."
    assert counts["document_edges"] == 1
    again, again_counts = normalize_text(text, TypographyConfig())
    assert again == text and "document_edges" not in again_counts
    kept, _ = normalize_text(" x \n", TypographyConfig(document_edges=False, trailing_whitespace=False))
    assert kept == " x \n"
    assert TypographyConfig.from_profile("ftfy-default").document_edges is False
    assert TypographyConfig.from_profile("conservative").document_edges is True


# --- the fast rule layer's scans -------------------------------------------

# Dense in what the space-led scans look for: runs of spaces before marks and
# newlines, tabs, blank lines, marks glued to letters, repeatable words.
SPACING = st.lists(st.sampled_from(
    [" ", " ", "  ", "\n", "\n\n\n", "\t", ",", ".", ";", ":", "!", "?", "a", "Qatar", "the", "The",
     "\"", "'", ")", "1", "\u00a0", "\u4e2d", "amp;", "http://x.y/a,b"]), max_size=30).map("".join)
SPACING_CONFIGS = [
    NEWS,
    TypographyConfig(space_runs=False),
    TypographyConfig(space_before_punctuation=False, repeated_words=False),
    TypographyConfig(trailing_whitespace=False, blank_lines=False),
    TypographyConfig.from_profile("conservative"),
]


@settings(max_examples=500, deadline=None)
@given(SPACING, st.sampled_from(range(len(SPACING_CONFIGS))))
def test_fast_rules_equal_plain_rules_on_spacing(text, config_index):
    config = SPACING_CONFIGS[config_index]
    fast_counts: dict[str, int] = {}
    plain_counts: dict[str, int] = {}
    assert _fast_rules_function(config)(text, fast_counts) == \
        _plain_rules_function(config)(text, plain_counts)
    assert fast_counts == plain_counts


@settings(max_examples=500, deadline=None)
@given(SPACING)
def test_spaces_before_marks_are_the_space_led_matches(text):
    import re

    space_led = re.compile(" (?=([\n,.;:!?]))")
    assert _spaces_before_marks(text) == [(m.start(), m.group(1)) for m in space_led.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(SPACING)
def test_space_run_patterns_match_alike(text):
    assert [m.span() for m in _SPACE_RUN_FAST_RE.finditer(text)] == \
        [m.span() for m in _SPACE_RUN_RE.finditer(text)]
