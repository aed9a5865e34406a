"""``| lsassdump`` driven through protocol v2 frames in a subprocess, as splunkd drives it."""

import json
from typing import Any, Dict, List

import pytest

from splunkd_stub import CommandProcess, encode_frame, encode_records, getinfo_metadata
from splunk_support import command_environment

RULE_ID = "5afee48e-67dd-4e03-a783-f74259dcf998"
EVASION_RULE_ID = "1bea4d11-be6c-48bd-92de-aa3486bbfeeb"
# Most tests pin the LSASS rule, so that other bundled rules do not change what they check.
LSASS = f"rule={RULE_ID}"
DUMP = "procdump.exe -accepteula -ma lsass.exe C:\\dumps\\l.dmp"
BENIGN = "C:\\Windows\\System32\\notepad.exe C:\\notes.txt"
OUTPUT_FIELDS = ("sigma_rule_id", "sigma_title", "sigma_level", "sigma_tags", "mitre_technique_id", "sigma_matched")


def sysmon(command_line: Any, **extra: Any) -> Dict[str, Any]:
    record = {"_time": "1700000000", "host": "ws01", "EventCode": "1", "CommandLine": command_line}
    record.update(extra)
    return record


def by_index(records: List[Dict[str, Any]]) -> Dict[int, Dict[str, Any]]:
    return {int(record["_chunked_idx"]): record for record in records}


def test_getinfo_reply_declares_streaming(run_lsassdump):
    info, replies, status, stderr = run_lsassdump([], [[]])

    assert status == 0, stderr
    assert info.metadata["type"] == "streaming"
    required = info.metadata["required_fields"]
    for name in ("CommandLine", "Process_Command_Line", "NewProcessName", "process", "EventCode"):
        assert name in required
    assert "ERROR" not in [level for level, _text in info.messages]


def test_getinfo_narrows_fields_with_mapping(run_lsassdump):
    info, _replies, status, stderr = run_lsassdump(["mapping=security_text"], [[]])

    assert status == 0, stderr
    assert "Process_Command_Line" in info.metadata["required_fields"]
    assert "process" not in info.metadata["required_fields"]


def test_filter_mode_passes_only_matches(run_lsassdump):
    records = [sysmon(BENIGN), sysmon(DUMP), sysmon("procdump.exe -ma notepad.exe")]
    _info, replies, status, stderr = run_lsassdump(["mode=filter", LSASS], [records])

    assert status == 0, stderr
    out = replies[0].records
    assert [record["_chunked_idx"] for record in out] == ["1"]
    assert out[0]["sigma_rule_id"] == RULE_ID
    assert out[0]["sigma_title"] == "Potential LSASS Process Dump Via Procdump"
    assert out[0]["sigma_level"] == "high"
    assert out[0]["sigma_tags"] == ["attack.stealth", "attack.t1036", "attack.credential-access",
                                    "attack.t1003.001", "car.2013-05-009"]
    assert out[0]["mitre_technique_id"] == ["T1036", "T1003.001"]
    assert out[0]["sigma_matched"] == ["selection_flags", "selection_process"]
    assert out[0]["CommandLine"] == DUMP


def test_default_mode_is_filter(run_lsassdump):
    _info, replies, status, stderr = run_lsassdump([], [[sysmon(BENIGN), sysmon(DUMP)]])

    assert status == 0, stderr
    assert [record["_chunked_idx"] for record in replies[0].records] == ["1"]


def test_annotate_mode_passes_every_record(run_lsassdump):
    records = [sysmon(BENIGN), sysmon(DUMP), sysmon(BENIGN, Image="C:\\x.exe")]
    _info, replies, status, stderr = run_lsassdump(["mode=annotate", LSASS], [records])

    assert status == 0, stderr
    out = by_index(replies[0].records)
    assert sorted(out) == [0, 1, 2]
    assert out[1]["sigma_rule_id"] == RULE_ID
    for index in (0, 2):
        for name in OUTPUT_FIELDS:
            assert name not in out[index]
    assert out[2]["Image"] == "C:\\x.exe"


