"""The evaluator's documented semantics: missing fields, null, lists, numbers, case folding."""

from tests.core.helpers import matches, rule_from_yaml


def contains_rule(tmp_path, value="lsass"):
    return rule_from_yaml(tmp_path, f"sel:\n    CommandLine|contains: '{value}'\ncondition: sel")


def test_missing_field_never_matches_a_string(tmp_path):
    assert not matches(contains_rule(tmp_path), {})


def test_null_field_never_matches_a_string(tmp_path):
    assert not matches(contains_rule(tmp_path), {"CommandLine": None})


def test_list_matches_when_any_element_does(tmp_path):
    rule = contains_rule(tmp_path)
    assert matches(rule, {"CommandLine": ["a", "dump lsass", None]})
    assert not matches(rule, {"CommandLine": ["a", "b"]})


def test_number_field_against_string_value(tmp_path):
    rule = rule_from_yaml(tmp_path, "sel:\n    EventID: '4688'\ncondition: sel")
    assert matches(rule, {"EventID": 4688})
    assert not matches(rule, {"EventID": 4689})


def test_number_value_against_string_field(tmp_path):
    rule = rule_from_yaml(tmp_path, "sel:\n    EventID: 4688\ncondition: sel")
    assert matches(rule, {"EventID": "4688"})
    assert matches(rule, {"EventID": 4688})
    assert not matches(rule, {"EventID": "4688x"})


def test_contains_on_number_field_uses_decimal_text(tmp_path):
    rule = contains_rule(tmp_path, "68")
    assert matches(rule, {"CommandLine": 4688})


def test_dict_value_never_matches(tmp_path):
    assert not matches(contains_rule(tmp_path), {"CommandLine": {"lsass": 1}})


def test_full_unicode_case_folding(tmp_path):
    rule = contains_rule(tmp_path, "straße")
    assert matches(rule, {"CommandLine": "STRASSE"})
    assert matches(rule, {"CommandLine": "STRAẞE"})
    greek = contains_rule(tmp_path, "σίγμα")
    assert matches(greek, {"CommandLine": "ΣΊΓΜΑ"})
    cyrillic = contains_rule(tmp_path, "лсасс")
    assert matches(cyrillic, {"CommandLine": "ЛСАСС"})


def test_case_folding_does_not_confuse_look_alikes(tmp_path):
    rule = contains_rule(tmp_path, "lsass")
    # Cyrillic 'ѕ' (U+0455) looks like 's' but is another letter.
    assert not matches(rule, {"CommandLine": "l\u0455ass"})


def test_trailing_space_kept(tmp_path):
    rule = contains_rule(tmp_path, " -ma ")
    assert not matches(rule, {"CommandLine": "procdump -ma"})
    assert matches(rule, {"CommandLine": "procdump -ma x"})


def test_nul_characters_are_ordinary(tmp_path):
    rule = contains_rule(tmp_path, "lsass")
    assert matches(rule, {"CommandLine": "lsass\0\0"})


def test_long_command_line(tmp_path):
    rule = contains_rule(tmp_path, " -ma ")
    assert matches(rule, {"CommandLine": "x" * 100_000 + " -ma " + "y" * 10})


def test_selections_on_one_list_field_are_independent(tmp_path):
    rule = rule_from_yaml(tmp_path, "a:\n    CommandLine|contains: 'alpha'\nb:\n    CommandLine|contains: 'beta'\n"
                                    "condition: a and b")
    # Each selection may be satisfied by a different element of a multivalue field.
    assert matches(rule, {"CommandLine": ["alpha", "beta"]})
    assert not matches(rule, {"CommandLine": ["alpha", "gamma"]})
    assert matches(rule, {"CommandLine": "beta alpha"})
    assert not matches(rule, {"CommandLine": 42})
