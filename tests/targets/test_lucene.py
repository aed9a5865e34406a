"""The Lucene query_string target and its emulator: golden output, luqum parsing, agreement, case."""

from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import ConversionError, compile_rule, convert, load_rule_document
from core.emulators import lucene as emulator
from core.emulators.dsl import FieldModel
from core.ir import And, FieldMatch, Not, Or, Selection, StringMatch
from core.mappings import get_mapping
from core.rules import Rule
from core.targets.lucene import escape_phrase, escape_term
from tests.targets.conftest import (
    ELASTIC_MAPPINGS, LSASS_COMMAND_LINES, check_random_rule, elastic_corpus, elastic_corpus_counts,
    elastic_disagreements, elastic_query, elastic_test,
)

luqum_parser = pytest.importorskip("luqum.parser")

UPPER_LINE = "PROCDUMP64.EXE -ACCEPTEULA /MA LSASS.EXE C:\\TEMP\\LS.DMP"


def rule_from(detection: Dict[str, Any]) -> Any:
    document = {"title": "t", "id": "00000000-0000-0000-0000-000000000000",
                "logsource": {"category": "process_creation", "product": "windows"}, "detection": detection}
    return load_rule_document(document, "test.yml")


def cased_copy(rule: Rule) -> Rule:
    """Return the rule with every string value made case-sensitive (the as-written meaning)."""
    def walk(node: Any) -> Any:
        if isinstance(node, Selection):
            return Selection(node.name, walk(node.body), node.location)
        if isinstance(node, (And, Or)):
            return type(node)(tuple(walk(child) for child in node.children), node.location)
        if isinstance(node, Not):
            return Not(walk(node.child), node.location)
        matchers = tuple(StringMatch(m.patterns, True) if isinstance(m, StringMatch) else m for m in node.matchers)
        return FieldMatch(node.field, matchers, node.require_all, node.location)

    return Rule(**{**rule.__dict__, "detection": walk(rule.detection)})


def test_lsass_golden_ecs(lsass_rule: Any) -> None:
    query = convert(lsass_rule, "lucene", "ecs")
    assert query.startswith(
        "((event.category:/[pP][rR][oO][cC][eE][sS][sS]/ AND event.type:/[sS][tT][aA][rR][tT]/) AND "
        "((process.command_line:/.*\\ \\-[mM][aA]\\ .*/ OR process.command_line:/.*\\ \\/[mM][aA]\\ .*/ OR ")
    assert query.endswith("process.command_line:/.*\\ [sS][aA][mM][sS][sS].*/)))")
    assert query.count("process.command_line:") == 18


def test_lsass_golden_as_written(lsass_rule: Any) -> None:
    query = elastic_query(lsass_rule, "lucene", "ecs", case="as-written")
    assert query.startswith('((event.category:"process" AND event.type:"start") AND '
                            "((process.command_line:*\\ \\-ma\\ * OR process.command_line:*\\ \\/ma\\ * OR ")
    assert "process.command_line:*\\ ls*" in query


@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
@pytest.mark.parametrize("line,expected", LSASS_COMMAND_LINES)
def test_lsass_command_lines(lsass_rule: Any, mapping: str, line: str, expected: bool) -> None:
    test = elastic_test(lsass_rule, "lucene", mapping)
    assert compile_rule(lsass_rule).test({"CommandLine": line}) is expected
    assert test(get_mapping(mapping).document_for({"CommandLine": line})) is expected


@pytest.mark.slow
@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
def test_lsass_process_events_agree(lsass_rule: Any, process_events: List[Any], mapping: str) -> None:
    assert len(process_events) == 5950
    assert elastic_disagreements(lsass_rule, process_events, "lucene", mapping) == []


# The as-written variant: an exception by design, because keyword and wildcard fields are case-sensitive.


@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
def test_as_written_misses_other_case(lsass_rule: Any, mapping: str) -> None:
    test = elastic_test(lsass_rule, "lucene", mapping, case="as-written")
    document = get_mapping(mapping).document_for({"CommandLine": UPPER_LINE})
    assert compile_rule(lsass_rule).test({"CommandLine": UPPER_LINE}) is True
    assert test(document) is False


@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
@pytest.mark.parametrize("line,expected", LSASS_COMMAND_LINES)
def test_as_written_is_the_cased_rule(lsass_rule: Any, mapping: str, line: str, expected: bool) -> None:
    test = elastic_test(lsass_rule, "lucene", mapping, case="as-written")
    cased = compile_rule(cased_copy(lsass_rule)).test({"CommandLine": line})
    assert test(get_mapping(mapping).document_for({"CommandLine": line})) is cased


@pytest.mark.slow
def test_as_written_differs_only_in_case(lsass_rule: Any, process_events: List[Any]) -> None:
    ecs = get_mapping("ecs")
    test = elastic_test(lsass_rule, "lucene", "ecs", case="as-written")
    cased = compile_rule(cased_copy(lsass_rule))
    reference = compile_rule(lsass_rule)
    differ_from_cased = [e.record for e in process_events if test(ecs.document_for(e.fields)) != cased.test(e.fields)]
    missed = [e.record for e in process_events if reference.test(e.fields) and not test(ecs.document_for(e.fields))]
    assert differ_from_cased == []
    print(f"lucene as-written on ecs misses {len(missed)} of 3 matches of the shared events")


