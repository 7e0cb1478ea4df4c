"""Deterministic synthetic corpora for the typography tests and benchmark.

- :func:`news_corpus`: seed-like English news articles (headline, dateline,
  paragraphs, an occasional leaked ``string(N) "..."`` line), with the
  artefacts of the real seed at similar rates: curly apostrophes and quotes,
  NBSP, ``Arabia,Qatar``, ``the the``, trailing NBSP.
- :func:`mixed_corpus`: hostile mixed-script text (Latin, Arabic, CJK,
  Cyrillic, Greek, emoji) with injected mojibake (UTF-8 read as cp1252,
  Latin-1 or MacRoman, sometimes twice), HTML entities and residue, control
  and format characters, every kind of line break, ligatures, fullwidth forms,
  decomposed accents and lone surrogates.

Both depend only on ``random.Random(seed)``: the same arguments always give
the same texts.
"""

from __future__ import annotations

import random

import ftfy.bad_codecs  # noqa: F401  (registers sloppy-windows-1252 and friends)

__all__ = ["news_corpus", "mixed_corpus", "mojibake"]

_SENTENCES = (
    "Raging clashes between rival groups in Idlib are raising fears of widespread violence in the northwestern province.",
    "The fighting between the two factions is the first major escalation of infighting since they reached a truce in February.",
    "Idlib has become the base for thousands of fighters who fled Syria's largest city after a rout in December.",
    "Rival groups are now competing for clout in the territories they control after seeing their campaign broadly in tatters.",
    "On Saturday, the group said its rival was sending reinforcements to the town of Saraqeb in preparation for an attack.",
    "The news agency of the group, instead, accused its rival of setting up checkpoints and detaining one of its commanders.",
    "The so-called Syrian Observatory for Human Rights, a UK-based monitor, said the two groups had clashed near the village.",
    "More clashes loom as the two sides are rushing their fighters to the frontlines, the agency said on Sunday.",
    "Further confrontation could also draw other groups into the infighting, especially after the deaths of two more members.",
    "Officials said 1,250 people had been displaced since Tuesday, and prices rose 3.5 percent in the region.",
    "The meeting began at 13:18:15 local time and ended shortly before midnight, according to the U.S. embassy.",
    "Talks in Geneva, Vienna and Astana have so far failed to produce a lasting settlement to the conflict.",
    "Analysts expect the ministry to publish its figures at www.example.gov/report or by e-mail from press@example.org.",
    "The minister told reporters that the government would not negotiate with armed groups under any circumstances.",
    "Aid convoys reached the besieged districts on Monday for the first time in four months, the UN said.",
)
_HEADLINES = (
    "Rival Groups Fight Each Other as Ceasefire Fades Away",
    "Clashes Loom in Idlib as Factions Rush Fighters to Front",
    "UN Says Aid Convoys Reach Besieged Districts",
    "Talks Fail to Produce Settlement, Officials Say",
)
_TITLES = (
    "US Soldier Arrested over Links with ISIS",
    "Leader of ISIS Afghanistan Branch Dead: Pentagon",
    "\u2018She Bled to Death, Nobody Paid Attention\u2019: ISIS Wives Share Stories",
    "Kids in UK-Using Snaps of Kings College Choir",
)


def _leak_line(rng: random.Random) -> str:
    items = []
    for _ in range(rng.randint(3, 5)):
        items.append(
            '{"id":"%d","sort":"%d","contenttypeid":"21","pic":"/2017/07/%02d/alalam_%d_25f_4x3.jpg","title":"%s"}'
            % (rng.randint(1_000_000, 9_999_999), rng.randint(5_000_000, 5_999_999),
               rng.randint(1, 28), rng.randint(10**17, 10**18), rng.choice(_TITLES)))
    body = "[" + " ,".join(items) + " ]"
    return f'string({len(body.encode("utf-8"))}) "{body}"'


def _news_paragraph(rng: random.Random) -> str:
    sentences = [rng.choice(_SENTENCES) for _ in range(rng.randint(1, 3))]
    text = " ".join(sentences)
    roll = rng.random()
    if roll < 0.15:
        text = text.replace("Syria's", "Syria\u2019s", 1)
    elif roll < 0.25:
        text = text.replace("the first", "the the first", 1)
    elif roll < 0.33:
        text = text.replace("Geneva, Vienna", "Geneva,Vienna", 1)
    elif roll < 0.40:
        text = text.replace(" groups", "\u00a0 groups", 1)
    elif roll < 0.45:
        text += "\u00a0"
    elif roll < 0.50:
        text = text.replace("said", "said \u201cwe will not\u201d", 1)
    return text


