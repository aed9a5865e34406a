"""The EQL target and its emulator: golden output, Elastic's eql parser and engine, agreement."""

import re
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import ConversionError, compile_rule, convert, load_rule_document
from core.emulators import eql as emulator
from core.mappings import get_mapping
from core.targets.eql import quote_field, quote_string
from tests.targets.conftest import (
    ELASTIC_MAPPINGS, LSASS_COMMAND_LINES, check_random_rule, elastic_corpus, elastic_corpus_counts,
    elastic_disagreements, elastic_test,
)

eql = pytest.importorskip("eql")

LSASS_ECS = (
    'process where ((event.category : "process" and event.type : "start") and (process.command_line : '
    '("* -ma *", "* /ma *", "* \u2013ma *", "* \u2014ma *", "* \u2015ma *", "* -mm *", "* /mm *", '
    '"* \u2013mm *", "* \u2014mm *", "* \u2015mm *", "* -mp *", "* /mp *", "* \u2013mp *", "* \u2014mp *", '
    '"* \u2015mp *") and process.command_line : ("* ls*", "* keyiso*", "* samss*")))'
)


def rule_from(detection: Dict[str, Any]) -> Any:
    document = {"title": "t", "id": "00000000-0000-0000-0000-000000000000",
                "logsource": {"category": "process_creation", "product": "windows"}, "detection": detection}
    return load_rule_document(document, "test.yml")


def parse_elasticsearch_eql(query: str) -> Any:
    with eql.parser.elasticsearch_syntax:
        return eql.parse_query(query)


def nested(document: Dict[str, Any]) -> Dict[str, Any]:
    """Turn a flat document with dotted names into the nested form the eql engine reads."""
    root: Dict[str, Any] = {}
    for name, value in document.items():
        node = root
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


def eql_engine_verdicts(query: str, documents: List[Dict[str, Any]], category: str) -> List[bool]:
    """Run Elastic's Python EQL engine on the documents and return one verdict per document."""
    hits: List[Any] = []
    engine = eql.PythonEngine()
    engine.add_output_hook(hits.append)
    engine.add_query(parse_elasticsearch_eql(query))
    events = [eql.Event(category, index, nested(document)) for index, document in enumerate(documents)]
    engine.stream_events(events)
    found = {hit.events[0].time for hit in hits}
    return [index in found for index in range(len(documents))]


def test_lsass_golden_ecs(lsass_rule: Any) -> None:
    assert convert(lsass_rule, "eql", "ecs") == LSASS_ECS


def test_lsass_categories(lsass_rule: Any) -> None:
    assert convert(lsass_rule, "eql", "winlogbeat-raw").startswith("any where ")
    assert convert(lsass_rule, "eql", "sigma").startswith("any where ")


@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
@pytest.mark.parametrize("line,expected", LSASS_COMMAND_LINES)
def test_lsass_command_lines(lsass_rule: Any, mapping: str, line: str, expected: bool) -> None:
    test = elastic_test(lsass_rule, "eql", mapping)
    assert compile_rule(lsass_rule).test({"CommandLine": line}) is expected
    assert test(get_mapping(mapping).document_for({"CommandLine": line})) is expected


@pytest.mark.slow
@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
def test_lsass_process_events_agree(lsass_rule: Any, process_events: List[Any], mapping: str) -> None:
    assert len(process_events) == 5950
    assert elastic_disagreements(lsass_rule, process_events, "eql", mapping) == []


@pytest.mark.slow
def test_engine_agrees_on_shared_events(lsass_rule: Any, process_events: List[Any]) -> None:
    """Elastic's eql engine folds case everywhere, so it is an oracle for ':' queries without '?'."""
    query = convert(lsass_rule, "eql", "ecs")
    ecs = get_mapping("ecs")
    documents = [ecs.document_for(event.fields) for event in process_events]
    lines = [ecs.document_for({"CommandLine": line}) for line, _ in LSASS_COMMAND_LINES]
    documents.extend(lines)
    expected = eql_engine_verdicts(query, documents, "process")
    test = emulator.compile_query(query, ecs)
    verdicts = [test(document) for document in documents]
    assert sum(expected) == 3 + sum(1 for _, match in LSASS_COMMAND_LINES if match)
    assert verdicts == expected


@pytest.mark.slow
def test_engine_agrees_on_colon_only_rules(sigmahq_rules: Tuple[List[Any], Dict[str, int]],
                                           process_events: List[Any]) -> None:
    """Compare with the eql engine on corpus rules whose query uses only ':' with '*' wildcards."""
    rules, _ = sigmahq_rules
    queries = elastic_corpus(rules, "eql")["queries"]
    chosen = [query for (source, mapping), query in sorted(queries.items())
              if mapping == "ecs" and _colon_only(query)][:25]
    ecs = get_mapping("ecs")
    documents = [ecs.document_for(event.fields) for event in process_events]
    compared = 0
    for query in chosen:
        expected = eql_engine_verdicts(query, documents, "process")
        test = emulator.compile_query(query, ecs)
        assert [test(document) for document in documents] == expected, query
        compared += 1
    print(f"eql engine and emulator agree on {compared} rules x {len(documents)} events")
    assert compared == 25


