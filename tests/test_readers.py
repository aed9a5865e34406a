"""Tests of the event readers and the logsource table, on the shared corpus and on small bad files.

The corpus counts come from the shared data's own description of its 747 files. That description
counted each EVTX file up to its first parse error. The readers read on past such errors, which
adds 589 events from two deliberately damaged files, and both totals are checked.
"""

import io
import json
import os
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import pytest

from core.events import Event, LogSource, ReadProblem
from core.logsources import classify, logsource_for
from core.readers import iter_event_files, read_events, sniff_format
from core.readers.builder import MAX_COMMAND_LINE_CHARS, new_event
from core.readers.evtxfile import compact_record_fields, parser_unavailable
from core.readers.shapes import evtx_event_fields

Item = Union[Event, ReadProblem]

# Tests that read EVTX need evtx 0.14 or later, which needs Python 3.10 or later.
needs_evtx = pytest.mark.skipif(parser_unavailable() is not None, reason=parser_unavailable() or "")

# Per source folder: files, events up to each file's first problem, process-creation events.
FOLDERS = {
    "derived": (1, 565, 511),
    "elastic-beats": (1, 1, 1),
    "evtx-attack-samples": (150, 3076, 1527),
    "hayabusa-sample-evtx": (85, 4606, 548),
    "omerbenamram-evtx": (4, 2635, 227),
    "otrf-security-datasets": (99, 9107, 2832),
    "sigmahq-sigma": (407, 478, 304),
}
TOTAL_EVENTS_TO_FIRST_PROBLEM = 20468
PROCESS_CREATION_EVENTS = 5950
# Records the EVTX parser delivers after a damaged chunk or record, which a count that stops at
# the first error misses: (events in all, events before the first problem, problems).
DAMAGED_EVTX = {
    "omerbenamram-evtx/samples/sysmon.evtx": (358, 358, 8),
    "omerbenamram-evtx/samples/sample_with_a_bad_chunk_magic.evtx": (270, 14, 2),
    "omerbenamram-evtx/samples/sample-with-zero-data-size-event.evtx": (335, 2, 1),
}
RECOVERED_EVENTS = sum(total - before for total, before, _ in DAMAGED_EVTX.values())
MANIFEST = "sigmahq-sigma/regression_tests_manifest.csv"

# Every process-creation event whose CommandLine or Image mentions procdump, lsass, keyiso or samss:
# (file, EventID, Image, CommandLine), in reading order.
RELATED: List[Tuple[str, int, str, Any]] = [
    ("derived/xml/PanacheSysmon_vs_AtomicRedTeam01.xml", 1, "C:\\Windows\\System32\\cmd.exe",
     "\"C:\\Windows\\system32\\cmd.exe\" /c \"procdump.exe -accepteula -ma lsass.exe lsass_dump.dmp\""),
    ("evtx-attack-samples/AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx", 1,
     "C:\\Windows\\System32\\cmd.exe",
     "\"C:\\Windows\\system32\\cmd.exe\" /c \"procdump.exe -accepteula -ma lsass.exe lsass_dump.dmp\""),
    ("evtx-attack-samples/Credential Access/tutto_malseclogon.evtx", 4688, "C:\\Windows\\System32\\lsass.exe", ""),
    ("evtx-attack-samples/Persistence/persistence_sysmon_11_13_1_shime_appfix.evtx", 1,
     "C:\\Windows\\System32\\lsass.exe", "C:\\Windows\\system32\\lsass.exe"),
    ("evtx-attack-samples/Persistence/persistence_sysmon_11_13_1_shime_appfix.evtx", 1,
     "C:\\Windows\\System32\\lsass.exe", "C:\\Windows\\system32\\lsass.exe"),
    ("evtx-attack-samples/Privilege Escalation/privesc_unquoted_svc_sysmon_1_11.evtx", 1,
     "C:\\Windows\\System32\\lsass.exe", "C:\\Windows\\system32\\lsass.exe"),
    ("otrf-security-datasets/atomic/credential_access/psh_lsass_memory_dump_comsvcs_2020-10-18T19500924.jsonl",
     4688, "C:\\Windows\\System32\\rundll32.exe",
     "\"C:\\Windows\\System32\\rundll32.exe\" C:\\windows\\System32\\comsvcs.dll MiniDump 756 "
     "C:\\Users\\wardog\\AppData\\Local\\Temp\\lsass-comsvcs.dmp full"),
    ("otrf-security-datasets/atomic/credential_access/psh_lsass_memory_dump_comsvcs_2020-10-18T19500924.jsonl",
     1, "C:\\Windows\\System32\\rundll32.exe",
     "\"C:\\Windows\\System32\\rundll32.exe\" C:\\windows\\System32\\comsvcs.dll MiniDump 756 "
     "C:\\Users\\wardog\\AppData\\Local\\Temp\\lsass-comsvcs.dmp full"),
    ("otrf-security-datasets/atomic/persistence/"
     "empire_persistence_registry_modification_run_keys_standard_user_2020-09-04030609.pc-only.jsonl",
     4688, "C:\\Windows\\System32\\lsass.exe", None),
    ("otrf-security-datasets/atomic/persistence/"
     "empire_persistence_registry_modification_run_keys_standard_user_2020-09-04030609.pc-only.jsonl",
     1, "C:\\Windows\\System32\\lsass.exe", "C:\\windows\\system32\\lsass.exe"),
    ("otrf-security-datasets/compound/LSASS_campaign_03/metasploit_comsvcs_lsass_memory_dump.pc-only.jsonl",
     4688, "C:\\Windows\\System32\\rundll32.exe",
     "\"C:\\Windows\\System32\\rundll32.exe\" C:\\windows\\System32\\comsvcs.dll MiniDump 628 "
     "C:\\Windows\\Temp\\lsass-comsvcs.dmp full"),
    ("otrf-security-datasets/compound/LSASS_campaign_03/metasploit_comsvcs_lsass_memory_dump.pc-only.jsonl",
     1, "C:\\Windows\\System32\\rundll32.exe",
     "\"C:\\Windows\\System32\\rundll32.exe\" C:\\windows\\System32\\comsvcs.dll MiniDump 628 "
     "C:\\Windows\\Temp\\lsass-comsvcs.dmp full"),
    ("sigmahq-sigma/index-only/regression_data/rules/windows/process_creation/"
     "proc_creation_win_sysinternals_procdump_lsass/5afee48e-67dd-4e03-a783-f74259dcf998.json", 1,
     "C:\\Windows\\System32\\cmd.exe",
     "\"cmd.exe\" /c \"C:\\AtomicRedTeam\\atomics\\..\\ExternalPayloads\\procdump.exe\" -accepteula -ma "
     "lsass.exe C:\\Windows\\Temp\\lsass_dump.dmp"),
    ("sigmahq-sigma/regression_data/rules/windows/process_creation/proc_creation_win_findstr_lsass/"
     "fe63010f-8823-4864-a96b-a7b4a0f7b929.evtx", 1, "C:\\Windows\\System32\\findstr.exe", "findstr  lsass "),
    ("sigmahq-sigma/regression_data/rules/windows/process_creation/proc_creation_win_findstr_lsass/"
     "fe63010f-8823-4864-a96b-a7b4a0f7b929.json", 1, "C:\\Windows\\System32\\findstr.exe", "findstr  lsass"),
]
RELATED_WORDS = ("procdump", "lsass", "keyiso", "samss")


