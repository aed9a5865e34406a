"""The Query DSL target and its emulator: golden output, emulator semantics, refusals, agreement."""

import json
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import ConversionError, compile_rule, convert, load_rule_document
from core.emulators import dsl as emulator
from core.mappings import get_mapping
from tests.targets.conftest import (
    ELASTIC_MAPPINGS, LSASS_COMMAND_LINES, check_random_rule, elastic_corpus_counts, elastic_disagreements,
    elastic_test,
)


def rule_from(detection: Dict[str, Any], category: str = "process_creation") -> Any:
    document = {"title": "t", "id": "00000000-0000-0000-0000-000000000000",
                "logsource": {"category": category, "product": "windows"}, "detection": detection}
    return load_rule_document(document, "test.yml")


def test_lsass_rule_is_a_bool_query(lsass_rule: Any) -> None:
    query = json.loads(convert(lsass_rule, "dsl", "ecs"))
    assert list(query) == ["bool"]
    text = json.dumps(query)
    assert '"wildcard": {"process.command_line": {"value": "* -ma *", "case_insensitive": true}}' in text
    assert '"_name": "selection_flags"' in text
    assert '"_name": "selection_process"' in text


def test_lsass_rule_golden_ecs(lsass_rule: Any) -> None:
    query = json.loads(convert(lsass_rule, "dsl", "ecs"))
    filter_clause, detection = query["bool"]["filter"]
    assert filter_clause == {"bool": {"filter": [
        {"term": {"event.category": {"value": "process", "case_insensitive": True}}},
        {"term": {"event.type": {"value": "start", "case_insensitive": True}}}]}}
    flags, process = detection["bool"]["filter"]
    assert flags["bool"]["_name"] == "selection_flags"
    values = [clause["wildcard"]["process.command_line"]["value"] for clause in flags["bool"]["should"]]
    assert len(values) == 15
    assert values[:5] == ["* -ma *", "* /ma *", "* \u2013ma *", "* \u2014ma *", "* \u2015ma *"]
    assert [c["wildcard"]["process.command_line"]["value"] for c in process["bool"]["should"]] == [
        "* ls*", "* keyiso*", "* samss*"]


@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
@pytest.mark.parametrize("line,expected", LSASS_COMMAND_LINES)
def test_lsass_command_lines(lsass_rule: Any, mapping: str, line: str, expected: bool) -> None:
    test = elastic_test(lsass_rule, "dsl", mapping)
    assert compile_rule(lsass_rule).test({"CommandLine": line}) is expected
    assert test(get_mapping(mapping).document_for({"CommandLine": line})) is expected


@pytest.mark.slow
@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
def test_lsass_process_events_agree(lsass_rule: Any, process_events: List[Any], mapping: str) -> None:
    assert len(process_events) == 5950
    assert elastic_disagreements(lsass_rule, process_events, "dsl", mapping) == []


def test_wildcard_value_escapes_specials() -> None:
    rule = rule_from({"sel": {"CommandLine|contains": "a\\*b?c\\\\d\\"}, "condition": "sel"})
    query = convert(rule, "dsl", "ecs")
    # Sigma's a\*b?c\\d\ is the text a*b, one character, then c\d\ (JSON doubles each backslash).
    assert '"value": "*a\\\\*b?c\\\\\\\\d\\\\\\\\*"' in query
    test = emulator.compile_query(query, get_mapping("ecs"))
    document = get_mapping("ecs").document_for({"CommandLine": "xa*bXc\\d\\y"})
    assert test(document)
    assert not test(get_mapping("ecs").document_for({"CommandLine": "xaZbXc\\d\\y"}))


def test_plain_and_prefix_values() -> None:
    rule = rule_from({"sel": {"Image": "C:\\Windows\\cmd.exe", "ParentImage|startswith": "C:\\x"},
                      "condition": "sel"})
    query = json.loads(convert(rule, "dsl", "ecs"))
    text = json.dumps(query)
    assert '{"term": {"process.executable": {"value": "C:\\\\Windows\\\\cmd.exe", "case_insensitive": true}}}' in text
    assert '{"prefix": {"process.parent.executable": {"value": "C:\\\\x", "case_insensitive": true}}}' in text