def test_many_records_over_several_chunks(run_lsassdump):
    total = 120_000
    records = [sysmon(DUMP if index % 1000 == 7 else f"{BENIGN} {index}") for index in range(total)]
    chunks = [records[0:50_000], records[50_000:100_000], records[100_000:], []]
    _info, replies, status, stderr = run_lsassdump(["mode=annotate", LSASS], chunks)

    assert status == 0, stderr
    assert len(replies) == 4
    assert [reply.metadata.get("finished") for reply in replies] == [False, False, False, True]
    counts = [len(reply.records) for reply in replies]
    assert counts == [50_000, 50_000, 20_000, 0]
    matched = [int(record["_chunked_idx"]) for reply in replies for record in reply.records
               if record.get("sigma_rule_id") == RULE_ID]
    assert matched == [index for index in range(total) if index % 1000 == 7]


def test_filter_mode_over_several_chunks(run_lsassdump):
    records = [sysmon(DUMP if index % 500 == 0 else BENIGN) for index in range(60_000)]
    _info, replies, status, stderr = run_lsassdump([LSASS], [records[:50_000], records[50_000:]])

    assert status == 0, stderr
    assert [len(reply.records) for reply in replies] == [100, 20]


def test_multivalue_fields(run_lsassdump):
    records = [
        sysmon([BENIGN, DUMP], Tag=["a$b", "c"]),
        sysmon(["procdump.exe -ma", "x lsass"]),
        sysmon(BENIGN, Tag=["one", "two", "three"]),
    ]
    _info, replies, status, stderr = run_lsassdump(["mode=annotate", LSASS], [records])

    assert status == 0, stderr
    out = by_index(replies[0].records)
    assert out[0]["sigma_rule_id"] == RULE_ID
    assert out[0]["Tag"] == ["a$b", "c"]
    assert out[0]["CommandLine"] == [BENIGN, DUMP]
    # Each value of a multivalue field is matched on its own, so flags in one value and the process
    # marker in another do not add up to a match.
    assert "sigma_rule_id" not in out[1]
    assert out[2]["Tag"] == ["one", "two", "three"]


def test_records_with_different_fields(run_lsassdump):
    first = [{"EventCode": "1", "host": "a", "Image": "C:\\a.exe"}, {"CommandLine": DUMP, "User": "bob"}]
    second = [{"Process_Command_Line": DUMP, "EventCode": "4688"}, {"process": DUMP}, {"other": "x"}]
    _info, replies, status, stderr = run_lsassdump(["mode=annotate", LSASS], [first, second])

    assert status == 0, stderr
    one = by_index(replies[0].records)
    assert "sigma_rule_id" not in one[0]
    assert one[0]["Image"] == "C:\\a.exe"
    assert one[1]["sigma_rule_id"] == RULE_ID
    assert one[1]["User"] == "bob"
    two = by_index(replies[1].records)
    assert two[2]["sigma_rule_id"] == RULE_ID
    assert two[3]["sigma_rule_id"] == RULE_ID
    assert "sigma_rule_id" not in two[4]


def test_first_record_unmatched_keeps_output_columns(run_lsassdump):
    _info, replies, status, stderr = run_lsassdump(["mode=annotate"], [[sysmon(BENIGN), sysmon(DUMP)]])

    assert status == 0, stderr
    header = replies[0].body.decode("utf-8").splitlines()[0].split(",")
    for name in OUTPUT_FIELDS:
        assert name in header
        assert "__mv_" + name in header


def test_empty_final_chunk(run_lsassdump):
    _info, replies, status, stderr = run_lsassdump([], [[sysmon(DUMP)], []])

    assert status == 0, stderr
    assert replies[-1].metadata == {"finished": True}
    assert replies[-1].body == b""


@pytest.mark.parametrize("dash", ["-", "/", "\u2013", "\u2014", "\u2015"], ids=["hyphen", "slash", "en", "em", "bar"])
def test_windash_forms_match(run_lsassdump, dash):
    line = f"C:\\Tools\\procdump64.exe {dash}ma lsass.exe C:\\Users\\J\u00fcrgen\\\u30c0\u30f3\u30d7.dmp"
    _info, replies, status, stderr = run_lsassdump([], [[sysmon(line)]])

    assert status == 0, stderr
    out = replies[0].records
    assert len(out) == 1
    assert out[0]["CommandLine"] == line