class FileScan:
    """Counts and problems from reading one corpus file."""

    def __init__(self) -> None:
        self.events = 0
        self.events_before_problem = 0
        self.process_creation = 0
        self.problems: List[ReadProblem] = []
        self.shapes: Counter = Counter()


class CorpusScan:
    def __init__(self) -> None:
        self.files: Dict[str, FileScan] = {}
        self.related: List[Tuple[str, int, str, Any]] = []
        self.seconds = 0.0


def relative(path: Union[str, Path], root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


@pytest.fixture(scope="module")
def corpus(SHARED_DATA: Path) -> CorpusScan:
    scan = CorpusScan()
    started = time.perf_counter()
    for path in iter_event_files([str(SHARED_DATA)]):
        name = relative(path, SHARED_DATA)
        result = scan.files[name] = FileScan()
        for item in read_events(path):
            if isinstance(item, ReadProblem):
                result.problems.append(item)
                continue
            result.events += 1
            result.shapes[item.shape] += 1
            if not result.problems:
                result.events_before_problem += 1
            if "process_creation" not in item.logsource.categories:
                continue
            if not result.problems:
                result.process_creation += 1
            command_line = item.fields.get("CommandLine")
            image = item.fields.get("Image") or ""
            text = f"{command_line if isinstance(command_line, str) else ''} {image}".lower()
            if any(word in text for word in RELATED_WORDS):
                scan.related.append((name, item.fields["EventID"], image, command_line))
    scan.seconds = time.perf_counter() - started
    return scan


def read_all(path: Union[str, Path]) -> Tuple[List[Event], List[ReadProblem]]:
    events: List[Event] = []
    problems: List[ReadProblem] = []
    for item in read_events(str(path)):
        (problems if isinstance(item, ReadProblem) else events).append(item)
    return events, problems


def first_event(path: Path, **wanted: Any) -> Event:
    """Return the first event of a file whose fields have the wanted values."""
    for item in read_events(str(path)):
        if isinstance(item, Event) and all(item.fields.get(name) == value for name, value in wanted.items()):
            return item
    raise AssertionError(f"no event with {wanted} in {path}")


def count_events_with_peak_memory(path: Path) -> Tuple[int, int]:
    """Read a file and return its event count and the peak of memory allocated meanwhile, in bytes."""
    tracemalloc.start()
    try:
        count = sum(1 for item in read_events(str(path)) if isinstance(item, Event))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


# --- The shared corpus ------------------------------------------------------------------------

@needs_evtx
@pytest.mark.slow
def test_corpus_totals(corpus: CorpusScan) -> None:
    events_before_problem = sum(scan.events_before_problem for scan in corpus.files.values())
    events = sum(scan.events for scan in corpus.files.values())
    process_creation = sum(scan.process_creation for scan in corpus.files.values())

    assert len(corpus.files) == sum(files for files, _, _ in FOLDERS.values())
    assert events_before_problem == TOTAL_EVENTS_TO_FIRST_PROBLEM
    assert events == TOTAL_EVENTS_TO_FIRST_PROBLEM + RECOVERED_EVENTS
    assert RECOVERED_EVENTS == 589
    assert process_creation == PROCESS_CREATION_EVENTS


@needs_evtx
@pytest.mark.slow
@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_corpus_counts_per_folder(corpus: CorpusScan, folder: str) -> None:
    files, events, process_creation = FOLDERS[folder]
    scans = [scan for name, scan in corpus.files.items() if name.split("/")[0] == folder]

    assert len(scans) == files
    assert sum(scan.events_before_problem for scan in scans) == events
    assert sum(scan.process_creation for scan in scans) == process_creation


@needs_evtx
@pytest.mark.slow
def test_corpus_problems_only_in_damaged_files(corpus: CorpusScan) -> None:
    problem_counts = {name: len(scan.problems) for name, scan in corpus.files.items() if scan.problems}
    expected = {name: problems for name, (_, _, problems) in DAMAGED_EVTX.items()}
    expected[MANIFEST] = 1

    assert problem_counts == expected
    for name, (total, before, _) in DAMAGED_EVTX.items():
        assert corpus.files[name].events == total, name
        assert corpus.files[name].events_before_problem == before, name
    assert "not an event export" in corpus.files[MANIFEST].problems[0].message


@needs_evtx
@pytest.mark.slow
def test_corpus_related_command_lines_exact(corpus: CorpusScan) -> None:
    assert len(corpus.related) == 15
    for found, expected in zip(corpus.related, RELATED):
        assert found == expected


@needs_evtx
@pytest.mark.slow
def test_corpus_shapes(corpus: CorpusScan) -> None:
    shapes: Counter = Counter()
    for scan in corpus.files.values():
        shapes.update(scan.shapes)

    assert shapes == {"evtx": 11144, "flat": 8466, "event-xml": 565, "sentinel": 526, "evtx-json": 240,
                      "winlogbeat6": 115, "ecs": 1}


# --- Shapes -----------------------------------------------------------------------------------

def test_ecs_golden_document(SHARED_DATA: Path) -> None:
    path = (SHARED_DATA / "elastic-beats/x-pack/winlogbeat/module/sysmon/test/testdata/"
            "sysmon-12-processcreate.evtx.golden.json")
    events, problems = read_all(path)
    event = events[0]

    assert problems == []
    assert len(events) == 1
    assert event.shape == "ecs"
    assert event.fields["EventID"] == 1
    assert event.fields["CommandLine"] == "\"C:\\Windows\\system32\\notepad.exe\" "
    assert event.fields["Image"] == "C:\\Windows\\System32\\notepad.exe"
    assert event.fields["ParentImage"] == "C:\\Windows\\explorer.exe"
    assert event.fields["ParentCommandLine"] == "C:\\Windows\\Explorer.EXE"
    assert event.fields["User"] == "VAGRANT\\vagrant"
    assert event.fields["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert event.fields["IntegrityLevel"] == "Medium"
    assert event.fields["process.command_line"] == event.fields["CommandLine"]
    assert event.logsource == LogSource("windows", frozenset({"process_creation"}), frozenset({"sysmon"}))
    assert event.host == "vagrant"
    assert event.time == "2020-10-27T20:00:14.32Z"
    assert event.record == 2


def test_winlogbeat6_document(SHARED_DATA: Path) -> None:
    path = SHARED_DATA / "otrf-security-datasets/atomic/credential_access/empire_mimikatz_opth_2019-03-19131123.pc-only.jsonl"
    event = first_event(path, EventID=1)

    assert event.shape == "winlogbeat6"
    assert event.fields["CommandLine"] == "\"C:\\Windows\\system32\\whoami.exe\" /user"
    assert event.fields["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert event.fields["Provider_Name"] == "Microsoft-Windows-Sysmon"
    assert event.fields["Computer"] == "IT001.shire.com"
    assert event.fields["user.name"] == "SYSTEM"
    assert event.host == "IT001.shire.com"
    assert event.time == "2019-03-19T17:15:16.131Z"
    assert event.record == 1
    assert "process_creation" in event.logsource.categories


def test_flat_security_lowercase_channel(SHARED_DATA: Path) -> None:
    path = SHARED_DATA / "otrf-security-datasets/atomic/credential_access/empire_shell_reg_dump_sam_2020-09-22042823.pc-only.jsonl"
    event = first_event(path, EventID=4688)

    assert event.shape == "flat"
    assert event.fields["Channel"] == "security"
    assert event.logsource.services == frozenset({"security"})
    assert event.logsource.categories == frozenset({"process_creation"})
    assert event.fields["Image"] == event.fields["NewProcessName"]
    assert event.fields["ParentImage"] == event.fields["ParentProcessName"]
    assert event.fields["Computer"] == event.fields["Hostname"]
    assert event.host == event.fields["Hostname"]


def test_sentinel_security_event_and_windows_event(SHARED_DATA: Path) -> None:
    folder = SHARED_DATA / "otrf-security-datasets/compound/Log4Shell"
    security = folder / "securityauditing_log4shell_cve2021_44228_java_serialized_object_2022-05-13045400.jsonl"
    sysmon = folder / "sysmon_log4shell_cve2021_44228_java_serialized_object_2022-05-13045800.jsonl"

    created = first_event(security, EventID=4688)
    assert created.shape == "sentinel"
    assert created.fields["Image"] == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert created.fields["Provider_Name"] == "Microsoft-Windows-Security-Auditing"
    assert created.fields["CommandLine"].startswith("powershell.exe -NonI -W Hidden")
    assert created.time == "2022-05-13T08:54:08.42Z"
    assert created.host == "WORKSTATION5"

    connection = first_event(security, EventID=5156)
    assert connection.fields["Application"].endswith("tomcat9.exe")

    process = first_event(sysmon, EventID=1)
    assert process.fields["Image"] == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert process.fields["CommandLine"].startswith("powershell.exe -NonI -W Hidden")
    assert process.logsource.categories == frozenset({"process_creation"})


@needs_evtx
def test_evtx_security_4688_renames(SHARED_DATA: Path) -> None:
    event = first_event(SHARED_DATA / "evtx-attack-samples/Command and Control/DE_RDP_Tunnel_5156.evtx", EventID=4688)

    assert event.shape == "evtx"
    assert event.record == 3
    assert event.fields["EventRecordID"] == 227695
    assert event.fields["Image"] == event.fields["NewProcessName"] == "C:\\Windows\\System32\\TSTheme.exe"
    assert event.fields["Provider_Name"] == "Microsoft-Windows-Security-Auditing"
    assert event.time == "2019-02-13T18:01:47.562412Z"
    assert event.host == "PC01.example.corp"
    assert event.logsource.services == frozenset({"security"})


@needs_evtx
def test_evtx_user_data_and_qualified_event_id(SHARED_DATA: Path) -> None:
    cleared = first_event(SHARED_DATA / "evtx-attack-samples/Command and Control/DE_RDP_Tunnel_5156.evtx",
                          EventID=1102)
    qualified = first_event(SHARED_DATA / "omerbenamram-evtx/samples/sample-with-zero-data-size-event.evtx",
                            EventID=6011)

    assert cleared.fields["SubjectUserName"] == "admin01"
    assert qualified.fields["Data"] == ["DESKTOP-M7P1NB6", "WIN-UUNEEV45F79"]
    assert qualified.logsource.services == frozenset({"system"})


@needs_evtx
def test_xml_rendering_matches_evtx(SHARED_DATA: Path) -> None:
    from_xml, xml_problems = read_all(SHARED_DATA / "derived/xml/PanacheSysmon_vs_AtomicRedTeam01.xml")
    from_evtx, evtx_problems = read_all(SHARED_DATA / "evtx-attack-samples/AutomatedTestingTools/"
                                        "PanacheSysmon_vs_AtomicRedTeam01.evtx")

    assert xml_problems == evtx_problems == []
    assert len(from_xml) == len(from_evtx) == 565
    for xml_event, evtx_event in zip(from_xml, from_evtx):
        assert xml_event.shape == "event-xml"
        assert xml_event.record == evtx_event.fields["EventRecordID"]
        assert xml_event.logsource == evtx_event.logsource
        assert xml_event.time == evtx_event.time
        for name in ("EventID", "Channel", "Provider_Name", "Computer", "CommandLine", "Image", "ParentImage",
                     "ParentCommandLine", "User", "TargetFilename"):
            assert xml_event.fields.get(name) == evtx_event.fields.get(name), name


def test_new_event_equals_constructor() -> None:
    logsource = LogSource("windows", frozenset({"process_creation"}), frozenset({"sysmon"}))
    fast = new_event({"EventID": 1}, logsource, "a.evtx", 7, "2020-01-01T00:00:00Z", "host", "evtx")
    slow = Event({"EventID": 1}, logsource, "a.evtx", 7, "2020-01-01T00:00:00Z", "host", "evtx")

    assert fast == slow
    assert vars(fast) == vars(slow)
    assert repr(fast) == repr(slow)


# --- The logsource table ----------------------------------------------------------------------

@pytest.mark.parametrize("channel, provider, event_id, categories, services", [
    ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", 1, {"process_creation"}, {"sysmon"}),
    ("Security", "Microsoft-Windows-Security-Auditing", 4688, {"process_creation"}, {"security"}),
    ("security", None, 4688, {"process_creation"}, {"security"}),
    ("ForwardedEvents", "Microsoft-Windows-Sysmon", 11, {"file_event"}, {"sysmon"}),
    (None, "Microsoft-Windows-Sysmon", 13, {"registry_set", "registry_event"}, {"sysmon"}),
    ("Microsoft-Windows-Sysmon/Operational", None, 12, {"registry_add", "registry_delete", "registry_event"},
     {"sysmon"}),
    ("Microsoft-Windows-Sysmon/Operational", None, 26, {"file_delete"}, {"sysmon"}),
    ("Microsoft-Windows-Sysmon/Operational", None, 18, {"pipe_created"}, {"sysmon"}),
    ("Microsoft-Windows-Sysmon/Operational", None, 255, {"sysmon_error"}, {"sysmon"}),
    ("Microsoft-Windows-PowerShell/Operational", None, 4104, {"ps_script"}, {"powershell"}),
    ("Microsoft-Windows-PowerShell/Operational", None, 4103, {"ps_module"}, {"powershell"}),
    ("Windows PowerShell", None, 400, {"ps_classic_start"}, {"powershell-classic"}),
    ("Microsoft-Windows-Windows Defender/Operational", None, 1116, set(), {"windefend"}),
    ("Microsoft-Windows-TaskScheduler/Operational", None, 142, set(), {"taskscheduler"}),
    ("Microsoft-Windows-Bits-Client/Operational", None, 59, set(), {"bits-client"}),
    ("Security", "Microsoft-Windows-Security-Auditing", 1, set(), {"security"}),
    ("Microsoft-Windows-AppXDeployment/Operational", None, 325, set(), set()),
    (None, None, None, set(), set()),
])
def test_classify_table(channel: Any, provider: Any, event_id: Any, categories: set, services: set) -> None:
    logsource = classify(channel, provider, event_id).logsource

    assert logsource.product == "windows"
    assert logsource.categories == frozenset(categories)
    assert logsource.services == frozenset(services)


def test_logsource_for_fields() -> None:
    fields = {"Channel": "Security", "EventID": 4688}

    assert logsource_for(fields).admits("windows", "process_creation", "security")
    assert not logsource_for(fields).admits("windows", "process_creation", "sysmon")
    assert logsource_for({"EventID": "4688", "Channel": "Security"}).categories == frozenset()
    assert classify("Security", None, 4688).renames[0] == ("NewProcessName", "Image")


# --- Folders ----------------------------------------------------------------------------------

def test_iter_event_files_sorted_and_filtered(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("b/2.jsonl", "b/1.evtx", "a/x.xml", "z.csv", "y.yml", "notes.md", "app.log", ".hidden.json",
                 ".git/c.json", "a/EVENTS.JSON", "a/w.ndjson"):
        (tmp_path / name).write_text("")
    named = tmp_path / "named.txt"

    found = list(iter_event_files([str(tmp_path), str(named), "-"]))

    assert [relative(path, tmp_path) for path in found[:7]] == [
        "z.csv", "a/EVENTS.JSON", "a/w.ndjson", "a/x.xml", "b/1.evtx", "b/2.jsonl", "named.txt"]
    assert found[7:] == ["-"]


def test_iter_event_files_keeps_stdin_and_missing() -> None:
    assert list(iter_event_files(["-", "/no/such/file.json"])) == ["-", "/no/such/file.json"]


def test_sniff_format() -> None:
    assert sniff_format(b"ElfFile\x00rest", "x.json") == "evtx"
    assert sniff_format(b"", "x.evtx") == "evtx"
    assert sniff_format(b"\xef\xbb\xbf<?xml version='1.0'?><Events/>", "x.txt") == "xml"
    assert sniff_format(b"  [{\"a\": 1}]", "x.csv") == "json"
    assert sniff_format("{}".encode("utf-16-le").join([b"\xff\xfe", b""]), "x") == "json"
    assert sniff_format(b"_time,host,_raw\n", "export") == "csv"
    assert sniff_format(b"just text", "x.txt") is None


# --- Bad input: files ---------------------------------------------------------------------------

def test_missing_file_one_problem(tmp_path: Path) -> None:
    items = list(read_events(str(tmp_path / "absent.jsonl")))

    assert len(items) == 1
    assert isinstance(items[0], ReadProblem)
    assert items[0].message == "file not found"
    assert items[0].record is None


def test_folder_and_not_a_folder_one_problem(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text("{}")

    folder_items = list(read_events(str(tmp_path)))
    below_file_items = list(read_events(str(plain / "child.json")))

    assert len(folder_items) == 1
    assert "is a folder" in folder_items[0].message
    assert len(below_file_items) == 1
    assert isinstance(below_file_items[0], ReadProblem)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files without permission")
def test_unreadable_file_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "secret.jsonl"
    path.write_text('{"EventID": 1}\n')
    path.chmod(0)

    items = list(read_events(str(path)))

    assert len(items) == 1
    assert items[0].message == "permission denied"


def test_unknown_format_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("nothing to see here\n")

    items = list(read_events(str(path)))

    assert len(items) == 1
    assert "unknown format" in items[0].message


def test_empty_text_file_no_items(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")

    assert list(read_events(str(path))) == []


# --- Bad input: EVTX --------------------------------------------------------------------------

@needs_evtx
def test_evtx_zeroed_chunk_reads_on(SHARED_DATA: Path) -> None:
    events, problems = read_all(SHARED_DATA / "omerbenamram-evtx/samples/sysmon.evtx")

    assert len(events) == 358
    assert len(problems) == 8
    assert all("chunk header magic" in problem.message for problem in problems)
    assert problems[0].message.startswith("damaged EVTX data after record ")


@needs_evtx
@pytest.mark.slow
def test_evtx_compact_layout_matches_decoding(SHARED_DATA: Path) -> None:
    evtx = pytest.importorskip("evtx")
    decode = json.JSONDecoder().raw_decode
    compact = 0
    for path in sorted(SHARED_DATA.rglob("*.evtx")):
        records = evtx.PyEvtxParser(str(path)).records_json()
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except RuntimeError:
                continue
            fast = compact_record_fields(record["data"], decode)
            if fast is None:
                continue
            compact += 1
            slow = evtx_event_fields(json.loads(record["data"])["Event"])
            assert fast == slow, (path, record["event_record_id"])

    assert compact > 10000


@needs_evtx
def test_evtx_not_evtx_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "fake.evtx"
    path.write_bytes(b"this is not an event log" * 100)

    events, problems = read_all(path)

    assert events == []
    assert len(problems) == 1
    assert "EVTX" in problems[0].message


@needs_evtx
def test_evtx_truncated_copy(SHARED_DATA: Path, tmp_path: Path) -> None:
    original = SHARED_DATA / "evtx-attack-samples/AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx"
    truncated = tmp_path / "truncated.evtx"
    truncated.write_bytes(original.read_bytes()[:4096 + 65536 + 30000])

    events, problems = read_all(truncated)

    assert 0 < len(events) < 565
    assert len(problems) == 1
    assert "cut short" in problems[0].message
    assert [event.record for event in events] == sorted(event.record for event in events)


# --- Bad input: JSON --------------------------------------------------------------------------

def json_line(command_line: Any, event_id: Any = 1, **extra: Any) -> str:
    document = {"EventID": event_id, "Channel": "Microsoft-Windows-Sysmon/Operational",
                "CommandLine": command_line, "Image": "C:\\Windows\\System32\\cmd.exe"}
    document.update(extra)
    return json.dumps(document)


def test_json_lines_truncated_line_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json_line("first"), json_line("second")[:25], json_line("third"), json_line("fourth")[:30]]
    path.write_text("\n".join(lines))

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["first", "third"]
    assert [event.record for event in events] == [1, 3]
    assert [problem.record for problem in problems] == [2, 4]
    assert problems[0].message == "invalid JSON: the document on line 2 ends before it is complete"
    assert problems[1].message.startswith("JSON document truncated at line 4")


def test_json_lines_invalid_utf8_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    bad = json_line("cmd /c bad-byte").encode("utf-8").replace(b"bad-byte", b"bad\xff\xfebyte")
    path.write_bytes(json_line("before").encode() + b"\n" + bad + b"\n" + json_line("after").encode() + b"\n")

    items = list(read_events(str(path)))
    events = [item for item in items if isinstance(item, Event)]
    problems = [item for item in items if isinstance(item, ReadProblem)]

    assert [event.command_line for event in events] == ["before", "cmd /c bad\ufffd\ufffdbyte", "after"]
    assert len(problems) == 1
    assert problems[0].record == 2
    assert "UTF-8" in problems[0].message
    assert items.index(problems[0]) < items.index(events[1])


def test_json_long_command_line_read_whole(tmp_path: Path) -> None:
    command_line = "powershell.exe -enc " + "A" * 99980
    path = tmp_path / "events.jsonl"
    path.write_text(json_line(command_line) + "\n" + json_line("next") + "\n")

    events, problems = read_all(path)

    assert len(command_line) == 100000
    assert events[0].command_line == command_line
    assert events[1].command_line == "next"
    assert len(problems) == 1
    assert problems[0].record == 1
    assert f"100000 characters, more than the {MAX_COMMAND_LINE_CHARS}" in problems[0].message


@pytest.mark.parametrize("value, described", [
    (123, "a number (123), expected text; kept as it is"),
    (["a", "b"], 'a list (["a", "b"]), expected text; kept as it is'),
    ({"x": 1}, 'an object ({"x": 1}), expected text; kept as JSON text'),
    (True, "a boolean (true), expected text; kept as it is"),
])
def test_json_command_line_wrong_type(tmp_path: Path, value: Any, described: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json_line(value) + "\n" + json_line("next") + "\n")

    events, problems = read_all(path)

    assert len(events) == 2
    assert events[1].command_line == "next"
    assert len(problems) == 1
    assert problems[0].record == 1
    assert problems[0].message == f"field CommandLine is {described}"
    assert not isinstance(events[0].fields["CommandLine"], dict)


def test_json_null_command_line_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json_line(None) + "\n")

    events, problems = read_all(path)

    assert problems == []
    assert events[0].fields["CommandLine"] is None
    assert events[0].logsource.categories == frozenset({"process_creation"})


@pytest.mark.parametrize("event_id, expected, problem", [
    ("1", 1, None),
    (1.0, 1, None),
    (None, None, "field EventID is missing or null"),
    ("one", "one", "field EventID is a str ('one'), expected an integer"),
    ([1], [1], "field EventID is a list ([1]), expected an integer"),
])
def test_json_event_id_types(tmp_path: Path, event_id: Any, expected: Any, problem: Any) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json_line("x", event_id) + "\n")

    events, problems = read_all(path)

    assert events[0].fields["EventID"] == expected
    if problem is None:
        assert problems == []
        assert events[0].logsource.categories == frozenset({"process_creation"})
    else:
        assert len(problems) == 1
        assert problems[0].message.startswith(problem)
        assert events[0].logsource.categories == frozenset()


def test_json_pretty_documents_with_broken_one(tmp_path: Path) -> None:
    documents = [json.dumps({"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"},
                                       "EventData": {"CommandLine": name}}}, indent=2)
                 for name in ("one", "two", "three")]
    broken = documents[1].replace('"CommandLine": "two"', '"CommandLine": two"')
    path = tmp_path / "events.json"
    path.write_text("\n".join([documents[0], broken, documents[2]]) + "\n")

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["one", "three"]
    assert [event.shape for event in events] == ["evtx-json", "evtx-json"]
    assert len(problems) == 1
    assert problems[0].record == documents[0].count("\n") + 2
    assert events[1].record == problems[0].record + broken.count("\n") + 1


def test_json_array_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text("[" + ", ".join(json_line(name) for name in ("a", "b", "c")) + "]")

    events, problems = read_all(path)

    assert problems == []
    assert [event.command_line for event in events] == ["a", "b", "c"]
    assert events[0].record == 1
    assert str(events[1].record).startswith("1:")


def test_json_array_not_closed(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text("[\n" + json_line("a") + ",\n" + json_line("b") + "\n")

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["a", "b"]
    assert len(problems) == 1
    assert "not closed" in problems[0].message


def test_json_not_an_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"hello": "world"}\n42\n' + json_line("x") + "\n")

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["x"]
    assert [problem.record for problem in problems] == [1, 2]
    assert "not a Windows event" in problems[0].message
    assert "expected a JSON object" in problems[1].message


def test_json_utf16_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(b"\xff\xfe" + (json_line("wide") + "\r\n").encode("utf-16-le"))

    events, problems = read_all(path)

    assert problems == []
    assert events[0].command_line == "wide"


def test_json_memory_does_not_grow(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json_line("C:\\Windows\\System32\\cmd.exe /c " + "x" * 1000) + "\n"
    with path.open("w") as handle:
        for _ in range(20000):
            handle.write(line)

    count, peak = count_events_with_peak_memory(path)

    assert path.stat().st_size > 20_000_000
    assert count == 20000
    assert peak < 4_000_000


# --- Bad input: XML ---------------------------------------------------------------------------

def xml_event(record_id: int, command_line: str) -> str:
    return ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
            '<Provider Name="Microsoft-Windows-Sysmon"/><EventID>1</EventID>'
            f'<EventRecordID>{record_id}</EventRecordID>'
            '<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>pc1</Computer>'
            '<TimeCreated SystemTime="2024-01-01T00:00:00.000000Z"/></System><EventData>'
            f'<Data Name="CommandLine">{command_line}</Data><Data Name="Image">C:\\x.exe</Data>'
            '</EventData></Event>')


def test_xml_bare_events_without_root(tmp_path: Path) -> None:
    path = tmp_path / "wevtutil.xml"
    path.write_text("\n".join(xml_event(number, f"cmd {number}") for number in (1, 2, 3)))

    events, problems = read_all(path)

    assert problems == []
    assert [event.command_line for event in events] == ["cmd 1", "cmd 2", "cmd 3"]
    assert [event.record for event in events] == [1, 2, 3]
    assert events[0].time == "2024-01-01T00:00:00.000000Z"
    assert events[0].host == "pc1"
    assert events[0].logsource.categories == frozenset({"process_creation"})


def test_xml_broken_event_reads_on(tmp_path: Path) -> None:
    path = tmp_path / "events.xml"
    broken = xml_event(2, "cmd 2").replace("</Data>", "</Dat>", 1)
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<Events>\n'
                    + "\n".join([xml_event(1, "cmd 1"), broken, xml_event(3, "cmd 3"), xml_event(4, "cmd 4")])
                    + "\n</Events>\n")

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["cmd 1", "cmd 3", "cmd 4"]
    assert len(problems) == 1
    assert "invalid XML at line 4" in problems[0].message
    assert "next <Event> on line 5" in problems[0].message


