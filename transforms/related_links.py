"""Related-links stage: turns leaked related-article lists into typed records.

News CMSs often leak the page's "related articles" list into the text, e.g.
(the real seed, as PHP ``var_dump`` of a JSON string)::

    string(946) "[{"id":"1995016","sort":"5058101","contenttypeid":"21",
                  "pic":"/2017/07/11/alalam_…_4x3.jpg",
                  "title":"US Soldier Arrested over Links with ISIS"} ,{…} ]"

The ``php-leaks`` stage removes the leak from the text and leaves its parsed
value(s) in the transient ``Document.php_values``. This stage reads those
values (never the text), finds every related-article list in them and emits
one :class:`RelatedLink` per article::

    {"doc_id": "000_….txt", "list_index": 0, "position": 0,
     "link_id": "1995016", "title": "US Soldier Arrested over Links with ISIS",
     "url": null, "url_absolute": null,
     "image": "/2017/07/11/alalam_…_4x3.jpg",
     "image_absolute": "https://en.alalam.ir/2017/07/11/alalam_…_4x3.jpg",
     "sort": 5058101, "content_type_id": 21, "published": null, "extra": {}}

What counts as a related-links list (see :func:`find_link_lists`):

* a list, or a PHP array dumped as a dict whose keys are all ``"0"``, ``"1"``
  … (any decimal keys, kept in dump order), found anywhere up to
  ``max_depth`` levels deep in a value, including JSON held in a string;
* whose elements are mostly (``min_link_fraction``, default 80 %) and at
  least once *link records*: dicts (or dumped objects, dicts with a first key
  ``"__class__"``) with a non-empty title-like field (title/headline/name)
  and at least one id-like (id/nid/post_id/article_id), url-like
  (url/link/href/permalink) or image-like (pic/image/thumbnail/img/photo)
  field. A record titled only by ``name`` needs a url or an image (an
  ``{id, name}`` pair is a category or a tag far more often than an
  article), and records with user fields (email, password, username …)
  never count.

Lists of numbers, config arrays, a single article dict and user records are
not related-links lists. A list that is found twice (the php-leaks stage
keeps both the JSON string and its parsed value) is emitted once, and a link
repeated within one document (same content type and ``link_id``; without an
id, same url; without either, same title) is emitted once.

Record keys (JSON form, :func:`related_link_to_json`): ``doc_id``,
``list_index`` (which list of the document, 0-based, in discovery order),
``position`` (the element's index in its list, 0-based; elements that are
not link records are skipped, so positions can have gaps), ``link_id``,
``title`` (typography-normalised), ``url``, ``url_absolute``, ``image``,
``image_absolute`` (raw values, and ``urljoin`` against ``base_url`` or the
document's own url when one is known), ``sort``, ``content_type_id``
(integers, or null when absent or not an integer; a non-integer raw value is
kept in ``extra``), ``published`` (ISO 8601 when parsable, else the raw
value as text) and ``extra`` (every other field, a JSON object; a JSON
string in the :class:`RelatedLink` row and in Parquet).

Counters (namespace ``newswash``, prefix ``related-links.``):
``documents_with_links``, ``links``, ``duplicate_links_dropped``,
``lists_found``, ``records_skipped`` (elements of a related-links list that
are not link records), plus the shared ``documents_in``,
``documents_changed`` and ``dead_letter``.

Usage (the pipeline applies it after typography)::

    outputs = documents | "ExtractRelatedLinks" >> ExtractRelatedLinks(
        RelatedLinksConfig(base_url="https://en.alalam.ir"))
    outputs[DOCUMENTS], outputs[DEAD_LETTER], outputs[RELATED_LINKS]

Run it as part of ``newswash run --input 'samples/*' --output out/``
(DirectRunner) or add ``--runner=FlinkRunner`` / ``DataflowRunner`` flags.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import email.utils
import functools
import json
import math
import re
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence
from urllib.parse import urljoin, urlsplit

import apache_beam as beam
import ftfy
import orjson

from transforms._json import dumps_json

from transforms.document import Document
from transforms.stage import DEAD_LETTER, DOCUMENTS, StageResult, apply_stage

__all__ = [
    "STAGE",
    "RELATED_LINKS",
    "COUNTERS",
    "RelatedLink",
    "RelatedLinksConfig",
    "ExtractRelatedLinks",
    "make_stage_function",
    "LinkList",
    "find_link_lists",
    "extract_links",
    "is_link_record",
    "parse_published",
    "parse_int",
    "fallback_normalize_title",
    "default_title_normalizer",
    "collapse_whitespace",
    "related_link_to_json",
    "related_link_from_json",
    "related_link_json_line",
]

STAGE = "related-links"
RELATED_LINKS = "related_links"

COUNTERS = ("documents_with_links", "links", "duplicate_links_dropped", "lists_found", "records_skipped")

# Field-name variants, matched on the lower-cased name without "_", "-" or
# spaces (so "content_type_id", "contentTypeId" and "contenttypeid" are one),
# in priority order: the first variant a record has wins the role.
ID_FIELDS = ("id", "nid", "postid", "articleid")
TITLE_FIELDS = ("title", "headline", "name")
IMAGE_FIELDS = ("pic", "image", "thumbnail", "img", "photo")
URL_FIELDS = ("url", "link", "href", "permalink")
DATE_FIELDS = ("date", "published", "pubdate", "created")
SORT_FIELDS = ("sort", "order", "weight")
CONTENT_TYPE_FIELDS = ("contenttypeid", "type")
# A record with any of these is a person or an account, not an article.
USER_FIELDS = frozenset(("email", "mail", "emailaddress", "password", "passwd", "username", "login", "phone"))

CLASS_KEY = "__class__"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class RelatedLink(NamedTuple):
    """One related link of one document (a Beam schema row, see module docs).

    ``extra`` is a JSON object *as text* here (Beam schemas and Parquet have
    no "any JSON" type); :func:`related_link_to_json` decodes it.
    """

    doc_id: str
    list_index: int
    position: int
    link_id: Optional[str]
    title: str
    url: Optional[str]
    url_absolute: Optional[str]
    image: Optional[str]
    image_absolute: Optional[str]
    sort: Optional[int]
    content_type_id: Optional[int]
    published: Optional[str]
    extra: str

    def to_json(self) -> dict[str, Any]:
        """The JSON record (``extra`` as an object)."""
        return related_link_to_json(self)


beam.coders.registry.register_coder(RelatedLink, beam.coders.RowCoder)


def related_link_to_json(row: RelatedLink | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-compatible dict of a :class:`RelatedLink` (keys in field order).

    Also accepts the stage's JSON record (returned as a copy), so writers work
    on either form.
    """
    if isinstance(row, Mapping):
        return related_link_to_json(related_link_from_json(row))
    record = row._asdict()
    # The standard library keeps integers beyond 64 bits exact; orjson would
    # read them as floats.
    record["extra"] = json.loads(row.extra) if row.extra else {}
    return record


