"""Scan speed: ``lsassdump scan``'s engine over EVTX files against parsing them with ``evtx`` alone.

Both sides read the same EVTX files of the shared data in the same run. Target: the scan at 0.8 or
more of parse-only events per second.
"""

import sys

from bench.common import SHARED_DATA, best_times, report
from core import load_rule
from core.bundled import bundled_rules_dir
from core.readers import read_events
from core.scan import Scanner


def evtx_files() -> list:
    return sorted(str(path) for path in SHARED_DATA.rglob("*.evtx"))


def parse_only(files: list) -> int:
    from evtx import PyEvtxParser

    count = 0
    for path in files:
        try:
            for _record in PyEvtxParser(path).records_json():
                count += 1
        except (OSError, RuntimeError):
            continue  # the deliberately corrupt samples end early on both sides
    return count


def parse_and_decode(files: list) -> int:
    """Parse with evtx and decode each record's JSON: the least any reader of its records must do."""
    import json

    from evtx import PyEvtxParser

    count = 0
    for path in files:
        try:
            for record in PyEvtxParser(path).records_json():
                json.loads(record["data"])
                count += 1
        except (OSError, RuntimeError):
            continue
    return count


def scan(files: list, scanner: Scanner) -> int:
    for path in files:
        for _alert in scanner.scan(read_events(path, scanner.may_skip)):
            pass
    return scanner.summary.events


def main() -> int:
    files = evtx_files()
    rule = load_rule(str(bundled_rules_dir() / "proc_creation_win_sysinternals_procdump_lsass.yml"))
    counts = {}

    def run_scan() -> None:
        counts["scan"] = scan(files, Scanner([rule]))

    def run_parse() -> None:
        counts["parse"] = parse_only(files)

    def run_decode() -> None:
        counts["decode"] = parse_and_decode(files)

    times = best_times({"parse only": run_parse, "parse and decode": run_decode, "scan": run_scan}, repeats=3)
    rate_parse = counts["parse"] / times["parse only"]
    rate_decode = counts["decode"] / times["parse and decode"]
    rate_scan = counts["scan"] / times["scan"]
    report("Scan: lsassdump scan engine vs evtx parse-only, shared EVTX files", [
        ("files", f"{len(files)}"),
        ("records parsed / events scanned", f"{counts['parse']:,} / {counts['scan']:,}"),
        ("parse only", f"{rate_parse:,.0f} events/s"),
        ("parse and json.loads", f"{rate_decode:,.0f} events/s"),
        ("scan", f"{rate_scan:,.0f} events/s"),
        ("ratio to parse only (target >= 0.8)", f"{rate_scan / rate_parse:.2f}"),
        ("ratio to parse and json.loads", f"{rate_scan / rate_decode:.2f}"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