def test_cased_values_use_terms() -> None:
    rule = rule_from({"sel": {"Image|cased": ["A", "B"]}, "condition": "sel"})
    assert '{"terms": {"process.executable": ["A", "B"]}}' in convert(rule, "dsl", "ecs")


def test_keyword_search_is_refused() -> None:
    rule = rule_from({"keywords": ["lsass"], "condition": "keywords"})
    with pytest.raises(ConversionError, match="target 'dsl' cannot express a keyword search"):
        convert(rule, "dsl", "sigma")


def test_fieldref_is_refused() -> None:
    rule = rule_from({"sel": {"Image|fieldref": "ParentImage"}, "condition": "sel"})
    with pytest.raises(ConversionError, match="target 'dsl' cannot express a comparison of two fields"):
        convert(rule, "dsl", "ecs")


def test_compare_on_keyword_field_is_refused() -> None:
    rule = rule_from({"sel": {"User|gt": 5}, "condition": "sel"})
    with pytest.raises(ConversionError, match="numeric comparison"):
        convert(rule, "dsl", "ecs")


def test_wildcard_on_numeric_field_is_refused() -> None:
    rule = rule_from({"sel": {"ProcessId|contains": "12"}, "condition": "sel"})
    with pytest.raises(ConversionError, match="on the long field 'process.pid'"):
        convert(rule, "dsl", "ecs")


def test_regex_becomes_regexp_query() -> None:
    rule = rule_from({"sel": {"CommandLine|re": "^a\\d{2}b$"}, "condition": "sel"})
    query = json.loads(convert(rule, "dsl", "ecs"))
    regexp = query["bool"]["filter"][1]["bool"]["filter"][0]["regexp"]["process.command_line"]
    assert regexp["value"].startswith("a([0-9")
    test = emulator.compile_query(json.dumps(query), get_mapping("ecs"))
    ecs = get_mapping("ecs")
    assert test(ecs.document_for({"CommandLine": "a12b"}))
    assert test(ecs.document_for({"CommandLine": "a12b\n"}))
    assert not test(ecs.document_for({"CommandLine": "xa12b"}))


def test_null_and_exists() -> None:
    rule = rule_from({"sel": {"User": None, "Image|exists": True}, "condition": "sel"})
    query = convert(rule, "dsl", "ecs")
    test = emulator.compile_query(query, get_mapping("ecs"))
    ecs = get_mapping("ecs")
    assert test(ecs.document_for({"Image": "x"}))
    assert not test(ecs.document_for({"Image": "x", "User": "u"}))
    assert not test(ecs.document_for({}))


# The emulator on hand-written queries.


def test_bool_minimum_should_match_defaults() -> None:
    only_should = emulator.compile_dsl({"bool": {"should": [{"term": {"a": "x"}}, {"term": {"b": "y"}}]}})
    with_filter = emulator.compile_dsl({"bool": {"filter": [{"term": {"a": "x"}}], "should": [{"term": {"b": "y"}}]}})
    assert only_should({"b": "y"})
    assert not only_should({})
    assert with_filter({"a": "x"})
    assert not with_filter({"b": "y"})


def test_bool_minimum_should_match_given() -> None:
    query = {"bool": {"should": [{"term": {"a": "1"}}, {"term": {"b": "1"}}, {"term": {"c": "1"}}],
                      "minimum_should_match": 2}}
    test = emulator.compile_dsl(query)
    assert test({"a": "1", "c": "1"})
    assert not test({"a": "1"})


def test_empty_bool_and_must_not_only() -> None:
    assert emulator.compile_dsl({"bool": {}})({})
    assert emulator.compile_dsl({"bool": {"must_not": [{"exists": {"field": "a"}}]}})({"b": 1})


def test_term_case_insensitive_folds_ascii_only() -> None:
    test = emulator.compile_dsl({"term": {"a": {"value": "caf\u00e9", "case_insensitive": True}}})
    assert test({"a": "CAF\u00e9"})
    assert not test({"a": "CAF\u00c9"})


def test_casefold_mode_folds_unicode() -> None:
    query = {"term": {"a": {"value": "caf\u00e9", "case_insensitive": True}}}
    assert emulator.compile_dsl(query, case_folding="casefold")({"a": "CAF\u00c9"})


