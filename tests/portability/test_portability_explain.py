"""explain: per selection and per value, with the matched substring marked and near misses named."""

import json

from core.portability.explain import as_dict, explain, format_text
from portability_helpers import LSASS_RULE, run_command

TRUE_POSITIVE = '"C:\\Windows\\system32\\cmd.exe" /c "procdump.exe -accepteula -ma lsass.exe lsass_dump.dmp"'
TAB_SEPARATED = "procdump.exe\t-ma lsass.exe C:\\Temp\\l.dmp"


def test_explain_match_marks_substrings(lsass_rule):
    text = format_text(explain(lsass_rule, {"CommandLine": TRUE_POSITIVE}))
    lines = text.splitlines()

    assert lines[0] == "Potential LSASS Process Dump Via Procdump (5afee48e-67dd-4e03-a783-f74259dcf998): MATCH"
    assert "  condition: all of selection_*" in lines
    assert "  selection_flags: matched" in lines
    assert "  selection_process: matched" in lines
    assert ("    + CommandLine|contains|windash ' -ma ': matched: "
            "\u202632\\cmd.exe\" /c \"procdump.exe -accepteula\u00ab -ma \u00bblsass.exe lsass_dump.dmp\"") in lines
    assert "    - CommandLine|contains|windash ' -mm ': no match" in lines
    assert ("    + CommandLine|contains ' ls': matched: "
            "\u2026md.exe\" /c \"procdump.exe -accepteula -ma\u00ab ls\u00bbass.exe lsass_dump.dmp\"") in lines
    assert "    - CommandLine|contains ' samss': no match" in lines


def test_explain_non_match_names_near_miss(lsass_rule):
    explanation = explain(lsass_rule, {"CommandLine": TAB_SEPARATED})
    lines = format_text(explanation).splitlines()

    assert not explanation.matched
    assert lines[0].endswith(": no match")
    assert "  selection_flags: no match" in lines
    assert "    - CommandLine|contains|windash ' -ma ': no match, near miss: U+0009 TAB stands where the value has a space" in lines
    assert "  selection_process: matched" in lines
    assert "    + CommandLine|contains ' ls': matched: procdump.exe\u2409-ma\u00ab ls\u00bbass.exe C:\\Temp\\l.dmp" in lines


def test_explain_span_after_case_folding(lsass_rule):
    explanation = explain(lsass_rule, {"CommandLine": "Stra\u00dfe PROCDUMP \u2014MA KEYISO"})
    flags, process = explanation.selections
    ma = flags.values[0]
    keyiso = process.values[1]

    assert explanation.matched
    assert ma.span == (15, 20)
    assert ma.text[ma.span[0]:ma.span[1]] == " \u2014MA "
    assert keyiso.text[keyiso.span[0]:keyiso.span[1]] == " KEYISO"


def test_explain_near_misses_by_kind(lsass_rule):
    cases = {
        "procdump.exe \u2010ma lsass.exe": "U+2010 HYPHEN is not one of the windash characters",
        "procdump.exe -accepteula lsass.exe -ma": "the value needs a space after it, but it ends the field",
        'procdump.exe "-ma" lsass.exe': "quotes around the word keep the space from touching it",
        "cmd /c procdump -^ma lsass.exe": "cmd.exe escape carets (^) split the value",
    }
    for command_line, reason in cases.items():
        flags = explain(lsass_rule, {"CommandLine": command_line}).selections[0]
        reasons = [miss.reason for _, miss in flags.near]
        assert any(reason in found for found in reasons), (command_line, reasons)


def test_explain_missing_field(lsass_rule):
    text = format_text(explain(lsass_rule, {"Image": "C:\\x\\procdump.exe"}))

    assert "    - CommandLine|contains|windash ' -ma ': no match (the event has no CommandLine)" in text


def test_explain_json_has_spans(lsass_rule):
    data = as_dict(explain(lsass_rule, {"CommandLine": TRUE_POSITIVE}))
    value = data["selections"][0]["values"][0]

    assert data["matched"] is True
    assert value["key"] == "CommandLine|contains|windash"
    assert value["value"] == " -ma "
    assert value["span"] == [58, 63]
    assert data["selections"][1]["values"][2]["matched"] is False


def test_explain_command_exit_codes(capsys):
    matched = run_command(["explain", str(LSASS_RULE), "--command-line", TRUE_POSITIVE])
    out = capsys.readouterr().out
    missed = run_command(["explain", str(LSASS_RULE), "--command-line", TAB_SEPARATED])

    assert matched == 0
    assert "MATCH" in out
    assert missed == 1


def test_explain_command_reads_documents(capsys):
    document = {"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"},
                          "EventData": {"CommandLine": "procdump -ma lsass.exe", "Image": "C:\\x\\procdump.exe"}}}
    code = run_command(["explain", str(LSASS_RULE), "--event", json.dumps(document), "--format", "json"])
    data = json.loads(capsys.readouterr().out)

    assert code == 0
    assert data[0]["event"]["CommandLine"] == "procdump -ma lsass.exe"


def test_explain_command_rejects_bad_json(capsys):
    code = run_command(["explain", str(LSASS_RULE), "--event", "{not json"])

    assert code == 2
    assert "--event is not valid JSON" in capsys.readouterr().err


def test_explain_respects_the_logsource(capsys):
    from core.portability.cli import register
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    document = ('{"Event":{"System":{"EventID":11,"Channel":"Microsoft-Windows-Sysmon/Operational"},'
                '"EventData":{"CommandLine":"procdump -ma lsass.exe"}}}')
    args = parser.parse_args(["explain", "--event", document])
    code = args.func(args)
    out = capsys.readouterr().out
    assert code == 1
    assert "NO MATCH: the rule reads category process_creation, product windows events, and this event is file_event" in out
    assert "MATCH\n" not in out.replace("NO MATCH", "")
