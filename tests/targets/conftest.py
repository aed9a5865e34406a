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
# LSASSDUMP_SHARED_DATA names the data folder, as for every other test; LSASSDUMP_SHARED names its parent.
SHARED = (Path(os.environ["LSASSDUMP_SHARED_DATA"]).parent if os.environ.get("LSASSDUMP_SHARED_DATA")
          else Path(os.environ.get("LSASSDUMP_SHARED", REPO.parent / "shared")))
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
        pytest.skip(f"shared data not found at {path} (set LSASSDUMP_SHARED_DATA)")
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


# Elastic targets (dsl, lucene, eql, esql): helpers shared by their test modules.

ELASTIC_TARGETS = ("dsl", "lucene", "eql", "esql")
ELASTIC_MAPPINGS = ("ecs", "winlogbeat-raw", "sigma")
_ELASTIC_CORPUS: Dict[Tuple[str, str], Any] = {}


def elastic_query(rule: Rule, target: str, mapping: str, **options: Any) -> str:
    """Emit a rule for an Elastic target, passing emitter options such as case or lowercase."""
    import importlib

    from core.mappings import get_mapping
    from core.targets.common import prepare

    field_mapping = get_mapping(mapping)
    module = importlib.import_module(f"core.targets.{target}")
    return module.emit(prepare(rule, field_mapping, target), field_mapping, rule, **options)  # type: ignore[no-any-return]


def elastic_test(rule: Rule, target: str, mapping: str, **options: Any) -> Any:
    """Return the emulator's test for the rule's query, on documents of the mapping."""
    from core.emulators import compile_query

    return compile_query(target, elastic_query(rule, target, mapping, **options), mapping)


def elastic_corpus(rules: List[Rule], target: str, **options: Any) -> Dict[str, Any]:
    """Convert every rule (sigma mapping; ecs and winlogbeat-raw too for process creation), once per target.

    Returns the queries by (rule source, mapping), the errors the same way, and counts by outcome.
    """
    key = (target, repr(sorted(options.items())))
    if key in _ELASTIC_CORPUS:
        return _ELASTIC_CORPUS[key]  # type: ignore[no-any-return]
    queries: Dict[Tuple[str, str], str] = {}
    errors: Dict[Tuple[str, str], LsassdumpError] = {}
    for rule in rules:
        mappings = ["sigma"] + (["ecs", "winlogbeat-raw"] if rule.logsource.category == "process_creation" else [])
        for mapping in mappings:
            try:
                queries[rule.source, mapping] = elastic_query(rule, target, mapping, **options)
            except LsassdumpError as error:
                errors[rule.source, mapping] = error
    result = {"queries": queries, "errors": errors}
    _ELASTIC_CORPUS[key] = result
    return result


# Property tests of the Elastic targets: random rule values and events built from them.

# Characters that are special in some query language, whitespace, and letters with and without
# case (ASCII, non-ASCII with simple case pairs, with special folds, and caseless scripts).
VALUE_ALPHABET = (
    "\"'\\*?|()[]{}:/- \t\n" "aAbBsSkKmMzZ09" "\u00e9\u00c9\u0436\u0416\u00df\u017f\u212a\u0130\u0131\u03a3\u03c3\u03c2"
    "\u4e2d\u05d0"
)
VALUE_MODIFIERS = ("", "|contains", "|startswith", "|endswith", "|contains|cased", "|cased", "|contains|all")


def has_special_case(texts: List[str]) -> bool:
    """Tell whether a non-ASCII character with another case, or a special case folding, occurs."""
    for text in texts:
        for char in text:
            if char.isascii():
                continue
            if char.lower() != char or char.upper() != char or char.casefold() != char:
                return True
    return False


def event_text_from(value: str, draw_text: Any, draw_bool: Any) -> str:
    """Build an event value near a Sigma value: wildcards filled in, escapes dropped, case changed."""
    out: List[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value) and value[index + 1] in "*?\\":
            out.append(value[index + 1])
            index += 2
            continue
        if char == "*":
            out.append(draw_text())
        elif char == "?":
            out.append(draw_text()[:1] or "x")
        else:
            out.append(char.swapcase() if draw_bool() else char)
        index += 1
    text = "".join(out)
    if draw_bool():
        text = draw_text() + text + draw_text()
    return text


