"""The ES|QL target and its emulator: golden output, null logic, the unlowered variant, agreement."""

from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import ConversionError, compile_rule, convert, load_rule_document
from core.emulators import esql as emulator
from core.mappings import get_mapping
from core.targets.esql import quote_field, quote_string
from tests.targets.conftest import (
    ELASTIC_MAPPINGS, LSASS_COMMAND_LINES, check_random_rule, elastic_corpus_counts, elastic_disagreements,
    elastic_query, elastic_test,
)

UPPER_LINE = "PROCDUMP64.EXE -ACCEPTEULA /MA LSASS.EXE C:\\TEMP\\LS.DMP"


def rule_from(detection: Dict[str, Any]) -> Any:
    document = {"title": "t", "id": "00000000-0000-0000-0000-000000000000",
                "logsource": {"category": "process_creation", "product": "windows"}, "detection": detection}
    return load_rule_document(document, "test.yml")


def test_lsass_golden_ecs(lsass_rule: Any) -> None:
    query = convert(lsass_rule, "esql", "ecs")
    assert query.startswith(
        'FROM logs-* | WHERE (TO_LOWER(event.category) == "process" AND TO_LOWER(event.type) == "start") AND '
        '((TO_LOWER(process.command_line) LIKE "* -ma *" OR TO_LOWER(process.command_line) LIKE "* /ma *" OR ')
    assert query.endswith('TO_LOWER(process.command_line) LIKE "* samss*"))')
    assert query.count("LIKE") == 18


def test_lsass_golden_without_lowering(lsass_rule: Any) -> None:
    query = elastic_query(lsass_rule, "esql", "ecs", lowercase=False)
    assert 'process.command_line LIKE "* -ma *"' in query
    assert "TO_LOWER" not in query


def test_indices_option(lsass_rule: Any) -> None:
    query = elastic_query(lsass_rule, "esql", "ecs", indices="logs-windows.sysmon_operational-*")
    assert query.startswith("FROM logs-windows.sysmon_operational-* | WHERE ")


@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
@pytest.mark.parametrize("line,expected", LSASS_COMMAND_LINES)
def test_lsass_command_lines(lsass_rule: Any, mapping: str, line: str, expected: bool) -> None:
    test = elastic_test(lsass_rule, "esql", mapping)
    assert compile_rule(lsass_rule).test({"CommandLine": line}) is expected
    assert test(get_mapping(mapping).document_for({"CommandLine": line})) is expected


@pytest.mark.slow
@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
def test_lsass_process_events_agree(lsass_rule: Any, process_events: List[Any], mapping: str) -> None:
    assert len(process_events) == 5950
    assert elastic_disagreements(lsass_rule, process_events, "esql", mapping) == []


# Exceptions by design: the unlowered variant, and multivalued fields.


@pytest.mark.parametrize("mapping", ELASTIC_MAPPINGS)
def test_without_lowering_misses_other_case(lsass_rule: Any, mapping: str) -> None:
    test = elastic_test(lsass_rule, "esql", mapping, lowercase=False)
    document = get_mapping(mapping).document_for({"CommandLine": UPPER_LINE})
    assert compile_rule(lsass_rule).test({"CommandLine": UPPER_LINE}) is True
    assert test(document) is False


def test_multivalued_field_is_null() -> None:
    rule = rule_from({"sel": {"CommandLine|contains": "lsass"}, "condition": "sel"})
    test = emulator.compile_query(convert(rule, "esql", "sigma"))
    assert compile_rule(rule).test({"CommandLine": ["lsass", "x"]}) is True
    assert test({"CommandLine": ["lsass", "x"]}) is False
    assert test({"CommandLine": ["lsass"]}) is True


# Null logic.


def test_not_on_missing_field_is_guarded() -> None:
    rule = rule_from({"sel": {"CommandLine|contains": "lsass"}, "condition": "not sel"})
    query = convert(rule, "esql", "sigma")
    assert query == 'FROM * | WHERE NOT (CommandLine IS NOT NULL AND TO_LOWER(CommandLine) LIKE "*lsass*")'
    test = emulator.compile_query(query)
    assert test({})
    assert test({"CommandLine": "x"})
    assert not test({"CommandLine": "LSASS"})