def news_corpus(n_docs: int, seed: int = 0) -> list[str]:
    """``n_docs`` seed-like news articles (about 2-4 kB each)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        headline = rng.choice(_HEADLINES)
        lines = [headline, "", headline,
                 "Sun Jul %d, 2017 %02d:%02d:%02d" % (rng.randint(1, 28), rng.randint(0, 23),
                                                     rng.randint(0, 59), rng.randint(0, 59)), ""]
        for _ in range(rng.randint(8, 13)):
            lines.extend((_news_paragraph(rng), ""))
        if rng.random() < 0.5:
            lines.append(_leak_line(rng))
        docs.append("\n".join(lines))
    return docs


# --- mixed, hostile text ---------------------------------------------------

_WORDS = (
    # Latin, with accents
    "the", "of", "and", "news", "Zürich", "façade", "naïve", "Señor", "élan", "Ångström", "œuvre",
    "smörgåsbord", "Łódź", "crème brûlée", "São Paulo", "Citroën", "fiancée", "Dvořák",
    # Cyrillic, Greek
    "Москва", "новости", "привет", "Ελλάδα", "ειδήσεις", "ΑΘΗΝΑ",
    # Arabic, Hebrew, Persian (ZWNJ)
    "الأخبار", "سوريا", "إدلب", "القاهرة", "שלום", "می\u200cخواهم",
    # CJK and fullwidth
    "新闻", "中华人民共和国", "東京", "ニュース", "ｶﾀｶﾅ", "한국어", "ＬＯＵＤ", "１２３", "\u3000",
    # emoji: plain, skin tone, ZWJ family, flag, Welsh flag with tag characters
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇸🇾", "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
    # numbers, times, URLs, e-mail, abbreviations
    "1,000", "3.5", "13:18:15", "U.S.", "e.g.", "http://example.com/a,b?x=1;y=2", "www.example.org",
    "john.doe@example.com", "…", "--",
)
_INJECTIONS = (
    "&amp;", "&#39;", "&quot;", "&eacute;", "&#x2019;", "&nbsp;", "&AMP;", "&lt;b&gt;", "&amp;amp;",
    "&#038;", " #39;", "quot;", "amp;", "nbsp;", "&notanentity;", "&#0;", "&#xD800;",
    "\x00", "\x07", "\x0b", "\x0c", "\x1b[36;44m", "\x1b[0m", "\x7f", "\x81", "\x85", "\x92", "\x9d",
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u00a0", "\u202f", "\u2009", "\u3000",
    "\r\n", "\r", "\u2028", "\u2029", "\n\n\n\n", "   ", " \t", "\t",
    "\u2018", "\u2019", "\u201c", "\u201d", "\u02bc", "\u2013", "\u2014", "\u2212", "\u2010",
    "\ufb01", "\ufb02", "\ufb03", "e\u0301", "A\u030a", "\u0301", "\u1100\u1161",  # jamo compose
    "\ud83d", "\ude00", "\ud83d\ude00", "\ufffd", "<", "<p>", ">",
    ",", " ,", ", ", ".", " .", "...", " ...", ":", "!", "?", ";", "the the", "The The", "that that",
)
_ENCODINGS = ("sloppy-windows-1252", "latin-1", "sloppy-windows-1250", "macroman", "cp1251",
              "sloppy-windows-1253", "iso-8859-2")


def mojibake(text: str, rng: random.Random, layers: int = 1) -> str:
    """``text`` encoded as UTF-8 and decoded as a single-byte encoding,
    ``layers`` times (skipping encodings that cannot decode the bytes)."""
    for _ in range(layers):
        encoding = rng.choice(_ENCODINGS)
        try:
            text = text.encode("utf-8", "surrogatepass").decode(encoding)
        except UnicodeError:
            continue
    return text


def _mixed_line(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 14)):
        roll = rng.random()
        if roll < 0.6:
            parts.append(rng.choice(_WORDS))
        elif roll < 0.95:
            parts.append(rng.choice(_INJECTIONS))
        else:
            parts.append(rng.choice(_SENTENCES))
        parts.append(rng.choice((" ", " ", " ", "", ", ", ",", "  ", "\u00a0")))
    line = "".join(parts)
    roll = rng.random()
    if roll < 0.2:
        line = mojibake(line, rng, 1)
    elif roll < 0.28:
        line = mojibake(line, rng, 2)
    elif roll < 0.32:
        # mojibake of only part of the line (inconsistent encodings)
        cut = rng.randint(0, len(line))
        line = line[:cut] + mojibake(line[cut:], rng, 1)
    return line


def mixed_corpus(n_docs: int, seed: int = 0) -> list[str]:
    """``n_docs`` hostile mixed-script documents of 0-12 lines."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        lines = [_mixed_line(rng) for _ in range(rng.randint(0, 12))]
        docs.append(rng.choice(("\n", "\n", "\r\n", "\n\n")).join(lines))
    return docs
