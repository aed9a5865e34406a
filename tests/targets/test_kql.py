"""The KQL target: golden output, the published ASIM query, emulator against evaluator, escaping."""

from typing import Any, Dict, FrozenSet, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import compile_rule, load_rule_document
from core.emulators import compile_query
from core.emulators import kql as kql_emulator
from core.errors import ConversionError, UnsupportedFeatureError
from core.mappings import get_mapping
from core.targets import convert
from tests.targets.conftest import (
    LSASS_COMMAND_LINES, SAFE_TEXT, agreement_failures, corpus_outcomes, print_counts, event_values, rule_document, sigma_escape, string_rule,
)

KQL_MAPPINGS = ("sentinel-asim", "sentinel-securityevent", "mde", "sigma")


def normalized_where(query: str) -> Tuple[str, List[FrozenSet[Tuple[str, str, str]]]]:
    """Return the table and the where clause as a list of OR-groups of (column, operator, value)."""
    tokens = kql_emulator.tokenize(query)
    table = tokens[0].text
    assert [t.text for t in tokens[1:3]] == ["|", "where"], query[:60]
    groups: List[FrozenSet[Tuple[str, str, str]]] = []
    current: List[Tuple[str, str, str]] = []
    depth = 0
    index = 3
    while index < len(tokens):
        token = tokens[index]
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif token.text == "and" and depth == 0:
            groups.append(frozenset(current))
            current = []
        elif token.text == "or":
            assert depth == 1, "an 'or' outside a parenthesised group"
        else:
            column, operator, value = tokens[index:index + 3]
            current.append((column.text, operator.text, value.value))
            index += 3
            continue
        index += 1
    groups.append(frozenset(current))
    return table, groups


def test_lsass_asim_matches_published(lsass_rule: Any, expected_kql_asim: str) -> None:
    ours = normalized_where(convert(lsass_rule, "kql", "sentinel-asim"))
    published = normalized_where(expected_kql_asim)
    assert ours[0] == published[0] == "imProcessCreate"
    assert len(ours[1]) == 2
    assert ours[1] == published[1]
    flags, markers = ours[1]
    assert len(flags) == 15
    assert {value for _, _, value in markers} == {" ls", " keyiso", " samss"}
    assert {operator for _, operator, _ in flags | markers} == {"contains"}


def test_lsass_golden_per_mapping(lsass_rule: Any) -> None:
    expected_start = {
        "sentinel-asim": "imProcessCreate\n| where (TargetProcessCommandLine contains \" -ma \" or ",
        "sentinel-securityevent": "SecurityEvent\n| where toreal(EventID) == 4688 and (CommandLine contains",
        "mde": "DeviceProcessEvents\n| where (ProcessCommandLine contains \" -ma \" or ",
        "sigma": "union *\n| where (CommandLine contains \" -ma \" or ",
    }
    for mapping, start in expected_start.items():
        assert convert(lsass_rule, "kql", mapping).startswith(start), mapping


def test_lsass_never_uses_has(lsass_rule: Any) -> None:
    for mapping in KQL_MAPPINGS:
        words = {token.text for token in kql_emulator.tokenize(convert(lsass_rule, "kql", mapping))}
        assert "has" not in words


@pytest.mark.parametrize("mapping", KQL_MAPPINGS)
def test_lsass_listed_command_lines(lsass_rule: Any, mapping: str) -> None:
    query = convert(lsass_rule, "kql", mapping)
    run = compile_query("kql", query, mapping)
    evaluator = compile_rule(lsass_rule)
    field_mapping = get_mapping(mapping)
    for line, expected in LSASS_COMMAND_LINES:
        document = field_mapping.document_for({"CommandLine": line})
        assert bool(evaluator.match({"CommandLine": line})) is expected, line
        assert run(document) is expected, line


@pytest.mark.slow
@pytest.mark.parametrize("mapping", KQL_MAPPINGS)
def test_lsass_on_shared_events(lsass_rule: Any, process_events: List[Any], mapping: str) -> None:
    assert len(process_events) == 5950
    run = compile_query("kql", convert(lsass_rule, "kql", mapping), mapping)
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


# Exceptions by design: each is listed in docs/targets.md.


def test_exception_full_case_folding() -> None:
    rule = string_rule("CommandLine|contains", "STRASSE")
    run = compile_query("kql", convert(rule, "kql", "sigma"))
    assert compile_rule(rule).match({"CommandLine": "straße"}) is not None
    assert run({"CommandLine": "straße"}) is False


def test_exception_missing_reads_as_empty() -> None:
    rule = load_rule_document({"title": "t", "logsource": {"category": "process_creation"},
                               "detection": {"s": {"CommandLine": None}, "condition": "s"}}, "null")
    run = compile_query("kql", convert(rule, "kql", "sigma"))
    assert compile_rule(rule).match({"CommandLine": ""}) is None
    assert run({"CommandLine": ""}) is True
    assert run({}) is True


