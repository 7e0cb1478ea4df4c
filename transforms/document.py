"""The one immutable record that flows through every newswash stage.

A stage never mutates a :class:`Document`; it returns a new one built with
:meth:`Document.replace_text` or :meth:`Document.replace`. Beam's
programming guide forbids mutating elements after output, and immutability
makes that rule impossible to break by accident.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

__all__ = ["Document", "FLAG_INVALID_UTF8", "document_fields"]

# Flag set by the readers when the input bytes were not valid UTF-8 and were
# decoded with U+FFFD replacement. The record is still cleaned; the flag tells
# the user why some characters may be missing.
FLAG_INVALID_UTF8 = "invalid_utf8"


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """A scraped article at one point of the pipeline.

    Attributes:
      id: the record id (input id field, or path relative to the inputs' root).
      text: the article body.
      source: where the record came from, ``path:line`` for JSONL, ``path``
        for one-article-per-file text input.
      title: the headline, when known.
      published: ISO 8601 publication time, when known.
      url: the article's URL, when the input has one.
      fields: any other input fields, passed through unchanged, in input order.
      flags: facts about the record a user should know (``invalid_utf8``).
      changes: ``(stage, number_of_changes)`` pairs, one per stage that ran.
      related_links: how many related links the related-links stage found.
      duplicates: how many duplicates the dedupe stage folded into this one.
      php_values: transient; parsed payloads of the leaks the php-leaks stage
        removed, for the related-links stage. Never written to ``documents/``.
      original: transient; the raw input record, so a failing stage can send
        it to the dead letter losslessly. Dropped before any shuffle.
    """

    id: str
    text: str
    source: str = ""
    title: str | None = None
    published: str | None = None
    url: str | None = None
    fields: tuple[tuple[str, Any], ...] = ()
    flags: tuple[str, ...] = ()
    changes: tuple[tuple[str, int], ...] = ()
    related_links: int = 0
    duplicates: int = 0
    php_values: tuple[Any, ...] = ()
    original: bytes = b""

    def replace(self, **updates: Any) -> "Document":
        """``dataclasses.replace(self, **updates)``, at a third of its cost
        (it runs several times per document): the fields are read in one
        C-level call and passed to ``__init__`` by position."""
        values = list(_ALL_FIELDS(self))
        for name, value in updates.items():
            try:
                values[_FIELD_INDEX[name]] = value
            except KeyError:
                raise TypeError(f"Document has no field {name!r}") from None
        return Document(*values)

    def replace_text(self, stage: str, text: str, changes: int, **updates: Any) -> "Document":
        """A copy with a new body and ``changes`` recorded for ``stage``."""
        return self.replace(text=text, changes=self.changes + ((stage, changes),), **updates)

    def record_stage(self, stage: str, changes: int, **updates: Any) -> "Document":
        """A copy that records ``changes`` for ``stage`` and applies ``updates``."""
        return self.replace(changes=self.changes + ((stage, changes),), **updates)

    def without_transients(self) -> "Document":
        """A copy without the fields that only the per-document stages need."""
        if not self.php_values and not self.original:
            return self
        return self.replace(php_values=(), original=b"")

    def changes_by_stage(self) -> dict[str, int]:
        return dict(self.changes)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``documents/``.

        Pass-through input fields come first so a user's own columns keep
        their place; newswash's fields win on a name clash because they hold
        the cleaned values.
        """
        record: dict[str, Any] = dict(self.fields)
        record.update(
            id=self.id,
            title=self.title,
            published=self.published,
            text=self.text,
            source=self.source,
        )
        if self.url is not None:
            record["url"] = self.url
        record["newswash"] = {
            "changes": dict(self.changes),
            "flags": list(self.flags),
            "related_links": self.related_links,
            "duplicates": self.duplicates,
        }
        return record


_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(Document))
_FIELD_INDEX = {name: index for index, name in enumerate(_FIELD_NAMES)}
_ALL_FIELDS = operator.attrgetter(*_FIELD_NAMES)


def document_fields(document: Document) -> tuple[Any, ...]:
    """Every field of ``document`` in declaration order: ``Document(*document_fields(d)) == d``."""
    return _ALL_FIELDS(document)
