"""All rules: events per second with every SigmaHQ rule of the shared corpus loaded.

The events are the shared process-creation events, already in memory; each goes through every rule
whose logsource covers it, as ``lsassdump scan`` does. Reported, no target yet. The bundled rules alone
are measured in the same run for scale.
"""

import sys
import time

from bench.common import SHARED_DATA, best_times, report
from core import Event, LogSource
from core.bundled import bundled_rules_dir
from core.scan import Scanner, load_rules_leniently


def main() -> int:
    from bench.common import process_creation_fields

    fields = process_creation_fields()
    logsource = LogSource("windows", frozenset({"process_creation"}), frozenset({"sysmon"}))
    events = [Event(item, logsource, "bench", index) for index, item in enumerate(fields)]
    start = time.perf_counter()
    loaded = load_rules_leniently([str(SHARED_DATA / "sigmahq-rules" / "rules")])
    everything = Scanner(loaded.rules)
    load_seconds = time.perf_counter() - start
    single = Scanner(load_rules_leniently([str(bundled_rules_dir())]).rules)
    counts = {}

    def scan_with(name: str, scanner: Scanner) -> None:
        counts[name] = sum(len(scanner.scan_event(event)) for event in events)

    times = best_times({"all rules": lambda: scan_with("all rules", everything),
                        "bundled rules": lambda: scan_with("bundled rules", single)}, repeats=3)
    admitted = len(everything._by_logsource.get(logsource, ()))
    report("All rules: every shared SigmaHQ rule on the shared process-creation events", [
        ("rules loaded", f"{len(loaded.rules)} ({len(loaded.errors)} rejected), {load_seconds:.1f} s to load and compile"),
        ("rules seeing a process-creation event", f"{admitted}"),
        ("events", f"{len(events):,}"),
        ("all rules", f"{len(events) / times['all rules']:,.0f} events/s, {counts['all rules']} alerts"),
        ("bundled rules only", f"{len(events) / times['bundled rules']:,.0f} events/s, {counts['bundled rules']} alerts"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
