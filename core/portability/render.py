"""The portability report as text, Markdown or JSON (the HTML page is in ``html``)."""

import json
from typing import Any, Dict, List, Optional

from core.portability.report import NOT_AVAILABLE, OK, QUERY, REFUSED, Divergence, PairResult, Report, RuleReport
from core.portability.textmatch import visible

# Divergence lines shown per (target, mapping) pair in text and Markdown; JSON keeps them all.
DEFAULT_MAX_LINES = 20
MATRIX_HEADER = ("target/mapping", "agree", "false negative", "false positive", "errors", "status")

def exit_code(report: Report) -> int:
    """Return 1 when any pair diverges from the evaluator or fails, else 0."""
    return 1 if report.diverges else 0

def divergence_line(item: Divergence) -> str:
    """Word one divergence on one line: pair, kind, event, field value, rule value and semantic."""
    head = f"{item.pair.label}  {item.kind}  {item.subject.id}  "
    tail = f"value {item.values}  {item.cause.semantic}: {item.cause.detail}"
    if item.subject.origin == QUERY:
        return head + tail
    value = item.event_value
    shown = visible(json.dumps(value, ensure_ascii=False)) if value is not None else "(missing)"
    return f"{head}{item.field or 'event'}={shown}  {tail}"

def status_text(result: PairResult) -> str:
    """Return the status column of a pair: ok, diverges, ok with accepted semantics, or why it did not run."""
    if result.status == OK:
        if result.diverges and result.reference:
            return "diverges (reference variant, does not fail the run)"
        if result.diverges:
            return "diverges"
        if result.divergences:
            semantics = sorted({item.cause.semantic for item in result.divergences})
            return f"ok (accepted: {', '.join(semantics)})"
        return "ok"
    if result.message:
        return f"{result.status}: {result.message}"
    return result.status

def _matrix_rows(rule: RuleReport) -> List[List[str]]:
    rows = []
    for result in rule.results:
        if result.status == OK:
            counts = [str(result.agree), str(result.false_negatives), str(result.false_positives),
                      str(result.errors)]
        else:
            counts = ["-", "-", "-", "-"]
        rows.append([result.pair.label] + counts + [status_text(result)])
    return rows

def _headline(report: Report) -> str:
    rules = len(report.rules)
    cases = sum(rule.corpus_cases for rule in report.rules)
    line = f"Portability of {rules} rule{'s' if rules != 1 else ''}: {cases} generated cases"
    if report.event_paths:
        line += f", {report.events_read} events read from {', '.join(report.event_paths)}"
        if report.read_problems:
            line += f" ({report.read_problems} unreadable records skipped)"
    return line

def _rule_heading(rule: RuleReport) -> str:
    return f"{rule.rule.title} ({rule.rule.id or '-'}, {rule.rule.source})"

def _rule_counts(rule: RuleReport) -> str:
    text = f"the rule matches {rule.corpus_matches} of {rule.corpus_cases} generated cases"
    if rule.events:
        text += f" and {rule.event_matches} of {rule.events} events its logsource admits"
    return text

def _verdict(report: Report) -> str:
    results = [result for rule in report.rules for result in rule.results]
    diverging = sorted({result.pair.label for result in results if result.diverges and not result.reference})
    references = sorted({result.pair.label for result in results if result.diverges and result.reference})
    missing = sorted({result.pair.label for result in results if result.status == NOT_AVAILABLE})
    refused = sorted({result.pair.label for result in results if result.status == REFUSED})
    if diverging:
        line = f"result: {len(diverging)} of {len({r.pair.label for r in results})} target/mapping pairs diverge " \
               f"({', '.join(diverging)})"
    else:
        accepted = sorted({result.pair.label for result in results
                           if result.divergences and not result.failing and not result.reference})
        if accepted:
            line = (f"result: no target/mapping pair fails; {len(accepted)} diverge only in accepted semantics "
                    f"({', '.join(accepted)})")
        else:
            line = "result: every available target/mapping pair agrees with the rule"
    if references:
        line += f"; reference variants that diverge: {', '.join(references)}"
    if missing:
        line += f"; not available: {', '.join(missing)}"
    if refused:
        line += f"; refused the rule: {', '.join(refused)}"
    return line

def _limited(items: List[Divergence], max_lines: Optional[int]) -> List[Divergence]:
    return items if not max_lines else items[:max_lines]

