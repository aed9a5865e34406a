"""The SPL target: golden output, search and where forms, tstats, emulator against evaluator."""

from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import compile_rule, load_rule_document
from core.emulators import compile_query
from core.emulators import spl as spl_emulator
from core.errors import ConversionError, UnsupportedFeatureError
from core.mappings import get_mapping
from core.targets import convert
from tests.targets.conftest import (
    LSASS_COMMAND_LINES, SAFE_TEXT, agreement_failures, corpus_outcomes, print_counts, event_values, rule_document, sigma_escape, string_rule,
)

SPL_MAPPINGS = ("splunk-sysmon", "splunk-security", "splunk-cim", "sigma")
SYSMON = "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"
FLAGS = ", ".join(f'"* {dash}{flag} *"' for flag in ("ma", "mm", "mp")
                  for dash in ("-", "/", "\u2013", "\u2014", "\u2015"))
MARKERS = '"* ls*", "* keyiso*", "* samss*"'


def test_lsass_sysmon_golden(lsass_rule: Any) -> None:
    expected = (f'search (source="{SYSMON}" OR sourcetype="{SYSMON}") EventCode=1 '
                f"CommandLine IN ({FLAGS}) CommandLine IN ({MARKERS})")
    assert convert(lsass_rule, "spl", "splunk-sysmon") == expected


def test_lsass_security_covers_both_field_names(lsass_rule: Any) -> None:
    query = convert(lsass_rule, "spl", "splunk-security")
    assert query.startswith('search (source="XmlWinEventLog:Security" OR source="WinEventLog:Security") '
                            "EventCode=4688 ")
    assert f"(CommandLine IN ({MARKERS}) OR Process_Command_Line IN ({MARKERS}))" in query


def test_lsass_cim_is_tstats(lsass_rule: Any) -> None:
    query = convert(lsass_rule, "spl", "splunk-cim")
    assert query.startswith("| tstats summariesonly=false allow_old_summaries=true fillnull_value=")
    assert "from datamodel=Endpoint.Processes where (Processes.process=\"* -ma *\" OR " in query
    assert query.endswith(" by Processes.dest Processes.user Processes.parent_process Processes.process_name "
                          "Processes.process Processes.process_id Processes.parent_process_id")
    assert " IN (" not in query


@pytest.mark.parametrize("mapping", SPL_MAPPINGS)
def test_lsass_listed_command_lines(lsass_rule: Any, mapping: str) -> None:
    run = compile_query("spl", convert(lsass_rule, "spl", mapping), mapping)
    evaluator = compile_rule(lsass_rule)
    field_mapping = get_mapping(mapping)
    for line, expected in LSASS_COMMAND_LINES:
        assert bool(evaluator.match({"CommandLine": line})) is expected, line
        assert run(field_mapping.document_for({"CommandLine": line})) is expected, line


@pytest.mark.slow
@pytest.mark.parametrize("mapping", SPL_MAPPINGS)
def test_lsass_on_shared_events(lsass_rule: Any, process_events: List[Any], mapping: str) -> None:
    assert len(process_events) == 5950
    run = compile_query("spl", convert(lsass_rule, "spl", mapping), mapping)
    evaluator = compile_rule(lsass_rule)
    field_mapping = get_mapping(mapping)
    disagreements = []
    hits = 0
    for event in process_events:
        expected = evaluator.match(event.fields) is not None
        hits += expected
        if run(field_mapping.document_for(event.fields)) is not expected:
            disagreements.append((event.source, event.record))
    assert disagreements == []
    assert hits == 3


# Where search cannot express a value exactly, the value goes to where/mvfind.


@pytest.mark.parametrize("key, value, inside, outside", [
    ("CommandLine|contains", "a\\*b", "xa*by", "xaXby"),
    ("CommandLine", "a?c", "ABC", "ac"),
    ("CommandLine|contains|cased", "Ab", "xAby", "xaby"),
    ("CommandLine", "10.0.0.0/8", "10.0.0.0/8", "10.1.2.3"),
    ("CommandLine|re", "^a.c$", "abc\n", "abcd"),
    ("CommandLine|re|i", "^A", "abc", "bca"),
])
def test_where_form_is_exact(key: str, value: str, inside: str, outside: str) -> None:
    rule = string_rule(key, value)
    query = convert(rule, "spl", "sigma")
    assert "\n| where " in query
    run = compile_query("spl", query)
    evaluator = compile_rule(rule)
    assert evaluator.match({"CommandLine": inside}) is not None
    assert evaluator.match({"CommandLine": outside}) is None
    assert run({"CommandLine": inside}) is True
    assert run({"CommandLine": outside}) is False


