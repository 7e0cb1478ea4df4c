"""What every newswash stage shares: output tags, metrics, dead letters.

A stage is a pure function ``Document -> StageResult`` (see each module in
``transforms/``). :class:`ApplyStageFn` is the one DoFn that runs such a
function inside Beam: it builds the function once per worker in ``setup()``,
counts what the function reports under the ``newswash`` metrics namespace,
emits side records on their tags, and sends any failure, with the original
input record, to the dead-letter output. Stage modules therefore stay thin.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import traceback
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.windowed_value import WindowedValue

from transforms.document import Document

__all__ = [
    "METRICS_NAMESPACE",
    "DOCUMENTS",
    "DEAD_LETTER",
    "DeadLetter",
    "StageResult",
    "StageFunction",
    "ApplyStageFn",
    "ApplyStagesFn",
    "apply_stage",
    "StageOptions",
    "DEFAULT_SECONDS_PER_DOCUMENT",
    "INLINE_CHARACTERS",
    "DEFAULT_BATCH_SIZE",
    "BATCH_CHARACTERS",
]

# Every stage is linear in the document size and bounds its own work, so a
# document up to INLINE_CHARACTERS runs inline (measured: well under a second
# per stage). Larger ones run in a watchdog thread and go to the dead letter
# as ``timeout`` when a stage takes longer than the limit.
DEFAULT_SECONDS_PER_DOCUMENT = 60.0
INLINE_CHARACTERS = 256 * 1024

# Documents are run through the stages a batch at a time, stage by stage:
# one stage's compiled regexes and tables stay in the CPU caches across the
# batch instead of being evicted by the other stages (and by reading,
# parsing and fingerprinting) between two documents. Measured on the
# benchmark corpus: each stage 10-30% faster, the whole run ~20% faster
# (benchmarks/RESULTS.md). A batch is also cut at BATCH_CHARACTERS of text,
# so large documents do not pile up in memory.
DEFAULT_BATCH_SIZE = 256
BATCH_CHARACTERS = 8 * 1024 * 1024


class StageOptions(PipelineOptions):
    """Pipeline options every stage reads (``newswash run`` sets them)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--max_seconds_per_document", type=float, default=DEFAULT_SECONDS_PER_DOCUMENT,
            help="time one stage may spend on one large document before it goes to the "
                 "dead letter as 'timeout'; 0 disables the bound")

METRICS_NAMESPACE = "newswash"

