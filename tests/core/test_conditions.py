"""Each condition form, and the selections reported as matched."""

import pytest

from tests.core.helpers import matches, rule_from_yaml, selections

DETECTION = """
sel_a:
    CommandLine|contains: 'alpha'
sel_b:
    CommandLine|contains: 'beta'
other:
    CommandLine|contains: 'gamma'
_helper:
    CommandLine|contains: 'delta'
condition: {condition}
"""


@pytest.mark.parametrize("condition,command_line,expected", [
    ("sel_a and sel_b", "alpha beta", True),
    ("sel_a and sel_b", "alpha", False),
    ("sel_a or sel_b", "beta", True),
    ("sel_a or sel_b", "gamma", False),
    ("not sel_a", "beta", True),
    ("not sel_a", "alpha", False),
    ("sel_a and not sel_b", "alpha", True),
    ("sel_a and not sel_b", "alpha beta", False),
    ("not sel_a and sel_b", "beta", True),
    ("sel_a or sel_b and other", "alpha", True),
    ("(sel_a or sel_b) and other", "alpha", False),
    ("(sel_a or sel_b) and other", "beta gamma", True),
    ("not (sel_a or sel_b)", "gamma", True),
    ("1 of sel_*", "beta", True),
    ("1 of sel_*", "gamma", False),
    ("all of sel_*", "alpha beta", True),
    ("all of sel_*", "alpha gamma", False),
    ("1 of them", "delta", False),
    ("1 of them", "gamma", True),
    ("all of them", "alpha beta gamma", True),
    ("all of them", "alpha beta", False),
    ("1 of _helper", "delta", True),
    ("other and not 1 of sel_*", "gamma", True),
    ("other and not 1 of sel_*", "gamma alpha", False),
    ("SEL_A AND sel_b".replace("SEL_A", "sel_a").replace("AND", "and"), "alpha beta", True),
])
def test_condition_forms(tmp_path, condition, command_line, expected):
    rule = rule_from_yaml(tmp_path, DETECTION.format(condition=condition))
    assert matches(rule, {"CommandLine": command_line}) is expected


def test_uppercase_operators(tmp_path):
    rule = rule_from_yaml(tmp_path, DETECTION.format(condition="sel_a AND NOT sel_b"))
    assert matches(rule, {"CommandLine": "alpha"})
    assert not matches(rule, {"CommandLine": "alpha beta"})


def test_condition_list_is_or(tmp_path):
    rule = rule_from_yaml(tmp_path, DETECTION.format(condition="\n    - sel_a\n    - sel_b"))
    assert matches(rule, {"CommandLine": "beta"})
    assert not matches(rule, {"CommandLine": "gamma"})


def test_matched_selections_reported(tmp_path):
    rule = rule_from_yaml(tmp_path, DETECTION.format(condition="1 of sel_* or other"))
    assert selections(rule, {"CommandLine": "alpha gamma"}) == ("sel_a", "other")
    assert selections(rule, {"CommandLine": "nothing"}) is None


def test_map_keys_are_and_list_of_maps_is_or(tmp_path):
    rule = rule_from_yaml(tmp_path, """
sel:
    - Image|endswith: '\\procdump.exe'
      CommandLine|contains: ' -ma '
    - OriginalFileName: 'procdump'
condition: sel
""")
    assert matches(rule, {"Image": "C:\\procdump.exe", "CommandLine": "x -ma y"})
    assert not matches(rule, {"Image": "C:\\procdump.exe", "CommandLine": "x"})
    assert matches(rule, {"OriginalFileName": "ProcDump"})
