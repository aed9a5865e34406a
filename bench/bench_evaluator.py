"""Evaluator speed: the compiled LSASS rule against a hand-written function doing the same checks.

Both run on the shared process-creation events, already in memory. Target: the compiled rule at
0.8 or more of the hand-written function's events per second.
"""

import sys

from bench.common import best_times, process_creation_fields, report
from core import compile_rule, load_rule
from core.bundled import bundled_rules_dir

DASHES = ("-", "/", "\u2013", "\u2014", "\u2015")
FLAGS = tuple(f" {dash}m{kind} " for kind in "amp" for dash in DASHES)
MARKERS = (" ls", " keyiso", " samss")


def hand_written(fields: dict) -> bool:
    """The LSASS rule's 18 substring checks, written by hand."""
    command_line = fields.get("CommandLine")
    if not isinstance(command_line, str):
        return False
    command_line = command_line.lower()
    for flag in FLAGS:
        if flag in command_line:
            break
    else:
        return False
    for marker in MARKERS:
        if marker in command_line:
            return True
    return False


def main() -> int:
    events = process_creation_fields() * 20
    rule = compile_rule(load_rule(str(bundled_rules_dir() / "proc_creation_win_sysinternals_procdump_lsass.yml")))
    compiled = rule.test
    expected = sum(1 for event in events if hand_written(event))
    found = sum(1 for event in events if compiled(event))
    if expected != found:
        print(f"verdicts differ: hand-written {expected}, compiled {found}", file=sys.stderr)
        return 1
    times = best_times({
        "hand-written": lambda: [hand_written(event) for event in events],
        "compiled rule": lambda: [compiled(event) for event in events],
    })
    rate = {name: len(events) / seconds for name, seconds in times.items()}
    ratio = rate["compiled rule"] / rate["hand-written"]
    report("Evaluator: compiled LSASS rule vs hand-written checks", [
        ("events", f"{len(events):,} ({found} matches)"),
        ("hand-written", f"{rate['hand-written']:,.0f} events/s"),
        ("compiled rule", f"{rate['compiled rule']:,.0f} events/s"),
        ("ratio (target >= 0.8)", f"{ratio:.2f}"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
