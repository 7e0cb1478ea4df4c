"""A synthetic news corpus with known copies, for dedupe tests and scale checks.

``generate_duplicate_corpus(n, seed)`` returns ``n`` documents: originals and
copies of them made the ways scrapers make them. Every document carries the
ground truth in ``fields``: ``origin`` (the id of the original it copies, its
own id for an original) and ``variant``:

* ``original``;
* ``rescrape``: same title and text, another id and URL, re-typed quotes,
  dashes and whitespace, published later (an exact_body copy);
* ``edited_headline``: same text under a rewritten title;
* ``near_body``: same title, one sentence replaced and a sign-off appended;
* ``near_body_new_headline``: a near body under a rewritten title.

It is deterministic in ``(n, seed)`` (``random.Random(seed)``), needs no
data files and is cheap (pure Python), so a benchmark can call it with large
``n`` (about 2.5 KB of text per document).
"""

from __future__ import annotations

import random

from transforms.document import Document

__all__ = ["VARIANTS", "generate_duplicate_corpus"]

VARIANTS = ("rescrape", "edited_headline", "near_body", "near_body_new_headline")
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "dor", "len", "mar", "tos",
              "bri", "gan", "hel", "jun", "wex")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def _sentence(rng: random.Random, words: list[str]) -> str:
    chosen = [rng.choice(words) for _ in range(rng.randint(10, 22))]
    return chosen[0].capitalize() + " " + " ".join(chosen[1:]) + rng.choice((".", ".", ".", "!", "?"))


def _article(rng: random.Random, words: list[str]) -> tuple[str, list[list[str]]]:
    title = " ".join(rng.choice(words) for _ in range(rng.randint(5, 10))).title()
    paragraphs = [[_sentence(rng, words) for _ in range(rng.randint(2, 4))] for _ in range(rng.randint(4, 7))]
    return title, paragraphs


def _render(paragraphs: list[list[str]]) -> str:
    return "\n\n".join(" ".join(sentences) for sentences in paragraphs)


def _retype(text: str, rng: random.Random) -> str:
    """What a second scrape of the same page does to the characters."""
    text = text.replace(" ", "  ", rng.randint(1, 3)).replace(".", " .", 1)
    return text.upper() if rng.random() < 0.1 else text + "\n"


def generate_duplicate_corpus(n: int, seed: int = 0, duplicate_share: float = 0.4) -> list[Document]:
    """``n`` documents of which about ``duplicate_share`` are copies (see module docstring)."""
    if n < 0 or not 0.0 <= duplicate_share < 1.0:
        raise ValueError("n must be >= 0 and duplicate_share in [0, 1)")
    rng = random.Random(seed)
    words = _vocabulary(rng, 5000)
    docs: list[Document] = []
    originals: list[tuple[Document, list[list[str]]]] = []
    for index in range(n):
        if originals and rng.random() < duplicate_share:
            original, paragraphs = rng.choice(originals)
            variant = rng.choice(VARIANTS)
            doc_id = f"c{seed}-{index:07d}"
            title, text = original.title or "", original.text
            if variant == "rescrape":
                text = _retype(text, rng)
            if variant in ("edited_headline", "near_body_new_headline"):
                title = " ".join(rng.choice(words) for _ in range(rng.randint(5, 9))).title()
            if variant in ("near_body", "near_body_new_headline"):
                edited = [list(p) for p in paragraphs]
                p = rng.randrange(len(edited))
                edited[p][rng.randrange(len(edited[p]))] = _sentence(rng, words)
                text = _render(edited) + "\n\nReporting by " + rng.choice(words).title()
            day = int(original.published[8:10]) + rng.randint(1, 3)  # always later than the original
            docs.append(Document(
                id=doc_id, text=text, source=f"synthetic:{index + 1}", title=title,
                published=original.published[:8] + f"{day:02d}" + original.published[10:],
                url=f"https://copy{rng.randint(1, 9)}.example/{doc_id}",
                fields=(("origin", original.id), ("variant", variant))))
            continue
        title, paragraphs = _article(rng, words)
        doc_id = f"o{seed}-{index:07d}"
        doc = Document(
            id=doc_id, text=_render(paragraphs), source=f"synthetic:{index + 1}", title=title,
            published=f"2017-{rng.randint(1, 12):02d}-{rng.randint(1, 24):02d}T{rng.randint(0, 23):02d}:00:00",
            url=f"https://news.example/{doc_id}", fields=(("origin", doc_id), ("variant", "original")))
        originals.append((doc, paragraphs))
        docs.append(doc)
    return docs