def check_random_rule(data: Any, target: str, **options: Any) -> None:
    """Draw a rule value and events, then compare the evaluator with the target's emulator.

    A difference is allowed only where the drawn text contains a character of ``has_special_case``,
    because the Elastic engines fold case differently from ``str.casefold`` there.
    """
    from hypothesis import strategies as st

    from core import compile_rule, load_rule_document
    from core.mappings import get_mapping

    text = st.text(alphabet=VALUE_ALPHABET, max_size=8)
    modifier = data.draw(st.sampled_from(VALUE_MODIFIERS), label="modifier")
    values = data.draw(st.lists(text, min_size=1, max_size=3), label="values")
    condition = data.draw(st.sampled_from(("sel", "not sel", "sel and not other")), label="condition")
    mapping = data.draw(st.sampled_from(("sigma", "ecs")), label="mapping")
    detection = {"sel": {"CommandLine" + modifier: values}, "other": {"Image|contains": "x\"y"},
                 "condition": condition}
    rule = load_rule_document({"title": "random", "id": "00000000-0000-0000-0000-000000000001",
                               "logsource": {"category": "process_creation", "product": "windows"},
                               "detection": detection}, "random.yml")
    reference = compile_rule(rule)
    emulated = elastic_test(rule, target, mapping, **options)
    field_mapping = get_mapping(mapping)

    def draw_text() -> str:
        return data.draw(text)

    def draw_bool() -> bool:
        return data.draw(st.booleans())

    events = [{"CommandLine": event_text_from(value, draw_text, draw_bool)} for value in values]
    events.append({"CommandLine": draw_text(), "Image": data.draw(st.sampled_from(("x\"y", "X\"Y", "xy")))})
    events.append({"Image": "x\"y"})
    for fields in events:
        expected = reference.test(fields)
        verdict = emulated(field_mapping.document_for(fields))
        if verdict != expected:
            assert has_special_case(values + [str(v) for v in fields.values()]), (
                f"{target} on {mapping}: emulator {verdict}, evaluator {expected} for {fields!r}")


def elastic_disagreements(rule: Rule, events: List[Event], target: str, mapping: str, **options: Any) -> List[Any]:
    """Return the records of the events on which the target's emulator and the evaluator differ."""
    from core import compile_rule
    from core.mappings import get_mapping

    field_mapping = get_mapping(mapping)
    test = elastic_test(rule, target, mapping, **options)
    reference = compile_rule(rule)
    return [event.record for event in events
            if test(field_mapping.document_for(event.fields)) != reference.test(event.fields)]


def elastic_corpus_counts(rules: List[Rule], target: str, **options: Any) -> Dict[str, int]:
    """Convert the corpus, check that every error names the target and every query compiles, and count.

    Returns the converted rules per mapping and the refusals under the key ``refused``.
    """
    from core.emulators import compile_query

    corpus = elastic_corpus(rules, target, **options)
    for key, error in corpus["errors"].items():
        assert f"'{target}'" in str(error), (key, str(error))
    counts: Dict[str, int] = {"refused": len(corpus["errors"])}
    for (source, mapping), query in corpus["queries"].items():
        counts[mapping] = counts.get(mapping, 0) + 1
        compile_query(target, query, mapping)
    print(f"{target} {options or ''}: {counts}")
    return counts


# The SigmaHQ corpus through one target: every rule converts or is refused with a named reason.

from collections import Counter  # noqa: E402

from core.emulators import compile_query  # noqa: E402
from core.errors import ConversionError, MappingError, UnsupportedFeatureError  # noqa: E402
from core.targets import convert  # noqa: E402

REFUSALS = (ConversionError, MappingError, UnsupportedFeatureError)


def corpus_outcomes(rules: List[Rule], target: str, process_mappings: Tuple[str, ...]) -> Tuple[Counter, List[str]]:
    """Convert every rule with 'sigma' (and process rules with each process mapping), then parse it.

    Returns the count per (mapping, outcome) and the rules whose outcome breaks the contract: an
    exception other than the three refusal classes, or a refusal that does not name the target.
    """
    counts: Counter = Counter()
    broken: List[str] = []
    for rule in rules:
        mappings = ("sigma",) + (process_mappings if rule.logsource.category == "process_creation" else ())
        for mapping in mappings:
            try:
                query = convert(rule, target, mapping)
                compile_query(target, query, mapping)
            except REFUSALS as error:
                counts[(mapping, type(error).__name__)] += 1
                if f"'{target}'" not in str(error) and f" {target}" not in str(error):
                    broken.append(f"{rule.source} [{mapping}]: {error}")
                continue
            except Exception as error:  # any other class breaks the contract; report it with the rule
                broken.append(f"{rule.source} [{mapping}]: {type(error).__name__}: {error}")
                continue
            counts[(mapping, "converted")] += 1
    return counts, broken


def print_counts(target: str, counts: Counter) -> None:
    """Print the per-mapping outcome counts of a corpus run (shown with pytest -s)."""
    print(f"\n{target}: SigmaHQ corpus outcomes")
    for (mapping, outcome), count in sorted(counts.items()):
        print(f"  {mapping:24s} {outcome:26s} {count:5d}")


def agreement_failures(rules: List[Rule], target: str, mapping: str, events: List[Event]) -> List[str]:
    """Return the (rule, event) pairs where the emulated query and the evaluator disagree."""
    from core import compile_rule
    from core.mappings import get_mapping

    field_mapping = get_mapping(mapping)
    documents = [field_mapping.document_for(event.fields) for event in events]
    failures: List[str] = []
    for rule in rules:
        if rule.logsource.category != "process_creation":
            continue
        try:
            run = compile_query(target, convert(rule, target, mapping), mapping)
        except REFUSALS:
            continue
        evaluator = compile_rule(rule)
        for event, document in zip(events, documents):
            if run(document) is not (evaluator.match(event.fields) is not None):
                failures.append(f"{rule.source} on {event.source} record {event.record}")
    return failures
