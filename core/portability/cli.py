"""The ``portability``, ``explain`` and ``gaps`` commands, for ``core.cli`` to register.

Exit codes: ``portability`` 0 when every available target agrees with every rule, 1 when one
diverges (or, with ``--strict``, is not available or rejects a rule), 2 on a usage or input error.
``explain`` 0 when a rule matches the event, 1 when none does, 2 on an error. ``gaps`` 0 when
every rule catches every dump variant and alerts on no look-alike, 1 otherwise, 2 on an error.
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from core.errors import LsassdumpError

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
FORMATS = ("text", "markdown", "json", "html")


def register(subparsers: Any) -> None:
    """Add the ``portability``, ``explain`` and ``gaps`` commands to an argparse subparsers object."""
    _add_portability(subparsers)
    _add_explain(subparsers)
    _add_gaps(subparsers)


def _split(values: Optional[Sequence[str]]) -> List[str]:
    """Accept both repeated options and comma-separated lists."""
    out: List[str] = []
    for value in values or ():
        out.extend(item.strip() for item in value.split(",") if item.strip())
    return out


def _add_portability(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "portability", help="compare each target's translation of rules with the rules themselves",
        description="Run rules through the evaluator and through every target's emulator, over the given "
                    "events and a corpus generated from each rule, and list every event where a target "
                    "decides differently. Exit codes: 0 every available target agrees, 1 a target diverges, "
                    "2 usage or input error.")
    command.add_argument("rules", nargs="*", metavar="RULE", help="rule files or folders (default: the bundled rules)")
    command.add_argument("--events", nargs="+", action="extend", default=[], metavar="PATH",
                         help="event files or folders in any format the scanner reads")
    command.add_argument("--targets", nargs="+", action="extend", default=[], metavar="TARGET",
                         help="query languages to run (default: every target)")
    command.add_argument("--mappings", nargs="+", action="extend", default=[], metavar="MAPPING",
                         help="field mappings to run (default: every mapping for each target)")
    command.add_argument("--no-corpus", action="store_true", help="skip the corpus generated from each rule")
    command.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    command.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of standard output")
    command.add_argument("--max-lines", type=_non_negative_int, default=20, metavar="N",
                         help="divergence lines per target/mapping in text and Markdown; 0 lists all (default: 20)")
    from core.portability.classify import SEMANTICS

    command.add_argument("--accept", nargs="+", action="extend", default=[], metavar="SEMANTIC",
                         help="list divergences of these semantics but do not fail on them "
                              f"(one of: {', '.join(SEMANTICS)})")
    command.add_argument("--strict", action="store_true",
                         help="also exit 1 when a target is not available or rejects a rule")
    command.set_defaults(func=run_portability)


def _add_explain(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "explain", help="show why a rule matches an event or not",
        description="Evaluate rules on one event and show, per selection and per value, what matched "
                    "(marked between « and ») and the near misses of what did not. Exit codes: 0 a rule "
                    "matched, 1 none matched, 2 usage or input error.")
    command.add_argument("rules", nargs="*", metavar="RULE", help="rule files or folders (default: the bundled rules)")
    event = command.add_mutually_exclusive_group(required=True)
    event.add_argument("--event", metavar="JSON",
                       help="the event as a JSON object: Sigma field names, or a document the scanner reads "
                            "(EVTX JSON, Winlogbeat, ECS, Sentinel)")
    event.add_argument("--command-line", metavar="TEXT", help="a process creation with this CommandLine")
    command.add_argument("--field", action="append", default=[], metavar="NAME=VALUE",
                         help="add or replace a field of the event (repeatable), such as Image=C:\\x\\procdump.exe")
    command.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    command.set_defaults(func=run_explain)


def _add_gaps(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "gaps", help="list the real-world LSASS dump variants a rule misses",
        description="Run a corpus of LSASS dump command lines and benign look-alikes through rules and list "
                    "the dumps each rule misses, with the reason, and the look-alikes it alerts on. Exit "
                    "codes: 0 nothing missed, 1 a dump missed or a look-alike alerted, 2 usage or input error.")
    command.add_argument("rules", nargs="*", metavar="RULE", help="rule files or folders (default: the bundled rules)")
    command.add_argument("--corpus", metavar="PATH", help="a variant corpus in JSON (default: the bundled one)")
    command.add_argument("--events", nargs="+", action="extend", default=[], metavar="PATH",
                         help="also count the rule's alerts on these event files or folders")
    command.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                         help="output format (default: text)")
    command.set_defaults(func=run_gaps)


def _load_rules(paths: Sequence[str]) -> List[Any]:
    from core.rules import load_rules

    if paths:
        return load_rules(list(paths))
    from core.bundled import bundled_rules_dir

    return load_rules([str(bundled_rules_dir())])


def _error(message: str) -> int:
    print(f"lsassdump: {message}", file=sys.stderr)
    return EXIT_USAGE


def _non_negative_int(text: str) -> int:
    """Parse a whole number of 0 or more, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid whole number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _missing_event_path(paths: Optional[Sequence[str]]) -> Optional[str]:
    """Return the first --events path that does not exist, or None."""
    for path in paths or ():
        if path != "-" and not os.path.exists(path):
            return path
    return None


