"""Every process-creation event of the shared corpus gets the same verdict from ``| lsassdump``
(fed as CSV chunks over the protocol) as from ``lsassdump scan``."""

import json
import subprocess
import sys
from typing import Any, Dict, FrozenSet, Set, Tuple

import pytest

from splunk_corpus import event_key, process_creation_events, renderings
from splunk_support import REPO_ROOT, command_environment, find_interpreter
from splunkd_stub import run_command

pytestmark = pytest.mark.slow
CHUNK = 50_000


Verdict = FrozenSet[Tuple[str, Tuple[str, ...]]]


@pytest.fixture(scope="module")
def scan_verdicts(splunk_shared_data) -> Dict[Tuple[str, str], Verdict]:
    """Run ``lsassdump scan --format jsonl`` over the corpus; map (source, record) to the set of
    (rule id, matched selections) of its alerts."""
    result = subprocess.run(
        [sys.executable, "-m", "core", "scan", "--format", "jsonl", "--no-progress", "--quiet",
         "--rules", str(REPO_ROOT / "rules"), str(splunk_shared_data)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode in (0, 1, 3), result.stderr[-3000:]
    alerts: Dict[Tuple[str, str], Set[Tuple[str, Tuple[str, ...]]]] = {}
    for line in result.stdout.splitlines():
        alert = json.loads(line)
        key = (str(alert["source"]), str(alert["record"]))
        alerts.setdefault(key, set()).add((alert["rule_id"], tuple(alert["matched_selections"])))
    return {key: frozenset(found) for key, found in alerts.items()}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def command_verdict(record: Dict[str, Any]) -> Verdict:
    """Read the (rule id, selections) pairs back from the fields the command added."""
    if "sigma_rule_id" not in record:
        return frozenset()
    rule_ids = as_list(record["sigma_rule_id"])
    matched = as_list(record["sigma_matched"])
    if len(rule_ids) == 1:
        return frozenset([(rule_ids[0], tuple(matched))])
    return frozenset(
        (rule_id, tuple(item.split(":", 1)[1] for item in matched if item.startswith(rule_id + ":")))
        for rule_id in rule_ids
    )


def test_command_agrees_with_scan(built_app, splunk_shared_data, scan_verdicts, tmp_path):
    interpreter = find_interpreter("3.9") or sys.executable
    events = process_creation_events(splunk_shared_data)
    assert len(events) > 5000

    sent = []
    for event in events:
        for mapping, record in renderings(event):
            sent.append((event_key(event), mapping, record))
    chunks = [[record for _key, _mapping, record in sent[start:start + CHUNK]]
              for start in range(0, len(sent), CHUNK)] + [[]]

    _info, replies, status, stderr = run_command(
        [interpreter, str(built_app.script)], ["mode=annotate"], chunks, str(tmp_path), cwd=str(tmp_path),
        env=command_environment(),
    )
    assert status == 0, stderr

    out = {int(record["_chunked_idx"]): record for reply in replies for record in reply.records}
    assert len(out) == len(sent)
    mismatches = []
    for index, (key, mapping, _record) in enumerate(sent):
        got = command_verdict(out[index])
        expected = scan_verdicts.get(key, frozenset())
        if got != expected:
            mismatches.append((key, mapping, sorted(got), sorted(expected)))
    assert mismatches == []
    matched_keys = {key for index, (key, _mapping, _record) in enumerate(sent) if "sigma_rule_id" in out[index]}
    assert matched_keys == set(scan_verdicts)
    assert len(matched_keys) >= 3