def test_emulated_search_reads_cidr_like_text_as_range() -> None:
    run = compile_query("spl", 'search CommandLine="10.0.0.0/8"')
    assert run({"CommandLine": "10.1.2.3"}) is True


def test_multivalue_any_value_matches() -> None:
    rule = string_rule("CommandLine|contains", "ls")
    for mapping in ("sigma", "splunk-sysmon"):
        run = compile_query("spl", convert(rule, "spl", mapping))
        field_mapping = get_mapping(mapping)
        assert run(field_mapping.document_for({"CommandLine": ["a", "b lsass"]})) is True
        assert run(field_mapping.document_for({"CommandLine": ["a", "b"]})) is False


def test_not_and_null_keep_sigma_meaning() -> None:
    document = {"title": "t", "logsource": {"category": "process_creation"}, "detection": {
        "s": {"CommandLine|contains": "a"}, "f": {"ParentImage": None}, "n": {"ProcessId": 4},
        "condition": "s and not f and not n"}}
    rule = load_rule_document(document, "not")
    run = compile_query("spl", convert(rule, "spl", "sigma"))
    evaluator = compile_rule(rule)
    for fields in ({"CommandLine": "a"}, {"CommandLine": "a", "ParentImage": "p"},
                   {"CommandLine": "a", "ParentImage": "p", "ProcessId": "4"},
                   {"CommandLine": "a", "ParentImage": "p", "ProcessId": 5}):
        assert run(fields) is (evaluator.match(fields) is not None), fields


def test_tstats_refuses_eval_features() -> None:
    rule = string_rule("CommandLine|re", "a.c")
    with pytest.raises(ConversionError, match="'re'.*spl.*tstats.*splunk-cim"):
        convert(rule, "spl", "splunk-cim")


def test_tstats_without_fillnull_drops_rows() -> None:
    query = ('| tstats count from datamodel=Endpoint.Processes where Processes.process="*a*" '
             "by Processes.dest")
    run = compile_query("spl", query)
    assert run({"Processes.process": "a"}) is False
    assert run({"Processes.process": "a", "Processes.dest": "h"}) is True


def test_keywords_refused() -> None:
    rule = load_rule_document({"title": "t", "logsource": {"product": "linux"},
                               "detection": {"k": ["evil"], "condition": "k"}}, "keywords")
    with pytest.raises(UnsupportedFeatureError, match="spl"):
        convert(rule, "spl", "sigma")


def test_unmapped_field_names_mapping_and_target() -> None:
    rule = string_rule("TargetFilename", "x")
    with pytest.raises(Exception, match="TargetFilename.*splunk-sysmon.*spl"):
        convert(rule, "spl", "splunk-sysmon")


def test_odd_field_name_goes_to_where() -> None:
    rule = string_rule("cs-uri-query|contains", "x")
    query = convert(rule, "spl", "sigma")
    assert "mvfind('cs-uri-query'" in query
    assert compile_query("spl", query)({"cs-uri-query": "axb"}) is True


# The emulator follows Splunk's precedence and keyword rules.


def test_emulator_or_binds_tighter_than_and() -> None:
    run = compile_query("spl", 'search a="1" b="2" OR c="3"')
    assert run({"a": "1", "c": "3"}) is True
    assert run({"b": "2", "c": "3"}) is False


def test_emulator_where_and_binds_tighter_than_or() -> None:
    run = compile_query("spl", 'search * | where isnotnull(a) OR isnotnull(b) AND isnotnull(c)')
    assert run({"a": 1}) is True
    assert run({"b": 1}) is False


def test_emulator_rejects_outside_subset() -> None:
    with pytest.raises(ConversionError, match="bare search term"):
        compile_query("spl", 'search a="1" and b="2"')
    with pytest.raises(ConversionError, match="escape"):
        compile_query("spl", 'search a="\\t"')
    with pytest.raises(ConversionError, match="stats"):
        compile_query("spl", 'search a="1" | stats count')