def related_link_from_json(record: RelatedLink | Mapping[str, Any]) -> RelatedLink:
    """The :class:`RelatedLink` row of a JSON record (``extra`` as dict or JSON text)."""
    if isinstance(record, RelatedLink):
        return record
    values = {name: record.get(name) for name in RelatedLink._fields}
    extra = values["extra"]
    if extra is None:
        extra = {}
    values["extra"] = extra if isinstance(extra, str) else _dumps(extra)
    return RelatedLink(**values)


def related_link_json_line(row: RelatedLink | Mapping[str, Any]) -> bytes:
    """One JSONL line (without the newline) for a link row or record."""
    return _dumps(related_link_to_json(row)).encode("utf-8")


def _dumps(value: Any) -> str:
    """Compact, valid JSON text; never raises (see :mod:`transforms._json`)."""
    return dumps_json(value).decode("utf-8")


@dataclasses.dataclass(frozen=True)
class RelatedLinksConfig:
    """Settings of the related-links stage.

    Attributes:
      base_url: absolute URL that relative ``url``/``image`` values are
        resolved against (``urljoin``); when unset, the document's own
        ``url`` is used if it is absolute, else relative links get no
        ``*_absolute`` value. Links that are already absolute are their own
        ``*_absolute`` value.
      min_link_fraction: share of a list's elements that must be link
        records for the list to count (0 < f <= 1).
      max_depth: how deep nested arrays/objects/JSON strings are searched (1..100).
      max_json_chars: longest string that is tried as embedded JSON.
      max_nodes: values visited per document at most (bounds hostile input).
    """

    base_url: str | None = None
    min_link_fraction: float = 0.8
    max_depth: int = 6
    max_json_chars: int = 4 * 1024 * 1024
    max_nodes: int = 200_000

    def __post_init__(self) -> None:
        if self.base_url is not None and not _is_absolute(self.base_url):
            raise ValueError(f"base_url must be an absolute URL like https://example.org/, got {self.base_url!r}")
        if not 0 < self.min_link_fraction <= 1:
            raise ValueError(f"min_link_fraction must be in (0, 1], got {self.min_link_fraction!r}")
        if not 1 <= self.max_depth <= 100:  # the search recurses once per level
            raise ValueError(f"max_depth must be in 1..100, got {self.max_depth!r}")
        if self.max_json_chars < 2:
            raise ValueError(f"max_json_chars must be >= 2, got {self.max_json_chars!r}")
        if self.max_nodes < 1:
            raise ValueError(f"max_nodes must be >= 1, got {self.max_nodes!r}")


