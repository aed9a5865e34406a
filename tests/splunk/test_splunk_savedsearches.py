"""The generated alerts: settings, the data-source macro, and the SPL selecting what the command selects."""

import configparser
import json
import sys

import pytest

import core
from splunk_corpus import TABLE, process_creation_events, renderings
from splunk_support import REPO_ROOT

sys.path.append(str(REPO_ROOT / "splunk_app" / "lib"))
from lsassdump_splunk.matcher import RecordMatcher  # noqa: E402
from lsassdump_splunk.rulepack import load_bundled_rules  # noqa: E402
from splunk_app.savedsearches import (  # noqa: E402
    FIELDS_MACRO, SOURCE_MACRO, conf_search, enrichment_eval, normalising_eval, rule_fields,
)

SYSMON_SOURCE = "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"
DASH_CASES = [
    "procdump.exe -ma lsass.exe", "procdump.exe /ma lsass.exe", "procdump.exe \u2013ma lsass.exe",
    "procdump.exe \u2014mm lsass.exe", "procdump.exe \u2015mp keyiso", "procdump.exe \u2212ma lsass.exe",
    "PROCDUMP.EXE -MA LSASS.EXE", "procdump.exe -ma\tlsass.exe", "procdump.exe  -mp  samss",
    "x -ma y", "C:\\Users\\J\u00fcrgen\\p.exe -ma lsass \u65e5\u672c", "",
]


def read_conf(path):
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment]
    parser.read(path, encoding="utf-8")
    return parser


@pytest.fixture(scope="module")
def alerts(built_app):
    return read_conf(built_app.app_dir / "default" / "savedsearches.conf")


@pytest.fixture(scope="module")
def bundled(built_app):
    return load_bundled_rules(str(built_app.app_dir / "lib" / "lsassdump_splunk" / "rules"))


@pytest.fixture(scope="module")
def matcher(bundled):
    return RecordMatcher(bundled, TABLE, "auto")


def alert_for(alerts, rule_id):
    for name in alerts.sections():
        if rule_id in alerts.get(name, "search"):
            return alerts[name]
    raise AssertionError(f"no alert for rule {rule_id}")


def detection_part(search, rule):
    """Cut the rule's SPL out of the alert search, checking what surrounds it."""
    prefix = f"`{SOURCE_MACRO}` | `{FIELDS_MACRO}` | "
    suffix = " | " + enrichment_eval(rule)
    assert search.startswith(prefix)
    assert search.endswith(suffix)
    return search[len(prefix):-len(suffix)]


def test_one_alert_per_rule(alerts, bundled):
    assert len(alerts.sections()) == len(bundled)


def test_alert_settings(alerts, bundled):
    for entry in bundled:
        alert = alert_for(alerts, entry.id)
        assert alert["disabled"] == "1"
        assert alert["enableSched"] == "1"
        assert alert["cron_schedule"] == "*/15 * * * *"
        assert alert["dispatch.earliest_time"] == "-20m@m"
        assert alert["dispatch.latest_time"] == "-5m@m"
        assert alert["alert.track"] == "1"
        assert alert["counttype"] == "number of events"
        assert alert["relation"] == "greater than"
        assert alert["quantity"] == "0"


def test_severity_follows_level(alerts, bundled):
    lsass = next(entry for entry in bundled if entry.id == "5afee48e-67dd-4e03-a783-f74259dcf998")

    assert lsass.level == "high"
    assert alert_for(alerts, lsass.id)["alert.severity"] == "5"


def test_search_uses_the_macros_and_the_spl_target(alerts, bundled):
    for entry in bundled:
        search = alert_for(alerts, entry.id)["search"]
        query = detection_part(search, entry.rule)
        assert query == conf_search(core.convert(entry.rule, "spl", "sigma"))


def test_source_macro_coverage(built_app):
    macros = read_conf(built_app.app_dir / "default" / "macros.conf")
    definition = macros[SOURCE_MACRO]["definition"]

    assert f'sourcetype="{SYSMON_SOURCE}"' in definition
    assert f'source="{SYSMON_SOURCE}"' in definition
    for security in ("XmlWinEventLog:Security", "WinEventLog:Security"):
        assert security in definition
    assert "EventCode=4688" in definition
    assert "EventCode=1" in definition


def test_fields_macro_is_generated_from_the_table(built_app, bundled):
    macros = read_conf(built_app.app_dir / "default" / "macros.conf")
    definition = macros[FIELDS_MACRO]["definition"]

    assert definition == normalising_eval(TABLE, rule_fields([entry.rule for entry in bundled]))
    positions = [definition.index(f'"{name}"') for name in TABLE["auto_order"]]
    assert positions == sorted(positions)
    for mapping in TABLE["mappings"].values():
        for candidate in mapping["fields"]["CommandLine"]:
            assert f"'{candidate}'" in definition


def verdicts(matcher, record, query, rule_id):
    """Return (command verdict, saved search verdict) for one Splunk record."""
    command = any(entry.id == rule_id for entry, _found in matcher.match(record))
    # The fields macro gives the saved search the same Sigma-named fields the command evaluates.
    document = matcher.mapping_for(record).sigma_fields(record)
    return command, core.emulate("spl", query, document)


@pytest.mark.parametrize("command_line", DASH_CASES)
def test_spl_selects_what_the_command_selects(alerts, bundled, matcher, command_line):
    for entry in bundled:
        query = detection_part(alert_for(alerts, entry.id)["search"], entry.rule)
        for record in ({"EventCode": "1", "CommandLine": command_line},
                       {"EventCode": "4688", "Process_Command_Line": command_line}):
            command, saved_search = verdicts(matcher, record, query, entry.id)
            assert command == saved_search, (record, command, saved_search)


@pytest.mark.slow
def test_spl_agrees_on_corpus(alerts, bundled, matcher, splunk_shared_data):
    events = process_creation_events(splunk_shared_data)
    queries = [(entry.id, detection_part(alert_for(alerts, entry.id)["search"], entry.rule)) for entry in bundled]

    disagreements = []
    matched = 0
    for event in events:
        for mapping, record in renderings(event):
            for rule_id, query in queries:
                command, saved_search = verdicts(matcher, record, query, rule_id)
                matched += command
                if command != saved_search:
                    disagreements.append((rule_id, str(event.source), event.record, mapping, json.dumps(record)[:300]))
    assert disagreements == []
    assert matched >= 3
