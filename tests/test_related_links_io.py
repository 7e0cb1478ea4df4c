"""The related-links writers: JSONL and Parquet hold the same records, and the
Parquet files have the declared schema."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import apache_beam as beam
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.related_links_io import PARQUET_SCHEMA, WriteRelatedLinks, output_prefix
from transforms.document import Document
from transforms.related_links import (
    RELATED_LINKS,
    ExtractRelatedLinks,
    RelatedLink,
    RelatedLinksConfig,
    fallback_normalize_title,
    related_link_to_json,
)

SEED = Path("/work/shared/seeds/000_564ceb310d2225dc.txt")

ROWS = [
    RelatedLink(doc_id="a", list_index=0, position=0, link_id="1995016",
                title="US Soldier Arrested over Links with ISIS", url=None, url_absolute=None,
                image="/2017/07/11/x.jpg", image_absolute="https://en.alalam.ir/2017/07/11/x.jpg",
                sort=5058101, content_type_id=21, published=None, extra="{}"),
    RelatedLink(doc_id="a", list_index=0, position=2, link_id=None, title="'Quoted' \u00e9t\u00e9",
                url="/b", url_absolute="https://x.org/b", image=None, image_absolute=None,
                sort=None, content_type_id=None, published="2017-07-16T13:18:15+00:00",
                extra='{"lang":"fr","tags":["a",1,null],"n":{"k":1.5}}'),
    RelatedLink(doc_id="b", list_index=1, position=0, link_id="7", title="T", url=None,
                url_absolute=None, image=None, image_absolute=None, sort=-2**63,
                content_type_id=2**63 - 1, published="yesterday", extra="{}"),
]


def read_jsonl(directory: str) -> list[dict]:
    records = []
    for path in sorted(glob.glob(os.path.join(directory, "related_links", "part-*.jsonl"))):
        with open(path, "rb") as handle:
            records.extend(orjson.loads(line) for line in handle if line.strip())
    return records


def read_parquet(directory: str) -> tuple[pa.Table, list[dict]]:
    paths = sorted(glob.glob(os.path.join(directory, "related_links", "part-*.parquet")))
    assert paths, "no parquet shard written"
    tables = [pq.read_table(path) for path in paths]
    for table in tables:
        assert table.schema.equals(PARQUET_SCHEMA, check_metadata=False), table.schema
    table = pa.concat_tables(tables)
    return table, table.to_pylist()


def by_key(records):
    return sorted(records, key=lambda r: (r["doc_id"], r["list_index"], r["position"]))


def test_schema_matches_the_named_tuple():
    assert PARQUET_SCHEMA.names == list(RelatedLink._fields)
    hints = RelatedLink.__annotations__
    for field in PARQUET_SCHEMA:
        assert field.nullable == ("Optional" in str(hints[field.name])), field.name


def test_output_prefix_and_argument_checks(tmp_path):
    assert output_prefix(str(tmp_path)) == os.path.join(str(tmp_path), RELATED_LINKS, "part")
    with pytest.raises(ValueError):
        WriteRelatedLinks(str(tmp_path), fmt="csv")
    with pytest.raises(ValueError):
        WriteRelatedLinks(str(tmp_path), num_shards=-1)


def test_jsonl_and_parquet_hold_the_same_records(tmp_path):
    jsonl_dir, parquet_dir = str(tmp_path / "jsonl"), str(tmp_path / "parquet")
    with TestPipeline() as p:
        rows = p | beam.Create(ROWS).with_output_types(RelatedLink)
        rows | "Jsonl" >> WriteRelatedLinks(jsonl_dir, "jsonl", num_shards=2)
        rows | "Parquet" >> WriteRelatedLinks(parquet_dir, "parquet", num_shards=2)
    from_jsonl = read_jsonl(jsonl_dir)
    table, from_parquet = read_parquet(parquet_dir)
    assert table.num_rows == len(ROWS)
    expected = by_key(related_link_to_json(row) for row in ROWS)
    assert by_key(from_jsonl) == expected
    assert all(isinstance(record["extra"], str) for record in from_parquet)
    assert by_key(related_link_to_json(RelatedLink(**record)) for record in from_parquet) == expected
    assert expected[1]["extra"] == {"lang": "fr", "tags": ["a", 1, None], "n": {"k": 1.5}}


def test_writers_accept_the_stage_json_records(tmp_path):
    records = [related_link_to_json(row) for row in ROWS]
    with TestPipeline() as p:
        links = p | beam.Create(records)
        links | "Jsonl" >> WriteRelatedLinks(str(tmp_path), "jsonl", num_shards=1)
        links | "Parquet" >> WriteRelatedLinks(str(tmp_path), "parquet", num_shards=1)
    assert by_key(read_jsonl(str(tmp_path))) == by_key(records)
    assert len(read_parquet(str(tmp_path))[1]) == len(records)


def seed_values() -> tuple:
    """The seed's leaked related-articles JSON (the bytes ``string(946)``
    counts) and its parsed value, as the php-leaks stage leaves them."""
    if SEED.exists():
        text = SEED.read_text(encoding="utf-8")
    else:  # a checkout without the shared seeds
        from test_related_links import SEED_LEAK  # pylint: disable=import-outside-toplevel

        text = SEED_LEAK
    match = re.search(r'string\((\d+)\) "', text)
    payload = text[match.end():].encode("utf-8")[:int(match.group(1))].decode("utf-8")
    return payload, orjson.loads(payload)


def test_seed_document_through_stage_and_both_writers(tmp_path):
    document = Document(id="seed", text="body", url="https://en.alalam.ir/news/1",
                        php_values=seed_values())
    with TestPipeline() as p:
        outputs = (p | beam.Create([document])
                   | ExtractRelatedLinks(RelatedLinksConfig(), fallback_normalize_title))
        outputs[RELATED_LINKS] | "Jsonl" >> WriteRelatedLinks(str(tmp_path), "jsonl")
        outputs[RELATED_LINKS] | "Parquet" >> WriteRelatedLinks(str(tmp_path), "parquet")
    from_jsonl = by_key(read_jsonl(str(tmp_path)))
    _, from_parquet = read_parquet(str(tmp_path))
    assert [r["link_id"] for r in from_jsonl] == ["1995016", "1995251", "1996289", "1996344", "1996624"]
    assert from_jsonl[0]["image_absolute"] == \
        "https://en.alalam.ir/2017/07/11/alalam_636353815378625996_25f_4x3.jpg"
    assert [r["sort"] for r in by_key(from_parquet)] == [5058101, 5058100, 5058099, 5058098, 5058097]
    assert from_jsonl == by_key(related_link_to_json(RelatedLink(**r)) for r in from_parquet)