def run_portability(args: argparse.Namespace) -> int:
    from core.portability.report import Backend, build_report, load_events, pairs_for

    backend = Backend()
    targets, mappings = _split(args.targets), _split(args.mappings)
    known_targets = backend.targets()
    unknown = [name for name in targets if name not in known_targets]
    if unknown:
        return _error(f"unknown target '{unknown[0]}' (choose from {', '.join(known_targets)})")
    from core.mappings import MAPPINGS

    unknown = [name for name in mappings if name not in MAPPINGS]
    if unknown:
        return _error(f"unknown mapping '{unknown[0]}' (choose from {', '.join(MAPPINGS)})")
    from core.portability.classify import SEMANTICS

    accepted = _split(args.accept)
    unknown = [name for name in accepted if name not in SEMANTICS]
    if unknown:
        return _error(f"unknown semantic '{unknown[0]}' for --accept (choose from {', '.join(SEMANTICS)})")
    pairs = pairs_for(backend, targets, mappings)
    if not pairs:
        return _error("no target uses the chosen mappings; check --targets and --mappings")
    missing = _missing_event_path(args.events)
    if missing is not None:
        return _error(f"--events {missing}: no such file or folder")
    try:
        rules = _load_rules(args.rules)
        events, problems = load_events(args.events) if args.events else ([], 0)
    except LsassdumpError as error:
        return _error(str(error))
    if not rules:
        return _error("no rule found")
    from core.portability.report import VARIANTS

    # The case-sensitive variants show what a naive translation misses; they fail the run only
    # when named in --targets.
    references = [name for name in VARIANTS if name not in targets]
    report = build_report(rules, events, pairs, backend, use_corpus=not args.no_corpus,
                          event_paths=args.events, read_problems=problems, accept=accepted,
                          reference_targets=references)
    _write(args.output, _render_report(report, args.format, args.max_lines))
    return _portability_exit(report, args.strict)


def _render_report(report: Any, output_format: str, max_lines: int) -> str:
    from core.portability import render

    if output_format == "json":
        return render.to_json(report)
    if output_format == "markdown":
        return render.to_markdown(report, max_lines or None)
    if output_format == "html":
        from core.portability.html import to_html

        return to_html(report)
    return render.to_text(report, max_lines or None)


def _portability_exit(report: Any, strict: bool) -> int:
    from core.portability.report import NOT_AVAILABLE, REFUSED

    if report.diverges:
        return EXIT_FOUND
    if strict and any(result.status in (NOT_AVAILABLE, REFUSED) for rule in report.rules for result in rule.results):
        return EXIT_FOUND
    return EXIT_OK


