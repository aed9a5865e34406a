"""The event record that every reader produces and every evaluator consumes."""

from dataclasses import dataclass, field
from typing import Any, FrozenSet, Mapping, Optional, Union


@dataclass(frozen=True)
class LogSource:
    """Where an event comes from, in Sigma's logsource terms.

    A rule sees an event when each of the rule's product, category and service is either unset or
    equal to the event's. An event may belong to several services (a Security 4688 event is both
    service ``security`` and category ``process_creation``), hence the sets.
    """

    product: Optional[str] = None
    categories: FrozenSet[str] = frozenset()
    services: FrozenSet[str] = frozenset()

    def admits(self, product: Optional[str], category: Optional[str], service: Optional[str]) -> bool:
        """Tell whether a rule with this logsource triple may see the event."""
        if product is not None and product != self.product:
            return False
        if category is not None and category not in self.categories:
            return False
        if service is not None and service not in self.services:
            return False
        return True


@dataclass(frozen=True)
class Event:
    """One event, its fields renamed to Sigma's field names.

    ``fields`` maps Sigma field names (``CommandLine``, ``Image``, ``EventID`` ...) to a string,
    a number, a list of those, or None. Fields the mapping does not rename keep their original
    names, so a rule may still name them. ``source`` is the file path (``-`` for standard input)
    and ``record`` the record number (EVTX), line number (JSON Lines, CSV) or document index.
    """

    fields: Mapping[str, Any]
    logsource: LogSource
    source: str
    record: Union[int, str]
    time: Optional[str] = None
    host: Optional[str] = None
    shape: str = field(default="", compare=False)

    @property
    def image(self) -> Optional[str]:
        value = self.fields.get("Image")
        return value if isinstance(value, str) else None

    @property
    def command_line(self) -> Optional[str]:
        value = self.fields.get("CommandLine")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ReadProblem:
    """A file or record that a reader could not read; the scan reports it and goes on."""

    source: str
    record: Optional[Union[int, str]]
    message: str

    def __str__(self) -> str:
        where = self.source if self.record is None else f"{self.source}: record {self.record}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Skipped:
    """An event that a reader counted but did not decode, because the scan declined it.

    Readers yield it only to a caller that passed them a ``skip`` test (see ``core.scan``); the
    logsource is known, the fields are not.
    """

    logsource: LogSource
    source: str
    record: Union[int, str]
