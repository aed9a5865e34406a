"""Real-world LSASS dump command lines that a rule misses, each with the reason.

The variants live in ``lsass_variants.json`` beside this module: LSASS dumps (which a rule should
alert on) and benign look-alikes (which it should not). A rule is scored by its catch rate on
the dumps, its alerts on the look-alikes and, when event files are given, its alerts on them.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from core.errors import EventInputError, Location
from core.evaluator import compile_rule
from core.events import Event
from core.portability.explain import Explanation, explain
from core.portability.textmatch import visible
from core.rules import Rule

VARIANTS_PATH = Path(__file__).resolve().parent / "lsass_variants.json"


@dataclass(frozen=True)
class Variant:
    """One command line of the corpus: an LSASS dump or a benign look-alike."""

    id: str
    dump: bool
    command_line: str
    technique: str
    image: Optional[str] = None

    @property
    def fields(self) -> Dict[str, Any]:
        """The process-creation event of this command line, with Sigma field names."""
        fields: Dict[str, Any] = {"CommandLine": self.command_line}
        if self.image is not None:
            fields["Image"] = self.image
        return fields


@dataclass(frozen=True)
class Outcome:
    """A rule against one variant: whether it alerted, and why it did or did not."""

    variant: Variant
    alerted: bool
    explanation: Explanation

    @property
    def correct(self) -> bool:
        return self.alerted == self.variant.dump

    @property
    def reason(self) -> str:
        """Why the rule missed a dump, or why it alerted on a look-alike."""
        if self.alerted:
            hits = [f"{value.site.selection} {value.site.label}"
                    for selection in self.explanation.selections if selection.matched
                    for value in selection.values if value.matched]
            return "matched " + ", ".join(hits)
        return miss_reason(self.explanation)


@dataclass(frozen=True)
class EventAlert:
    """An alert of the rule on a real event."""

    source: str
    record: Any
    command_line: Optional[str]


@dataclass
class GapsReport:
    """One rule scored on the variant corpus and, optionally, on real events."""

    rule: Rule
    outcomes: List[Outcome]
    events_checked: Optional[int] = None
    event_alerts: List[EventAlert] = field(default_factory=list)

    @property
    def dumps(self) -> List[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.variant.dump]

    @property
    def missed(self) -> List[Outcome]:
        return [outcome for outcome in self.dumps if not outcome.alerted]

    @property
    def false_alerts(self) -> List[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.variant.dump and outcome.alerted]

    @property
    def catch_rate(self) -> float:
        dumps = self.dumps
        return (len(dumps) - len(self.missed)) / len(dumps) if dumps else 0.0


def load_variants(path: Optional[str] = None) -> Tuple[Variant, ...]:
    """Load a variant corpus (the bundled one by default); raises EventInputError when invalid."""
    source = Path(path) if path else VARIANTS_PATH
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise EventInputError(f"cannot read the variant corpus: {error.strerror}", Location(str(source))) from None
    except ValueError as error:
        raise EventInputError(f"invalid JSON in the variant corpus: {error}", Location(str(source))) from None
    items = document.get("variants") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise EventInputError("the variant corpus needs a 'variants' list", Location(str(source)))
    variants = []
    for index, item in enumerate(items):
        where = Location(str(source), record=index)
        if not isinstance(item, dict) or not isinstance(item.get("command_line"), str) \
                or not isinstance(item.get("dump"), bool):
            raise EventInputError("a variant needs 'command_line' (a string) and 'dump' (true or false)", where)
        variants.append(Variant(
            id=str(item.get("id") or f"variant-{index}"),
            dump=item["dump"],
            command_line=item["command_line"],
            technique=str(item.get("technique") or ""),
            image=item.get("image"),
        ))
    return tuple(variants)


def score(rule: Rule, variants: Sequence[Variant], events: Optional[Sequence[Event]] = None) -> GapsReport:
    """Run the rule over the variants and, when given, over real events (logsource checked)."""
    compiled = compile_rule(rule)
    outcomes = []
    for variant in variants:
        fields = variant.fields
        outcomes.append(Outcome(variant, compiled.test(fields), explain(rule, fields)))
    report = GapsReport(rule, outcomes)
    if events is not None:
        admitted = [event for event in events if compiled.admits(event.logsource)]
        report.events_checked = len(admitted)
        report.event_alerts = [EventAlert(event.source, event.record, event.command_line)
                               for event in admitted if compiled.test(event.fields)]
    return report


def miss_reason(explanation: Explanation) -> str:
    """Word why a rule did not match: per failed selection, its near misses or the values it lacks."""
    reasons = []
    for selection in explanation.failed_selections():
        near = list(dict.fromkeys(miss.reason for _, miss in selection.near))
        if near:
            reasons.append(f"{selection.name}: {'; '.join(near)}")
            continue
        labels = [value.site.label for value in selection.values]
        fields = sorted({value.site.field or "any field" for value in selection.values})
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        reasons.append(f"{selection.name}: none of {shown} in {', '.join(fields)}")
    if not reasons:
        return "the condition rejects the event although its selections match"
    return " | ".join(reasons)


def to_text(reports: Sequence[GapsReport]) -> str:
    """Render gap reports for a terminal: the catch rate, then each miss and false alert."""
    lines: List[str] = []
    for report in reports:
        dumps, missed = report.dumps, report.missed
        lines.append(f"{report.rule.title} ({report.rule.id or report.rule.source})")
        lines.append(f"  catches {len(dumps) - len(missed)} of {len(dumps)} LSASS dump variants "
                     f"({report.catch_rate:.0%}); alerts on {len(report.false_alerts)} of "
                     f"{len(report.outcomes) - len(dumps)} benign look-alikes")
        for outcome in missed:
            lines.append(f"  missed {outcome.variant.id}: {visible(outcome.variant.command_line)}")
            lines.append(f"      {outcome.variant.technique}")
            lines.append(f"      why: {outcome.reason}")
        for outcome in report.false_alerts:
            lines.append(f"  false alert {outcome.variant.id}: {visible(outcome.variant.command_line)}")
            lines.append(f"      why: {outcome.reason}")
        if report.events_checked is not None:
            lines.append(f"  alerts on {len(report.event_alerts)} of {report.events_checked} events")
            for alert in report.event_alerts:
                shown = visible(alert.command_line) if alert.command_line is not None else "(no command line)"
                lines.append(f"    {alert.source}#{alert.record}: {shown}")
        lines.append("")
    return "\n".join(lines)


def to_markdown(reports: Sequence[GapsReport]) -> str:
    """Render gap reports as Markdown tables."""
    lines = ["# Gaps", ""]
    for report in reports:
        dumps = report.dumps
        lines.extend([f"## {report.rule.title}", "",
                      f"Catches {len(dumps) - len(report.missed)} of {len(dumps)} LSASS dump variants "
                      f"({report.catch_rate:.0%}); alerts on {len(report.false_alerts)} benign look-alikes.", ""])
        rows = [("missed", outcome) for outcome in report.missed]
        rows += [("false alert", outcome) for outcome in report.false_alerts]
        if rows:
            lines.extend(["| | variant | command line | why |", "|---|---|---|---|"])
            for kind, outcome in rows:
                cells = (kind, outcome.variant.id, f"`{visible(outcome.variant.command_line)}`", outcome.reason)
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            lines.append("")
        if report.events_checked is not None:
            lines.append(f"Alerts on {len(report.event_alerts)} of {report.events_checked} events.")
            lines.append("")
    return "\n".join(lines)


def to_data(reports: Sequence[GapsReport]) -> List[Mapping[str, Any]]:
    """Return gap reports as plain data for JSON output."""
    data = []
    for report in reports:
        data.append({
            "rule": {"id": report.rule.id, "title": report.rule.title, "source": report.rule.source},
            "dumps": len(report.dumps),
            "caught": len(report.dumps) - len(report.missed),
            "catch_rate": round(report.catch_rate, 4),
            "missed": [{"id": o.variant.id, "command_line": o.variant.command_line,
                        "technique": o.variant.technique, "reason": o.reason} for o in report.missed],
            "false_alerts": [{"id": o.variant.id, "command_line": o.variant.command_line, "reason": o.reason}
                             for o in report.false_alerts],
            "events_checked": report.events_checked,
            "event_alerts": [{"source": a.source, "record": a.record, "command_line": a.command_line}
                             for a in report.event_alerts],
        })
    return data
