"""SigmaHQ's own regression samples: each rule finds at least its expected matches in its sample.

The manifest names, per covered rule, an EVTX sample and the minimum match count (empty: at least
one). Samples kept only as their JSON rendering (the ``index-only`` rows) are read from the JSON.
Every process-creation record must pass; the other categories report their pass count.
"""

import collections
import csv
from pathlib import Path

import pytest

from core import Event, compile_rule, load_rule, read_events
from core.rules import iter_rule_files
from tests.core.helpers import shared_data

SIGMA = shared_data() / "sigmahq-sigma"
MANIFEST = SIGMA / "regression_tests_manifest.csv"
RULES = shared_data() / "sigmahq-rules" / "rules"


def rules_by_id():
    found = {}
    for path in iter_rule_files([str(RULES)]):
        rule = load_rule(path)
        found[rule.id] = rule
    return found


def sample_path(row) -> Path:
    base = SIGMA if row["where"] == "snapshot" else SIGMA / "index-only"
    path = base / row["test_path"]
    if not path.exists():
        path = path.with_suffix(".json")
    return path


def count_matches(rule, path: Path) -> int:
    compiled = compile_rule(rule)
    count = 0
    for item in read_events(str(path)):
        if isinstance(item, Event) and compiled.admits(item.logsource) and compiled.match(item.fields):
            count += 1
    return count


@pytest.mark.skipif(not MANIFEST.exists(), reason="shared SigmaHQ regression data not found")
def test_sigmahq_regression_samples():
    rules = rules_by_id()
    passed = collections.Counter()
    total = collections.Counter()
    failures = []
    skipped = 0
    with open(MANIFEST, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rule = rules.get(row["rule_id"])
            if rule is None:
                skipped += 1
                continue
            category = rule.logsource.category or rule.logsource.service or "other"
            expected = int(row["match_count"]) if row["match_count"] else 1
            path = sample_path(row)
            found = count_matches(rule, path)
            total[category] += 1
            if found >= expected:
                passed[category] += 1
            else:
                failures.append((category, f"{path.relative_to(SIGMA)}: {rule.title}: {found} < {expected}"))
    print(f"\nSigmaHQ regression samples ({skipped} rows name rules outside the shared rules folder):")
    for category in sorted(total):
        print(f"  {category:<28} {passed[category]}/{total[category]} pass")
    for category, line in failures:
        print(f"  FAIL {category}: {line}")
    assert total["process_creation"] > 0
    assert passed["process_creation"] == total["process_creation"], [f for c, f in failures if c == "process_creation"]
