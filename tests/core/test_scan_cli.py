"""``lsassdump scan`` end to end: bundled sample, formats, exit codes, bad input, the shared corpus."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.core.helpers import shared_data

REPO = Path(__file__).resolve().parents[2]
LSASS_ID = "5afee48e-67dd-4e03-a783-f74259dcf998"
LSASS_RULE = str(REPO / "rules" / "proc_creation_win_sysinternals_procdump_lsass.yml")


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def jsonl_alerts(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_bundled_sample_table(capsys):
    code, out, err = run(["scan", "--no-progress"], capsys)
    assert code == 1
    assert "no PATH given, scanning the bundled sample" in err
    assert f"Potential LSASS Process Dump Via Procdump ({LSASS_ID})" in out
    assert out.count(f"({LSASS_ID})") == 5
    assert "events   19" in out
    assert "process_creation" in out


def test_bundled_sample_jsonl(capsys):
    code, out, err = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE], capsys)
    alerts = jsonl_alerts(out)
    assert code == 1
    assert len(alerts) == 5
    first = alerts[0]
    assert first["rule_id"] == LSASS_ID
    assert first["level"] == "high"
    assert first["attack_techniques"] == ["T1036", "T1003.001"]
    assert "attack.credential-access" in first["tags"]
    assert first["matched_selections"] == ["selection_flags", "selection_process"]
    assert first["host"] == "WKS-0142.corp.example"
    assert first["image"] == r"C:\Tools\procdump.exe"
    assert first["command_line"] == r"procdump.exe -accepteula -ma lsass.exe C:\Windows\Temp\o.dmp"
    assert first["time"].startswith("2026-11-20T09:01:00")
    assert first["source"].endswith("sample_sysmon.jsonl")
    assert first["record"] == 1
    # The summary goes to standard error, so that standard output stays JSON Lines.
    assert "alerts   5" in err


def test_no_alert_exit_zero(tmp_path, capsys):
    events = tmp_path / "benign.jsonl"
    events.write_text(json.dumps({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
                                  "CommandLine": "notepad.exe"}) + "\n", encoding="utf-8")
    code, out, _ = run(["scan", str(events)], capsys)
    assert code == 0
    assert "alerts   0" in out


def test_missing_path_reported(tmp_path, capsys):
    code, _, err = run(["scan", str(tmp_path / "absent.evtx")], capsys)
    assert code == 2
    assert f"{tmp_path / 'absent.evtx'}: no such file or folder" in err


def test_bad_rule_reported_with_location(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("title: Bad\nlogsource:\n    category: process_creation\ndetection:\n"
                   "    sel:\n        CommandLine|contians: x\n    condition: sel\n", encoding="utf-8")
    code, _, err = run(["scan", "--rules", str(bad)], capsys)
    assert code == 2
    assert f"rule skipped: {bad}:6:9: unknown value modifier 'contians' (did you mean 'contains'?)" in err
    assert "Traceback" not in err


def test_scan_survives_bad_lines(tmp_path, capsys):
    good = {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "CommandLine": r"procdump.exe -accepteula -ma lsass.exe C:\o.dmp"}
    path = tmp_path / "mixed.jsonl"
    with open(path, "wb") as handle:
        handle.write(json.dumps(good).encode() + b"\n")
        handle.write(b'{"EventID": 1, "CommandLine": "trunc\n')
        handle.write(b'{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "CommandLine": "\xff\xfe -ma lsass"}\n')
        handle.write(json.dumps({**good, "CommandLine": ["a", None, 5]}).encode() + b"\n")
        handle.write(json.dumps({**good, "CommandLine": None}).encode() + b"\n")
        handle.write(json.dumps({**good, "CommandLine": 12345}).encode() + b"\n")
        handle.write(json.dumps({**good, "CommandLine": "x" * 100_000 + " -ma lsass"}).encode() + b"\n")
        handle.write(json.dumps(good).encode() + b"\n")
    code, out, err = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE, str(path)], capsys)
    alerts = jsonl_alerts(out)
    assert code == 1
    assert [alert["record"] for alert in alerts] == [1, 3, 7, 8]
    assert f"{path}: record 2" in err
    assert f"{path}: record 3" in err
    assert "Traceback" not in err


def test_standard_input(capsys, monkeypatch):
    import io

    line = json.dumps({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
                       "CommandLine": "procdump -accepteula -mp keyiso x"}) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(line.encode())))
    code, out, _ = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE, "-"], capsys)
    alerts = jsonl_alerts(out)
    assert code == 1
    assert alerts[0]["source"] == "-"


def test_corrupt_evtx_reported_and_scan_goes_on(capsys):
    folder = shared_data() / "omerbenamram-evtx"
    if not folder.is_dir():
        pytest.skip("shared data not found")
    code, out, err = run(["scan", "--no-progress", str(folder)], capsys)
    assert code == 3
    assert "sample_with_a_bad_chunk_magic.evtx" in err or "sysmon.evtx" in err
    assert "files    4" in out
    assert "Traceback" not in err


def test_console_script_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "core", "scan", "--format", "jsonl", "--rules", LSASS_RULE],
                            cwd=str(REPO),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert len(jsonl_alerts(result.stdout)) == 5


@pytest.mark.slow
def test_shared_corpus_raises_exactly_the_three_expected_alerts(capsys):
    data = shared_data()
    if not data.is_dir():
        pytest.skip("shared data not found")
    code, out, err = run(["scan", "--format", "jsonl", "--quiet", "--rules", LSASS_RULE, str(data)], capsys)
    alerts = jsonl_alerts(out)
    found = sorted((str(Path(alert["source"]).relative_to(data)), alert["command_line"]) for alert in alerts)
    wrapped = '"C:\\Windows\\system32\\cmd.exe" /c "procdump.exe -accepteula -ma lsass.exe lsass_dump.dmp"'
    assert code == 1
    assert len(found) == 3
    assert found[0] == ("derived/xml/PanacheSysmon_vs_AtomicRedTeam01.xml", wrapped)
    assert found[1] == ("evtx-attack-samples/AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx", wrapped)
    assert found[2][0].startswith("sigmahq-sigma/index-only/")
    assert "process_creation" in err
    # Per-logsource counts in the summary include the 5,950 process-creation events.
    assert "process_creation             5950" in err


def test_scan_survives_deep_nesting(tmp_path, capsys):
    good = json.dumps({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
                       "CommandLine": "procdump -accepteula -ma lsass.exe x"})
    path = tmp_path / "deep.jsonl"
    path.write_text(good + "\n" + '{"a":' * 3000 + "1" + "}" * 3000 + "\n" + good + "\n", encoding="utf-8")
    code, out, err = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE, str(path)], capsys)
    assert code == 1
    assert [alert["record"] for alert in jsonl_alerts(out)] == [1, 3]
    assert f"{path}: record 2: JSON document nested too deeply" in err
    assert "Traceback" not in err


def test_blank_lines_before_the_first_event(tmp_path, capsys):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n" * 5000 + json.dumps({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
                                              "CommandLine": "procdump -accepteula -ma lsass.exe x"}) + "\n",
                    encoding="utf-8")
    code, out, _ = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE, str(path)], capsys)
    assert code == 1
    assert len(jsonl_alerts(out)) == 1


def test_closed_pipe_exit_code(tmp_path):
    big = tmp_path / "many.jsonl"
    line = (REPO / "core" / "sample" / "sample_sysmon.jsonl").read_text(encoding="utf-8")
    big.write_text(line * 400, encoding="utf-8")
    script = (f"{sys.executable} -m core scan --format jsonl --rules {LSASS_RULE} {big} "
              "| head -c 1 >/dev/null; echo ${PIPESTATUS[0]}")
    result = subprocess.run(["bash", "-c", script], cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "141"
    assert "Traceback" not in result.stderr


def test_unwritable_output_folder_is_a_clean_error(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x", encoding="utf-8")
    code, _, err = run(["build", "splunk-app", "--out", str(blocker / "sub")], capsys)
    assert code == 2
    assert "Traceback" not in err
    assert str(blocker) in err


def test_splunk_csv_with_extracted_fields_only(tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text(
        "_time,host,source,sourcetype,EventCode,CommandLine\n"
        "2026-12-04T10:00:00Z,WKS1,XmlWinEventLog:Microsoft-Windows-Sysmon/Operational,XmlWinEventLog,1,"
        "procdump.exe -accepteula -ma lsass.exe x.dmp\n"
        "2026-12-04T10:00:01Z,WKS1,WinEventLog:Security,WinEventLog:Security,4688,"
        "procdump.exe -accepteula -mm keyiso y.dmp\n"
        "2026-12-04T10:00:02Z,WKS1,XmlWinEventLog:Security,XmlWinEventLog,4624,"
        "procdump.exe -accepteula -ma lsass.exe z.dmp\n", encoding="utf-8")
    code, out, err = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE, str(path)], capsys)
    assert code == 1
    assert [alert["record"] for alert in jsonl_alerts(out)] == [2, 3]
    assert "process_creation             2" in err


def test_ecs_process_start_without_channel(tmp_path, capsys):
    path = tmp_path / "defend.jsonl"
    path.write_text(json.dumps({"@timestamp": "2026-12-04T21:00:00Z",
                                "event": {"category": ["process"], "type": ["start"], "module": "endpoint"},
                                "process": {"command_line": "procdump.exe -accepteula -ma lsass.exe x.dmp"}})
                    + "\n" + json.dumps({"event": {"category": ["process"], "type": ["end"]},
                                         "process": {"command_line": "procdump.exe -accepteula -ma lsass.exe"}})
                    + "\n", encoding="utf-8")
    code, out, err = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE, str(path)], capsys)
    assert code == 1
    assert [alert["record"] for alert in jsonl_alerts(out)] == [1]


def test_duplicate_rule_id_loads_once(tmp_path, capsys):
    copy = tmp_path / "copy.yml"
    copy.write_text(Path(LSASS_RULE).read_text(encoding="utf-8"), encoding="utf-8")
    sample = str(REPO / "core" / "sample" / "sample_sysmon.jsonl")
    code, out, err = run(["scan", "--format", "jsonl", "--rules", LSASS_RULE, "--rules", str(copy), sample], capsys)
    assert code == 1
    assert len(jsonl_alerts(out)) == 5
    assert f"rule skipped: {copy}: rule id {LSASS_ID} is already used by {LSASS_RULE}" in err


def test_check_without_rule_files(tmp_path, capsys):
    code, _, err = run(["check", str(tmp_path)], capsys)
    assert code == 2
    assert "no rule file (.yml or .yaml) found" in err


def test_fifo_gets_a_hint(tmp_path, capsys):
    import os
    import threading

    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    line = (REPO / "core" / "sample" / "sample_sysmon.jsonl").read_text(encoding="utf-8")
    writer = threading.Thread(target=lambda: fifo.write_text(line, encoding="utf-8"), daemon=True)
    writer.start()
    code, _, err = run(["scan", "--rules", LSASS_RULE, str(fifo)], capsys)
    writer.join(timeout=10)
    assert code == 3
    assert "pipe it to standard input instead (lsassdump scan -)" in err