def test_xml_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "events.xml"
    text = "<Events>\n" + xml_event(1, "cmd 1") + "\n" + xml_event(2, "cmd 2") + "\n</Events>\n"
    path.write_text(text[:len(text) - 120])

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["cmd 1"]
    assert len(problems) == 1
    assert "invalid XML" in problems[0].message


def test_xml_invalid_utf8_and_long_command_line(tmp_path: Path) -> None:
    path = tmp_path / "events.xml"
    long_command = "a" * 100000
    content = ("<Events>\n" + xml_event(1, "bad-byte") + "\n" + xml_event(2, long_command) + "\n</Events>\n")
    path.write_bytes(content.encode().replace(b"bad-byte", b"bad\xc3byte"))

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["bad\ufffdbyte", long_command]
    assert [problem.record for problem in problems] == [1, 2]
    assert "UTF-8" in problems[0].message
    assert "100000 characters" in problems[1].message


def test_xml_memory_does_not_grow(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    with path.open("w") as handle:
        handle.write("<Events>\n")
        for number in range(20000):
            handle.write(xml_event(number, "cmd /c " + "y" * 1000) + "\n")
        handle.write("</Events>\n")

    count, peak = count_events_with_peak_memory(path)

    assert path.stat().st_size > 20_000_000
    assert count == 20000
    assert peak < 4_000_000


# --- Bad input: CSV ---------------------------------------------------------------------------

def test_csv_raw_xml_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    rows = [
        ["_time", "host", "EventCode", "_raw", "New_Process_Name", "Process_Command_Line", "LogName"],
        ["2024-01-01 10:00:00", "pc1", "1", xml_event(5, 'cmd "quoted"\nsecond line'), "", "", ""],
        ["2024-01-01 10:00:01", "pc2", "4688", "LogName=Security\nEventCode=4688",
         "C:\\Windows\\System32\\whoami.exe", "whoami /all", "Security"],
    ]
    import csv
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)

    events, problems = read_all(path)

    assert problems == []
    assert events[0].shape == "event-xml"
    assert events[0].command_line == 'cmd "quoted"\nsecond line'
    assert events[0].record == 2
    assert events[1].shape == "splunk-csv"
    assert events[1].record == 4
    assert events[1].fields["EventID"] == 4688
    assert events[1].fields["Image"] == "C:\\Windows\\System32\\whoami.exe"
    assert events[1].command_line == "whoami /all"
    assert events[1].logsource.categories == frozenset({"process_creation"})
    assert events[1].time == "2024-01-01T10:00:01"
    assert events[1].host == "pc2"


