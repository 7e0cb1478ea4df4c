"""Wires the newswash stages between the readers and the writers.

    read -> php-leaks -> headlines -> typography -> related-links -> dedupe -> write

Every stage's dead letters are flattened into one ``dead_letter/`` output.
The run's accounting is computed inside the pipeline from the very
PCollections that are written (``Count.Globally`` on each), so the report
never depends on runner metrics, which some portable runners do not return.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.io import InputSpec, ReadDocuments, WriteJsonl, common_root, match_inputs, to_json_bytes
from pipeline.options import RunConfig
from transforms.stage import DEAD_LETTER, DOCUMENTS, ApplyStagesFn, StageOptions

__all__ = [
    "CLEANING_STAGES",
    "stage_function",
    "OUTPUT_DIRECTORIES",
    "RUN_DIRECTORY",
    "COUNTS_FILE",
    "SPILL_DIRECTORY",
    "spill_directory",
    "build_pipeline",
]

PHP_LEAKS = "php_leaks"
RELATED_LINKS = "related_links"
DUPLICATES = "duplicates"

OUTPUT_DIRECTORIES = ("documents", PHP_LEAKS, RELATED_LINKS, DUPLICATES, DEAD_LETTER)
# Bookkeeping written by the pipeline itself for the run report.
RUN_DIRECTORY = "_run"
COUNTS_FILE = "counts.jsonl"
# Cleaned documents wait here (not in the runner's memory) while dedupe
# decides which copy to keep; ``newswash run`` deletes it after a run.
SPILL_DIRECTORY = "spill"


@dataclasses.dataclass(frozen=True)
class StageWiring:
    """How one per-document stage is built: its composite PTransform (for
    users who run one stage, and for the test that the pipeline's fused
    step equals the chain of composites) and its pure stage function (the
    fused step, ``newswash explain`` and tests)."""

    label: str
    build: Callable[[RunConfig], beam.PTransform]
    function: Callable[[RunConfig], Callable[..., Any]]
    side_tags: tuple[str, ...] = ()


def _php_leaks(config: RunConfig) -> beam.PTransform:
    from transforms.php_leaks import StripPhpLeaks  # pylint: disable=import-outside-toplevel

    return StripPhpLeaks()


def _headlines(config: RunConfig) -> beam.PTransform:
    from transforms.headlines import HeadlinesConfig, RemoveRepeatedHeadlines  # pylint: disable=import-outside-toplevel

    return RemoveRepeatedHeadlines(HeadlinesConfig())


def typography_config(config: RunConfig):
    from transforms.typography import TypographyConfig  # pylint: disable=import-outside-toplevel

    overrides: dict[str, Any] = {}
    if config.quotes is not None:
        overrides["quotes"] = config.quotes
    if config.dashes is not None:
        overrides["dashes"] = config.dashes
    return TypographyConfig.from_profile(config.typography_profile, **overrides)


def _typography(config: RunConfig) -> beam.PTransform:
    from transforms.typography import NormalizeTypography  # pylint: disable=import-outside-toplevel

    return NormalizeTypography(typography_config(config))


def related_links_config(config: RunConfig):
    from transforms.related_links import RelatedLinksConfig  # pylint: disable=import-outside-toplevel

    return RelatedLinksConfig(base_url=config.base_url)


def _related_links(config: RunConfig) -> beam.PTransform:
    from transforms.related_links import ExtractRelatedLinks  # pylint: disable=import-outside-toplevel

    return ExtractRelatedLinks(related_links_config(config))


# The per-document stages, in the order they must run.
def _php_leaks_function(config: RunConfig):
    from transforms.php_leaks import make_stage_function  # pylint: disable=import-outside-toplevel

    return make_stage_function()


def _headlines_function(config: RunConfig):
    from transforms.headlines import HeadlinesConfig, make_stage_function  # pylint: disable=import-outside-toplevel

    return make_stage_function(HeadlinesConfig())


def _typography_function(config: RunConfig):
    from transforms.typography import make_stage_function  # pylint: disable=import-outside-toplevel

    return make_stage_function(typography_config(config))


def _related_links_function(config: RunConfig):
    from transforms.related_links import make_stage_function  # pylint: disable=import-outside-toplevel

    return make_stage_function(related_links_config(config))


CLEANING_STAGES: dict[str, StageWiring] = {
    "php-leaks": StageWiring("StripPhpLeaks", _php_leaks, _php_leaks_function, (PHP_LEAKS,)),
    "headlines": StageWiring("RemoveRepeatedHeadlines", _headlines, _headlines_function),
    "typography": StageWiring("NormalizeTypography", _typography, _typography_function),
    "related-links": StageWiring(
        "ExtractRelatedLinks", _related_links, _related_links_function, (RELATED_LINKS,)),
}


def stage_function(stage: str, config: RunConfig):
    """The pure ``Document -> StageResult`` function of a per-document stage."""
    return CLEANING_STAGES[stage].function(config)


def spill_directory(config: RunConfig) -> str:
    """Where dedupe spills documents: under the output, by absolute path for
    local outputs so that every worker process finds it."""
    output = config.output if "://" in config.output else os.path.abspath(config.output)
    return FileSystems.join(output, RUN_DIRECTORY, SPILL_DIRECTORY)


def dedupe_config(config: RunConfig):
    from transforms.dedupe import DedupeConfig  # pylint: disable=import-outside-toplevel

    overrides: dict[str, Any] = {"near_duplicates": config.dedupe_near_duplicates}
    if config.dedupe_threshold is not None:
        overrides["threshold"] = config.dedupe_threshold
    if config.dedupe_shingle_size is not None:
        overrides["shingle_size"] = config.dedupe_shingle_size
    return DedupeConfig(**overrides)


def _output_count(count: int, output: str) -> dict[str, Any]:
    return {"output": output, "records": count}


def _reason_count(reason_and_count: tuple[str, int]) -> dict[str, Any]:
    reason, count = reason_and_count
    return {"dead_letter_reason": reason, "records": count}


def _dead_letter_reason(dead_letter: Any) -> str:
    return f"{dead_letter.stage}:{dead_letter.reason}"


def _count_output(pcoll: beam.PCollection, name: str) -> beam.PCollection:
    label = name.title().replace("_", "")
    return (
        pcoll
        # Without the default: an empty output writes no count (read as 0),
        # which saves the extra stages that inject a default for empty input.
        | f"Count{label}" >> beam.CombineGlobally(beam.combiners.CountCombineFn()).without_defaults()
        | f"Label{label}Count" >> beam.Map(_output_count, name))


def _write_related_links(links: beam.PCollection, config: RunConfig) -> None:
    try:
        from pipeline.related_links_io import WriteRelatedLinks  # pylint: disable=import-outside-toplevel
    except ImportError:
        links | "WriteRelatedLinks" >> WriteJsonl(
            FileSystems.join(config.output, RELATED_LINKS), config.num_shards)
        return
    links | "WriteRelatedLinks" >> WriteRelatedLinks(
        config.output, config.related_links_format, config.num_shards)


def build_pipeline(pipeline: beam.Pipeline, config: RunConfig) -> dict[str, beam.PCollection]:
    """Applies the whole newswash job to ``pipeline``; returns the final outputs."""
    paths = match_inputs(config.inputs)
    spec = InputSpec(
        format=config.format, id_field=config.id_field, text_field=config.text_field,
        title_field=config.title_field, url_field=config.url_field,
        published_field=config.published_field, root=common_root(paths),
        max_document_bytes=config.max_document_bytes)
    read = pipeline | "ReadDocuments" >> ReadDocuments(
        paths, spec, config.reshuffle, split_bytes=config.split_bytes)

    documents = read[DOCUMENTS]
    dead_letters = [read[DEAD_LETTER]]
    side_outputs: dict[str, list[beam.PCollection]] = {PHP_LEAKS: [], RELATED_LINKS: []}
    stages = [(stage, wiring) for stage, wiring in CLEANING_STAGES.items() if config.runs(stage)]
    if stages:
        # One fused step for all per-document stages: the result equals one
        # composite per stage (the composites stay for users who want one
        # stage), but each document crosses one Beam step instead of four.
        side_tags = tuple(tag for _, wiring in stages for tag in wiring.side_tags)
        seconds = pipeline.options.view_as(StageOptions).max_seconds_per_document
        cleaned = documents | "CleanDocuments" >> beam.ParDo(ApplyStagesFn(
            [(stage, functools.partial(wiring.function, config)) for stage, wiring in stages],
            seconds_per_document=seconds)).with_outputs(DEAD_LETTER, *side_tags, main=DOCUMENTS)
        documents = cleaned[DOCUMENTS]
        dead_letters.append(cleaned[DEAD_LETTER])
        for tag in side_tags:
            side_outputs[tag].append(cleaned[tag])

    # The stages' transient fields (original bytes, PHP values) are not
    # written; dedupe drops them before it holds documents.
    if config.runs("dedupe"):
        from transforms.dedupe import DeduplicateArticles  # pylint: disable=import-outside-toplevel

        deduped = documents | "DeduplicateArticles" >> DeduplicateArticles(
            dedupe_config(config), spill_directory=spill_directory(config))
        documents, duplicates = deduped[DOCUMENTS], deduped[DUPLICATES]
        dead_letters.append(deduped[DEAD_LETTER])
    else:
        duplicates = pipeline | "NoDuplicates" >> beam.Create([])

    def gathered(tag: str) -> beam.PCollection:
        collections = side_outputs[tag]
        if not collections:
            return pipeline | f"No{tag.title().replace('_', '')}" >> beam.Create([])
        return tuple(collections) | f"Flatten{tag.title().replace('_', '')}" >> beam.Flatten()

    php_leaks = gathered(PHP_LEAKS)
    related_links = gathered(RELATED_LINKS)
    if side_outputs[RELATED_LINKS]:
        from transforms.related_links import RelatedLink, related_link_from_json  # pylint: disable=import-outside-toplevel

        # Schema rows, as ExtractRelatedLinks emits them (the fused step emits
        # the stage's JSON records): one type whichever way the stage ran.
        related_links = related_links | "RelatedLinkRows" >> beam.Map(
            related_link_from_json).with_output_types(RelatedLink)
    dead_letter = tuple(dead_letters) | "FlattenDeadLetters" >> beam.Flatten()

    documents | "WriteDocuments" >> WriteJsonl(FileSystems.join(config.output, "documents"), config.num_shards)
    php_leaks | "WritePhpLeaks" >> WriteJsonl(FileSystems.join(config.output, PHP_LEAKS), config.num_shards)
    duplicates | "WriteDuplicates" >> WriteJsonl(FileSystems.join(config.output, DUPLICATES), config.num_shards)
    dead_letter | "WriteDeadLetters" >> WriteJsonl(FileSystems.join(config.output, DEAD_LETTER), config.num_shards)
    _write_related_links(related_links, config)

    counts = [
        _count_output(read["raw_records"], "input_records"),
        _count_output(documents, "documents"),
        _count_output(duplicates, DUPLICATES),
        _count_output(dead_letter, DEAD_LETTER),
        _count_output(php_leaks, PHP_LEAKS),
        _count_output(related_links, RELATED_LINKS),
        dead_letter
        | "DeadLetterReasons" >> beam.Map(_dead_letter_reason)
        | "CountDeadLetterReasons" >> beam.combiners.Count.PerElement()
        | "LabelDeadLetterReasons" >> beam.Map(_reason_count),
    ]
    (
        tuple(counts)
        | "FlattenCounts" >> beam.Flatten()
        | "SerializeCounts" >> beam.Map(to_json_bytes)
        | "WriteCountsFile" >> beam.io.WriteToText(
            FileSystems.join(config.output, RUN_DIRECTORY, "counts"),
            file_name_suffix=".jsonl", shard_name_template="",
            coder=beam.coders.BytesCoder(), num_shards=1))
    return {
        "documents": documents,
        PHP_LEAKS: php_leaks,
        RELATED_LINKS: related_links,
        DUPLICATES: duplicates,
        DEAD_LETTER: dead_letter,
    }