# ---------------------------------------------------------------------------
# Pure functions


def _is_absolute(url: str) -> bool:
    if isinstance(url, str) and ":" not in url:  # no scheme, whatever urlsplit makes of the rest
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc)


_FIELD_SEPARATORS = re.compile(r"[\s_\-]+")


@functools.lru_cache(maxsize=4096)
def _field_key(name: str) -> str:
    # Records of one list (and of one site) share their few field names:
    # the cache turns ~10 substitutions per record into dict hits.
    return _FIELD_SEPARATORS.sub("", name).lower()


def _present(value: Any) -> bool:
    """A usable scalar: non-empty text or a number (not bool)."""
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ROLE_VARIANTS = (("id", ID_FIELDS), ("title", TITLE_FIELDS), ("image", IMAGE_FIELDS),
                  ("url", URL_FIELDS), ("date", DATE_FIELDS), ("sort", SORT_FIELDS),
                  ("content_type", CONTENT_TYPE_FIELDS))
# Roles whose field counts even when its value is empty.
_ROLES_WITHOUT_VALUE = frozenset(("date", "sort", "content_type"))
# Records with more fields than this are read without the per-shape cache
# (hostile input must not fill it with huge key tuples).
_MAX_CACHED_FIELDS = 64


class _Shape(NamedTuple):
    """What a record's field names alone decide (see :func:`_roles`)."""

    has_user_field: bool
    # (role, needs a present value, the record's keys for it by priority)
    candidates: tuple[tuple[str, bool, tuple[Any, ...]], ...]


def _shape_of(keys: tuple[Any, ...]) -> _Shape:
    by_key: dict[str, Any] = {}
    for key in keys:
        if isinstance(key, str) and key != CLASS_KEY:
            by_key.setdefault(_field_key(key), key)
    candidates = []
    for role, variants in _ROLE_VARIANTS:
        keys_for_role = tuple(by_key[v] for v in variants if v in by_key)
        if keys_for_role:
            candidates.append((role, role not in _ROLES_WITHOUT_VALUE, keys_for_role))
    has_user_field = any(isinstance(k, str) and _field_key(k) in USER_FIELDS for k in keys)
    return _Shape(has_user_field, tuple(candidates))


_cached_shape = functools.lru_cache(maxsize=1024)(_shape_of)


def _shape(record: Mapping[str, Any]) -> _Shape:
    """The field-name facts of ``record``, cached per tuple of names: the
    records of one list share them."""
    keys = tuple(record)
    return _cached_shape(keys) if len(keys) <= _MAX_CACHED_FIELDS else _shape_of(keys)


def _roles(record: Mapping[str, Any], shape: _Shape | None = None) -> dict[str, str]:
    """role -> the record's key that plays it (first variant by priority)."""
    roles: dict[str, str] = {}
    for role, needs_value, keys in (shape if shape is not None else _shape(record)).candidates:
        for key in keys:
            if not needs_value or _present(record[key]):
                roles[role] = key
                break
    return roles


def is_link_record(value: Any) -> bool:
    """Whether ``value`` looks like one related article (see module docs)."""
    if not isinstance(value, dict) or not value:
        return False
    shape = _shape(value)
    if shape.has_user_field:
        return False
    roles = _roles(value, shape)
    title_key = roles.get("title")
    if title_key is None or not isinstance(value[title_key], str):
        return False
    if _field_key(title_key) == "name":
        return "url" in roles or "image" in roles
    return "id" in roles or "url" in roles or "image" in roles