def test_term_is_case_sensitive_on_keyword() -> None:
    test = emulator.compile_dsl({"term": {"a": "Lsass"}}, {"a": "keyword"})
    assert test({"a": "Lsass"})
    assert not test({"a": "lsass"})


def test_lowercase_normalizer_field() -> None:
    test = emulator.compile_dsl({"wildcard": {"a": "*LSASS*"}}, {"a": "keyword:lowercase"})
    assert test({"a": "x lsass y"})
    assert test({"a": "X LSASS Y"})


def test_multivalued_field_matches_any_value() -> None:
    test = emulator.compile_dsl({"term": {"a": "x"}})
    assert test({"a": ["y", "x"]})
    assert not test({"a": ["y", None]})


def test_numbers_on_keyword_fields_are_text() -> None:
    test = emulator.compile_dsl({"term": {"event.code": "4688"}}, {"event.code": "keyword"})
    assert test({"event.code": 4688})
    assert not test({"event.code": "04688"})


def test_range_numbers_and_dates() -> None:
    numbers = emulator.compile_dsl({"range": {"n": {"gt": 5, "lte": 10}}})
    assert numbers({"n": 10})
    assert not numbers({"n": 5})
    dates = emulator.compile_dsl({"range": {"@timestamp": {"gte": "2024-01-01T00:00:00Z", "lt": "now"}}})
    assert dates({"@timestamp": "2024-06-01T10:00:00.000Z"})
    assert not dates({"@timestamp": "2023-12-31T23:59:59Z"})
    recent = emulator.compile_dsl({"range": {"@timestamp": {"gte": "now-5m"}}}, {"@timestamp": "date"})
    assert not recent({"@timestamp": "2024-06-01T10:00:00Z"})


def test_range_on_keyword_compares_text() -> None:
    test = emulator.compile_dsl({"range": {"k": {"gt": "5"}}}, {"k": "keyword"})
    assert test({"k": "9"})
    assert not test({"k": "10"})


def test_ip_term_with_network() -> None:
    test = emulator.compile_dsl({"term": {"ip": "10.0.0.0/8"}}, {"ip": "ip"})
    assert test({"ip": "10.1.2.3"})
    assert not test({"ip": "11.1.2.3"})


def test_query_string_is_delegated() -> None:
    test = emulator.compile_dsl({"query_string": {"query": "a:x* AND (NOT b:y)"}})
    assert test({"a": "xyz", "b": "z"})
    assert not test({"a": "xyz", "b": "y"})


def test_search_body_is_unwrapped() -> None:
    test = emulator.compile_query('{"query": {"match_all": {}}}')
    assert test({})


def test_unknown_query_type_raises() -> None:
    with pytest.raises(ValueError, match="query type 'fuzzy' is not emulated"):
        emulator.compile_dsl({"fuzzy": {"a": "x"}})


def test_text_fields_are_rejected() -> None:
    with pytest.raises(ValueError, match="analysed text field"):
        emulator.compile_dsl({"match_all": {}}, {"a": "text"})


def test_wildcard_trailing_backslash_is_literal() -> None:
    test = emulator.compile_dsl({"wildcard": {"a": "x\\"}})
    assert test({"a": "x\\"})


def test_sigmahq_corpus_converts_or_refuses(sigmahq_rules: Tuple[List[Any], Dict[str, int]]) -> None:
    counts = elastic_corpus_counts(sigmahq_rules[0], "dsl")
    assert counts["sigma"] > 3000


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_values_agree(data: Any) -> None:
    check_random_rule(data, "dsl")


def test_casefold_mode_agrees_on_special_folds() -> None:
    """With casefold, the emulator folds as the evaluator does, so the case exceptions vanish."""
    rule = rule_from({"sel": {"CommandLine|contains": ["stra\u00dfe", "\u212a"]}, "condition": "sel"})
    query = convert(rule, "dsl", "sigma")
    casefold = emulator.compile_query(query, None, case_folding="casefold")
    ascii_only = emulator.compile_query(query)
    for text in ("STRASSE", "x k y", "Stra\u00dfe"):
        assert casefold({"CommandLine": text}) is compile_rule(rule).test({"CommandLine": text}), text
    assert ascii_only({"CommandLine": "STRASSE"}) is False