def test_exception_star_misses_empty_value() -> None:
    rule = string_rule("CommandLine", "*")
    run = compile_query("kql", convert(rule, "kql", "sigma"))
    assert compile_rule(rule).match({"CommandLine": ""}) is not None
    assert run({"CommandLine": ""}) is False
    assert run({"CommandLine": "a"}) is True


def test_exception_list_values_read_as_json() -> None:
    rule = string_rule("CommandLine", "a")
    run = compile_query("kql", convert(rule, "kql", "sigma"))
    assert compile_rule(rule).match({"CommandLine": ["a", "b"]}) is not None
    assert run({"CommandLine": ["a", "b"]}) is False


# Refusals.


def test_keywords_refused() -> None:
    rule = load_rule_document({"title": "t", "logsource": {"product": "linux"},
                               "detection": {"k": ["evil"], "condition": "k"}}, "keywords")
    with pytest.raises(UnsupportedFeatureError, match="kql"):
        convert(rule, "kql", "sigma")


def test_lookaround_refused() -> None:
    rule = string_rule("CommandLine|re", "a(?=b)")
    with pytest.raises(UnsupportedFeatureError, match="lookaround.*kql"):
        convert(rule, "kql", "sigma")


def test_unmapped_field_names_mapping_and_target() -> None:
    rule = string_rule("TargetFilename", "x")
    with pytest.raises(Exception, match="TargetFilename.*sentinel-asim.*kql"):
        convert(rule, "kql", "sentinel-asim")


def test_emulator_rejects_outside_subset() -> None:
    with pytest.raises(ConversionError, match="project"):
        compile_query("kql", "T\n| where a == \"b\"\n| project a")
    with pytest.raises(ConversionError, match="escape"):
        compile_query("kql", "T | where a == \"\\q\"")


def test_emulator_has_is_term_based() -> None:
    run = compile_query("kql", 'T | where CommandLine has "ls"')
    assert run({"CommandLine": "x ls y"}) is True
    assert run({"CommandLine": "x lsass y"}) is False
    contains = compile_query("kql", 'T | where CommandLine contains " ls"')
    assert contains({"CommandLine": "x lsass y"}) is True


def test_emulator_precedence_and_binds_tighter() -> None:
    run = compile_query("kql", 'T | where a == "1" or a == "2" and b == "3"')
    assert run({"a": "1", "b": "0"}) is True
    assert run({"a": "2", "b": "0"}) is False


def test_regex_newline_uses_escaped_string() -> None:
    rule = string_rule("CommandLine|contains", "a\nb?")
    query = convert(rule, "kql", "sigma")
    assert "\n" not in query.split("\n| where ", 1)[1]
    assert compile_query("kql", query)({"CommandLine": "xa\nbcy"}) is True


# Property tests: random values, the evaluator and the emulator agree; no value escapes its string.


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.text(SAFE_TEXT, min_size=1, max_size=12),
       modifier=st.sampled_from(["", "|contains", "|startswith", "|endswith", "|contains|cased", "|cased"]),
       data=st.data())
def test_property_strings_agree(value: str, modifier: str, data: Any) -> None:
    rule = string_rule("CommandLine" + modifier, value)
    evaluator = compile_rule(rule)
    events = data.draw(event_values(value))
    for mapping in KQL_MAPPINGS:
        query = convert(rule, "kql", mapping)
        run = compile_query("kql", query, mapping)
        field_mapping = get_mapping(mapping)
        for event in events:
            fields: Dict[str, Any] = {} if event is None else {"CommandLine": event}
            expected = evaluator.match(fields) is not None
            assert run(field_mapping.document_for(fields)) is expected, (query, event)


@settings(max_examples=300, deadline=None)
@given(value=st.text(SAFE_TEXT, min_size=1, max_size=16))
def test_property_value_stays_in_its_string(value: str) -> None:
    rule = string_rule("CommandLine", sigma_escape(value))
    query = convert(rule, "kql", "sigma")
    assert kql_emulator.parse_literals(query) == [("string", value)]
    assert compile_query("kql", query)({"CommandLine": value}) is True


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.text(SAFE_TEXT, min_size=1, max_size=8), min_size=1, max_size=4),
       other=st.text(SAFE_TEXT, min_size=1, max_size=8), data=st.data())
def test_property_conditions_agree(values: List[str], other: str, data: Any) -> None:
    rule = load_rule_document(rule_document(values, other), "generated")
    evaluator = compile_rule(rule)
    query = convert(rule, "kql", "sigma")
    run = compile_query("kql", query)
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
    counts, broken = corpus_outcomes(rules, "kql", KQL_MAPPINGS[:3])
    print_counts("kql", counts)
    assert broken == []
    assert counts[("sigma", "converted")] >= 3000
    assert counts[("sentinel-asim", "converted")] >= 1300


@pytest.mark.slow
@pytest.mark.parametrize("mapping", ["sentinel-asim", "sigma"])
def test_process_rules_agree_on_event_sample(sigmahq_rules: Any, process_events: List[Any], mapping: str) -> None:
    rules, _ = sigmahq_rules
    assert agreement_failures(rules, "kql", mapping, process_events[::40]) == []
