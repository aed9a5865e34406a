"""Fixtures shared by the target tests: the shared data folder, the LSASS rule, process events, rules.

Other target test modules may append fixtures here; keep existing ones unchanged.
"""

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from core import ReadProblem, iter_event_files, load_rule, read_events
from core.errors import LsassdumpError
from core.events import Event
from core.rules import Rule, iter_rule_files

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LSASSDUMP_SHARED", REPO.parent / "shared"))
LSASS_RULE = SHARED / "rules" / "proc_creation_win_sysinternals_procdump_lsass.yml"
EXPECTED_KQL_ASIM = SHARED / "rules" / "expected_kql_asim.kql"
SIGMAHQ_RULES = SHARED / "data" / "sigmahq-rules" / "rules"

# Command lines with the verdict the LSASS rule must give, whatever the target.
FIRST_LINE = "procdump.exe -accepteula -ma lsass.exe C:\\Windows\\Temp\\o.dmp"
LSASS_COMMAND_LINES: Tuple[Tuple[str, bool], ...] = (
    (FIRST_LINE, True),
    ("procdump64.exe -accepteula -ma samss C:\\Windows\\Temp\\o.dmp", True),
    ("PROCDUMP64.EXE -ACCEPTEULA /MA LSASS.EXE C:\\TEMP\\LS.DMP", True),
    ("procdump.exe -accepteula \u2013ma lsass.exe C:\\Windows\\Temp\\o.dmp", True),
    ('"C:\\Program Files\\Git\\bin\\bash.exe" -lc "cd /tmp; ls -ma /tmp/logs"', True),
    (FIRST_LINE + "\0\0\0\0", True),
    ("procdump64.exe -accepteula -ma w3wp.exe C:\\dumps\\lsvc_w3wp.dmp", False),
    ("robocopy.exe C:\\Logs \\\\nas01\\share lsa_audit.log /MAX:10485760 /R:1", False),
    (FIRST_LINE.replace(" ", "\t"), False),
    ("procdump.exe -accepteula lsass.exe C:\\Windows\\Temp\\o.dmp -ma", False),
    ("procdump.exe -accepteula \uff0dma lsass.exe C:\\Windows\\Temp\\o.dmp", False),
)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set LSASSDUMP_SHARED)")
    return path


@pytest.fixture(scope="session")
def lsass_rule() -> Rule:
    return load_rule(str(_need(LSASS_RULE)))


@pytest.fixture(scope="session")
def expected_kql_asim() -> str:
    return _need(EXPECTED_KQL_ASIM).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def process_events() -> List[Event]:
    """Every process-creation event under the shared data folder."""
    folder = _need(SHARED / "data")
    events: List[Event] = []
    for path in iter_event_files([str(folder)]):
        for item in read_events(path):
            if isinstance(item, ReadProblem):
                continue
            if "process_creation" in item.logsource.categories:
                events.append(item)
    return events


@pytest.fixture(scope="session")
def sigmahq_rules() -> Tuple[List[Rule], Dict[str, int]]:
    """The SigmaHQ rules that load, and the count of those that do not, by error class."""
    rules: List[Rule] = []
    failures: Dict[str, int] = {}
    for path in iter_rule_files([str(_need(SIGMAHQ_RULES))]):
        try:
            rules.append(load_rule(path))
        except LsassdumpError as error:
            name = type(error).__name__
            failures[name] = failures.get(name, 0) + 1
    return rules, failures


def sigma_fields(event: Event) -> Dict[str, Any]:
    """Return an event's Sigma fields as a plain dict."""
    return dict(event.fields)


# Rule and event generators for the property tests of every target.

from hypothesis import strategies as st  # noqa: E402

from core import load_rule_document  # noqa: E402
from core.ir import ANY, ONE  # noqa: E402
from core.values import parse_sigma_string  # noqa: E402

# Letters whose case forms are single characters that Python's casefold, lower and upper agree
# on; letters such as ß, ς or İ fold differently per target and have their own exception tests.
SAFE_LETTERS = "äÄöÖüÜéÉçÇñÑøØåÅžŽłŁжЖдДλΛ漢"
SAFE_TEXT = st.sampled_from(list(
    "abcXYZ019" + "\"'\\*?|()[]{}:/-" + " \t\n" + SAFE_LETTERS
))


def sigma_escape(text: str) -> str:
    """Escape Sigma's wildcards and backslash so that ``text`` is taken literally."""
    return "".join("\\" + char if char in "\\*?" else char for char in text)


def string_rule(key: str, value: Any) -> Rule:
    """Build a process-creation rule with one selection ``{key: value}``."""
    document = {
        "title": "generated", "logsource": {"category": "process_creation", "product": "windows"},
        "detection": {"selection": {key: value}, "condition": "selection"},
    }
    return load_rule_document(document, "generated")


def rule_document(values: List[str], other: str) -> Dict[str, Any]:
    """Build a rule that mixes AND, OR and NOT over CommandLine and Image."""
    return {
        "title": "generated", "logsource": {"category": "process_creation", "product": "windows"},
        "detection": {
            "selection_values": {"CommandLine|contains": values},
            "selection_image": {"Image|endswith": other},
            "filter": {"CommandLine|startswith": values[0]},
            "condition": "selection_values and not filter or selection_image",
        },
    }


@st.composite
def event_values(draw: Any, value: str) -> List[Any]:
    """Draw event values near a Sigma value: its literal forms, case changes, edits, a missing field."""
    text = st.text(SAFE_TEXT, min_size=0, max_size=4)
    literal: List[str] = []
    for part in parse_sigma_string(value).parts:
        if part is ANY:
            literal.append(draw(text))
        elif part is ONE:
            literal.append(draw(SAFE_TEXT))
        else:
            literal.append(str(part))
    base = "".join(literal)
    candidates = [base, base.upper(), base.lower(), draw(text) + base + draw(text), base[1:], base[:-1],
                  draw(st.text(SAFE_TEXT, min_size=1, max_size=10))]
    # An empty string is left out: Kusto cannot tell it from a missing value (a listed exception).
    return [candidate for candidate in candidates if candidate] + [None]
