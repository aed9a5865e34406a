"""Planted emitter faults: the report must catch each with a non-zero exit code and name the value."""

import pytest

from core.ir import WINDASH_CHARACTERS
from core.portability.classify import ESCAPING, WINDASH
from core.portability.render import exit_code, to_text
from core.portability.report import Backend, Pair, build_report
from portability_helpers import LSASS_RULE, UNICODE_CASE, run_command

HORIZONTAL_BAR = "\u2015"


@pytest.fixture
def drop_horizontal_bar(monkeypatch):
    """Make the shared emitter front end expand windash without U+2015, as a buggy emitter would."""
    import core.targets.common as common

    monkeypatch.setattr(common, "WINDASH_CHARACTERS", tuple(c for c in WINDASH_CHARACTERS if c != HORIZONTAL_BAR))


@pytest.fixture
def unescaped_space(monkeypatch):
    """Make the Lucene emitter leave spaces unescaped in query_string terms."""
    import core.targets.lucene as lucene

    monkeypatch.setattr(lucene, "QUERY_STRING_RESERVED", lucene.QUERY_STRING_RESERVED - {" "})


@pytest.mark.parametrize("target, mapping", [("kql", "sentinel-asim"), ("dsl", "ecs"), ("spl", "splunk-sysmon"),
                                             ("eql", "ecs")])
def test_dropped_windash_variant_caught(lsass_rule, drop_horizontal_bar, target, mapping):
    backend = Backend()
    if backend.unavailable(target):
        pytest.skip(backend.unavailable(target))
    report = build_report([lsass_rule], [], [Pair(target, mapping)], backend, accept=[UNICODE_CASE])
    result = report.rules[0].results[0]
    windash = [item for item in result.divergences if item.cause.semantic == WINDASH]

    assert exit_code(report) == 1
    assert {item.subject.id for item in windash} == {
        f"corpus:selection_flags.CommandLine#{index}.windash-U+2015" for index in range(3)}
    assert {item.values for item in windash} == {"' -ma '", "' -mm '", "' -mp '"}
    assert all("U+2015 HORIZONTAL BAR" in item.cause.detail for item in windash)


def test_dropped_windash_line_names_value(drop_horizontal_bar, capsys):
    code = run_command(["portability", str(LSASS_RULE), "--targets", "kql", "--mappings", "sentinel-asim",
                        "--accept", UNICODE_CASE])
    lines = capsys.readouterr().out.splitlines()
    expected_line = ("    kql/sentinel-asim  false negative  corpus:selection_flags.CommandLine#0.windash-U+2015  "
              "CommandLine=\"x \u2015ma x lsx\"  value ' -ma '  windash: U+2015 HORIZONTAL BAR: the rule's "
              "windash covers it, the query does not")

    assert code == 1
    assert expected_line in lines


def test_unescaped_space_caught(lsass_rule, unescaped_space, capsys):
    backend = Backend()
    if backend.unavailable("lucene-as-written"):
        pytest.skip(backend.unavailable("lucene-as-written"))
    report = build_report([lsass_rule], [], [Pair("lucene-as-written", "ecs")], backend)
    result = report.rules[0].results[0]
    text = to_text(report, max_lines=0)

    assert exit_code(report) == 1
    assert result.status == "error"
    assert {item.values for item in result.divergences} == {
        "' -ma '", "' -mm '", "' -mp '", "' ls'", "' keyiso'", "' samss'"}
    assert all(item.cause.semantic == ESCAPING for item in result.divergences)
    assert ("lucene-as-written/ecs  unreadable query  query:selection_flags.CommandLine#0  value ' -ma '  "
            "escaping: the value ' -ma ' holds ' ', which the query must escape") in text


def test_fault_free_emitters_pass(lsass_rule):
    backend = Backend()
    pairs = [Pair("kql", "sentinel-asim"), Pair("dsl", "ecs")]
    report = build_report([lsass_rule], [], pairs, backend, accept=[UNICODE_CASE])

    assert exit_code(report) == 0
