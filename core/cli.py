"""The ``lsassdump`` command line.

Exit codes of ``scan``:

- 0: no alert, and every file was read;
- 1: at least one alert;
- 2: usage error, or no rule or no input could be used;
- 3: no alert, but some files or records could not be read;
- 141: the output pipe was closed before the scan ended.

``convert`` returns 0, or 2 when a rule could not be converted.
"""

import argparse
import json
import logging
import os
import sys
from typing import Any, Callable, List, Optional, Sequence, TextIO

from core import __version__
from core.errors import LsassdumpError

EXIT_OK, EXIT_ALERTS, EXIT_USAGE, EXIT_READ_ERRORS = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe

log = logging.getLogger("lsassdump")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsassdump",
        description="Evaluate Sigma rules on Windows logs exactly, and convert them to SIEM queries.")
    parser.add_argument("--version", action="version", version=f"lsassdump {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to standard error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_scan(commands)
    _add_convert(commands)
    _add_check(commands)
    _add_build(commands)
    for register in _extension_registrars():
        register(commands)
    return parser


def _extension_registrars() -> List[Callable[[Any], None]]:
    """Return the ``register`` functions of the commands that live outside this module."""
    registrars = []
    try:
        from core.portability.cli import register as portability
        registrars.append(portability)
    except ImportError as error:
        log.debug("portability commands unavailable: %s", error)
    try:
        from elastic_watcher.cli import register as elastic
        registrars.append(elastic)
    except ImportError as error:
        log.debug("elastic commands unavailable: %s", error)
    return registrars


def _add_scan(commands: Any) -> None:
    scan = commands.add_parser(
        "scan", help="scan log files with Sigma rules",
        description="Scan EVTX, JSON, JSON Lines, event XML and Splunk CSV files with Sigma rules. "
                    "With no PATH, scan the bundled sample. Exit codes: 0 no alert, 1 alerts, "
                    "2 usage error or nothing usable, 3 no alert but read errors.")
    scan.add_argument("paths", nargs="*", metavar="PATH",
                      help="files or folders (searched recursively); '-' reads standard input")
    scan.add_argument("--rules", action="append", metavar="PATH",
                      help="rule file or folder (repeatable; default: the bundled rules)")
    scan.add_argument("--format", choices=("table", "jsonl"), default="table",
                      help="alert output: a table for people, or one JSON object per line (default: table)")
    scan.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    scan.add_argument("--quiet", action="store_true", help="do not list unreadable records one by one")
    scan.set_defaults(func=run_scan)


def _add_convert(commands: Any) -> None:
    from core.mappings import MAPPINGS
    from core.targets import TARGETS

    convert = commands.add_parser(
        "convert", help="convert Sigma rules to a SIEM query language",
        description="Print the query for each rule in the target language, with a field mapping.")
    convert.add_argument("rules", nargs="*", metavar="RULE", help="rule files or folders (default: the bundled rules)")
    convert.add_argument("--target", "-t", required=True, choices=TARGETS, help="query language")
    convert.add_argument("--mapping", "-m", choices=sorted(MAPPINGS),
                         help="field mapping (default: splunk-sysmon for spl, ecs for Elastic, sentinel-asim for kql)")
    convert.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    convert.set_defaults(func=run_convert)


def _add_check(commands: Any) -> None:
    check = commands.add_parser("check", help="load and compile Sigma rules, reporting every error",
                                description="Load and compile rules; print one line per invalid rule.")
    check.add_argument("rules", nargs="*", metavar="RULE", help="rule files or folders (default: the bundled rules)")
    check.set_defaults(func=run_check)


def _add_build(commands: Any) -> None:
    build = commands.add_parser("build", help="build a deployable package",
                                description="Build a deployable package for a SIEM.")
    build.add_argument("what", choices=("splunk-app",), help="what to build")
    build.add_argument("--out", required=True, metavar="DIR", help="output folder")
    build.add_argument("--rules", action="append", metavar="PATH",
                       help="rule file or folder to include (repeatable; default: the bundled rules)")
    build.set_defaults(func=run_build)


def _rule_paths(given: Optional[Sequence[str]]) -> List[str]:
    if given:
        return list(given)
    from core.bundled import bundled_rules_dir

    return [str(bundled_rules_dir())]


def run_scan(args: argparse.Namespace) -> int:
    from core.readers import iter_event_files, read_events
    from core.scan import Scanner, load_rules_leniently

    loaded = load_rules_leniently(_rule_paths(args.rules))
    for error in loaded.errors:
        print(f"lsassdump: rule skipped: {error}", file=sys.stderr)
    if not loaded.rules:
        print("lsassdump: no valid rule to scan with; fix the errors above or pass --rules PATH", file=sys.stderr)
        return EXIT_USAGE

    paths = args.paths
    if not paths:
        from core.bundled import sample_path

        paths = [str(sample_path())]
        print(f"lsassdump: no PATH given, scanning the bundled sample {paths[0]}", file=sys.stderr)
    missing = [path for path in paths if path != "-" and not os.path.exists(path)]
    for path in missing:
        print(f"lsassdump: {path}: no such file or folder", file=sys.stderr)
    files = [path for path in iter_event_files([p for p in paths if p not in missing])]
    if not files:
        print("lsassdump: no event file to scan (known extensions: .evtx .json .jsonl .ndjson .xml .csv)",
              file=sys.stderr)
        return EXIT_USAGE

    scanner = Scanner(loaded.rules)
    scanner.summary.rule_errors = len(loaded.errors)
    out = sys.stdout
    progress = _Progress(len(files)) if not args.no_progress and sys.stderr.isatty() else None
    table = _AlertTable(out) if args.format == "table" else None

    def report(problem: Any) -> None:
        if not args.quiet:
            if progress:
                progress.clear()
            print(f"lsassdump: {problem}", file=sys.stderr)

    for index, path in enumerate(files, 1):
        scanner.summary.files += 1
        for alert in scanner.scan(read_events(path, scanner.may_skip), report):
            if progress:
                progress.clear()
            if table is not None:
                table.write(alert)
            else:
                out.write(json.dumps(alert.as_dict(), ensure_ascii=False) + "\n")
        if progress:
            progress.update(index, scanner.summary.events, scanner.summary.alerts)
    if progress:
        progress.clear()
    _print_summary(scanner.summary, out if args.format == "table" else sys.stderr)
    if scanner.summary.alerts:
        return EXIT_ALERTS
    if scanner.summary.errors or missing:
        return EXIT_READ_ERRORS
    return EXIT_OK


class _AlertTable:
    """Alert rows printed as they come: a fixed-width line, then the rule and what matched.

    On a terminal the command line is cut to the terminal's width; in a file or pipe it is whole.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = False
        self.width: Optional[int] = None
        if out.isatty():
            import shutil

            self.width = shutil.get_terminal_size((160, 24)).columns

    def write(self, alert: Any) -> None:
        if not self.started:
            self.out.write(f"{'TIME':<20}  {'LEVEL':<8}  {'HOST':<24}  {'SOURCE':<36}  COMMAND LINE\n")
            self.started = True
        source = f"{os.path.basename(alert.source)}:{alert.record}"
        head = (f"{_cut(_short_time(alert.time), 20):<20}  {alert.level:<8}  {_cut(alert.host or '-', 24):<24}  "
                f"{_cut_left(source, 36):<36}  ")
        command = _printable(alert.command_line or "-")
        if self.width is not None:
            command = _cut(command, max(self.width - len(head), 30))
        self.out.write(head + command + "\n")
        self.out.write(f"{'':<20}  {alert.title} ({alert.rule_id})\n")
        self.out.write(f"{'':<20}  matched: {', '.join(alert.selections)}; "
                       f"ATT&CK: {', '.join(alert.techniques) or '-'}; image: {alert.image or '-'}\n")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _cut_left(text: str, width: int) -> str:
    """Cut from the start, keeping the end: a file name's record number stays visible."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1:]


def _short_time(value: Optional[str]) -> str:
    """Cut an ISO time to whole seconds (``2026-11-20T09:01:00Z``)."""
    if not value:
        return "-"
    if len(value) > 19 and value[10] == "T":
        return value[:19] + ("Z" if value.endswith("Z") else "")
    return value


def _printable(text: str) -> str:
    """Show control characters (tabs, NUL) as escapes, so that the table stays one line per alert."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class _Progress:
    """A one-line progress bar on standard error, drawn only when it is a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.shown = False

    def update(self, done: int, events: int, alerts: int) -> None:
        width = 30
        filled = int(width * done / max(self.total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} files  "
                         f"{events} events  {alerts} alerts")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            self.shown = False


def _print_summary(summary: Any, out: TextIO) -> None:
    out.write("\nSummary\n")
    out.write(f"  rules    {summary.rules} loaded, {summary.rule_errors} skipped\n")
    out.write(f"  files    {summary.files}\n")
    out.write(f"  events   {summary.events}\n")
    for label, count in sorted(summary.per_logsource.items(), key=lambda item: (-item[1], item[0])):
        out.write(f"    {label:<28} {count}\n")
    out.write(f"  alerts   {summary.alerts}\n")
    out.write(f"  errors   {summary.errors} unreadable files or records\n")


def run_convert(args: argparse.Namespace) -> int:
    from core.mappings import DEFAULT_MAPPING
    from core.rules import iter_rule_files, load_rule
    from core.targets import convert

    paths = list(iter_rule_files(_rule_paths(args.rules)))
    if not paths:
        print("lsassdump: no rule file (.yml or .yaml) found in the given paths", file=sys.stderr)
        return EXIT_USAGE
    results = []
    failed = 0
    for path in paths:
        try:
            rule = load_rule(path)
            query = convert(rule, args.target, args.mapping)
        except LsassdumpError as error:
            failed += 1
            print(f"lsassdump: {error}", file=sys.stderr)
            results.append({"source": path, "error": str(error)})
            continue
        results.append({"source": path, "rule_id": rule.id, "title": rule.title, "target": args.target,
                        "mapping": args.mapping or DEFAULT_MAPPING[args.target], "query": query})
    if args.format == "json":
        json.dump(results, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(item["query"] for item in results if "query" in item))
    return EXIT_USAGE if failed else EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    from core.evaluator import compile_rule
    from core.rules import iter_rule_files, load_rule

    valid = invalid = 0
    paths = list(iter_rule_files(_rule_paths(args.rules)))
    if not paths:
        print("lsassdump: no rule file (.yml or .yaml) found in the given paths", file=sys.stderr)
        return EXIT_USAGE
    for path in paths:
        try:
            compile_rule(load_rule(path))
            valid += 1
        except LsassdumpError as error:
            invalid += 1
            print(error)
    print(f"{valid} valid, {invalid} invalid", file=sys.stderr)
    return EXIT_USAGE if invalid else EXIT_OK


def run_build(args: argparse.Namespace) -> int:
    from splunk_app.build import build_app

    tarball = build_app(args.out, _rule_paths(args.rules))
    print(tarball)
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except LsassdumpError as error:
        print(f"lsassdump: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader of the output went away (``| head``). Report it as a shell reports SIGPIPE,
        # so that a pipeline cannot mistake a cut-off scan for a clean one.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_BROKEN_PIPE
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"lsassdump: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lsassdump: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
