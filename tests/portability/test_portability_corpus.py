"""The corpus generated from a rule: values as written, case, windash and near-miss variants."""

from core import compile_rule
from core.ir import WINDASH_CHARACTERS
from core.portability.corpus import generate
from core.portability.textmatch import LOOKALIKE_DASHES

FLAG_VALUES = (" -ma ", " -mm ", " -mp ")


def _cases(rule):
    return {case.id: case for case in generate(rule)}


def test_corpus_covers_every_value(lsass_rule):
    cases = _cases(lsass_rule)
    for selection, count in (("selection_flags", 3), ("selection_process", 3)):
        for index in range(count):
            prefix = f"corpus:{selection}.CommandLine#{index}."
            assert prefix + "as-written" in cases
            assert prefix + "upper" in cases
            assert prefix + "mixed" in cases
            assert prefix + "tab@0" in cases
            assert prefix + "quotes" in cases
            assert prefix + "backslash" in cases
            assert prefix + "star-in-event" in cases
            assert prefix + "question-in-event" in cases


def test_corpus_windash_and_lookalikes(lsass_rule):
    cases = _cases(lsass_rule)
    for index in range(len(FLAG_VALUES)):
        prefix = f"corpus:selection_flags.CommandLine#{index}."
        for char in WINDASH_CHARACTERS[1:]:
            assert f"{prefix}windash-U+{ord(char):04X}" in cases
        for char in LOOKALIKE_DASHES:
            assert f"{prefix}lookalike-U+{ord(char):04X}" in cases
        assert prefix + "last-token" in cases
        assert prefix + "double-spaces" in cases


def test_corpus_verdicts(lsass_rule):
    compiled = compile_rule(lsass_rule)
    cases = _cases(lsass_rule)
    expected = {
        "corpus:selection_flags.CommandLine#0.as-written": True,
        "corpus:selection_flags.CommandLine#0.upper": True,
        "corpus:selection_flags.CommandLine#0.windash-U+2015": True,
        "corpus:selection_flags.CommandLine#0.lookalike-U+2212": False,
        "corpus:selection_flags.CommandLine#0.tab@4": False,
        "corpus:selection_flags.CommandLine#0.last-token": False,
        "corpus:selection_flags.CommandLine#0.double-spaces": True,
        "corpus:selection_flags.CommandLine#0.quotes": False,
        "corpus:selection_process.CommandLine#2.fold-U+00DF": True,
        "corpus:selection_process.CommandLine#0.star-in-event": False,
    }
    for case_id, verdict in expected.items():
        assert compiled.test(cases[case_id].fields) is verdict, case_id


def test_corpus_event_shape(lsass_rule):
    case = _cases(lsass_rule)["corpus:selection_flags.CommandLine#0.last-token"]

    assert case.fields == {"CommandLine": "x lsx -ma"}
    assert case.site.label == "' -ma '"


def test_corpus_samples_regex_values(companion_rule):
    compiled = compile_rule(companion_rule)
    cases = _cases(companion_rule)
    written = cases["corpus:selection_switch.CommandLine#0.as-written"]
    tab = cases["corpus:selection_switch.CommandLine#0.tab@0"]

    assert compiled.test(written.fields)
    assert compiled.test(tab.fields)
    assert "corpus:selection_procdump.Image#0.upper" in cases