def _write(path: Optional[str], text: str) -> None:
    if not path:
        sys.stdout.write(text)
        return
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def run_explain(args: argparse.Namespace) -> int:
    from core.evaluator import compile_rule
    from core.scan import logsource_label
    from core.portability.explain import as_dict, explain, format_text

    try:
        fields = _event_fields(args.event, args.command_line, args.field)
        rules = _load_rules(args.rules)
    except (LsassdumpError, ValueError) as error:
        return _error(str(error))
    if not rules:
        return _error("no rule found")
    logsource = _event_logsource(args.event) if args.command_line is None else None
    admitted = [rule for rule in rules if logsource is None or compile_rule(rule).admits(logsource)]
    outside = []
    for rule in rules:
        if rule not in admitted:
            # As in scan, a rule never sees an event outside its logsource, whatever its fields hold.
            spec = rule.logsource
            wants = ", ".join(f"{key} {value}" for key, value in
                              (("category", spec.category), ("service", spec.service), ("product", spec.product))
                              if value) or "any"
            outside.append((rule, f"the rule reads {wants} events, and this event is {logsource_label(logsource)}"))
    explanations = [explain(rule, fields) for rule in admitted]
    if args.format == "json":
        items = [as_dict(item) for item in explanations]
        items += [{"rule_id": rule.id, "title": rule.title, "matched": False, "reason": reason}
                  for rule, reason in outside]
        sys.stdout.write(json.dumps(items, ensure_ascii=False, indent=2) + "\n")
    else:
        texts = [format_text(item) for item in explanations]
        texts += [f"{rule.title} ({rule.id}): NO MATCH: {reason}\n" for rule, reason in outside]
        sys.stdout.write("\n".join(texts))
    return EXIT_OK if any(item.matched for item in explanations) else EXIT_FOUND


def _event_logsource(event: Optional[str]) -> Any:
    """Return the logsource of the --event document when the scanner recognises it, else None."""
    from core.events import Event
    from core.readers.jsonfile import event_from_document

    try:
        document = json.loads(event or "")
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    for item in event_from_document(document, "--event", 1):
        if isinstance(item, Event) and (item.logsource.categories or item.logsource.services):
            return item.logsource
    return None


def _event_fields(event: Optional[str], command_line: Optional[str], extra: Sequence[str]) -> Dict[str, Any]:
    """Build the Sigma fields of the event to explain; raises ValueError on invalid input."""
    fields: Dict[str, Any]
    if command_line is not None:
        fields = {"CommandLine": command_line}
    else:
        try:
            document = json.loads(event or "")
        except (ValueError, RecursionError) as error:
            raise ValueError(f"--event is not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise ValueError("--event must be a JSON object")
        fields = _document_fields(document)
    for item in extra:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--field needs NAME=VALUE, not {item!r}")
        fields[name] = value
    return fields


def _document_fields(document: Dict[str, Any]) -> Dict[str, Any]:
    """Return a document's Sigma fields, as the scanner reads it; unrecognised documents are taken as given.

    The scanner's own builder applies the category renames too (a 4688 document gets ``Image``).
    """
    from core.events import Event
    from core.readers.jsonfile import event_from_document

    for item in event_from_document(document, "--event", 1):
        if isinstance(item, Event):
            return dict(item.fields)
    return dict(document)


def run_gaps(args: argparse.Namespace) -> int:
    from core.portability import gaps
    from core.portability.report import load_events

    missing = _missing_event_path(args.events)
    if missing is not None:
        return _error(f"--events {missing}: no such file or folder")
    try:
        variants = gaps.load_variants(args.corpus)
        rules = _load_rules(args.rules)
        events = load_events(args.events)[0] if args.events else None
    except LsassdumpError as error:
        return _error(str(error))
    if not rules:
        return _error("no rule found")
    reports = [gaps.score(rule, variants, events) for rule in rules]
    if args.format == "json":
        text = json.dumps(gaps.to_data(reports), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "markdown":
        text = gaps.to_markdown(reports)
    else:
        text = gaps.to_text(reports)
    sys.stdout.write(text)
    clean = all(not report.missed and not report.false_alerts for report in reports)
    return EXIT_OK if clean else EXIT_FOUND
