"""Scanning: every event of every file through every rule whose logsource covers it."""

import collections
from dataclasses import dataclass, field
from typing import Any, Callable, Counter, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from core.evaluator import CompiledRule, compile_rule
from core.prefilter import may_match, required_groups
from core.events import Event, LogSource, ReadProblem, Skipped
from core.errors import Location, LsassdumpError, RuleError
from core.rules import Rule, iter_rule_files, load_rule


@dataclass(frozen=True)
class Alert:
    """One rule that matched one event, with what an analyst needs to triage it."""

    rule_id: str
    title: str
    level: str
    tags: Tuple[str, ...]
    techniques: Tuple[str, ...]
    selections: Tuple[str, ...]
    time: Optional[str]
    host: Optional[str]
    image: Optional[str]
    command_line: Optional[str]
    source: str
    record: Union[int, str]

    def as_dict(self) -> Dict[str, Any]:
        return {
            "rule_id": self.rule_id, "title": self.title, "level": self.level, "tags": list(self.tags),
            "attack_techniques": list(self.techniques), "matched_selections": list(self.selections),
            "time": self.time, "host": self.host, "image": self.image, "command_line": self.command_line,
            "source": self.source, "record": self.record,
        }


@dataclass
class Summary:
    """Counts of the files, events, alerts and errors of one scan."""

    files: int = 0
    events: int = 0
    alerts: int = 0
    errors: int = 0
    rules: int = 0
    rule_errors: int = 0
    per_logsource: Counter = field(default_factory=collections.Counter)


@dataclass(frozen=True)
class RuleLoadResult:
    rules: Tuple[Rule, ...]
    errors: Tuple[LsassdumpError, ...]


def load_rules_leniently(paths: Sequence[str]) -> RuleLoadResult:
    """Load every rule under ``paths``, keeping the errors of the invalid ones instead of raising."""
    rules: List[Rule] = []
    errors: List[LsassdumpError] = []
    sources: Dict[str, str] = {}
    for path in iter_rule_files(paths):
        try:
            rule = load_rule(path)
        except LsassdumpError as error:
            errors.append(error)
            continue
        # Two files with one id would raise every alert twice; the first file loaded wins.
        if rule.id and sources.get(rule.id) == path:
            continue  # the same file named twice
        if rule.id and rule.id in sources:
            errors.append(RuleError(f"rule id {rule.id} is already used by {sources[rule.id]}", Location(path),
                                    "give each rule its own id, or load only one of the two files"))
            continue
        sources[rule.id] = path
        rules.append(rule)
    return RuleLoadResult(tuple(rules), tuple(errors))


def logsource_label(logsource: LogSource) -> str:
    """Name a logsource for the summary: its category, else its service, else 'other'."""
    if logsource.categories:
        return ",".join(sorted(logsource.categories))
    if logsource.services:
        return "service:" + ",".join(sorted(logsource.services))
    return "other"


class Scanner:
    """Compiled rules run over a stream of events, with a running summary."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.compiled: Tuple[CompiledRule, ...] = tuple(compile_rule(rule) for rule in rules)
        self.summary = Summary(rules=len(self.compiled))
        # Rules that see an event depend only on its logsource, and real logs hold few of them.
        self._by_logsource: Dict[Any, Tuple[CompiledRule, ...]] = {}
        self._prechecks: Dict[LogSource, Any] = {}

    def scan_event(self, event: Event) -> List[Alert]:
        """Evaluate one event; return its alerts."""
        self.summary.events += 1
        self.summary.per_logsource[logsource_label(event.logsource)] += 1
        rules = self._rules_for(event.logsource)
        alerts = []
        for rule in rules:
            found = rule.match(event.fields)
            if found is None:
                continue
            spec = rule.rule
            alerts.append(Alert(
                rule_id=spec.id, title=spec.title, level=spec.level, tags=spec.tags,
                techniques=spec.attack_techniques, selections=found.selections, time=event.time,
                host=event.host, image=_text(event.fields.get("Image")),
                command_line=_text(event.fields.get("CommandLine")), source=event.source, record=event.record,
            ))
        self.summary.alerts += len(alerts)
        return alerts

    def _rules_for(self, logsource: LogSource) -> Tuple[CompiledRule, ...]:
        rules = self._by_logsource.get(logsource)
        if rules is None:
            rules = tuple(rule for rule in self.compiled if rule.admits(logsource))
            self._by_logsource[logsource] = rules
        return rules

    def may_skip(self, logsource: LogSource, raw: str) -> bool:
        """Tell whether no rule can match an event, judging by its logsource and raw JSON text.

        Readers call it before decoding (EVTX only). Each rule's pre-check substrings come from
        ``core.prefilter``; a rule without them makes every event of its logsource worth decoding.
        """
        checks = self._prechecks.get(logsource)
        if checks is None:
            found = []
            for rule in self._rules_for(logsource):
                groups = required_groups(rule.rule)
                if groups is None:
                    found = None
                    break
                found.append(groups)
            checks = self._prechecks[logsource] = found
        if checks is None:
            return False
        if not checks:
            return True
        folded = raw.casefold()
        return not any(may_match(groups, folded) for groups in checks)

    def scan(self, items: Iterable[Union[Event, ReadProblem, Skipped]],
             on_problem: Optional[Callable[[ReadProblem], None]] = None) -> Iterator[Alert]:
        """Scan a stream of events and read problems; problems are counted and passed on."""
        for item in items:
            if isinstance(item, Skipped):
                self.summary.events += 1
                self.summary.per_logsource[logsource_label(item.logsource)] += 1
                continue
            if isinstance(item, ReadProblem):
                self.summary.errors += 1
                if on_problem is not None:
                    on_problem(item)
                continue
            yield from self.scan_event(item)


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
