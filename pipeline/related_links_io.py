"""Writes the related-links output as JSONL or Parquet.

Files: ``<output_dir>/related_links/part-SSSSS-of-NNNNN.jsonl`` (one JSON
object per line, ``extra`` as an object) or ``….parquet`` (the columns of
:data:`PARQUET_SCHEMA`, ``extra`` as a JSON string column). Both hold the
same records; see :class:`transforms.related_links.RelatedLink`.
"""

from __future__ import annotations

from typing import Any, Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from transforms.related_links import (
    RELATED_LINKS,
    RelatedLink,
    related_link_from_json,
    related_link_json_line,
)

__all__ = ["FORMATS", "PARQUET_SCHEMA", "WriteRelatedLinks", "related_link_to_parquet_record", "output_prefix"]

FORMATS = ("jsonl", "parquet")

# Column for column the fields of RelatedLink; Optional fields are nullable.
PARQUET_SCHEMA = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("list_index", pa.int64(), nullable=False),
    pa.field("position", pa.int64(), nullable=False),
    pa.field("link_id", pa.string()),
    pa.field("title", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("url_absolute", pa.string()),
    pa.field("image", pa.string()),
    pa.field("image_absolute", pa.string()),
    pa.field("sort", pa.int64()),
    pa.field("content_type_id", pa.int64()),
    pa.field("published", pa.string()),
    pa.field("extra", pa.string(), nullable=False),
])


def output_prefix(output_dir: str) -> str:
    """``<output_dir>/related_links/part``."""
    return FileSystems.join(output_dir, RELATED_LINKS, "part")


def related_link_to_parquet_record(link: RelatedLink | Mapping[str, Any]) -> dict[str, Any]:
    """The Parquet row dict of a link row (or of the stage's JSON record)."""
    return related_link_from_json(link)._asdict()


class WriteRelatedLinks(beam.PTransform):
    """Writes :class:`RelatedLink` rows (or their JSON records) under
    ``<output_dir>/related_links/``.

    Args:
      output_dir: the run's output directory (local path or ``gs://``…).
      fmt: ``jsonl`` or ``parquet``.
      num_shards: number of files; 0 lets the runner decide.
    """

    def __init__(self, output_dir: str, fmt: str = "jsonl", num_shards: int = 0):
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
        if num_shards < 0:
            raise ValueError(f"num_shards must be >= 0, got {num_shards!r}")
        self._prefix = output_prefix(output_dir)
        self._fmt = fmt
        self._num_shards = num_shards

    def expand(self, links):
        if self._fmt == "jsonl":
            return (
                links
                | "ToJsonLines" >> beam.Map(related_link_json_line)
                | "WriteJsonl" >> beam.io.WriteToText(
                    self._prefix, file_name_suffix=".jsonl",
                    coder=beam.coders.BytesCoder(), num_shards=self._num_shards))
        return (
            links
            | "ToParquetRecords" >> beam.Map(related_link_to_parquet_record)
            | "WriteParquet" >> beam.io.WriteToParquet(
                self._prefix, PARQUET_SCHEMA, file_name_suffix=".parquet",
                num_shards=self._num_shards))