# Output tags shared by every stage. Stage-specific side outputs (php_leaks,
# related_links, duplicates) are named constants in their own modules.
DOCUMENTS = "documents"
DEAD_LETTER = "dead_letter"


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be cleaned, with the original bytes kept.

    ``reason`` is a short stable code (``invalid_json``, ``missing_text_field``,
    ``stage_error`` ...) that the run report counts; ``error`` is the
    human-readable detail.
    """

    source: str
    stage: str
    reason: str
    error: str
    original: bytes
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "stage": self.stage,
            "reason": self.reason,
            "error": self.error,
        }
        try:
            record["original"] = self.original.decode("utf-8")
        except UnicodeDecodeError:
            # Keep invalid bytes losslessly: base64 decodes to the exact input.
            record["original"] = None
            record["original_base64"] = base64.b64encode(self.original).decode("ascii")
        return record


@dataclasses.dataclass(frozen=True, slots=True)
class StageResult:
    """What a stage function returns for one document.

    Attributes:
      document: the (possibly new) document; ``None`` drops it to the dead
        letter with ``drop_reason``.
      side_records: ``(tag, record)`` pairs for the stage's side outputs.
      counts: rule name -> how many times it fired; becomes Beam counters.
      drop_reason: the dead-letter reason when ``document`` is ``None``.
    """

    document: Document | None
    side_records: tuple[tuple[str, Any], ...] = ()
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
    drop_reason: str = ""


StageFunction = Callable[[Document], StageResult]


class _BoundStage:
    """One stage function on a worker, with its counters and its time bound.

    Shared by :class:`ApplyStageFn` (one stage) and :class:`ApplyStagesFn`
    (several stages fused into one step), so both count, time out and
    dead-letter exactly alike.
    """

    def __init__(self, stage: str, function: StageFunction, seconds_per_document: float,
                 inline_characters: int):
        self.stage = stage
        self._function = function
        self._seconds_per_document = seconds_per_document
        self._inline_characters = inline_characters
        self._watchdog: concurrent.futures.ThreadPoolExecutor | None = None
        self._counters: dict[str, Any] = {}
        # Counts of the current bundle, added to the Beam counters by
        # flush_counts() at its end: a bundle's metrics are committed with
        # the bundle, so the totals are the same, and a dictionary update is
        # cheaper than a counter update (about twelve per document).
        self._pending: dict[str, int] = {}

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.shutdown(wait=False)
            self._watchdog = None

    def _run(self, document: Document) -> StageResult:
        """The stage function, under the time bound for large documents.

        Raises ``TimeoutError`` when the bound is exceeded. Python cannot stop
        a running thread: the abandoned call finishes in the background (the
        stages are pure, so it changes nothing), and a fresh watchdog thread
        serves the next document.
        """
        if not self._seconds_per_document or len(document.text) <= self._inline_characters:
            return self._function(document)
        if self._watchdog is None:
            self._watchdog = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"newswash-{self.stage}")
        future = self._watchdog.submit(self._function, document)
        try:
            return future.result(timeout=self._seconds_per_document)
        except concurrent.futures.TimeoutError:
            self._watchdog.shutdown(wait=False)
            self._watchdog = None
            raise TimeoutError(
                f"{self.stage} took over {self._seconds_per_document:g} s on a "
                f"{len(document.text)}-character document") from None

    def _count(self, name: str, value: int = 1) -> None:
        pending = self._pending
        pending[name] = pending.get(name, 0) + value

    def flush_counts(self) -> None:
        """Adds this bundle's counts to the Beam counters (call at the end of a bundle)."""
        for name, value in self._pending.items():
            counter = self._counters.get(name)
            if counter is None:
                counter = Metrics.counter(METRICS_NAMESPACE, f"{self.stage}.{name}")
                self._counters[name] = counter
            counter.inc(value)
        self._pending.clear()

    def discard_counts(self) -> None:
        self._pending.clear()

    def apply(self, document: Document) -> tuple[Document | None, list[beam.pvalue.TaggedOutput]]:
        """The document this stage passes on (None if it went to the dead
        letter) and the tagged outputs it produced, in order."""
        self._count("documents_in")
        try:
            result = self._run(document)
        except TimeoutError as error:
            self._count("timeout")
            return None, [beam.pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                source=document.source, stage=self.stage, reason="timeout", error=str(error),
                original=document.original, id=document.id))]
        except Exception as error:  # pylint: disable=broad-except
            # A bug or hostile input in one document must not fail the bundle
            # and must not lose the record: it goes to the dead letter whole.
            self._count("dead_letter")
            return None, [beam.pvalue.TaggedOutput(
                DEAD_LETTER, stage_error(document, self.stage, error))]
        for rule, value in result.counts.items():
            if value:
                self._count(rule, value)
        outputs = [beam.pvalue.TaggedOutput(tag, record) for tag, record in result.side_records]
        if result.document is None:
            self._count("dead_letter")
            outputs.append(beam.pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                source=document.source, stage=self.stage,
                reason=result.drop_reason or "dropped", error=result.drop_reason,
                original=document.original, id=document.id)))
            return None, outputs
        changes = result.document.changes
        if result.document is not document and changes and \
                changes[-1][0] == self.stage and changes[-1][1]:
            self._count("documents_changed")
        return result.document, outputs