@pytest.mark.parametrize("dash", ["\u2212", "\u2010", "\uff0d"], ids=["minus", "hyphen-u2010", "fullwidth"])
def test_other_dashes_do_not_match(run_lsassdump, dash):
    _info, replies, status, stderr = run_lsassdump([LSASS], [[sysmon(f"procdump.exe {dash}ma lsass.exe")]])

    assert status == 0, stderr
    assert replies[0].records == []


@pytest.mark.parametrize("dash", ["\u2212", "\u2010", "\uff0d"], ids=["minus", "hyphen-u2010", "fullwidth"])
def test_evasion_rule_catches_other_dashes(run_lsassdump, dash):
    _info, replies, status, stderr = run_lsassdump([], [[sysmon(f"procdump.exe {dash}ma lsass.exe")]])

    assert status == 0, stderr
    assert [record["sigma_rule_id"] for record in replies[0].records] == [EVASION_RULE_ID]


def test_several_rules_match_one_event(run_lsassdump):
    _info, replies, status, stderr = run_lsassdump([], [[sysmon(DUMP)]])

    assert status == 0, stderr
    record = replies[0].records[0]
    assert record["sigma_rule_id"] == [EVASION_RULE_ID, RULE_ID]
    assert len(record["sigma_title"]) == 2
    assert record["sigma_level"] == ["high", "high"]
    assert f"{RULE_ID}:selection_flags" in record["sigma_matched"]
    assert f"{EVASION_RULE_ID}:selection_target" in record["sigma_matched"]
    assert record["mitre_technique_id"].count("T1003.001") == 1


def test_multibyte_text_frames_count_bytes(built_app, interpreter, tmp_path):
    text = "\u2014ma \u00e9\u00e8 \U0001f600 \u65e5\u672c\u8a9e"
    records = [sysmon(f"procdump.exe {text} lsass.exe"), sysmon(f"x \u2015mp lsass \u00df" * 50)]
    body = encode_records(records)
    assert len(body) > len(body.decode("utf-8"))

    command = CommandProcess([interpreter, str(built_app.script)], cwd=str(tmp_path), env=command_environment())
    try:
        command.getinfo(["mode=annotate"], str(tmp_path))
        command.send({"action": "execute", "finished": True}, body)
        assert command.process.stdout is not None
        header = command.process.stdout.readline()
        meta_length, body_length = [int(part) for part in header.decode("ascii").strip().split(",")[1:]]
        meta = command.process.stdout.read(meta_length)
        reply_body = command.process.stdout.read(body_length)
        assert json.loads(meta.decode("utf-8")) == {"finished": True}
        assert reply_body.decode("utf-8").count("\u2014ma") == 1
        status = command.close()
        assert command.process.stdout.read() == b""
    finally:
        command.kill()
    assert status == 0, command.stderr()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["mode=fast"], 'mode="fast" is not valid'),
        (["mapping=splunk"], 'mapping="splunk" is not valid'),
        (["rule=no-such-rule"], 'rule="no-such-rule" matches no bundled rule'),
        (["colour=red"], 'unknown argument "colour=red"'),
        (["CommandLine"], 'unknown argument "CommandLine"'),
        (["field="], "field= is empty"),
    ],
    ids=["mode", "mapping", "rule", "unknown-option", "positional", "empty-field"],
)
def test_bad_option_reports_error(built_app, interpreter, tmp_path, args, expected):
    command = CommandProcess([interpreter, str(built_app.script)], cwd=str(tmp_path), env=command_environment())
    try:
        info = command.getinfo(args, str(tmp_path))
        trailing = command.receive()
        status = command.close()
    finally:
        command.kill()

    errors = [text for level, text in info.messages if level == "ERROR"]
    assert len(errors) == 1, info.metadata
    assert expected in errors[0]
    assert status == 1
    assert trailing is None or trailing.metadata.get("finished") is True


def test_bad_option_message_says_how_to_fix(built_app, interpreter, tmp_path):
    command = CommandProcess([interpreter, str(built_app.script)], cwd=str(tmp_path), env=command_environment())
    try:
        info = command.getinfo(["mode=fast"], str(tmp_path))
        command.close()
    finally:
        command.kill()

    message = info.messages[0][1]
    assert "mode=filter" in message
    assert "mode=annotate" in message