def test_as_written_on_lowercase_keyword_fields(lsass_rule: Any) -> None:
    """On keyword fields with the lowercase normalizer the as-written query ignores case again."""
    query = elastic_query(lsass_rule, "lucene", "sigma", case="as-written")
    test = emulator.compile_lucene(query, FieldModel({"CommandLine": "keyword:lowercase"}))
    for line, expected in LSASS_COMMAND_LINES:
        assert test({"CommandLine": line}) is expected, line


# Parsing with luqum, and the whole corpus.


@pytest.mark.parametrize("case", ("exact", "as-written"))
def test_sigmahq_corpus_converts_or_refuses(sigmahq_rules: Tuple[List[Any], Dict[str, int]], case: str) -> None:
    counts = elastic_corpus_counts(sigmahq_rules[0], "lucene", case=case)
    assert counts["sigma"] > 3000


@pytest.mark.parametrize("case", ("exact", "as-written"))
def test_every_query_parses_in_luqum(sigmahq_rules: Tuple[List[Any], Dict[str, int]], case: str) -> None:
    queries = elastic_corpus(sigmahq_rules[0], "lucene", case=case)["queries"]
    for query in queries.values():
        luqum_parser.parser.parse(query)


def test_lsass_parses_in_luqum(lsass_rule: Any) -> None:
    for mapping in ELASTIC_MAPPINGS:
        for case in ("exact", "as-written"):
            tree = luqum_parser.parser.parse(elastic_query(lsass_rule, "lucene", mapping, case=case))
            assert str(tree)


# Escaping.


def test_escape_term_reserved_and_whitespace() -> None:
    assert escape_term('a+b-c=d&e|f>g<h!i(j)k{l}m[n]o^p"q~r*s?t:u\\v/w x\ty\nz') == (
        'a\\+b\\-c\\=d\\&e\\|f\\>g\\<h\\!i\\(j\\)k\\{l\\}m\\[n\\]o\\^p\\"q\\~r\\*s\\?t\\:u\\\\v\\/w\\ x\\\ty\\\nz')


def test_escape_phrase() -> None:
    assert escape_phrase('a "b" \\c') == '"a \\"b\\" \\\\c"'


def test_tab_is_escaped_as_a_tab() -> None:
    rule = rule_from({"sel": {"CommandLine|contains|cased": "a\tb"}, "condition": "sel"})
    query = convert(rule, "lucene", "sigma")
    assert query == "CommandLine:*a\\\tb*"
    test = emulator.compile_query(query)
    assert test({"CommandLine": "xa\tby"})
    assert not test({"CommandLine": "xatby"})


def test_trailing_backslash_regexp_does_not_run_on() -> None:
    rule = rule_from({"sel": {"CommandLine": "C:\\Windows\\"}, "other": {"Image": "x/y"},
                      "condition": "sel or other"})
    query = convert(rule, "lucene", "sigma")
    assert "[\\\\]/" in query
    luqum_parser.parser.parse(query)
    test = emulator.compile_query(query)
    assert test({"CommandLine": "c:\\windows\\"})
    assert test({"Image": "X/Y"})
    assert not test({"CommandLine": "c:\\windows", "Image": "x"})


def test_injection_attempt_stays_a_value() -> None:
    value = '" OR Image:* OR CommandLine:"'
    rule = rule_from({"sel": {"CommandLine|cased": value}, "condition": "sel"})
    test = emulator.compile_query(convert(rule, "lucene", "sigma"))
    assert test({"CommandLine": value})
    assert not test({"CommandLine": "x", "Image": "y"})


# The emulator's reading of query_string.


def test_keyword_field_is_case_sensitive() -> None:
    test = emulator.compile_query("a:Lsass*")
    assert test({"a": "Lsass.exe"})
    assert not test({"a": "lsass.exe"})


def test_field_star_means_exists() -> None:
    test = emulator.compile_query("a:*")
    assert test({"a": ""})
    assert not test({"a": None})


def test_ranges() -> None:
    test = emulator.compile_query("n:{5 TO *] AND m:<=3")
    assert test({"n": 6, "m": 3})
    assert not test({"n": 5, "m": 3})


def test_mixed_operators_are_rejected() -> None:
    with pytest.raises(ValueError, match="mixes AND and OR"):
        emulator.compile_query("a:x OR b:y AND c:z")


def test_not_inside_or_is_rejected() -> None:
    with pytest.raises(ValueError, match="NOT inside an OR group"):
        emulator.compile_query("a:x OR NOT b:y")


def test_default_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="without a field"):
        emulator.compile_query("lsass")


def test_keyword_search_is_refused() -> None:
    rule = rule_from({"keywords": ["lsass"], "condition": "keywords"})
    with pytest.raises(ConversionError, match="target 'lucene' cannot express a keyword search"):
        convert(rule, "lucene", "sigma")


def test_unknown_case_mode_raises(lsass_rule: Any) -> None:
    with pytest.raises(ValueError, match="case must be one of"):
        elastic_query(lsass_rule, "lucene", "ecs", case="lower")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_values_agree(data: Any) -> None:
    check_random_rule(data, "lucene")
