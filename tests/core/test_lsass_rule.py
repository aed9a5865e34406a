"""The bundled LSASS rule gives the verdicts its own text implies, false positive included."""

import pytest

from core import compile_rule, load_rule
from core.bundled import bundled_rules_dir

RULE_ID = "5afee48e-67dd-4e03-a783-f74259dcf998"
FIRST = r"procdump.exe -accepteula -ma lsass.exe C:\Windows\Temp\o.dmp"

VERDICTS = [
    (FIRST, True),
    (r"procdump64.exe -accepteula -ma samss C:\Windows\Temp\o.dmp", True),
    (r"PROCDUMP64.EXE -ACCEPTEULA /MA LSASS.EXE C:\TEMP\LS.DMP", True),
    ("procdump.exe -accepteula \u2013ma lsass.exe C:\\Windows\\Temp\\o.dmp", True),
    (r'"C:\Program Files\Git\bin\bash.exe" -lc "cd /tmp; ls -ma /tmp/logs"', True),
    (FIRST + "\0\0\0\0", True),
    (r"procdump64.exe -accepteula -ma w3wp.exe C:\dumps\lsvc_w3wp.dmp", False),
    (r"robocopy.exe C:\Logs \\nas01\share lsa_audit.log /MAX:10485760 /R:1", False),
    ("procdump.exe\t-accepteula\t-ma\tlsass.exe\tC:\\Windows\\Temp\\o.dmp", False),
    (r"procdump.exe -accepteula lsass.exe C:\Windows\Temp\o.dmp -ma", False),
    ("procdump.exe -accepteula \uff0dma lsass.exe C:\\Windows\\Temp\\o.dmp", False),
]


@pytest.fixture(scope="module")
def lsass():
    rule = load_rule(str(bundled_rules_dir() / "proc_creation_win_sysinternals_procdump_lsass.yml"))
    assert rule.id == RULE_ID
    return compile_rule(rule)


@pytest.mark.parametrize("command_line,expected", VERDICTS)
def test_lsass_verdict(lsass, command_line, expected):
    assert (lsass.match({"CommandLine": command_line}) is not None) is expected


def test_lsass_reports_both_selections(lsass):
    assert lsass.match({"CommandLine": FIRST}).selections == ("selection_flags", "selection_process")


def test_lsass_metadata(lsass):
    rule = lsass.rule
    assert rule.level == "high"
    assert rule.attack_techniques == ("T1036", "T1003.001")
    assert rule.logsource.category == "process_creation"