def _as_list(value: Any) -> list[tuple[int, Any]] | None:
    """``(index, element)`` pairs when ``value`` is list-shaped, else None.

    A PHP array with integer keys arrives as a dict with decimal string keys;
    it is list-shaped and keeps dump order (positions are the order, not the
    keys, which PHP does not keep dense).
    """
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, dict) and value and CLASS_KEY not in value and \
            all(isinstance(k, str) and k.isascii() and k.isdigit() for k in value):
        return list(enumerate(value.values()))
    return None


def _looks_like_json(text: str, max_chars: int) -> bool:
    if len(text) < 2 or len(text) > max_chars:
        return False
    stripped = text.strip()
    return (stripped[:1], stripped[-1:]) in (("[", "]"), ("{", "}"))


class LinkList(NamedTuple):
    """A related-links list: its link records as ``(index, record)`` pairs
    and the number of elements the list has (link records or not)."""

    records: list[tuple[int, dict[str, Any]]]
    length: int


def find_link_lists(
    values: Sequence[Any],
    *,
    min_link_fraction: float = 0.8,
    max_depth: int = 6,
    max_json_chars: int = 4 * 1024 * 1024,
    max_nodes: int = 200_000,
) -> list[LinkList]:
    """Every related-links list in ``values``, in depth-first order.

    A qualifying list is not searched further; any other list, dict or JSON
    string is, up to ``max_depth`` levels below each value. The same list
    seen twice is returned twice (:func:`extract_links` folds repeats).
    """
    found: list[LinkList] = []
    budget = [max_nodes]

    def visit(value: Any, depth: int) -> None:
        if budget[0] <= 0 or depth > max_depth:
            return
        budget[0] -= 1
        if isinstance(value, str):
            if _looks_like_json(value, max_json_chars):
                try:
                    parsed = orjson.loads(value)
                except orjson.JSONDecodeError:
                    return
                visit(parsed, depth + 1)
            return
        elements = _as_list(value)
        if elements is not None:
            records = [(i, e) for i, e in elements if is_link_record(e)]
            if records and len(records) >= min_link_fraction * len(elements):
                found.append(LinkList(records, len(elements)))
                return
            for _, element in elements:
                visit(element, depth + 1)
            return
        if isinstance(value, dict):
            for key, element in value.items():
                if key != CLASS_KEY:
                    visit(element, depth + 1)

    for value in values:
        visit(value, 0)
    return found


_INT_TEXT = re.compile(r"[+-]?\d{1,19}")


