"""lsassdump's core: load Sigma rules, evaluate them exactly, read Windows logs, emit queries.

The names below are the public verbs; ``splunk_app`` and ``elastic_watcher`` use only these.
"""

from core.errors import (
    ConditionError, ConversionError, EventInputError, Location, LsassdumpError, MappingError, RuleError,
    UnsupportedFeatureError,
)
from core.evaluator import CompiledRule, Match, compile_rule
from core.events import Event, LogSource, ReadProblem
from core.rules import Rule, iter_rule_files, load_rule, load_rule_document, load_rules

__version__ = "0.1.0"

__all__ = [
    "CompiledRule", "ConditionError", "ConversionError", "Event", "EventInputError", "Location", "LogSource",
    "LsassdumpError", "MappingError", "Match", "ReadProblem", "Rule", "RuleError", "UnsupportedFeatureError",
    "compile_rule", "convert", "emulate", "iter_event_files", "iter_rule_files", "load_rule",
    "load_rule_document", "load_rules", "read_events",
]


def read_events(path: str):  # type: ignore[no-untyped-def]
    """Stream the events of one file (``-`` for standard input) as Event or ReadProblem."""
    from core.readers import read_events as _read_events

    return _read_events(path)


def iter_event_files(paths):  # type: ignore[no-untyped-def]
    """Yield the event files under ``paths``, walking folders recursively in sorted order."""
    from core.readers import iter_event_files as _iter_event_files

    return _iter_event_files(paths)


def convert(rule: Rule, target: str, mapping: str) -> str:
    """Return the query for ``rule`` in a target language with a field mapping."""
    from core.targets import convert as _convert

    return _convert(rule, target, mapping)


def emulate(target: str, query: str, document, mapping=None) -> bool:  # type: ignore[no-untyped-def]
    """Evaluate query text of a target language on one document."""
    from core.emulators import emulate as _emulate

    return _emulate(target, query, document, mapping)