def test_missing_and_odd_fields_pass_unmatched(run_lsassdump):
    records = [
        {"EventCode": "1", "host": "no-command-line"},
        sysmon(""),
        sysmon(None),
        sysmon("\x00\x01 -ma \r\n lsass"),
        sysmon("A" * 200_000),
        sysmon(DUMP, EventCode=["1", "1"]),
        sysmon(DUMP, EventCode="not-a-number"),
        {"CommandLine": DUMP, "EventCode": ""},
    ]
    _info, replies, status, stderr = run_lsassdump(["mode=annotate", LSASS], [records])

    assert status == 0, stderr
    out = by_index(replies[0].records)
    assert sorted(out) == list(range(len(records)))
    for index in (0, 1, 2, 4, 6):
        assert "sigma_rule_id" not in out[index], index
    assert out[5]["sigma_rule_id"] == RULE_ID
    assert out[7]["sigma_rule_id"] == RULE_ID
    assert out[4]["CommandLine"] == "A" * 200_000


def test_non_process_event_codes_do_not_match(run_lsassdump):
    records = [sysmon(DUMP, EventCode="10"), {"Process_Command_Line": DUMP, "EventCode": "4689"}]
    _info, replies, status, stderr = run_lsassdump([], [records])

    assert status == 0, stderr
    assert replies[0].records == []


@pytest.mark.parametrize(
    "mapping, record, matches",
    [
        ("auto", {"Process_Command_Line": DUMP, "New_Process_Name": "C:\\procdump.exe", "EventCode": "4688"}, True),
        ("security_text", {"Process_Command_Line": DUMP, "EventCode": "4688"}, True),
        ("security_xml", {"CommandLine": DUMP, "NewProcessName": "C:\\procdump.exe", "EventCode": "4688"}, True),
        ("auto", {"CommandLine": DUMP, "NewProcessName": "C:\\procdump.exe", "EventCode": "4688"}, True),
        ("cim", {"process": DUMP}, True),
        ("auto", {"Processes.process": DUMP, "Processes.process_path": "C:\\procdump.exe"}, True),
        ("sysmon", {"Process_Command_Line": DUMP}, False),
        ("cim", {"CommandLine": DUMP}, False),
    ],
    ids=["auto-4688-text", "text", "xml", "auto-4688-xml", "cim", "auto-cim-tstats", "sysmon-wrong", "cim-wrong"],
)
def test_mappings(run_lsassdump, mapping, record, matches):
    _info, replies, status, stderr = run_lsassdump([f"mapping={mapping}"], [[record]])

    assert status == 0, stderr
    assert len(replies[0].records) == (1 if matches else 0)


def test_field_option_names_the_command_line(run_lsassdump):
    records = [{"cmd": DUMP}, {"cmd": BENIGN, "CommandLine": DUMP}]
    _info, replies, status, stderr = run_lsassdump(["field=cmd"], [records])

    assert status == 0, stderr
    assert [record["_chunked_idx"] for record in replies[0].records] == ["0"]


@pytest.mark.parametrize("selector", [RULE_ID, RULE_ID.upper(), "*lsass*", "Procdump", "potential lsass*",
                                      '"*LSASS*"'])
def test_rule_option_selects(run_lsassdump, selector):
    _info, replies, status, stderr = run_lsassdump([f"rule={selector}"], [[sysmon(DUMP)]])

    assert status == 0, stderr
    assert len(replies[0].records) == 1


def test_runs_without_site_packages(run_lsassdump):
    # -S leaves out site-packages, so the command can only use the standard library and the app's lib/:
    # no YAML parser and no splunk-sdk from the machine.
    _info, replies, status, stderr = run_lsassdump([], [[sysmon(DUMP)]], extra_flags=["-S"])

    assert status == 0, stderr
    assert len(replies[0].records) == 1


def test_frame_for_getinfo_is_well_formed():
    frame = encode_frame(getinfo_metadata(["mode=annotate"], "/tmp/d"))
    header, rest = frame.split(b"\n", 1)
    assert header.startswith(b"chunked 1.0,")
    assert int(header.split(b",")[1]) == len(rest)