def to_text(report: Report, max_lines: Optional[int] = DEFAULT_MAX_LINES) -> str:
    """Render the report for a terminal: a matrix per rule, then one line per divergence."""
    lines = [_headline(report), ""]
    for rule in report.rules:
        lines.append(_rule_heading(rule))
        lines.append(f"  {_rule_counts(rule)}")
        rows = [list(MATRIX_HEADER)] + _matrix_rows(rule)
        widths = [max(len(row[index]) for row in rows) for index in range(5)]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, 5)] + [row[5]]
            lines.append("  " + "  ".join(cells))
        for result in rule.results:
            if not result.divergences:
                continue
            shown = _limited(result.divergences, max_lines)
            lines.append("")
            lines.append(f"  {result.pair.label}: {len(result.divergences)} divergences")
            lines.extend("    " + divergence_line(item) for item in shown)
            if len(shown) < len(result.divergences):
                lines.append(f"    ... {len(result.divergences) - len(shown)} more (--max-lines 0 lists all)")
        lines.append("")
    lines.append(_verdict(report))
    return "\n".join(lines) + "\n"

def _md_cell(text: str) -> str:
    return visible(text).replace("|", "\\|").replace("\n", " ")

def to_markdown(report: Report, max_lines: Optional[int] = DEFAULT_MAX_LINES) -> str:
    """Render the report as Markdown: a table per rule and a table of divergences."""
    lines = ["# Portability report", "", _headline(report) + ".", ""]
    for rule in report.rules:
        lines.extend([f"## {_md_cell(rule.rule.title)}", "", f"`{rule.rule.source}`: {_rule_counts(rule)}.", ""])
        lines.append("| " + " | ".join(MATRIX_HEADER) + " |")
        lines.append("|---|---:|---:|---:|---:|---|")
        for row in _matrix_rows(rule):
            lines.append("| " + " | ".join(_md_cell(cell) for cell in row) + " |")
        items = [item for result in rule.results for item in _limited(result.divergences, max_lines)]
        total = sum(len(result.divergences) for result in rule.results)
        if items:
            lines.extend(["", f"### Divergences ({total})", "",
                          "| target/mapping | kind | event | field value | rule value | semantic |",
                          "|---|---|---|---|---|---|"])
            for item in items:
                value = item.event_value
                shown = json.dumps(value, ensure_ascii=False) if value is not None else "(missing)"
                lines.append("| " + " | ".join(_md_cell(cell) for cell in (
                    item.pair.label, item.kind, item.subject.id, shown, item.values,
                    f"{item.cause.semantic}: {item.cause.detail}")) + " |")
            if len(items) < total:
                lines.append("")
                lines.append(f"{total - len(items)} more divergences are left out; `--max-lines 0` lists all.")
        lines.append("")
    lines.append(_verdict(report) + ".")
    return "\n".join(lines) + "\n"

def to_data(report: Report) -> Dict[str, Any]:
    """Return the whole report as plain data, every divergence included."""
    return {
        "event_paths": list(report.event_paths),
        "events_read": report.events_read,
        "read_problems": report.read_problems,
        "diverges": report.diverges,
        "rules": [_rule_data(rule) for rule in report.rules],
    }

def _rule_data(rule: RuleReport) -> Dict[str, Any]:
    return {
        "id": rule.rule.id,
        "title": rule.rule.title,
        "source": rule.rule.source,
        "corpus_cases": rule.corpus_cases,
        "corpus_matches": rule.corpus_matches,
        "events": rule.events,
        "event_matches": rule.event_matches,
        "results": [
            {
                "target": result.pair.target,
                "mapping": result.pair.mapping,
                "status": result.status,
                "message": result.message,
                "query": result.query,
                "agree": result.agree,
                "false_negatives": result.false_negatives,
                "false_positives": result.false_positives,
                "errors": result.errors,
                "diverges": result.diverges,
                "divergences": [_divergence_data(item) for item in result.divergences],
            }
            for result in rule.results
        ],
    }

def _divergence_data(item: Divergence) -> Dict[str, Any]:
    return {
        "event": item.subject.id,
        "origin": item.subject.origin,
        "variant": item.subject.variant or None,
        "kind": item.kind,
        "field": item.field,
        "event_value": item.event_value,
        "rule_values": [{"selection": site.selection, "key": site.key, "value": site.written}
                        for site in item.cause.sites],
        "semantic": item.cause.semantic,
        "detail": item.cause.detail,
    }

def to_json(report: Report) -> str:
    return json.dumps(to_data(report), ensure_ascii=False, indent=2, default=str) + "\n"