def parse_int(value: Any) -> int | None:
    """An int from an int, an integral float or decimal text (print_r), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        result = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        result = int(value.strip())
    else:
        return None
    return result if _INT64_MIN <= result <= _INT64_MAX else None


# Formats tried after ISO 8601 and RFC 2822, all unambiguous (no d/m vs m/d).
_DATE_FORMATS = (
    "%a %b %d, %Y %H:%M:%S",  # Sun Jul 16, 2017 13:18:15 (the seed's site)
    "%a %b %d, %Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d",
    "%B %d, %Y %H:%M",
    "%B %d, %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%Y%m%d",
)
_DATETIME_CLASSES = frozenset(("DateTime", "DateTimeImmutable", "Carbon\\Carbon", "Carbon\\CarbonImmutable"))


def _epoch_to_iso(seconds: float) -> str | None:
    try:
        moment = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat()


def _php_datetime_to_iso(value: Mapping[str, Any]) -> str | None:
    """ISO text of a dumped PHP DateTime object (``date``, ``timezone_type``, ``timezone``)."""
    date = value.get("date")
    if not isinstance(date, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(date.strip())
    except ValueError:
        return None
    zone = value.get("timezone")
    if isinstance(zone, str) and moment.tzinfo is None:
        zone = zone.strip()
        if re.fullmatch(r"[+-]\d\d:\d\d", zone):
            sign = -1 if zone[0] == "-" else 1
            offset = _dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            moment = moment.replace(tzinfo=_dt.timezone(sign * offset))
        elif zone in ("UTC", "Z", "GMT"):
            moment = moment.replace(tzinfo=_dt.timezone.utc)
        elif "/" in zone:
            try:
                from zoneinfo import ZoneInfo  # pylint: disable=import-outside-toplevel

                moment = moment.replace(tzinfo=ZoneInfo(zone))
            except (ImportError, ValueError, KeyError, OSError):
                pass
    return moment.isoformat()


def parse_published(value: Any) -> str | None:
    """ISO 8601 text for a date value when it can be read, else the raw
    value as text; None for an absent or empty value.

    Understood: ISO 8601 / SQL ``YYYY-MM-DD HH:MM:SS``, RFC 2822, a few
    unambiguous English formats, Unix seconds or milliseconds (as numbers
    or digit strings of 9-10 / 12-13 digits, read as UTC), ``YYYYMMDD``,
    and dumped PHP ``DateTime`` objects. A time zone is never invented:
    naive inputs give naive ISO text, date-only inputs give ``YYYY-MM-DD``.
    """
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    if isinstance(value, dict):
        class_name = value.get(CLASS_KEY)
        if (isinstance(class_name, str) and class_name in _DATETIME_CLASSES) or (
                "date" in value and "timezone" in value):
            iso = _php_datetime_to_iso(value)
            if iso is not None:
                return iso
        return _dumps(value)
    if isinstance(value, (int, float)):
        # Only plausible Unix times (1973-2286 in seconds or milliseconds);
        # a bare 2017 or 0 is not a date.
        if 1e11 <= value < 1e14:
            return _epoch_to_iso(value / 1000.0) or str(value)
        if 1e8 <= value < 1e10:
            return _epoch_to_iso(float(value)) or str(value)
        return str(value)
    if not isinstance(value, str):
        return _dumps(value)
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        if len(text) == 8:
            try:
                return _dt.datetime.strptime(text, "%Y%m%d").date().isoformat()
            except ValueError:
                return value
        if len(text) in (9, 10):
            return _epoch_to_iso(int(text)) or value
        if len(text) in (12, 13):
            return _epoch_to_iso(int(text) / 1000.0) or value
        return value
    try:
        if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
            return _dt.date.fromisoformat(text).isoformat()
        return _dt.datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    if "," in text[:5] or re.search(r"[+-]\d{4}$|GMT$|UT$", text):
        try:
            return email.utils.parsedate_to_datetime(text).isoformat()
        except (TypeError, ValueError, IndexError):
            pass
    for pattern in _DATE_FORMATS:
        try:
            moment = _dt.datetime.strptime(text, pattern)
        except ValueError:
            continue
        has_time = "%H" in pattern
        return moment.isoformat() if has_time else moment.date().isoformat()
    return value


_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
})
_FALLBACK_FTFY = ftfy.TextFixerConfig(uncurl_quotes=True, explain=False)


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def fallback_normalize_title(text: str) -> str:
    """The title rules used when the typography stage is not installed:
    ``ftfy.fix_text`` (mojibake, HTML entities, curly quotes), straight
    quotes, whitespace collapsed to single spaces.

    Repeated until nothing changes (a few passes at most): one pass of
    ftfy is not idempotent ("\\xa0\u00dc\\x86": the C1 control becomes
    "\u2020", and the pair "\u00dc\u2020" is mojibake to a second pass).
    """
    for _ in range(_FALLBACK_PASSES):
        fixed = collapse_whitespace(ftfy.fix_text(text, _FALLBACK_FTFY).translate(_QUOTES))
        if fixed == text:
            break
        text = fixed
    return text


# A bound, not a budget: real titles settle in one or two passes.
_FALLBACK_PASSES = 16


def default_title_normalizer() -> Callable[[str], str]:
    """The typography stage's normaliser with its default config when that
    module is importable, else :func:`fallback_normalize_title`."""
    try:
        from transforms import typography  # pylint: disable=import-outside-toplevel
    except ImportError:
        return fallback_normalize_title
    normalizer_class = getattr(typography, "TypographyNormalizer", None)
    config_class = getattr(typography, "TypographyConfig", None)
    if normalizer_class is None or config_class is None:
        return fallback_normalize_title
    normalizer = normalizer_class(config_class())

    def normalize(text: str) -> str:
        return collapse_whitespace(normalizer.normalize(text)[0])

    return normalize


def _text(value: Any) -> str | None:
    """A raw url/image/id value as text (None when absent or empty)."""
    if not _present(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else str(value)


# A plain absolute path: no scheme, netloc, query, fragment, params or dot
# segment, and no character urlsplit strips or splits at (see _absolute).
_PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9_\-.~%/]*")


@functools.lru_cache(maxsize=256)
def _http_root(base: str) -> str | None:
    """``scheme://netloc`` of an http(s) ``base``, else None."""
    try:
        parts = urlsplit(base)
    except ValueError:
        return None
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


