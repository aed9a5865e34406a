"""gaps: the LSASS dump variants a rule misses, and the companion rule that closes them."""

import json

from core import compile_rule
from core.portability.gaps import load_variants, score, to_text
from core.targets import TARGETS
from core.portability.report import Backend, pairs_for
from portability_helpers import COMPANION_RULE, LSASS_RULE, run_command

# The variants the LSASS rule as written misses, each with a phrase of the reason gaps gives.
LSASS_MISSES = {
    "by-pid": "selection_process: none of ' ls', ' keyiso', ' samss' in CommandLine",
    "quoted-name": "selection_process: quotes around the word",
    "quoted-switch": "selection_flags: quotes around the word",
    "quoted-service": "selection_process: quotes around the word",
    "tabs": "U+0009 TAB stands where the value has a space",
    "flag-last": "the value needs a space after it, but it ends the field",
    "flag-last-in-cmd-quotes": "selection_flags: none of ' -ma ', ' -mm ', ' -mp ' in CommandLine",
    "hyphen-u2010": "U+2010 HYPHEN is not one of the windash characters",
    "minus-u2212": "U+2212 MINUS SIGN is not one of the windash characters",
    "fullwidth-uff0d": "U+FF0D FULLWIDTH HYPHEN-MINUS is not one of the windash characters",
    "caret-switch": "selection_flags: cmd.exe escape carets (^) split the value",
    "caret-name": "selection_process: cmd.exe escape carets (^) split the value",
    "custom-dump-type": "selection_flags: none of ' -ma ', ' -mm ', ' -mp ' in CommandLine",
    "default-dump-type": "selection_flags: none of ' -ma ', ' -mm ', ' -mp ' in CommandLine",
    "powershell-argument-list": "selection_flags: none of",
}
REQUIRED_KINDS = ("by-pid", "quoted-name", "quoted-switch", "tabs", "flag-last", "flag-after-target",
                  "hyphen-u2010", "minus-u2212", "fullwidth-uff0d", "caret-switch", "custom-dump-type",
                  "default-dump-type", "renamed-binary", "service-keyiso", "service-samss")


def test_corpus_has_required_kinds():
    ids = {variant.id for variant in load_variants()}

    for kind in REQUIRED_KINDS:
        assert kind in ids


def test_gaps_lists_every_miss(lsass_rule):
    report = score(lsass_rule, load_variants())
    missed = {outcome.variant.id: outcome.reason for outcome in report.missed}

    assert set(missed) == set(LSASS_MISSES)
    for variant_id, phrase in LSASS_MISSES.items():
        assert phrase in missed[variant_id], (variant_id, missed[variant_id])
    assert not report.false_alerts


def test_gaps_misses_agree_with_evaluator(lsass_rule):
    compiled = compile_rule(lsass_rule)
    report = score(lsass_rule, load_variants())

    for outcome in report.outcomes:
        assert outcome.alerted == compiled.test(outcome.variant.fields)


def test_companion_catch_rate(companion_rule):
    report = score(companion_rule, load_variants())

    assert report.catch_rate >= 0.9
    assert [outcome.variant.id for outcome in report.missed] == ["by-pid"]
    assert not report.false_alerts


def test_companion_alerts_on_shared_data(companion_rule, lsass_rule, shared_events):
    events, _ = shared_events
    companion = score(companion_rule, load_variants(), events)
    original = score(lsass_rule, load_variants(), events)

    assert companion.events_checked == 5950
    assert len(companion.event_alerts) == 3
    assert {(a.source, a.record) for a in companion.event_alerts} == {
        (a.source, a.record) for a in original.event_alerts}


def test_companion_converts_everywhere(companion_rule):
    backend = Backend()
    for pair in pairs_for(backend, targets=TARGETS):
        if backend.unavailable(pair.target):
            continue
        if pair.label == "spl/splunk-cim":
            continue  # tstats cannot apply a regular expression; the emitter rejects it by design
        query = backend.convert(companion_rule, pair.target, pair.mapping)
        assert backend.compile(pair.target, query, pair.mapping) is not None, pair.label


def test_gaps_text_lists_reasons(lsass_rule):
    text = to_text([score(lsass_rule, load_variants())])

    assert "catches 16 of 31 LSASS dump variants (52%); alerts on 0 of 6 benign look-alikes" in text
    assert "  missed tabs: procdump.exe\u2409-accepteula\u2409-ma\u2409lsass.exe\u2409C:\\Windows\\Temp\\l.dmp" in text


def test_gaps_command(capsys):
    original = run_command(["gaps", str(LSASS_RULE), "--format", "json"])
    original_data = json.loads(capsys.readouterr().out)
    companion = run_command(["gaps", str(COMPANION_RULE)])
    companion_out = capsys.readouterr().out

    assert original == 1
    assert original_data[0]["caught"] == 16
    assert len(original_data[0]["missed"]) == len(LSASS_MISSES)
    assert companion == 1
    assert "catches 30 of 31 LSASS dump variants (97%)" in companion_out
