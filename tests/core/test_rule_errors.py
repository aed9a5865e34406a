"""Malformed rules: each error names the file, line and column, the reason and, where known, the fix."""

import pytest

from core import ConditionError, RuleError, UnsupportedFeatureError, load_rule, load_rule_document
from core.errors import LsassdumpError
from tests.core.helpers import rule_from_yaml

RULE_HEAD = "title: T\nlogsource:\n    category: process_creation\ndetection:\n"


def write(tmp_path, text, name="bad.yml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_error(tmp_path, text):
    with pytest.raises(LsassdumpError) as caught:
        load_rule(write(tmp_path, text))
    return caught.value


def test_unknown_modifier_names_position_and_suggestion(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine|contians: x\n    condition: sel\n")
    assert isinstance(error, RuleError)
    assert str(error) == (f"{tmp_path}/bad.yml:6:9: unknown value modifier 'contians' (did you mean 'contains'?)")


def test_unsupported_modifier_names_feature(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine|expand: '%admins%'\n    condition: sel\n")
    assert isinstance(error, UnsupportedFeatureError)
    assert "unsupported value modifier 'expand'" in str(error)
    assert ":6:9:" in str(error)


def test_unknown_identifier_in_condition(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n    condition: sel and filter\n")
    assert isinstance(error, ConditionError)
    assert str(error) == (f"{tmp_path}/bad.yml:7:24: unknown search identifier 'filter' "
                          "(the detection defines: sel)")


def test_pattern_matching_nothing(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n    condition: 1 of filter_*\n")
    assert "pattern 'filter_*' matches no search identifier" in str(error)
    assert ":7:21:" in str(error)


def test_unbalanced_parenthesis(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n    condition: (sel\n")
    assert isinstance(error, ConditionError)
    assert "missing ')'" in str(error)


def test_bare_wildcard_identifier_gets_a_fix(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n    condition: sel*\n")
    assert "write '1 of sel*' or 'all of sel*'" in str(error)


def test_aggregation_is_unsupported(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n    condition: sel | count() > 5\n")
    assert isinstance(error, UnsupportedFeatureError)
    assert "aggregation expressions" in str(error)
    assert ":7:20:" in str(error)


def test_invalid_yaml_position(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n      CommandLine: [x\n    condition: sel\n")
    assert isinstance(error, RuleError)
    assert str(error).startswith(f"{tmp_path}/bad.yml:")
    assert "invalid YAML" in str(error)


def test_duplicate_key(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n        CommandLine: y\n    condition: sel\n")
    assert str(error) == f"{tmp_path}/bad.yml:7:9: duplicate key 'CommandLine' (merge the two entries into one)"


def test_missing_condition(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n")
    assert "missing 'condition' in detection" in str(error)
    assert ":5:5:" in str(error)


def test_missing_title(tmp_path):
    error = load_error(tmp_path, "logsource:\n    product: windows\ndetection:\n    sel: x\n    condition: sel\n")
    assert "missing required key 'title'" in str(error)


def test_regex_that_does_not_compile(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine|re: '(unclosed'\n    condition: sel\n")
    assert "invalid regular expression '(unclosed'" in str(error)
    assert ":6:25:" in str(error)


def test_flag_without_re(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine|i: x\n    condition: sel\n")
    assert "needs 're'" in str(error)


def test_conflicting_type_modifiers(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine|re|cidr: x\n    condition: sel\n")
    assert "cannot be combined" in str(error)


def test_invalid_level(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel:\n        CommandLine: x\n    condition: sel\nlevel: severe\n")
    assert "invalid level 'severe'" in str(error)
    assert ":8:8:" in str(error)


def test_rule_collection_is_unsupported(tmp_path):
    error = load_error(tmp_path, RULE_HEAD + "    sel: x\n    condition: sel\n---\ntitle: U\n")
    assert isinstance(error, UnsupportedFeatureError)
    assert "rule collections" in str(error)


def test_correlation_rule_is_unsupported(tmp_path):
    error = load_error(tmp_path, "title: C\ncorrelation:\n    type: event_count\n")
    assert isinstance(error, UnsupportedFeatureError)
    assert str(error).startswith(f"{tmp_path}/bad.yml:2:1: unsupported")


def test_empty_file(tmp_path):
    error = load_error(tmp_path, "")
    assert "rule file is empty" in str(error)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes("title: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(RuleError) as caught:
        load_rule(str(path))
    assert "not valid UTF-8" in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(RuleError) as caught:
        load_rule(str(tmp_path / "absent.yml"))
    assert "cannot read rule file" in str(caught.value)


def test_document_without_positions_names_source():
    with pytest.raises(RuleError) as caught:
        load_rule_document({"title": "x", "logsource": {}, "detection": {"sel": {"A|bogus": 1}, "condition": "sel"}},
                           "bundled/x.json")
    assert str(caught.value).startswith("bundled/x.json: unknown value modifier 'bogus'")


def test_valid_rule_still_loads(tmp_path):
    rule = rule_from_yaml(tmp_path, "sel:\n    CommandLine: x\ncondition: sel")
    assert rule.title == "Test rule"
    assert rule.level == "high"
