"""The portability report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Each rule gets a chart, one row per (target, mapping) pair. The left bar shows the share of events
where the target agrees with the rule and where it does not; the right bar shows the number of
divergences on a scale shared by all rows, so that a handful of divergences among thousands of
events stays visible.
"""

import json
from html import escape
from typing import List

from core.portability.render import status_text, divergence_line, exit_code
from core.portability.report import OK, Divergence, PairResult, Report, RuleReport
from core.portability.textmatch import visible

COLOURS = {
    "agree": "#2e7d32",
    "false negative": "#c62828",
    "false positive": "#ef6c00",
    "errors": "#6a1b9a",
    "unavailable": "#9e9e9e",
}
LABEL_WIDTH = 230
SHARE_WIDTH = 360
COUNT_WIDTH = 300
ROW_HEIGHT = 26
BAR_HEIGHT = 18
# A non-zero count gets at least this many pixels in the share bar, or one divergence among
# thousands of agreements would draw nothing.
MIN_SEGMENT = 4
MAX_DIVERGENCE_ROWS = 200

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #212121; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 4px; }
p.meta { color: #555; margin: 0 0 12px; }
.verdict { font-weight: 600; padding: 6px 10px; display: inline-block; border-radius: 4px; }
.verdict.fail { background: #ffebee; color: #b71c1c; }
.verdict.pass { background: #e8f5e9; color: #1b5e20; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, td.code { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
details { margin: 4px 0; }
"""


def to_html(report: Report, title: str = "lsassdump portability report") -> str:
    """Render the report as a standalone HTML page."""
    failed = exit_code(report) != 0
    verdict_class = "fail" if failed else "pass"
    verdict = "targets diverge from the rule" if failed else "every available target agrees with the rule"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(_meta(report))}</p>',
        f'<p><span class="verdict {verdict_class}">{escape(verdict)}</span></p>',
        _legend(),
    ]
    for rule in report.rules:
        parts.append(_rule_section(rule))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _meta(report: Report) -> str:
    cases = sum(rule.corpus_cases for rule in report.rules)
    text = f"{len(report.rules)} rule(s), {cases} generated cases"
    if report.event_paths:
        text += f", {report.events_read} events read from {', '.join(report.event_paths)}"
    return text


def _legend() -> str:
    items = [("agree", "agree"), ("false negative", "false negative"), ("false positive", "false positive"),
             ("errors", "emulator error"), ("unavailable", "not run")]
    spans = "".join(f'<span><i style="background:{COLOURS[key]}"></i>{escape(text)}</span>' for key, text in items)
    return f'<p class="legend">{spans}</p>'


def _rule_section(rule: RuleReport) -> str:
    counts = f"the rule matches {rule.corpus_matches} of {rule.corpus_cases} generated cases"
    if rule.events:
        counts += f" and {rule.event_matches} of {rule.events} events"
    parts = [
        f"<h2>{escape(rule.rule.title)}</h2>",
        f'<p class="meta"><code>{escape(rule.rule.source)}</code>: {escape(counts)}</p>',
        _chart(rule.results),
        _matrix(rule.results),
    ]
    divergences = [item for result in rule.results for item in result.divergences]
    if divergences:
        parts.append(_divergence_table(divergences))
    parts.append(_queries(rule.results))
    return "\n".join(parts)


def _chart(results: List[PairResult]) -> str:
    width = LABEL_WIDTH + SHARE_WIDTH + 20 + COUNT_WIDTH + 60
    height = ROW_HEIGHT * len(results) + 24
    most = max([result.false_negatives + result.false_positives + result.errors for result in results] + [1])
    rows = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="agreement of each target with the rule">',
        f'<text x="{LABEL_WIDTH}" y="14" font-size="12" fill="#555">share of events</text>',
        f'<text x="{LABEL_WIDTH + SHARE_WIDTH + 20}" y="14" font-size="12" fill="#555">'
        f'divergences (longest bar = {most})</text>',
    ]
    for index, result in enumerate(results):
        top = 24 + index * ROW_HEIGHT
        rows.append(f'<text x="0" y="{top + 13}" font-size="13">{escape(result.pair.label)}</text>')
        rows.extend(_share_bar(result, top))
        rows.extend(_count_bar(result, top, most))
    rows.append("</svg>")
    return "\n".join(rows)


def _share_bar(result: PairResult, top: int) -> List[str]:
    if result.status != OK or result.total == 0:
        colour = COLOURS["errors"] if result.status == "error" else COLOURS["unavailable"]
        return [f'<rect x="{LABEL_WIDTH}" y="{top}" width="{SHARE_WIDTH}" height="{BAR_HEIGHT}" fill="{colour}">'
                f'<title>{escape(result.status)}</title></rect>',
                f'<text x="{LABEL_WIDTH + 6}" y="{top + 13}" font-size="12" fill="#fff">'
                f'{escape(result.status)}</text>']
    segments = [("false negative", result.false_negatives), ("false positive", result.false_positives),
                ("errors", result.errors)]
    widths = [max(MIN_SEGMENT, round(SHARE_WIDTH * count / result.total)) if count else 0 for _, count in segments]
    agree_width = SHARE_WIDTH - sum(widths)
    out = [f'<rect x="{LABEL_WIDTH}" y="{top}" width="{agree_width}" height="{BAR_HEIGHT}" '
           f'fill="{COLOURS["agree"]}"><title>agree: {result.agree}</title></rect>']
    x = LABEL_WIDTH + agree_width
    for (name, count), segment in zip(segments, widths):
        if not segment:
            continue
        out.append(f'<rect x="{x}" y="{top}" width="{segment}" height="{BAR_HEIGHT}" fill="{COLOURS[name]}">'
                   f'<title>{escape(name)}: {count}</title></rect>')
        x += segment
    return out


def _count_bar(result: PairResult, top: int, most: int) -> List[str]:
    left = LABEL_WIDTH + SHARE_WIDTH + 20
    if result.status != OK:
        return [f'<text x="{left}" y="{top + 13}" font-size="12" fill="#555">{escape(result.message[:60])}</text>']
    x = left
    out = []
    for name, count in (("false negative", result.false_negatives), ("false positive", result.false_positives),
                        ("errors", result.errors)):
        if not count:
            continue
        width = max(2, round(COUNT_WIDTH * count / most))
        out.append(f'<rect x="{x}" y="{top}" width="{width}" height="{BAR_HEIGHT}" fill="{COLOURS[name]}">'
                   f'<title>{escape(name)}: {count}</title></rect>')
        x += width
    total = result.false_negatives + result.false_positives + result.errors
    out.append(f'<text x="{x + 6}" y="{top + 13}" font-size="12">{total}</text>')
    return out


def _matrix(results: List[PairResult]) -> str:
    rows = ["<table><tr><th>target/mapping</th><th>agree</th><th>false negative</th><th>false positive</th>"
            "<th>errors</th><th>status</th></tr>"]
    for result in results:
        if result.status == OK:
            cells = "".join(f'<td class="n">{count}</td>' for count in (
                result.agree, result.false_negatives, result.false_positives, result.errors))
            status = status_text(result)
        else:
            cells = '<td class="n">-</td>' * 4
            status = f"{result.status}: {result.message}"
        rows.append(f"<tr><td>{escape(result.pair.label)}</td>{cells}<td>{escape(status)}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _divergence_table(items: List[Divergence]) -> str:
    rows = [f"<details open><summary>{len(items)} divergences</summary>",
            "<table><tr><th>target/mapping</th><th>kind</th><th>event</th><th>field value</th>"
            "<th>rule value</th><th>semantic</th></tr>"]
    for item in items[:MAX_DIVERGENCE_ROWS]:
        value = item.event_value
        shown = visible(json.dumps(value, ensure_ascii=False)) if value is not None else "(missing)"
        rows.append(
            f"<tr title=\"{escape(divergence_line(item))}\"><td>{escape(item.pair.label)}</td>"
            f"<td>{escape(item.kind)}</td><td class=\"code\">{escape(item.subject.id)}</td>"
            f"<td class=\"code\">{escape(shown)}</td><td class=\"code\">{escape(item.values)}</td>"
            f"<td>{escape(item.cause.semantic)}: {escape(item.cause.detail)}</td></tr>")
    rows.append("</table>")
    if len(items) > MAX_DIVERGENCE_ROWS:
        rows.append(f"<p>{len(items) - MAX_DIVERGENCE_ROWS} more divergences are in the JSON report.</p>")
    rows.append("</details>")
    return "\n".join(rows)


def _queries(results: List[PairResult]) -> str:
    rows = ["<details><summary>queries</summary>"]
    for result in results:
        if result.query:
            rows.append(f"<p>{escape(result.pair.label)}</p><pre><code>{escape(result.query)}</code></pre>")
    rows.append("</details>")
    return "\n".join(rows)