def test_csv_invalid_utf8_and_short_row(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"EventCode,LogName,CommandLine\n1,Microsoft-Windows-Sysmon/Operational,bad\xffbyte\n"
                     b"1,Microsoft-Windows-Sysmon/Operational\n")

    events, problems = read_all(path)

    assert [event.command_line for event in events] == ["bad\ufffdbyte", None]
    assert [problem.record for problem in problems] == [2, 3]
    assert "invalid bytes" in problems[0].message
    assert "the row has 2 values but the header has 3" in problems[1].message


def test_csv_without_event_columns(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text("test_path,rule_id\na,b\n")

    events, problems = read_all(path)

    assert events == []
    assert len(problems) == 1
    assert problems[0].message.startswith("not an event export")


# --- Standard input ---------------------------------------------------------------------------

class FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["jsonl", "xml", "csv"])
def test_stdin_text_formats(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    content = {
        "jsonl": json_line("from stdin") + "\n",
        "xml": "<Events>" + xml_event(1, "from stdin") + "</Events>",
        "csv": "EventCode,LogName,CommandLine\n1,Microsoft-Windows-Sysmon/Operational,from stdin\n",
    }[kind]
    monkeypatch.setattr(sys, "stdin", FakeStdin(content.encode()))

    events, problems = read_all("-")

    assert problems == []
    assert [event.command_line for event in events] == ["from stdin"]
    assert events[0].source == "-"


@needs_evtx
def test_stdin_evtx(monkeypatch: pytest.MonkeyPatch, SHARED_DATA: Path) -> None:
    data = (SHARED_DATA / "evtx-attack-samples/Defense Evasion/DE_UAC_Disabled_Sysmon_12_13.evtx").read_bytes()
    monkeypatch.setattr(sys, "stdin", FakeStdin(data))

    events, problems = read_all("-")

    assert problems == []
    assert len(events) == 3
    assert events[0].source == "-"

