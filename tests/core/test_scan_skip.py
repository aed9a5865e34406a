"""Declining EVTX records before decoding them never changes what a scan finds or counts."""

import pytest

from core.readers import iter_event_files, read_events
from core.rules import iter_rule_files, load_rule
from core.bundled import bundled_rules_dir
from core.scan import Scanner
from tests.core.helpers import shared_data

DATA = shared_data()
RULES = DATA / "sigmahq-rules" / "rules"


def scan(rules, files, skip):
    scanner = Scanner(rules)
    alerts = []
    for path in files:
        items = read_events(path, scanner.may_skip if skip else None)
        alerts.extend((alert.rule_id, alert.source, alert.record, alert.selections) for alert in scanner.scan(items))
    return alerts, scanner.summary


@pytest.mark.skipif(not RULES.is_dir(), reason="shared data not found")
def test_skipping_changes_no_alert_and_no_count():
    # Every sixth SigmaHQ rule (all categories) plus the bundled rules, on every shared EVTX file.
    rule_paths = list(iter_rule_files([str(RULES)]))[::6]
    rules = [load_rule(path) for path in rule_paths]
    rules += [load_rule(path) for path in iter_rule_files([str(bundled_rules_dir())])]
    files = [path for path in iter_event_files([str(DATA)]) if path.endswith(".evtx")]

    with_skip, summary_skip = scan(rules, files, skip=True)
    without, summary_full = scan(rules, files, skip=False)

    assert len(without) > 0
    assert with_skip == without
    assert summary_skip.events == summary_full.events
    assert summary_skip.per_logsource == summary_full.per_logsource
    assert summary_skip.errors == summary_full.errors


def test_skip_declines_only_when_no_rule_can_match():
    from core.events import LogSource

    rule = load_rule(str(bundled_rules_dir() / "proc_creation_win_sysinternals_procdump_lsass.yml"))
    scanner = Scanner([rule])
    process = LogSource("windows", frozenset({"process_creation"}), frozenset({"sysmon"}))
    network = LogSource("windows", frozenset({"network_connection"}), frozenset({"sysmon"}))
    assert scanner.may_skip(process, '{"CommandLine":"notepad.exe"}')
    assert not scanner.may_skip(process, '{"CommandLine":"procdump -ma lsass.exe"}')
    assert not scanner.may_skip(process, '{"CommandLine":"PROCDUMP \u2014MA LSASS.EXE"}')
    # Only a rule whose logsource covers the event counts; a network event is declined outright.
    assert scanner.may_skip(network, '{"CommandLine":"procdump -ma lsass.exe"}')
