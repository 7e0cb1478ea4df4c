"""Generate a synthetic raw news corpus for newswash benchmarks.

    python benchmarks/generate_corpus.py 10000 benchmarks/work/corpus-10000.jsonl --seed 1

Writes N JSONL records ``{"id", "url", "title", "text", "published"}`` shaped
like the seed article (``/work/shared/seeds/000_564ceb310d2225dc.txt``), with
the artifacts newswash removes, at these rates (per record, independent draws):

* PHP leaks in about 1/3 of the records:
  - 70% of the leaks: a var_dump ``string(N) "[{...} ,{...} ]"`` related-articles
    list at the end of the body, N the exact UTF-8 byte count of the payload
    (curly quotes inside titles make N larger than the character count, as in
    the seed's ``string(946)`` holding 942 characters). Half of these come after
    a blank line as in the seed, half glued to the last sentence
    (``...has not responded.string(493) "[{...``);
  - 15%: a print_r ``Array ( [id] => ... )`` or var_export ``array ( 'id' => ... )``
    block between paragraphs or at the end;
  - 15%: ``Warning: Undefined array key "thumb" in /var/www/html/a.php on line 12``
    (PHP's text error display) between two paragraphs.
* Repeated titles in 1/2: the title, a blank line, the title again and a
  dateline ``Sun Jul 16, 2017 13:18:15`` at the top of the body (the seed's shape).
* Mojibake in 1/10: title and body encoded as UTF-8 and decoded as
  windows-1252 (ftfy's ``sloppy-windows-1252``, which keeps the 5 bytes cp1252
  leaves undefined, like a browser). A var_dump count then equals the mojibake
  character count, as on a real mis-decoded page.
* Re-scrapes in 1/10: an exact copy of the text of one of the last 1,000
  articles under a new id and URL, the title sometimes with a `` - Site`` suffix.
* Typography everywhere: curly quotes and apostrophes in most paragraphs,
  non-breaking spaces after numbers and honorifics, the occasional
  double space (the seed's ``Takfiri  groups``) and trailing space.

Bodies are 300-800 words drawn with a per-record RNG (seeded by the corpus seed
and the record number) from a Zipf-weighted vocabulary of ~20,000 synthetic
words plus English function words, so distinct articles share no long word
runs and only the re-scrapes are duplicates. The output is deterministic for a
seed and does not depend on N (record i is the same in a 1k and a 1M corpus).
Generation streams (constant memory); about 1M records in a few minutes.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import itertools
import random
import sys
import time
from typing import Iterator

import orjson

try:  # registers the 'sloppy-windows-1252' codec
    import ftfy.bad_codecs  # noqa: F401  pylint: disable=unused-import
    _MOJIBAKE_CODEC = "sloppy-windows-1252"
except ImportError:  # ftfy is a newswash dependency; keep working without it
    _MOJIBAKE_CODEC = "latin-1"

__all__ = ["generate", "make_article", "Vocabulary", "main"]

PHP_LEAK_RATE = 1 / 3
REPEATED_TITLE_RATE = 1 / 2
MOJIBAKE_RATE = 1 / 10
RESCRAPE_RATE = 1 / 10
RESCRAPE_WINDOW = 1000

NBSP = "\u00a0"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SECTIONS = ("world", "politics", "business", "middle-east", "europe", "asia", "sport", "culture")
SITES = ("Alalam", "Daily Courier", "The Gazette", "News Wire", "Morning Post")
HONORIFICS = ("Mr.", "Ms.", "Dr.", "Gen.", "Sen.", "Prof.")
UNITS = ("km", "percent", "people", "million", "kg", "days", "troops", "dollars")

FUNCTION_WORDS = (
    "the of and to in a is that for on was with as by at from his it an were are which this "
    "be has had have not but or its they who their been after also said will more one over "
    "two than when about into other some could would there new up out all against during "
    "between under since while before where most year government people city officials "
    "country forces group president minister state report police week according told"
).split()

_CONSONANTS = "b c d f g h j k l m n p r s t v w z br ch cl dr gr kr pl sh st th tr".split()
_VOWELS = "a e i o u a e i o ai ea ou ia".split()
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "nd", "st", "k", "t")


class Vocabulary:
    """A fixed Zipf-weighted vocabulary (independent of the corpus seed)."""

    def __init__(self, size: int = 20000):
        rng = random.Random(20170716)
        words: list[str] = []
        seen = set(FUNCTION_WORDS)
        while len(words) < size:
            syllables = rng.choice((1, 2, 2, 2, 3, 3, 4))
            word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
            word += rng.choice(_CODAS)
            if word not in seen:
                seen.add(word)
                words.append(word)
        # Function words are frequent; content words follow a Zipf law.
        self.words = FUNCTION_WORDS + words
        content_weights = [1.0 / (rank + 10) for rank in range(len(words))]
        # About 45% of the tokens are function words, like English prose.
        function_weight = 0.8 * sum(content_weights) / len(FUNCTION_WORDS)
        weights = [function_weight] * len(FUNCTION_WORDS) + content_weights
        self.cum_weights = list(itertools.accumulate(weights))
        self.content = words
        rng.shuffle(self.content)
        self.names = [w.capitalize() for w in self.content[:3000]]

    def draw(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum_weights, k=k)


def _title(rng: random.Random, vocab: Vocabulary) -> str:
    words = [rng.choice(vocab.names)] + vocab.draw(rng, rng.randint(4, 9))
    title = " ".join(w.capitalize() if len(w) > 3 else w for w in words)
    if rng.random() < 0.25:
        title = f"‘{title.split(' ', 1)[0]}’ {title.split(' ', 1)[1]}" if " " in title else title
    return title[0].upper() + title[1:]


def _sentence(rng: random.Random, words: list[str], vocab: Vocabulary) -> str:
    """One sentence from ``words`` with names, numbers and typography mixed in."""
    words = list(words)
    n = len(words)
    roll = rng.random()
    if roll < 0.25:  # a name with an honorific and a non-breaking space
        i = rng.randrange(n)
        words[i] = f"{rng.choice(HONORIFICS)}{NBSP}{rng.choice(vocab.names)}"
    elif roll < 0.45:  # a number and unit joined by a non-breaking space
        i = rng.randrange(n)
        words[i] = f"{rng.randint(2, 9999)}{NBSP}{rng.choice(UNITS)}"
    elif roll < 0.6:  # possessive with a curly apostrophe
        i = rng.randrange(n)
        words[i] = f"{rng.choice(vocab.names)}’s"
    if rng.random() < 0.3 and n > 6:  # a curly-quoted phrase
        i = rng.randrange(n - 3)
        words[i] = "“" + words[i]
        words[i + 2] = words[i + 2] + "”"
    if rng.random() < 0.15:
        words[rng.randrange(n)] = rng.choice(vocab.names)
    if n > 10 and rng.random() < 0.3:
        words[rng.randrange(3, n - 2)] += ","
    text = " ".join(words)
    if rng.random() < 0.03:
        text = text.replace(" ", "  ", 1)  # the seed's double space
    return text[0].upper() + text[1:] + "."


def _body_paragraphs(rng: random.Random, vocab: Vocabulary) -> list[str]:
    target = rng.randint(300, 800)
    words = vocab.draw(rng, target)
    paragraphs: list[str] = []
    position = 0
    while position < target:
        sentences = []
        for _ in range(rng.randint(1, 4)):
            length = min(rng.randint(8, 28), target - position)
            if length <= 0:
                break
            if length < 4 and sentences:
                break
            sentences.append(_sentence(rng, words[position:position + max(length, 4)], vocab))
            position += length
        if not sentences:
            break
        paragraph = " ".join(sentences)
        if rng.random() < 0.05:
            paragraph += " "  # the seed's trailing space
        paragraphs.append(paragraph)
    return paragraphs


def _dateline(rng: random.Random) -> tuple[str, str]:
    """(seed-style dateline, ISO 8601 timestamp) for one article."""
    year = rng.randint(2012, 2024)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    hour, minute, second = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    weekday = WEEKDAYS[datetime.date(year, month, day).weekday()]
    dateline = f"{weekday} {MONTHS[month - 1]} {day:02d}, {year} {hour:02d}:{minute:02d}:{second:02d}"
    iso = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"
    return dateline, iso


def _related_items(rng: random.Random, vocab: Vocabulary, iso: str) -> list[dict[str, str]]:
    base_id = rng.randint(1_000_000, 2_999_999)
    sort = rng.randint(1_000_000, 9_999_999)
    date_path = iso[:10].replace("-", "/")
    items = []
    for k in range(rng.randint(2, 6)):
        stamp = rng.randint(636_000_000_000_000_000, 636_999_999_999_999_999)
        items.append({
            "id": str(base_id + k * rng.randint(1, 400)),
            "sort": str(sort - k),
            "contenttypeid": "21",
            "pic": f"/{date_path}/alalam_{stamp}_25f_4x3.jpg",
            "title": _title(rng, vocab),
        })
    return items


def _var_dump_related(rng: random.Random, vocab: Vocabulary, iso: str) -> str:
    """The seed's leak: ``string(N) "[{...} ,{...} ]"`` with N in UTF-8 bytes."""
    items = _related_items(rng, vocab, iso)
    payload = "[" + " ,".join(orjson.dumps(item).decode("utf-8") for item in items) + " ]"
    return f'string({len(payload.encode("utf-8"))}) "{payload}"'