def test_exception_full_case_folding() -> None:
    rule = string_rule("CommandLine|contains", "STRASSE")
    run = compile_query("spl", convert(rule, "spl", "sigma"))
    assert compile_rule(rule).match({"CommandLine": "straße"}) is not None
    assert run({"CommandLine": "straße"}) is False


def test_exception_multivalue_in_eval_functions() -> None:
    document = {"title": "t", "logsource": {"category": "process_creation"}, "detection": {
        "number": {"ProcessId": 4}, "pattern": {"CommandLine|re": "x"}, "condition": "number or pattern"}}
    rule = load_rule_document(document, "multivalue")
    query = convert(rule, "spl", "sigma")
    assert "tonumber(ProcessId)" in query
    fields = {"ProcessId": ["4", "5"]}
    assert compile_rule(rule).match(fields) is not None
    assert compile_query("spl", query)(fields) is False


# Property tests.


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.text(SAFE_TEXT, min_size=1, max_size=12),
       modifier=st.sampled_from(["", "|contains", "|startswith", "|endswith", "|contains|cased", "|cased"]),
       data=st.data())
def test_property_strings_agree(value: str, modifier: str, data: Any) -> None:
    rule = string_rule("CommandLine" + modifier, value)
    evaluator = compile_rule(rule)
    events = data.draw(event_values(value))
    events.append([event for event in events if event is not None][:2])
    for mapping in SPL_MAPPINGS:
        try:
            query = convert(rule, "spl", mapping)
        except ConversionError:
            # tstats refuses what needs an eval expression; search never does.
            assert mapping == "splunk-cim"
            continue
        run = compile_query("spl", query, mapping)
        field_mapping = get_mapping(mapping)
        for event in events:
            fields: Dict[str, Any] = {} if event is None else {"CommandLine": event}
            expected = evaluator.match(fields) is not None
            assert run(field_mapping.document_for(fields)) is expected, (query, event)


@settings(max_examples=300, deadline=None)
@given(value=st.text(SAFE_TEXT, min_size=1, max_size=16))
def test_property_value_stays_in_its_string(value: str) -> None:
    rule = string_rule("CommandLine", sigma_escape(value))
    query = convert(rule, "spl", "sigma")
    literals = spl_emulator.parse_literals(query)
    assert len(literals) == 1
    if "*" not in value and not query.startswith("search *"):
        assert literals == [("string", value)]
    assert compile_query("spl", query)({"CommandLine": value}) is True
    assert compile_query("spl", query)({"CommandLine": value + "x"}) is False


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.text(SAFE_TEXT, min_size=1, max_size=8), min_size=1, max_size=4),
       other=st.text(SAFE_TEXT, min_size=1, max_size=8), data=st.data())
def test_property_conditions_agree(values: List[str], other: str, data: Any) -> None:
    rule = load_rule_document(rule_document(values, other), "generated")
    evaluator = compile_rule(rule)
    query = convert(rule, "spl", "sigma")
    run = compile_query("spl", query)
    for _ in range(4):
        fields = {
            "CommandLine": data.draw(st.sampled_from(values + [other, values[0] + other, "x"])),
            "Image": data.draw(st.sampled_from([other, other.upper(), "y" + other, "z"])),
        }
        assert run(fields) is (evaluator.match(fields) is not None), (query, fields)


# The SigmaHQ corpus.


@pytest.mark.slow
def test_sigmahq_corpus_converts_or_refuses(sigmahq_rules: Any) -> None:
    rules, load_failures = sigmahq_rules
    assert load_failures == {}
    counts, broken = corpus_outcomes(rules, "spl", SPL_MAPPINGS[:3])
    print_counts("spl", counts)
    assert broken == []
    assert counts[("sigma", "converted")] >= 3000
    assert counts[("splunk-sysmon", "converted")] >= 1370


@pytest.mark.slow
@pytest.mark.parametrize("mapping", ["splunk-sysmon", "splunk-cim"])
def test_process_rules_agree_on_event_sample(sigmahq_rules: Any, process_events: List[Any], mapping: str) -> None:
    rules, _ = sigmahq_rules
    assert agreement_failures(rules, "spl", mapping, process_events[::40]) == []