@functools.lru_cache(maxsize=4096)
def _absolute(base: str | None, value: str | None) -> str | None:
    # Cached: a site's related lists repeat the same articles across pages.
    if value is None:
        return None
    if base is not None and value[:1] == "/" and "/." not in value and _PLAIN_PATH.fullmatch(value):
        # What urljoin returns for a plain absolute path against an http(s)
        # base (no dot segment to resolve, nothing for urlsplit to strip),
        # at a tenth of its cost: the images of related lists are such paths.
        root = _http_root(base)
        if root is not None:
            return root + value
    if _is_absolute(value):
        return value  # already absolute: usable without any base
    if base is None:
        return None
    try:
        return urljoin(base, value)
    except ValueError:
        return None


def _link_record(
    doc_id: str, list_index: int, position: int, record: Mapping[str, Any],
    normalize_title: Callable[[str], str], base: str | None,
) -> dict[str, Any]:
    roles = _roles(record)
    consumed = set(roles.values())
    extra = {k: v for k, v in record.items() if k not in consumed}
    sort = content_type_id = None
    if "sort" in roles:
        sort = parse_int(record[roles["sort"]])
        if sort is None and record[roles["sort"]] not in (None, ""):
            extra[roles["sort"]] = record[roles["sort"]]
    if "content_type" in roles:
        content_type_id = parse_int(record[roles["content_type"]])
        if content_type_id is None and record[roles["content_type"]] not in (None, ""):
            extra[roles["content_type"]] = record[roles["content_type"]]
    url = _text(record.get(roles["url"])) if "url" in roles else None
    image = _text(record.get(roles["image"])) if "image" in roles else None
    return {
        "doc_id": doc_id,
        "list_index": list_index,
        "position": position,
        "link_id": _text(record[roles["id"]]) if "id" in roles else None,
        "title": normalize_title(record[roles["title"]]),
        "url": url,
        "url_absolute": _absolute(base, url),
        "image": image,
        "image_absolute": _absolute(base, image),
        "sort": sort,
        "content_type_id": content_type_id,
        "published": parse_published(record[roles["date"]]) if "date" in roles else None,
        "extra": extra,
    }


_IDENTICAL_MAX_DEPTH = 32
_SCALAR_TYPES = frozenset((str, int, bool, type(None)))


