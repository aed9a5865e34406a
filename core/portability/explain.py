"""Why a rule matched an event or not: per selection, per value, with the matched substring marked.

Verdicts come from the evaluator (``core.evaluator``); this module adds where each value matched
and, for a value that did not, the near misses that would have matched (a tab for a space, a
look-alike dash, quotes, carets, the value at the very end of the field).
"""

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from core.evaluator import compile_node, compile_rule
from core.ir import FieldMatch, StringMatch, selections_in
from core.portability.sites import ValueSite, value_sites
from core.portability.textmatch import NearMiss, Span, as_text, find_span, near_misses, visible
from core.rules import Rule

# Characters of context shown on each side of a matched substring.
CONTEXT = 40
MARK_START, MARK_END = "\u00ab", "\u00bb"


@dataclass(frozen=True)
class ValueVerdict:
    """One value of the rule against the event: matched or not, where, and the near misses."""

    site: ValueSite
    matched: bool
    text: Optional[str]
    span: Optional[Span]
    near: Tuple[NearMiss, ...]
    missing: bool

    def marked(self, context: int = CONTEXT) -> str:
        """Return the event text around the match, the matched substring between « and », tabs drawn as ␉."""
        if self.text is None or self.span is None:
            return ""
        start, end = self.span
        left = self.text[max(0, start - context):start]
        right = self.text[end:end + context]
        prefix = "\u2026" if start > context else ""
        suffix = "\u2026" if end + context < len(self.text) else ""
        return visible(f"{prefix}{left}{MARK_START}{self.text[start:end]}{MARK_END}{right}{suffix}")


@dataclass(frozen=True)
class SelectionVerdict:
    """One selection of the rule against the event."""

    name: str
    matched: bool
    values: Tuple[ValueVerdict, ...]

    @property
    def near(self) -> Tuple[Tuple[ValueVerdict, NearMiss], ...]:
        """The near misses of this selection's values, when none of them matched."""
        if self.matched:
            return ()
        return tuple((value, miss) for value in self.values for miss in value.near)


@dataclass(frozen=True)
class Explanation:
    """A rule against one event (Sigma field names): the verdict and its reasons."""

    rule: Rule
    fields: Mapping[str, Any]
    matched: bool
    selections: Tuple[SelectionVerdict, ...]

    @property
    def condition(self) -> str:
        detection = self.rule.document.get("detection", {}) if isinstance(self.rule.document, dict) else {}
        condition = detection.get("condition", "") if isinstance(detection, dict) else ""
        return condition if isinstance(condition, str) else " | ".join(str(item) for item in condition)

    @property
    def read_fields(self) -> Tuple[str, ...]:
        """The event fields that the rule's values read, in rule order."""
        names: Dict[str, None] = {}
        for selection in self.selections:
            for value in selection.values:
                if value.site.field is not None:
                    names.setdefault(value.site.field)
        return tuple(names)

    def failed_selections(self) -> Tuple[SelectionVerdict, ...]:
        return tuple(selection for selection in self.selections if not selection.matched)


def explain(rule: Rule, fields: Mapping[str, Any]) -> Explanation:
    """Evaluate ``rule`` on an event's Sigma fields and explain the verdict (logsource not checked)."""
    compiled = compile_rule(rule)
    sites = value_sites(rule)
    verdicts: List[SelectionVerdict] = []
    for selection in selections_in(rule.detection):
        matched = compile_node(selection.body)(fields)
        values = tuple(_value_verdict(site, fields) for site in sites if site.selection == selection.name)
        verdicts.append(SelectionVerdict(selection.name, matched, values))
    return Explanation(rule, dict(fields), compiled.test(fields), tuple(verdicts))


def _value_verdict(site: ValueSite, fields: Mapping[str, Any]) -> ValueVerdict:
    test = compile_node(FieldMatch(site.field, (site.matcher,)))
    matched = test(fields)
    texts = _candidate_texts(site, fields)
    missing = site.field is not None and fields.get(site.field) is None
    matcher = site.matcher
    if not isinstance(matcher, StringMatch):
        text = texts[0] if texts else None
        return ValueVerdict(site, matched, text, None, (), missing)
    if matched:
        for text in texts:
            for pattern in matcher.patterns:
                span = find_span(pattern, matcher.cased, text)
                if span is not None:
                    return ValueVerdict(site, True, text, span, (), missing)
        return ValueVerdict(site, True, texts[0] if texts else None, None, (), missing)
    near: List[NearMiss] = []
    for text in texts:
        for pattern in matcher.patterns:
            for miss in near_misses(pattern, matcher.cased, text):
                if miss not in near:
                    near.append(miss)
    return ValueVerdict(site, False, texts[0] if texts else None, None, tuple(near), missing)


def _candidate_texts(site: ValueSite, fields: Mapping[str, Any]) -> List[str]:
    """Return the event texts a value is tested against: the field's, or every value for keywords."""
    if site.field is None:
        values: List[Any] = []
        for value in fields.values():
            values.extend(value if isinstance(value, list) else [value])
    else:
        value = fields.get(site.field)
        values = value if isinstance(value, list) else [value]
    texts = [as_text(value) for value in values]
    return [text for text in texts if text is not None]


def format_text(explanation: Explanation) -> str:
    """Render an explanation for a terminal: the verdict, the event fields, then one line per value."""
    rule = explanation.rule
    verdict = "MATCH" if explanation.matched else "no match"
    lines = [f"{rule.title} ({rule.id or rule.source}): {verdict}", f"  condition: {explanation.condition}"]
    for name in explanation.read_fields:
        value = explanation.fields.get(name)
        shown = json.dumps(value, ensure_ascii=False) if value is not None else "(missing)"
        lines.append(f"  event {name}: {shown}")
    for selection in explanation.selections:
        lines.append(f"  {selection.name}: {'matched' if selection.matched else 'no match'}")
        for value in selection.values:
            lines.append("    " + _value_line(value))
    return "\n".join(lines) + "\n"


def _value_line(value: ValueVerdict) -> str:
    site = value.site
    head = f"{'+' if value.matched else '-'} {site.key} {site.label}"
    if value.matched:
        marked = value.marked()
        return f"{head}: matched: {marked}" if marked else f"{head}: matched"
    if value.missing:
        return f"{head}: no match (the event has no {site.field})"
    if value.near:
        return f"{head}: no match, near miss: " + "; ".join(miss.reason for miss in value.near)
    return f"{head}: no match"


def as_dict(explanation: Explanation) -> Dict[str, Any]:
    """Return an explanation as plain data for JSON output."""
    rule = explanation.rule
    return {
        "rule": {"id": rule.id, "title": rule.title, "source": rule.source},
        "matched": explanation.matched,
        "condition": explanation.condition,
        "event": {name: explanation.fields.get(name) for name in explanation.read_fields},
        "selections": [
            {
                "name": selection.name,
                "matched": selection.matched,
                "values": [
                    {
                        "key": value.site.key,
                        "value": value.site.written,
                        "matched": value.matched,
                        "span": list(value.span) if value.span else None,
                        "marked": value.marked() or None,
                        "near_misses": [{"kind": miss.kind, "reason": miss.reason} for miss in value.near],
                    }
                    for value in selection.values
                ],
            }
            for selection in explanation.selections
        ],
    }