def _print_r(rng: random.Random, vocab: Vocabulary, iso: str) -> str:
    item = _related_items(rng, vocab, iso)[0]
    lines = ["Array", "("]
    lines += [f"    [{key}] => {value}" for key, value in item.items()]
    lines.append(")")
    return "\n".join(lines) + "\n"


def _var_export(rng: random.Random, vocab: Vocabulary, iso: str) -> str:
    item = _related_items(rng, vocab, iso)[0]
    lines = ["array ("]
    for key, value in item.items():
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        lines.append(f"  '{key}' => '{escaped}',")
    lines.append(")")
    return "\n".join(lines)


_WARNING_KEYS = ("thumb", "pic", "author", "caption", "x", "related", "tags", "video")
_WARNING_FILES = ("/var/www/html/a.php", "/var/www/html/news/single.php",
                  "/var/www/html/inc/related.php", "/var/www/html/index.php")


def _warning(rng: random.Random) -> str:
    key = rng.choice(_WARNING_KEYS)
    return (f'Warning: Undefined array key "{key}" in {rng.choice(_WARNING_FILES)} '
            f"on line {rng.randint(3, 400)}")


def _add_php_leak(rng: random.Random, vocab: Vocabulary, paragraphs: list[str], iso: str) -> str:
    """Puts one leak into ``paragraphs``; returns the joined body."""
    kind = rng.random()
    if kind < 0.70:
        dump = _var_dump_related(rng, vocab, iso)
        if rng.random() < 0.5:
            return "\n\n".join(paragraphs) + "\n\n" + dump  # the seed's shape
        return "\n\n".join(paragraphs).rstrip() + dump  # glued to the last sentence
    if kind < 0.85:
        block = _print_r(rng, vocab, iso) if rng.random() < 0.5 else _var_export(rng, vocab, iso)
        if rng.random() < 0.5 or len(paragraphs) < 2:
            return "\n\n".join(paragraphs) + "\n\n" + block
        i = rng.randrange(1, len(paragraphs))
        return "\n\n".join(paragraphs[:i]) + "\n\n" + block + "\n\n" + "\n\n".join(paragraphs[i:])
    if len(paragraphs) < 2:
        return "\n\n".join(paragraphs) + "\n\n" + _warning(rng) + "\n"
    i = rng.randrange(1, len(paragraphs))
    # PHP prints "\nWarning: ... on line N\n" where the template breaks off.
    return "\n\n".join(paragraphs[:i]) + "\n\n" + _warning(rng) + "\n\n" + "\n\n".join(paragraphs[i:])