def _identical(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two values are the same JSON-like value down to the types,
    the key order and the sign of zero (``==`` says ``1 == 1.0 == True`` and
    ignores key order; the link records tell those apart). False when unsure
    (other types, too deep), which only costs the work it was meant to save.
    """
    kind = type(a)
    if kind is not type(b):
        return False
    if kind in _SCALAR_TYPES:
        return a == b
    if kind is float:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if depth > _IDENTICAL_MAX_DEPTH:
        return False
    if kind is dict:
        if len(a) != len(b):
            return False
        for (key_a, value_a), (key_b, value_b) in zip(a.items(), b.items()):
            value_kind = type(value_a)
            if type(key_a) is not type(key_b) or key_a != key_b or value_kind is not type(value_b):
                return False
            if value_kind in _SCALAR_TYPES:  # inline: most fields are text or ints
                if value_a != value_b:
                    return False
            elif not _identical(value_a, value_b, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        return len(a) == len(b) and all(_identical(x, y, depth + 1) for x, y in zip(a, b))
    return False


def _repeats_a_list(found: LinkList, earlier: list[LinkList]) -> bool:
    """``found`` is identical to a list already handled in this document.

    The php-leaks stage keeps a JSON payload both as text and parsed, so
    most lists are found twice. An identical list gives identical link
    records and so the fingerprint of the earlier one (already in the seen
    set, or it had no candidates): it is skipped without building them.
    """
    return any(
        other.length == found.length and len(other.records) == len(found.records)
        and _identical(other.records, found.records)
        for other in earlier)


def _link_key(link: Mapping[str, Any]) -> tuple[Any, ...]:
    if link["link_id"] is not None:
        return ("id", link["content_type_id"], link["link_id"])
    if link["url"] is not None:
        return ("url", link["url_absolute"] or link["url"])
    return ("title", link["title"].casefold())


def extract_links(
    doc_id: str,
    values: Sequence[Any],
    config: RelatedLinksConfig,
    normalize_title: Callable[[str], str] = fallback_normalize_title,
    base_url: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The related-link records (JSON form) found in ``values`` and the counts.

    ``base_url`` (absolute) is used when ``config.base_url`` is unset.
    """
    counts = dict.fromkeys(COUNTERS, 0)
    links: list[dict[str, Any]] = []
    if not values:  # most documents had no leak
        return links, counts
    seen_links: set[tuple[Any, ...]] = set()
    seen_lists: set[tuple[tuple[Any, ...], ...]] = set()
    lists = find_link_lists(
        values, min_link_fraction=config.min_link_fraction, max_depth=config.max_depth,
        max_json_chars=config.max_json_chars, max_nodes=config.max_nodes)
    if not lists:
        return links, counts
    # Only now: urlsplit of the document's url costs more than the search.
    base = config.base_url or (base_url if base_url and _is_absolute(base_url) else None)
    handled: list[LinkList] = []
    for found in lists:
        if _repeats_a_list(found, handled):
            continue  # the same list again, without building its records
        handled.append(found)
        candidates = []
        for position, record in found.records:
            link = _link_record(doc_id, len(seen_lists), position, record, normalize_title, base)
            if link["title"]:
                candidates.append(link)
        fingerprint = tuple(_link_key(link) for link in candidates)
        if not candidates or fingerprint in seen_lists:
            continue  # the same list again (e.g. JSON string and its parsed value)
        seen_lists.add(fingerprint)
        counts["lists_found"] += 1
        counts["records_skipped"] += found.length - len(candidates)
        for link in candidates:
            key = _link_key(link)
            if key in seen_links:
                counts["duplicate_links_dropped"] += 1
                continue
            seen_links.add(key)
            links.append(link)
    counts["links"] = len(links)
    counts["documents_with_links"] = int(bool(links))
    return links, counts


# ---------------------------------------------------------------------------
# Stage


def make_stage_function(
    config: RelatedLinksConfig,
    normalize_title: Callable[[str], str] | None = None,
) -> Callable[[Document], StageResult]:
    """The per-document function. ``normalize_title`` defaults to the
    typography stage's normaliser (resolved here, at setup time), else
    :func:`fallback_normalize_title`."""
    if normalize_title is not None:
        title_normalizer = normalize_title
    else:
        # Pure, and a site's related lists repeat the same articles across
        # its pages.
        title_normalizer = functools.lru_cache(maxsize=4096)(default_title_normalizer())

    def run(document: Document) -> StageResult:
        links, counts = extract_links(
            document.id, document.php_values, config, title_normalizer, document.url)
        n = len(links)
        return StageResult(
            document=document.record_stage(STAGE, n, related_links=n, php_values=()),
            side_records=tuple((RELATED_LINKS, link) for link in links),
            counts=counts)

    return run


class ExtractRelatedLinks(beam.PTransform):
    """Emits the related links in each document's ``php_values``.

    Input: :class:`Document`. Output: a dict with ``documents`` (each
    document with ``related_links`` set and ``php_values`` cleared),
    ``dead_letter`` (:class:`~transforms.stage.DeadLetter`) and
    ``related_links`` (:class:`RelatedLink` schema rows). Counters: see the
    module docstring. ``normalize_title`` must be picklable (a module-level
    function).
    """

    def __init__(self, config: RelatedLinksConfig | None = None,
                 normalize_title: Callable[[str], str] | None = None):
        super().__init__()
        self._config = config or RelatedLinksConfig()
        self._normalize_title = normalize_title

    def expand(self, documents):
        outputs = apply_stage(
            documents, STAGE,
            functools.partial(make_stage_function, self._config, self._normalize_title),
            side_tags=(RELATED_LINKS,))
        rows = outputs[RELATED_LINKS] | "ToRows" >> beam.Map(
            related_link_from_json).with_output_types(RelatedLink)
        return {DOCUMENTS: outputs[DOCUMENTS], DEAD_LETTER: outputs[DEAD_LETTER], RELATED_LINKS: rows}
