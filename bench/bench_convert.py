"""Conversion speed: rules per second from the whole SigmaHQ corpus to every target.

Every rule is converted with the 'sigma' mapping; process-creation rules also with each process
mapping of the target. Refused rules count as converted work, because a refusal costs the same
walk. Rule loading is outside the timed part. The baseline is the evaluator's compile_rule over the
same rules, measured in the same run.

Run: python3 -m bench.bench_convert
"""

import sys
import time
from typing import Callable, Dict, List, Tuple

from bench.common import SHARED_DATA, best_times, report
from core import compile_rule, load_rule
from core.errors import LsassdumpError
from core.rules import Rule, iter_rule_files
from core.targets import convert

PROCESS_MAPPINGS = {
    "spl": ("splunk-sysmon", "splunk-security", "splunk-cim"),
    "kql": ("sentinel-asim", "sentinel-securityevent", "mde"),
    "eql": ("ecs", "winlogbeat-raw"),
    "lucene": ("ecs", "winlogbeat-raw"),
    "dsl": ("ecs", "winlogbeat-raw"),
    "esql": ("ecs", "winlogbeat-raw"),
}


def _jobs(rules: List[Rule], target: str) -> List[Tuple[Rule, str]]:
    jobs = []
    for rule in rules:
        jobs.append((rule, "sigma"))
        if rule.logsource.category == "process_creation":
            jobs.extend((rule, mapping) for mapping in PROCESS_MAPPINGS[target])
    return jobs


def _convert_all(jobs: List[Tuple[Rule, str]], target: str) -> Callable[[], None]:
    def run() -> None:
        for rule, mapping in jobs:
            try:
                convert(rule, target, mapping)
            except LsassdumpError:
                pass
    return run


def main() -> int:
    start = time.perf_counter()
    rules = [load_rule(path) for path in iter_rule_files([str(SHARED_DATA / "sigmahq-rules" / "rules")])]
    load_seconds = time.perf_counter() - start
    jobs = {target: _jobs(rules, target) for target in PROCESS_MAPPINGS}
    cases: Dict[str, Callable[[], None]] = {target: _convert_all(jobs[target], target) for target in jobs}
    cases["compile_rule (baseline)"] = lambda: [compile_rule(rule) for rule in rules] and None
    times = best_times(cases, repeats=3)
    rows = [("rules", f"{len(rules)} loaded in {load_seconds:.1f} s")]
    total_jobs = sum(len(found) for found in jobs.values())
    total_seconds = sum(times[target] for target in PROCESS_MAPPINGS)
    rows.append(("all targets", f"{total_jobs:,} conversions in {total_seconds:.1f} s, "
                                f"{len(rules) * len(PROCESS_MAPPINGS) / total_seconds:,.0f} rules/s per target"))
    for target in PROCESS_MAPPINGS:
        rows.append((f"{target} conversions", f"{len(jobs[target]):,} in {times[target]:.2f} s, "
                                              f"{len(jobs[target]) / times[target]:,.0f} conversions/s"))
    baseline = times["compile_rule (baseline)"]
    rows.append(("compile_rule (baseline)", f"{len(rules) / baseline:,.0f} rules/s"))
    report("Conversion: the SigmaHQ corpus to every target", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