class ApplyStagesFn(beam.DoFn):
    """Runs several stage functions one after the other on each document.

    The result is exactly that of one :class:`ApplyStageFn` (a one-stage
    ApplyStagesFn) per stage: same counters, same dead letters naming the
    failing stage, same side records. But each document crosses one Beam step
    instead of one per stage, so the per-element cost of a step (output
    receivers, tagged-output dispatch, metric containers) is paid once.
    ``stages`` are ``(stage name, make_function)`` pairs in the order they
    must run.

    Documents are buffered into batches of up to ``batch_size`` (and
    :data:`BATCH_CHARACTERS` of text) and each batch goes through the stages
    stage by stage (see :data:`DEFAULT_BATCH_SIZE`); every output keeps the
    window, timestamp and pane of its own input element, and the last batch
    of a bundle is emitted in ``finish_bundle``. A document's result does
    not depend on its batch (stages are pure per document).
    ``batch_size=1``, or calling ``process(document)`` directly (as unit
    tests do), emits each document's outputs while processing it.
    """

    def __init__(self, stages: Sequence[tuple[str, Callable[[], StageFunction]]],
                 seconds_per_document: float = DEFAULT_SECONDS_PER_DOCUMENT,
                 inline_characters: int = INLINE_CHARACTERS,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__()
        if seconds_per_document < 0:
            raise ValueError(f"seconds_per_document must be >= 0, got {seconds_per_document}")
        if not stages:
            raise ValueError("ApplyStagesFn needs at least one stage")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._stages = tuple(stages)
        self._seconds_per_document = seconds_per_document
        self._inline_characters = inline_characters
        self._batch_size = batch_size
        self._bound: tuple[_BoundStage, ...] = ()
        self._batch: list[WindowedValue] = []
        self._batch_characters = 0

    def setup(self) -> None:
        self._bound = tuple(
            _BoundStage(stage, make_function(), self._seconds_per_document, self._inline_characters)
            for stage, make_function in self._stages)

    def start_bundle(self) -> None:
        # A bundle that failed on this instance left its counts unflushed and
        # maybe a partial batch; its retry counts and processes every record again.
        for bound in self._bound:
            bound.discard_counts()
        self._batch = []
        self._batch_characters = 0

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush_batch()
        for bound in self._bound:
            bound.flush_counts()

    def teardown(self) -> None:
        for bound in self._bound:
            bound.close()

    def process(self, document: Document,
                element: WindowedValue = beam.DoFn.WindowedValueParam) -> Iterator[Any]:
        if not self._bound:  # a runner that skipped setup()
            self.setup()
        # An element in several windows is processed at once: its outputs,
        # yielded as plain values, go to each of its windows. So is a call
        # made directly, outside a runner (no windowed value to keep).
        if self._batch_size == 1 or not isinstance(element, WindowedValue) or len(element.windows) != 1:
            yield from self._outputs_of_batch([document])[0]
            return
        self._batch.append(element)
        self._batch_characters += len(document.text)
        if len(self._batch) >= self._batch_size or self._batch_characters >= BATCH_CHARACTERS:
            yield from self._flush_batch()

    def _flush_batch(self) -> Iterator[Any]:
        batch, self._batch, self._batch_characters = self._batch, [], 0
        if not batch:
            return
        for element, outputs in zip(batch, self._outputs_of_batch([element.value for element in batch])):
            for output in outputs:
                if type(output) is beam.pvalue.TaggedOutput:
                    yield beam.pvalue.TaggedOutput(output.tag, element.with_value(output.value))
                else:
                    yield element.with_value(output)

    def _outputs_of_batch(self, documents: list[Document]) -> list[list[Any]]:
        """Each document's outputs, in the order the stages made them,
        computed stage by stage over the batch."""
        outputs: list[list[Any]] = [[] for _ in documents]
        survivors = list(enumerate(documents))
        for bound in self._bound:
            passed = []
            for index, document in survivors:
                result, tagged = bound.apply(document)
                if tagged:
                    outputs[index].extend(tagged)
                if result is not None:
                    passed.append((index, result))
            survivors = passed
        for index, document in survivors:
            outputs[index].append(document)
        return outputs


class ApplyStageFn(ApplyStagesFn):
    """Runs one stage function on each document.

    ``make_function`` is called once per DoFn instance in ``setup()`` so that
    compiled regexes, ftfy configs and tables are built on the worker, not
    pickled with the pipeline and not rebuilt per element.

    Counters, all in namespace ``newswash``: ``<stage>.documents_in``,
    ``<stage>.documents_changed``, ``<stage>.dead_letter``, ``<stage>.timeout``
    and ``<stage>.<rule>`` for every rule the function reports.
    """

    def __init__(self, stage: str, make_function: Callable[[], StageFunction],
                 seconds_per_document: float = DEFAULT_SECONDS_PER_DOCUMENT,
                 inline_characters: int = INLINE_CHARACTERS,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__([(stage, make_function)], seconds_per_document, inline_characters, batch_size)


def stage_error(document: Document, stage: str, error: BaseException) -> DeadLetter:
    """The dead letter for a document whose stage function raised."""
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    return DeadLetter(
        source=document.source, stage=stage, reason="stage_error",
        error=detail[:2000], original=document.original, id=document.id)


def apply_stage(
    documents: beam.PCollection,
    stage: str,
    make_function: Callable[[], StageFunction],
    side_tags: Iterable[str] = (),
) -> beam.pvalue.DoOutputsTuple:
    """Applies :class:`ApplyStageFn`; the result has ``DOCUMENTS``,
    ``DEAD_LETTER`` and every tag in ``side_tags``.

    The per-document time bound comes from the pipeline's
    ``--max_seconds_per_document`` (:class:`StageOptions`).
    """
    seconds = documents.pipeline.options.view_as(StageOptions).max_seconds_per_document
    return documents | "Apply" >> beam.ParDo(
        ApplyStageFn(stage, make_function, seconds_per_document=seconds)).with_outputs(
            DEAD_LETTER, *side_tags, main=DOCUMENTS)