def _slug(title: str) -> str:
    kept = "".join(c.lower() if c.isalnum() else "-" for c in title if c.isascii())
    return "-".join(part for part in kept.split("-") if part)[:60]


def make_article(seed: int, index: int, vocab: Vocabulary) -> tuple[dict[str, str], random.Random]:
    """Record ``index`` of the corpus (before any re-scrape substitution)."""
    rng = random.Random(f"{seed}:{index}")
    section = SECTIONS[rng.randrange(len(SECTIONS))]
    title = _title(rng, vocab)
    dateline, iso = _dateline(rng)
    paragraphs = _body_paragraphs(rng, vocab)
    if rng.random() < PHP_LEAK_RATE:
        body = _add_php_leak(rng, vocab, paragraphs, iso)
    else:
        body = "\n\n".join(paragraphs)
    if rng.random() < REPEATED_TITLE_RATE:
        body = f"{title}\n\n{title}\n{dateline}\n\n{body}"
    if rng.random() < MOJIBAKE_RATE:
        title = title.encode("utf-8").decode(_MOJIBAKE_CODEC)
        body = body.encode("utf-8").decode(_MOJIBAKE_CODEC)
    record_id = f"{section}-{index}"
    return {
        "id": record_id,
        "url": f"https://www.example-news.com/{section}/{iso[:10].replace('-', '/')}/{_slug(title)}-{index}",
        "title": title,
        "text": body,
        "published": iso,
    }, rng


def generate(n: int, seed: int = 0) -> Iterator[dict[str, str]]:
    """The records of an ``n``-record corpus, streamed."""
    vocab = Vocabulary()
    recent: collections.deque[dict[str, str]] = collections.deque(maxlen=RESCRAPE_WINDOW)
    for index in range(n):
        record, rng = make_article(seed, index, vocab)
        if recent and rng.random() < RESCRAPE_RATE:
            original = recent[rng.randrange(len(recent))]
            title = original["title"]
            if rng.random() < 0.5:
                title = f"{title} - {rng.choice(SITES)}"
            section = original["id"].rsplit("-", 1)[0]
            record = {
                "id": f"{section}-{index}",
                "url": original["url"].rsplit("-", 1)[0] + f"-{index}",
                "title": title,
                "text": original["text"],
                "published": original["published"],
            }
        else:
            recent.append(record)
        yield record


def write_corpus(n: int, path: str, seed: int = 0) -> int:
    """Writes the corpus; returns the number of bytes written."""
    written = 0
    with open(path, "wb", buffering=1 << 20) as out:
        batch: list[bytes] = []
        for record in generate(n, seed):
            batch.append(orjson.dumps(record))
            if len(batch) >= 1000:
                chunk = b"\n".join(batch) + b"\n"
                out.write(chunk)
                written += len(chunk)
                batch.clear()
        if batch:
            chunk = b"\n".join(batch) + b"\n"
            out.write(chunk)
            written += len(chunk)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("n", type=int, metavar="N", help="number of records")
    parser.add_argument("output", metavar="OUT.jsonl", help="output path")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("N must be >= 0")
    started = time.monotonic()
    size = write_corpus(args.n, args.output, args.seed)
    seconds = time.monotonic() - started
    print(f"wrote {args.n} records, {size / 1e6:.1f} MB to {args.output} in {seconds:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
