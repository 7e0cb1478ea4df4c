"""Reading newswash's JSONL output folders back, for the tests."""

from __future__ import annotations

import glob
import pathlib

import orjson


def read_jsonl_dir(directory: pathlib.Path) -> list[dict]:
    """Every record of every ``*.jsonl`` shard in ``directory``."""
    records = []
    for path in sorted(glob.glob(str(directory / "*.jsonl"))):
        with open(path, "rb") as handle:
            records.extend(orjson.loads(line) for line in handle if line.strip())
    return records


def sorted_lines(directory: pathlib.Path) -> list[bytes]:
    """Every line of every shard, sorted: outputs compared independently of sharding."""
    lines: list[bytes] = []
    for path in glob.glob(str(directory / "*.jsonl")):
        with open(path, "rb") as handle:
            lines.extend(line.rstrip(b"\n") for line in handle if line.strip())
    return sorted(lines)
