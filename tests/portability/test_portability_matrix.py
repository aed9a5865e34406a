"""The portability matrix of the LSASS rule over the shared data and its generated corpus."""

import json

import pytest

from core.portability.classify import CASE_FOLDING
from core.portability.render import to_data, to_markdown, to_text
from core.portability.report import NOT_AVAILABLE, OK, Backend, Pair, build_report, pairs_for
from portability_helpers import LSASS_RULE, UNICODE_CASE, run_command

# Targets that keep Sigma's case-insensitive contains: Query DSL (case_insensitive wildcard),
# EQL with ':', SPL search terms, KQL contains, Lucene with case classes, ES|QL with TO_LOWER.
EXACT_TARGETS = ("dsl", "eql", "spl", "kql", "lucene", "esql")
# Translations that compare values in the case the rule writes them.
CASE_SENSITIVE_TARGETS = ("lucene-as-written", "esql-as-written")


@pytest.fixture(scope="module")
def shared_report(lsass_rule, shared_events):
    events, problems = shared_events
    backend = Backend()
    return build_report([lsass_rule], events, pairs_for(backend), backend, event_paths=["shared/data"],
                        read_problems=problems)


def _results(report):
    return {result.pair: result for result in report.rules[0].results}


def _require(result):
    if result.status == NOT_AVAILABLE:
        pytest.skip(f"{result.pair.label} is not available: {result.message}")
    assert result.status == OK, f"{result.pair.label}: {result.status}: {result.message}"


def test_matrix_counts_shared_events(shared_report):
    rule = shared_report.rules[0]

    assert rule.events == 5950
    assert rule.event_matches == 3
    assert rule.corpus_cases == 101
    assert all(result.total == rule.events + rule.corpus_cases
               for result in rule.results if result.status == OK)


def test_exact_targets_show_no_ascii_divergence(shared_report):
    for pair, result in _results(shared_report).items():
        if pair.target not in EXACT_TARGETS:
            continue
        _require(result)
        semantics = {item.cause.semantic for item in result.divergences}
        assert semantics <= {UNICODE_CASE}, (pair.label, [item.subject.id for item in result.divergences])
        assert not any(item.subject.origin == "events" for item in result.divergences), pair.label


def test_case_sensitive_targets_show_case(shared_report):
    for pair, result in _results(shared_report).items():
        if pair.target not in CASE_SENSITIVE_TARGETS or pair.mapping != "ecs":
            continue
        _require(result)
        case_lines = [item for item in result.divergences if item.cause.semantic == CASE_FOLDING]
        ids = {item.subject.id for item in case_lines}
        assert "corpus:selection_flags.CommandLine#0.upper" in ids, pair.label
        assert "corpus:selection_process.CommandLine#1.mixed" in ids, pair.label
        assert all(item.kind == "false negative" for item in case_lines)
        assert result.diverges


def test_case_divergence_line_names_value(shared_report):
    result = _results(shared_report).get(Pair("lucene-as-written", "ecs"))
    if result is None:
        pytest.skip("lucene-as-written is not a target here")
    _require(result)
    lines = to_text(shared_report, max_lines=0).splitlines()
    expected_line = ("lucene-as-written/ecs  false negative  corpus:selection_flags.CommandLine#0.upper  "
              "CommandLine=\"x -MA x lsx\"  value ' -ma '  case folding: process.command_line (wildcard field) "
              "compared case-sensitively, the rule is case-insensitive")

    assert "    " + expected_line in lines


def test_real_true_positives_agree_everywhere(shared_report):
    for result in shared_report.rules[0].results:
        if result.status == OK:
            assert not [item for item in result.divergences if item.subject.origin == "events"], result.pair.label


def test_report_formats(shared_report):
    data = json.loads(json.dumps(to_data(shared_report), default=str))
    markdown = to_markdown(shared_report)

    assert data["rules"][0]["event_matches"] == 3
    assert data["diverges"] is True
    assert "| target/mapping | agree | false negative | false positive | errors | status |" in markdown
    assert "| dsl/ecs |" in markdown


def test_command_exit_codes(capsys):
    failing = run_command(["portability", str(LSASS_RULE), "--targets", "lucene-as-written", "--mappings", "ecs"])
    failing_out = capsys.readouterr().out
    passing = run_command(["portability", str(LSASS_RULE), "--targets", "dsl", "eql", "spl", "kql",
                           "--accept", UNICODE_CASE])
    passing_out = capsys.readouterr().out

    assert failing == 1
    assert "value ' -ma '  case folding" in failing_out
    assert passing == 0
    # The exact targets fail on nothing, but their non-ASCII case divergences are still named.
    assert "result: no target/mapping pair fails;" in passing_out
    assert "diverge only in accepted semantics" in passing_out


def test_reference_variants_do_not_fail(capsys):
    code = run_command(["portability", str(LSASS_RULE), "--mappings", "ecs", "--accept", UNICODE_CASE])
    out = capsys.readouterr().out

    assert code == 0
    assert "lucene-as-written/ecs" in out
    assert "diverges (reference variant, does not fail the run)" in out


def test_command_rejects_unknown_target(capsys):
    code = run_command(["portability", str(LSASS_RULE), "--targets", "splunk"])

    assert code == 2
    assert "unknown target 'splunk'" in capsys.readouterr().err
