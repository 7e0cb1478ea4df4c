"""The related-links stage: list recognition, link records, the stage function
and the composite. The php_values are built here (no php-leaks dependency)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import apache_beam as beam
import orjson
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.document import Document
from transforms.related_links import (
    COUNTERS,
    RELATED_LINKS,
    STAGE,
    ExtractRelatedLinks,
    RelatedLink,
    RelatedLinksConfig,
    default_title_normalizer,
    extract_links,
    fallback_normalize_title,
    find_link_lists,
    is_link_record,
    make_stage_function,
    parse_int,
    parse_published,
    related_link_from_json,
    related_link_json_line,
    related_link_to_json,
)
from transforms.stage import DEAD_LETTER, DOCUMENTS, METRICS_NAMESPACE, ApplyStageFn

SEED = Path("/work/shared/seeds/000_564ceb310d2225dc.txt")
# The seed's leak, copied byte for byte from its last line, for checkouts
# without the shared seeds (test_embedded_seed_leak_is_the_real_one checks it).
SEED_LEAK = (
    'string(946) "[{"id":"1995016","sort":"5058101","contenttypeid":"21","pic":"/2017/07/11/ala'
    'lam_636353815378625996_25f_4x3.jpg","title":"US Soldier Arrested over Links with ISIS"} ,{'
    '"id":"1995251","sort":"5058100","contenttypeid":"21","pic":"/2017/07/12/alalam_63635447837'
    '2017816_25f_4x3.jpg","title":"US created ISIS, allowed regional states to fund terror grou'
    'p: Nasrallah"} ,{"id":"1996289","sort":"5058099","contenttypeid":"21","pic":"/2017/07/15/a'
    'lalam_636357126379359091_25f_4x3.jpg","title":"Leader of ISIS Afghanistan Branch Dead: Pen'
    'tagon"} ,{"id":"1996344","sort":"5058098","contenttypeid":"21","pic":"/2017/07/15/alalam_6'
    '36357228075497957_25f_4x3.jpg","title":"‘She Bled to Death, Nobody Paid Attention’: ISIS W'
    'ives Share Chilling Stories"} ,{"id":"1996624","sort":"5058097","contenttypeid":"21","pic"'
    ':"/2017/07/16/alalam_636358005231010840_25f_4x3.jpg","title":"ISIS Calls on Followers to K'
    'idnap Kids in UK-Using Snaps of Kings College Choir"} ]"'
)


def seed_text() -> str:
    return SEED.read_text(encoding="utf-8") if SEED.exists() else "Article body.\n\n" + SEED_LEAK


def var_dump_string_payload(text: str) -> str:
    """The payload of the first ``string(N) "…"`` in ``text``: N UTF-8 bytes
    after the opening quote, which must be followed by the closing quote."""
    match = re.search(r'string\((\d+)\) "', text)
    assert match, "no var_dump string in the text"
    size = int(match.group(1))
    rest = text[match.end():].encode("utf-8")
    assert rest[size:size + 1] == b'"', "the byte count does not end at a quote"
    return rest[:size].decode("utf-8")


SEED_PAYLOAD = var_dump_string_payload(seed_text())
SEED_PARSED = orjson.loads(SEED_PAYLOAD)
# What the php-leaks stage leaves for the seed: the string and its JSON value.
SEED_VALUES = (SEED_PAYLOAD, SEED_PARSED)

SEED_IDS = ["1995016", "1995251", "1996289", "1996344", "1996624"]
SEED_SORTS = [5058101, 5058100, 5058099, 5058098, 5058097]
SEED_TITLES = [
    "US Soldier Arrested over Links with ISIS",
    "US created ISIS, allowed regional states to fund terror group: Nasrallah",
    "Leader of ISIS Afghanistan Branch Dead: Pentagon",
    "'She Bled to Death, Nobody Paid Attention': ISIS Wives Share Chilling Stories",
    "ISIS Calls on Followers to Kidnap Kids in UK-Using Snaps of Kings College Choir",
]
SEED_IMAGES = [
    "/2017/07/11/alalam_636353815378625996_25f_4x3.jpg",
    "/2017/07/12/alalam_636354478372017816_25f_4x3.jpg",
    "/2017/07/15/alalam_636357126379359091_25f_4x3.jpg",
    "/2017/07/15/alalam_636357228075497957_25f_4x3.jpg",
    "/2017/07/16/alalam_636358005231010840_25f_4x3.jpg",
]
CONFIG = RelatedLinksConfig()


def links_of(values, config=CONFIG, base_url=None, doc_id="d"):
    return extract_links(doc_id, tuple(values), config, fallback_normalize_title, base_url)


def article(i: int, **overrides):
    record = {"id": str(1000 + i), "sort": str(50 - i), "contenttypeid": "21",
              "pic": f"/img/{i}.jpg", "title": f"Story \u2018{i}\u2019"}
    record.update(overrides)
    return record


# --- the seed ---------------------------------------------------------------------------------


def test_embedded_seed_leak_is_the_real_one():
    assert SEED_LEAK.startswith('string(946) "[{"') and SEED_LEAK.endswith('} ]"')
    if SEED.exists():
        assert SEED.read_text(encoding="utf-8").rstrip("\n").endswith(SEED_LEAK)


def test_seed_helper_reads_the_byte_counted_payload():
    assert len(SEED_PAYLOAD.encode("utf-8")) == 946
    assert len(SEED_PAYLOAD) == 942  # the two curly quotes are 3 bytes each
    assert isinstance(SEED_PARSED, list) and len(SEED_PARSED) == 5


@pytest.mark.parametrize("values", [SEED_VALUES, (SEED_PAYLOAD,), (SEED_PARSED,)],
                         ids=["string_and_parsed", "string_only", "parsed_only"])
def test_seed_yields_its_five_links_in_order(values):
    links, counts = links_of(values)
    assert [link["link_id"] for link in links] == SEED_IDS
    assert [link["position"] for link in links] == [0, 1, 2, 3, 4]
    assert [link["sort"] for link in links] == SEED_SORTS
    assert all(type(link["sort"]) is int for link in links)
    assert [link["content_type_id"] for link in links] == [21] * 5
    assert [link["title"] for link in links] == SEED_TITLES
    assert [link["image"] for link in links] == SEED_IMAGES
    assert all(link["url"] is None and link["url_absolute"] is None for link in links)
    assert all(link["image_absolute"] is None for link in links)  # no base known
    assert all(link["extra"] == {} and link["published"] is None for link in links)
    assert all(link["doc_id"] == "d" and link["list_index"] == 0 for link in links)
    # The string and its parsed value are one list, not two, and not duplicates.
    assert counts == {"documents_with_links": 1, "links": 5, "duplicate_links_dropped": 0,
                      "lists_found": 1, "records_skipped": 0}


def test_seed_images_are_resolved_against_the_document_url_or_the_base_url():
    links, _ = links_of(SEED_VALUES, base_url="https://en.alalam.ir/news/2017/07/16/takfiris")
    assert links[0]["image_absolute"] == "https://en.alalam.ir" + SEED_IMAGES[0]
    config = RelatedLinksConfig(base_url="https://cdn.example.org/media/")
    links, _ = links_of(SEED_VALUES, config=config, base_url="https://en.alalam.ir/x")
    assert links[4]["image_absolute"] == "https://cdn.example.org" + SEED_IMAGES[4]
    # A relative document "url" is no base.
    links, _ = links_of(SEED_VALUES, base_url="news/123")
    assert links[0]["image_absolute"] is None


def test_seed_with_the_default_title_normalizer_straightens_quotes():
    # Whichever normaliser is installed (typography stage or fallback), the
    # only promise relied on is: curly quotes become straight ones.
    run = make_stage_function(CONFIG)
    result = run(Document(id="seed", text="body", php_values=SEED_VALUES))
    titles = [record["title"] for _, record in result.side_records]
    assert len(titles) == 5
    assert titles[3].startswith("'She Bled to Death, Nobody Paid Attention': ISIS Wives")
    assert not any(q in t for t in titles for q in "\u2018\u2019\u201c\u201d")
    assert [record["link_id"] for _, record in result.side_records] == SEED_IDS


def test_default_normalizer_uses_the_typography_stage_when_present(monkeypatch):
    import sys
    import types

    import transforms

    class FakeConfig:
        pass

    class FakeNormalizer:
        def __init__(self, config):
            assert isinstance(config, FakeConfig)

        def normalize(self, text):
            return "<" + text.replace("\u2018", "'").replace("\u2019", "'") + ">  ", {"rule": 1}

    fake = types.ModuleType("transforms.typography")
    fake.TypographyConfig, fake.TypographyNormalizer = FakeConfig, FakeNormalizer
    monkeypatch.setitem(sys.modules, "transforms.typography", fake)
    monkeypatch.setattr(transforms, "typography", fake, raising=False)
    assert default_title_normalizer()("\u2018a\u2019  b") == "<'a' b>"
    result = make_stage_function(CONFIG)(Document(id="s", text="t", php_values=(SEED_PARSED,)))
    assert result.side_records[0][1]["title"] == "<" + SEED_TITLES[0] + ">"

    del fake.TypographyNormalizer  # an unfinished module: the fallback is used
    assert default_title_normalizer() is fallback_normalize_title


def test_injected_title_normalizer_is_used():
    run = make_stage_function(CONFIG, normalize_title=str.upper)
    result = run(Document(id="seed", text="body", php_values=(SEED_PARSED,)))
    assert result.side_records[0][1]["title"] == SEED_TITLES[0].upper()


# --- PHP value shapes -------------------------------------------------------------------------


def var_dump_shape():
    """var_dump of a native array: ints stay ints, strings are str."""
    return [{"id": int(r["id"]), "sort": int(r["sort"]), "contenttypeid": int(r["contenttypeid"]),
             "pic": r["pic"], "title": r["title"]} for r in SEED_PARSED]


def keyed_dict_shape():
    """A PHP array dumped with its integer keys: a dict with "0", "1" … keys."""
    return {str(i): record for i, record in enumerate(var_dump_shape())}


def object_shape():
    """Objects: a first key "__class__" then the bare property names."""
    return [{"__class__": "RelatedArticle", **record} for record in var_dump_shape()]


def print_r_shape():
    """print_r: every scalar is a string; null prints as ""."""
    return {str(i): {**{k: str(v) for k, v in record.items()}, "url": ""}
            for i, record in enumerate(SEED_PARSED)}


def var_export_shape():
    """var_export of an array of stdClass objects cast with (object)."""
    return [{"__class__": "stdClass", **record} for record in SEED_PARSED]


@pytest.mark.parametrize("shape", [var_dump_shape, keyed_dict_shape, object_shape, print_r_shape,
                                   var_export_shape])
def test_each_php_format_shape_is_recognised(shape):
    links, counts = links_of((shape(),))
    assert [link["link_id"] for link in links] == SEED_IDS
    assert [link["sort"] for link in links] == SEED_SORTS
    assert [link["content_type_id"] for link in links] == [21] * 5
    assert [link["image"] for link in links] == SEED_IMAGES
    assert links[3]["title"] == SEED_TITLES[3]
    assert counts["lists_found"] == 1 and counts["links"] == 5


def test_object_class_is_kept_in_extra():
    links, _ = links_of((object_shape(),))
    assert links[0]["extra"] == {"__class__": "RelatedArticle"}


def test_print_r_empty_url_is_absent():
    links, _ = links_of((print_r_shape(),), base_url="https://en.alalam.ir/")
    assert links[0]["url"] is None and links[0]["url_absolute"] is None
    assert links[0]["image_absolute"] == "https://en.alalam.ir" + SEED_IMAGES[0]


def test_other_field_names_are_recognised():
    records = [
        {"nid": 7, "headline": "A \u201cquoted\u201d  headline", "thumbnail": "t/7.png",
         "permalink": "/a/7", "created": "2017-07-16 13:18:15", "weight": "3", "lang": "en"},
        {"post_id": "8", "Title": "B", "img": "//cdn.example.org/8.png", "href": "b.html",
         "pubDate": "Sun, 16 Jul 2017 13:18:15 +0000", "order": 2, "content_type_id": "4"},
        {"article_id": 9, "name": "C", "photo": "9.jpg", "link": "https://other.example/c",
         "published": 1500211095, "type": "video"},
    ]
    links, counts = links_of(({"related": records},), base_url="https://news.example.com/section/page")
    assert counts["links"] == 3
    first, second, third = links
    assert (first["link_id"], first["title"], first["image"], first["url"]) == \
        ("7", 'A "quoted" headline', "t/7.png", "/a/7")
    assert first["url_absolute"] == "https://news.example.com/a/7"
    assert first["image_absolute"] == "https://news.example.com/section/t/7.png"
    assert first["published"] == "2017-07-16T13:18:15"
    assert first["sort"] == 3 and first["content_type_id"] is None
    assert first["extra"] == {"lang": "en"}
    assert (second["link_id"], second["title"], second["sort"], second["content_type_id"]) == ("8", "B", 2, 4)
    assert second["image_absolute"] == "https://cdn.example.org/8.png"
    assert second["url_absolute"] == "https://news.example.com/section/b.html"
    assert second["published"] == "2017-07-16T13:18:15+00:00"
    assert third["link_id"] == "9" and third["url_absolute"] == "https://other.example/c"
    assert third["published"] == "2017-07-16T13:18:15+00:00"
    # "type" that is not an integer is not a content type id; the value is kept.
    assert third["content_type_id"] is None and third["extra"] == {"type": "video"}


def test_list_in_a_json_string_nested_in_a_dump_is_found():
    value = {"__class__": "Page", "meta": {"widgets": {"related": orjson.dumps(SEED_PARSED).decode()}}}
    links, counts = links_of((value,))
    assert [link["link_id"] for link in links] == SEED_IDS and counts["lists_found"] == 1


def test_php_escaped_json_string_is_found():
    # json_encode's default flags: \/ and \uXXXX.
    payload = '[{"id":1,"title":"\\u2018Hi\\u2019","url":"\\/a\\/1"}]'
    links, _ = links_of((payload,))
    assert (links[0]["title"], links[0]["url"]) == ("'Hi'", "/a/1")


# --- what is not a related-links list -----------------------------------------------------------


@pytest.mark.parametrize("value", [
    [1, 2, 3],
    ["a", "b"],
    {"debug": True, "cache": {"ttl": 60, "hosts": ["a", "b"]}, "title": "Site"},
    {"id": 5, "title": "One article", "url": "/a/5"},  # a single article
    [{"id": 1, "name": "Ann", "email": "ann@example.org"}, {"id": 2, "name": "Bo", "email": "bo@x.org"}],
    [{"id": 1, "name": "Politics"}, {"id": 2, "name": "Sport"}],  # categories
    [],
    {},
    [{"title": "title only"}, {"title": "another"}],
    [{"id": 1, "title": ""}, {"id": 2, "title": "   "}],
    [{"id": 1, "title": 5}],
    [article(0), 1, 2],  # only a third are link records
    {"0": "a", "1": "b"},
    "not json",
    "[1, 2",
    None,
    42,
])
def test_non_article_values_are_not_related_links(value):
    links, counts = links_of((value,))
    assert links == [] and counts["lists_found"] == 0 and counts["documents_with_links"] == 0


def test_is_link_record_rules():
    assert is_link_record({"id": 1, "title": "T"})
    assert is_link_record({"title": "T", "url": "/x"})
    assert is_link_record({"headline": "T", "pic": "/x.jpg"})
    assert is_link_record({"name": "T", "url": "/x"})
    assert not is_link_record({"name": "T", "id": 3})
    assert not is_link_record({"id": 1, "title": "T", "username": "t"})
    assert not is_link_record({"id": "", "title": "T"})
    assert not is_link_record(["id", "title"])
    assert not is_link_record({})


def test_mostly_links_list_qualifies_and_skips_the_rest():
    value = [article(0), article(1), None, article(3), article(4)]  # 4 of 5 = 80 %
    links, counts = links_of((value,))
    assert [link["position"] for link in links] == [0, 1, 3, 4]
    assert counts["records_skipped"] == 1 and counts["lists_found"] == 1
    links, _ = links_of((value,), config=RelatedLinksConfig(min_link_fraction=0.9))
    assert links == []


def test_find_link_lists_reports_records_and_length_in_discovery_order():
    value = {"first": [article(0), "x", article(2), article(3), article(4)], "second": {"0": article(5)}}
    found = find_link_lists([value, [1, 2]])
    assert [(len(f.records), f.length) for f in found] == [(4, 5), (1, 1)]
    assert [index for index, _ in found[0].records] == [0, 2, 3, 4]
    assert found[1].records[0][1] is value["second"]["0"]


def test_search_depth_is_bounded():
    value = [article(0)]
    for _ in range(4):
        value = {"wrap": value}
    assert len(links_of((value,), config=RelatedLinksConfig(max_depth=4))[0]) == 1
    assert links_of((value,), config=RelatedLinksConfig(max_depth=3))[0] == []


def test_two_lists_in_one_document_are_both_emitted():
    value = {"related": [article(0), article(1)], "more": {"0": article(2), "1": article(3)}}
    links, counts = links_of((value,))
    assert [(link["list_index"], link["position"], link["link_id"]) for link in links] == \
        [(0, 0, "1000"), (0, 1, "1001"), (1, 0, "1002"), (1, 1, "1003")]
    assert counts["lists_found"] == 2


def test_a_list_found_in_two_dump_formats_is_emitted_once():
    # var_dump and print_r of the same array both leaked: same links.
    links, counts = links_of((var_dump_shape(), print_r_shape(), SEED_PAYLOAD))
    assert [link["link_id"] for link in links] == SEED_IDS
    assert counts["lists_found"] == 1 and counts["duplicate_links_dropped"] == 0


# --- duplicates within one document ----------------------------------------------------------------


def test_repeated_link_is_emitted_once():
    value = [article(0), article(1), article(0, title="Same id, other title")]
    links, counts = links_of((value,))
    assert [link["link_id"] for link in links] == ["1000", "1001"]
    assert counts["duplicate_links_dropped"] == 1 and counts["links"] == 2


def test_links_without_id_are_deduplicated_by_url_then_title():
    by_url = [{"title": "A", "url": "/a"}, {"title": "A again", "url": "/a"}, {"title": "B", "url": "/b"}]
    by_title = [{"title": "Same", "pic": "1.jpg"}, {"title": "same", "pic": "2.jpg"}]
    links, counts = links_of(({"x": by_url, "y": by_title},))
    assert [link["title"] for link in links] == ["A", "B", "Same"]
    assert counts["duplicate_links_dropped"] == 2 and counts["lists_found"] == 2


def test_a_link_shared_by_two_lists_is_emitted_once():
    links, counts = links_of(({"a": [article(0), article(1)], "b": [article(1), article(2)]},))
    assert [link["link_id"] for link in links] == ["1000", "1001", "1002"]
    assert counts["duplicate_links_dropped"] == 1 and counts["lists_found"] == 2


# --- scalar parsers --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    (21, 21), ("21", 21), (" 21 ", 21), ("-3", -3), (21.0, 21), (2.5, None), ("2.5", None),
    ("", None), (None, None), (True, None), ("abc", None), ("99999999999999999999", None),
    (2**63, None), ([1], None),
])
def test_parse_int(raw, expected):
    assert parse_int(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("2017-07-16 13:18:15", "2017-07-16T13:18:15"),
    ("2017-07-16T13:18:15Z", "2017-07-16T13:18:15+00:00"),
    ("2017-07-16T13:18:15+03:30", "2017-07-16T13:18:15+03:30"),
    ("2017-07-16", "2017-07-16"),
    ("Sun, 16 Jul 2017 13:18:15 GMT", "2017-07-16T13:18:15+00:00"),
    ("Sun Jul 16, 2017 13:18:15", "2017-07-16T13:18:15"),
    ("July 16, 2017", "2017-07-16"),
    ("16 Jul 2017", "2017-07-16"),
    ("2017/07/16", "2017-07-16"),
    ("20170716", "2017-07-16"),
    (1500211095, "2017-07-16T13:18:15+00:00"),
    ("1500211095", "2017-07-16T13:18:15+00:00"),
    (1500211095000, "2017-07-16T13:18:15+00:00"),
    (2017, "2017"),
    (0, "0"),
    (1.5, "1.5"),
    ({"__class__": "DateTimeImmutable", "date": "2017-07-16 13:18:15.250000",
      "timezone_type": 1, "timezone": "+03:30"}, "2017-07-16T13:18:15.250000+03:30"),
    ({"__class__": "DateTime", "date": "2017-07-16 13:18:15.000000",
      "timezone_type": 3, "timezone": "UTC"}, "2017-07-16T13:18:15+00:00"),
    ("yesterday", "yesterday"),
    ("0000-00-00 00:00:00", "0000-00-00 00:00:00"),
    ("16/07/2017", "16/07/2017"),  # d/m or m/d: left raw
    ("", None),
    (None, None),
])
def test_parse_published(raw, expected):
    assert parse_published(raw) == expected


def test_fallback_normalize_title():
    assert fallback_normalize_title("  \u2018She\u2019  said \u201chi\u201d\n") == "'She' said \"hi\""
    assert fallback_normalize_title("caf\u00c3\u00a9 &amp; bar") == "caf\u00e9 & bar"


# --- config and records ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"base_url": "/relative"}, {"base_url": "example.org"}, {"min_link_fraction": 0},
    {"min_link_fraction": 1.5}, {"max_depth": 0}, {"max_depth": 101}, {"max_json_chars": 1},
    {"max_nodes": 0},
])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        RelatedLinksConfig(**kwargs)


def test_row_and_json_round_trip_and_coder():
    links, _ = links_of(({"related": [article(0, extra_field={"nested": [1, 2]})]},))
    row = related_link_from_json(links[0])
    assert isinstance(row, RelatedLink) and isinstance(row.extra, str)
    assert related_link_to_json(row) == links[0] == row.to_json()
    assert related_link_to_json(links[0]) == links[0]
    assert list(related_link_to_json(row)) == list(RelatedLink._fields)
    assert orjson.loads(related_link_json_line(row)) == links[0]
    coder = beam.coders.registry.get_coder(RelatedLink)
    assert isinstance(coder, beam.coders.RowCoder)
    assert coder.decode(coder.encode(row)) == row


# --- hostile values ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["", "[", "{}", "[1]", '[{"id":1,"title":"t"}]', "/x.jpg"]),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.sampled_from(["id", "title", "url", "pic", "name", "email", "sort", "date",
                                       "0", "1", "__class__", "x"]), children, max_size=6),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, max_size=3))
def test_extract_links_never_raises_and_records_are_well_formed(values):
    before = copy.deepcopy(values)
    links, counts = links_of(values, base_url="https://example.org/a/")
    assert values == before  # inputs are never mutated
    assert counts["links"] == len(links) and set(counts) == set(COUNTERS)
    keys = set()
    for link in links:
        assert list(link) == list(RelatedLink._fields)
        assert link["title"] and link["position"] >= 0
        row = related_link_from_json(link)
        assert related_link_to_json(row) == link
        key = (link["content_type_id"], link["link_id"]) if link["link_id"] else (link["url"], link["title"])
        assert key not in keys
        keys.add(key)


def test_deep_nesting_and_huge_lists_are_bounded():
    deep: object = [article(0)]
    for _ in range(10_000):
        deep = [deep]
    assert links_of((deep,))[0] == []
    many = [[i] for i in range(50_000)]
    config = RelatedLinksConfig(max_nodes=1000)
    assert links_of((many, [article(1)]), config=config)[0] == []  # budget spent before it


# --- the stage function and the composite ---------------------------------------------------------------


def seed_document(doc_id="seed", **overrides):
    fields = dict(id=doc_id, text="Takfiris Fight Each Other", source=f"{doc_id}.txt",
                  url="https://en.alalam.ir/news/1996700", php_values=SEED_VALUES,
                  original=b"raw bytes")
    fields.update(overrides)
    return Document(**fields)


def test_stage_function_records_the_stage_and_clears_php_values():
    run = make_stage_function(CONFIG, fallback_normalize_title)
    document = seed_document()
    result = run(document)
    after = result.document
    assert after.related_links == 5 and after.php_values == ()
    assert after.changes == ((STAGE, 5),) and after.text == document.text
    assert document.php_values == SEED_VALUES  # the input is untouched
    assert [tag for tag, _ in result.side_records] == [RELATED_LINKS] * 5
    assert result.side_records[0][1]["image_absolute"] == "https://en.alalam.ir" + SEED_IMAGES[0]
    assert result.counts["links"] == 5 and result.counts["documents_with_links"] == 1

    plain = run(Document(id="p", text="no leaks"))
    assert plain.document.changes == ((STAGE, 0),) and plain.document.related_links == 0
    assert plain.side_records == () and set(plain.counts) == set(COUNTERS)


def test_apply_stage_fn_directly():
    fn = ApplyStageFn(STAGE, lambda: make_stage_function(CONFIG, fallback_normalize_title))
    fn.setup()
    out = list(fn.process(seed_document()))
    assert [o.tag for o in out[:5]] == [RELATED_LINKS] * 5
    assert [o.value["link_id"] for o in out[:5]] == SEED_IDS
    assert isinstance(out[5], Document) and out[5].related_links == 5


def test_composite_under_test_pipeline():
    documents = [
        seed_document("seed"),
        seed_document("copy", url=None, php_values=(print_r_shape(),)),
        Document(id="plain", text="nothing leaked"),
    ]
    expected_seed = [related_link_from_json(link) for link in links_of(
        SEED_VALUES, doc_id="seed", base_url="https://en.alalam.ir/news/1996700")[0]]
    expected_copy = [related_link_from_json(link) for link in links_of(
        (print_r_shape(),), doc_id="copy")[0]]
    assert len(expected_seed) == len(expected_copy) == 5
    pipeline = TestPipeline()
    outputs = (pipeline | beam.Create(documents)
               | "ExtractRelatedLinks" >> ExtractRelatedLinks(CONFIG, fallback_normalize_title))
    rows = outputs[RELATED_LINKS]
    assert rows.element_type is RelatedLink
    assert_that(rows, equal_to(expected_seed + expected_copy), label="rows")
    assert_that(outputs[DOCUMENTS] | "Counts" >> beam.Map(lambda d: (d.id, d.related_links, d.php_values)),
                equal_to([("seed", 5, ()), ("copy", 5, ()), ("plain", 0, ())]), label="documents")
    assert_that(outputs[DEAD_LETTER], equal_to([]), label="dead")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]}
    assert counters[f"{STAGE}.links"] == 10
    assert counters[f"{STAGE}.documents_with_links"] == 2
    assert counters[f"{STAGE}.lists_found"] == 2
    assert counters[f"{STAGE}.documents_in"] == 3


@pytest.mark.slow
def test_composite_across_processes():
    # Crosses a process boundary: the stage, its config and the RowCoder of
    # RelatedLink must pickle and register on the workers.
    options = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    expected = [related_link_from_json(link) for link in links_of(SEED_VALUES, doc_id="seed")[0]]
    direct = PipelineOptions(options).view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 2)
    with beam.Pipeline(options=PipelineOptions(options)) as p:
        outputs = (p | beam.Create([seed_document(url=None)])
                   | ExtractRelatedLinks(CONFIG, fallback_normalize_title))
        assert_that(outputs[RELATED_LINKS], equal_to(expected))


def test_parse_published_tolerates_unhashable_class_values():
    assert parse_published({"__class__": [], "date": "2017-07-16"}) is not None
    assert parse_published({"__class__": {"x": 1}}) is not None


# ------------------------------------------------------------------ fast paths

_ARTICLE = {"id": "7", "title": "A headline", "pic": "/img/a.jpg", "sort": "3"}


@pytest.mark.parametrize("a, b, same", [
    ([_ARTICLE], [dict(_ARTICLE)], True),
    ({"id": 1}, {"id": 1.0}, False),
    ({"id": 1}, {"id": True}, False),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}, False),       # key order decides roles and extra
    ({"x": 0.0}, {"x": -0.0}, False),
    ({"x": float("nan")}, {"x": float("nan")}, False),
    ([[1, [2]]], [[1, (2,)]], False),
    ({"x": {"y": ["z"]}}, {"x": {"y": ["z"]}}, True),
])
def test_identical_tells_apart_what_equality_does_not(a, b, same):
    from transforms.related_links import _identical
    assert _identical(a, b) is same


def test_identical_gives_up_on_deep_values():
    from transforms.related_links import _identical
    deep: list = []
    for _ in range(100):
        deep = [deep]
    assert _identical(deep, copy.deepcopy(deep)) is False


def _as_text_and_parsed(records):
    return (orjson.dumps(records).decode(), records)


def test_a_list_found_as_text_and_parsed_counts_once_and_near_copies_are_separate():
    records = [{"id": str(i), "title": f"Title {i}", "pic": f"/p/{i}.jpg"} for i in range(3)]
    config = RelatedLinksConfig()
    links, counts = extract_links("d", _as_text_and_parsed(records), config, lambda t: t,
                                  "https://site.example/a/b")
    assert [link["link_id"] for link in links] == ["0", "1", "2"]
    assert counts["lists_found"] == 1 and counts["duplicate_links_dropped"] == 0
    assert links[0]["image_absolute"] == "https://site.example/p/0.jpg"
    # The same list with an int id instead of text is not the same list:
    # its links have the same keys, so it is folded by the fingerprint rule.
    other = [dict(records[0], id=0)] + records[1:]
    links2, counts2 = extract_links("d", (records, other), config, lambda t: t, None)
    assert counts2["lists_found"] == 1 and [link["link_id"] for link in links2] == ["0", "1", "2"]


@pytest.mark.parametrize("base, value", [
    ("https://site.example/a/b", "/img/x.jpg"),
    ("https://site.example/a/b", "/img/../x.jpg"),
    ("https://site.example/a/b", "/img/./x.jpg"),
    ("https://site.example/a/b", "//cdn.example/x.jpg"),
    ("https://site.example/a/b", "/\t/cdn.example/x.jpg"),
    ("https://site.example/a/b", "/x.jpg?size=2#top"),
    ("https://site.example/a/b", "/x;v=1"),
    ("https://site.example/a/b", "img/x.jpg"),
    ("HTTP://Site.Example:8080", "/x.jpg"),
    ("ftp://files.example/d/", "/x.jpg"),
    ("https://u:p@site.example", "/%7Ex/y.jpg"),
])
def test_absolute_urls_are_what_urljoin_gives(base, value):
    from urllib.parse import urljoin

    from transforms.related_links import _absolute
    assert _absolute(base, value) == urljoin(base, value)


@pytest.mark.parametrize("url, absolute", [
    ("https://site.example/x", True), ("/x", False), ("//cdn.example/x", False), ("x", False),
    ("mailto:a@b", False),
])
def test_is_absolute(url, absolute):
    from transforms.related_links import _is_absolute
    assert _is_absolute(url) is absolute