def _colon_only(query: str) -> bool:
    body = query.split(" where ", 1)[1]
    stripped = body.replace(" : ", "")
    forbidden = (" == ", " != ", " like", " in ", " regex", " > ", " < ", "?", "\\u{", "cidrMatch", "null", " not ")
    return " : " in body and not any(token in stripped for token in forbidden)


def test_sigmahq_corpus_converts_or_refuses(sigmahq_rules: Tuple[List[Any], Dict[str, int]]) -> None:
    counts = elastic_corpus_counts(sigmahq_rules[0], "eql")
    assert counts["sigma"] > 3000


def test_every_query_parses_in_elastic_eql_and_emulator(sigmahq_rules: Tuple[List[Any], Dict[str, int]]) -> None:
    rules, _ = sigmahq_rules
    queries = elastic_corpus(rules, "eql")["queries"]
    escaped = 0
    for key, query in queries.items():
        emulator.compile_query(query, get_mapping(key[1]))
        if "\\u{" in query:
            # The eql package reads a \u{ escape up to the last } of its string, so it misreads a
            # string with an escape and a later brace; the escape itself follows Elastic's syntax.
            escaped += 1
            query = re.sub(r"\\u\{[0-9A-F]{2,8}\}", "_", query)
        parse_elasticsearch_eql(query)
    print(f"eql package parsed {len(queries)} queries ({escaped} with \\u{{}} escapes replaced)")


def test_string_escapes() -> None:
    assert quote_string('a"b\\c\nd\te\rf\0g\u2013') == '"a\\"b\\\\c\\nd\\te\\rf\\u{00}g\u2013"'
    assert emulator.decode_string(quote_string('a"b\\c\nd\te\rf\0g')) == 'a"b\\c\nd\te\rf\0g'


def test_injection_attempt_stays_a_value() -> None:
    value = '" or Image : "*'
    rule = rule_from({"sel": {"CommandLine|cased": value}, "condition": "sel"})
    test = emulator.compile_query(convert(rule, "eql", "sigma"))
    assert test({"CommandLine": value})
    assert not test({"CommandLine": "x", "Image": "y"})


def test_field_names_in_backticks() -> None:
    assert quote_field("process.command_line") == "process.command_line"
    assert quote_field("c-uri") == "`c-uri`"
    assert quote_field("a`b") == "`a``b`"
    assert quote_field("where") == "`where`"


def test_literal_star_becomes_regex() -> None:
    rule = rule_from({"sel": {"CommandLine|contains": "a\\*b"}, "condition": "sel"})
    query = convert(rule, "eql", "sigma")
    assert query == 'any where CommandLine regex ".*[aA]\\\\*[bB].*"'
    test = emulator.compile_query(query)
    assert test({"CommandLine": "xA*by"})
    assert not test({"CommandLine": "xAzby"})


def test_cased_values_use_equality_and_like() -> None:
    rule = rule_from({"sel": {"CommandLine|cased": ["A", "B"], "Image|cased|endswith": "\\X.exe"},
                      "condition": "sel"})
    query = convert(rule, "eql", "sigma")
    assert 'CommandLine in ("A", "B")' in query
    assert 'Image like "*\\\\X.exe"' in query


def test_backslash_is_literal_in_patterns() -> None:
    test = emulator.compile_query('any where a : "C:\\\\Windows\\\\*"')
    assert test({"a": "c:\\windows\\x"})
    assert not test({"a": "c:windows"})


def test_question_mark_is_a_wildcard() -> None:
    test = emulator.compile_query('any where a : "a?c"')
    assert test({"a": "abc"})
    assert not test({"a": "ac"})


def test_colon_folds_ascii_only() -> None:
    test = emulator.compile_query('any where a : "caf\u00e9"')
    assert test({"a": "CAF\u00e9"})
    assert not test({"a": "CAF\u00c9"})


def test_equality_is_case_sensitive() -> None:
    test = emulator.compile_query('any where a == "Lsass"')
    assert test({"a": "Lsass"})
    assert not test({"a": "lsass"})


def test_not_on_missing_field_is_true() -> None:
    test = emulator.compile_query('any where not (a : "x")')
    assert test({})
    assert not test({"a": "X"})


def test_null_comparisons() -> None:
    assert emulator.compile_query("any where a == null")({"a": None})
    assert emulator.compile_query("any where a != null")({"a": "x"})


def test_category_is_a_term_on_event_category() -> None:
    test = emulator.compile_query('process where a : "x"')
    assert test({"event.category": ["process"], "a": "x"})
    assert not test({"event.category": "network", "a": "x"})
    assert not test({"a": "x"})


def test_fieldref_is_refused() -> None:
    rule = rule_from({"sel": {"Image|fieldref": "ParentImage"}, "condition": "sel"})
    with pytest.raises(ConversionError, match="target 'eql' cannot express a comparison of two fields"):
        convert(rule, "eql", "ecs")


def test_sequences_are_not_emulated() -> None:
    with pytest.raises(ValueError, match="EQL query"):
        emulator.compile_query("sequence [process where true] [process where true]")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_values_agree(data: Any) -> None:
    check_random_rule(data, "eql")