def test_three_valued_logic_in_emulator() -> None:
    assert not emulator.compile_query('FROM x | WHERE NOT (a == "x")')({})
    assert emulator.compile_query('FROM x | WHERE a == "x" OR TRUE')({})
    assert not emulator.compile_query('FROM x | WHERE a IS NOT NULL AND a == "x"')({})


def test_null_and_exists() -> None:
    rule = rule_from({"sel": {"User": None, "Image|exists": True}, "condition": "sel"})
    query = convert(rule, "esql", "ecs")
    assert "user.name IS NULL" in query
    assert "process.executable IS NOT NULL" in query


def test_fieldref_compares_lowered_fields() -> None:
    rule = rule_from({"sel": {"Image|fieldref": "ParentImage"}, "condition": "sel"})
    query = convert(rule, "esql", "ecs")
    assert "TO_LOWER(process.executable) == TO_LOWER(process.parent.executable)" in query
    test = emulator.compile_query(query, get_mapping("ecs"))
    ecs = get_mapping("ecs")
    assert test(ecs.document_for({"Image": "A.exe", "ParentImage": "a.EXE"}))
    assert not test(ecs.document_for({"Image": "A.exe", "ParentImage": "b.exe"}))
    assert not test(ecs.document_for({"Image": "A.exe"}))


# Escaping and the emulator's reading.


def test_string_and_like_escapes() -> None:
    rule = rule_from({"sel": {"CommandLine|contains|cased": 'a\\*b"c\\\\d\n'}, "condition": "sel"})
    query = convert(rule, "esql", "sigma")
    assert query == 'FROM * | WHERE CommandLine LIKE "*a\\\\*b\\"c\\\\\\\\d\\n*"'
    test = emulator.compile_query(query)
    assert test({"CommandLine": 'xa*b"c\\d\ny'})
    assert not test({"CommandLine": 'xazb"c\\d\ny'})


def test_injection_attempt_stays_a_value() -> None:
    value = '" OR Image LIKE "*'
    rule = rule_from({"sel": {"CommandLine|cased": value}, "condition": "sel"})
    test = emulator.compile_query(convert(rule, "esql", "sigma"))
    assert test({"CommandLine": value})
    assert not test({"CommandLine": "x", "Image": "y"})


def test_quote_helpers() -> None:
    assert quote_string('a"b\\c\td') == '"a\\"b\\\\c\\td"'
    assert quote_field("process.command_line") == "process.command_line"
    assert quote_field("c-uri") == "`c-uri`"
    assert quote_field("from") == "`from`"


def test_to_lower_is_unicode() -> None:
    test = emulator.compile_query('FROM x | WHERE TO_LOWER(a) == "caf\u00e9"')
    assert test({"a": "CAF\u00c9"})


def test_rlike_is_whole_value() -> None:
    test = emulator.compile_query('FROM x | WHERE a RLIKE "ab.*"')
    assert test({"a": "abc"})
    assert not test({"a": "xabc"})


def test_other_commands_are_rejected() -> None:
    with pytest.raises(ValueError, match="only WHERE"):
        emulator.compile_query("FROM x | STATS count()")


def test_keyword_search_is_refused() -> None:
    rule = rule_from({"keywords": ["lsass"], "condition": "keywords"})
    with pytest.raises(ConversionError, match="target 'esql' cannot express a keyword search"):
        convert(rule, "esql", "sigma")


@pytest.mark.parametrize("lowercase", (True, False))
def test_sigmahq_corpus_converts_or_refuses(sigmahq_rules: Tuple[List[Any], Dict[str, int]],
                                            lowercase: bool) -> None:
    counts = elastic_corpus_counts(sigmahq_rules[0], "esql", lowercase=lowercase)
    assert counts["sigma"] > 3000


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_values_agree(data: Any) -> None:
    check_random_rule(data, "esql")
