"""Name the semantic behind one divergence by re-testing changed copies of the event.

Each normalisation removes one kind of difference from the event (ASCII case, then full Unicode
case, look-alike dashes, whitespace and quotes, literal wildcard characters, backslashes). The first one after which the
evaluator and the target agree again names the semantic. When none does, the rule value itself
names it: a literal ``*`` or ``?`` (wildcard), a character the query language must escape
(escaping), or a field the mapping types as keyword, wildcard or number (field type).
"""

from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from core.ir import WINDASH_CHARACTERS, StringMatch
from core.mappings import FieldMapping
from core.portability.sites import ValueSite
from core.portability.textmatch import LOOKALIKE_DASHES, QUOTES, WHITESPACE, describe_char

Fields = Mapping[str, Any]
Test = Callable[[Fields], bool]

CASE_FOLDING = "case folding"
UNICODE_CASE_FOLDING = "non-ASCII case folding"
WINDASH = "windash"
TOKENIZATION = "tokenization"
WILDCARD = "wildcard"
ESCAPING = "escaping"
FIELD_TYPE = "field type"
EMULATOR_ERROR = "emulator error"
UNEXPLAINED = "unexplained"
SEMANTICS = (CASE_FOLDING, UNICODE_CASE_FOLDING, WINDASH, TOKENIZATION, WILDCARD, ESCAPING, FIELD_TYPE, EMULATOR_ERROR, UNEXPLAINED)

_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_DASHES = "".join(WINDASH_CHARACTERS[1:]) + "".join(LOOKALIKE_DASHES)
_DASH_TABLE = {ord(char): "-" for char in _DASHES}
_SPACE_TABLE = {ord(char): " " for char in WHITESPACE + QUOTES}
_WILDCARD_TABLE = {ord("*"): "x", ord("?"): "x"}
_BACKSLASH_TABLE = {ord("\\"): None}
# Characters that the query languages here treat specially inside a quoted or escaped value.
ESCAPED_CHARACTERS = frozenset(" \t\"'\\*?:()[]{}<>=!&|^~+-/")


@dataclass(frozen=True)
class Cause:
    """The semantic that differs, a sentence on how, and the rule values involved."""

    semantic: str
    detail: str
    sites: Tuple[ValueSite, ...]


def _map_strings(fields: Fields, change: Callable[[str], str]) -> dict:
    def one(value: Any) -> Any:
        if isinstance(value, str):
            return change(value)
        if isinstance(value, list):
            return [one(item) for item in value]
        return value
    return {name: one(value) for name, value in fields.items()}


NORMALISATIONS: Tuple[Tuple[str, Callable[[str], str]], ...] = (
    (CASE_FOLDING, lambda text: text.translate(_ASCII_LOWER)),
    (UNICODE_CASE_FOLDING, str.casefold),
    (WINDASH, lambda text: text.translate(_DASH_TABLE)),
    (TOKENIZATION, lambda text: text.translate(_SPACE_TABLE)),
    (WILDCARD, lambda text: text.translate(_WILDCARD_TABLE)),
    (ESCAPING, lambda text: text.translate(_BACKSLASH_TABLE)),
)


def classify(fields: Fields, rule_test: Test, target_test: Test, mapping: FieldMapping,
             sites: Sequence[ValueSite], site_tests: Sequence[Test],
             focus: Optional[ValueSite] = None) -> Cause:
    """Return the cause of a verdict that differs between the rule and the target on ``fields``.

    ``site_tests`` contains the evaluator's test of each site alone, in the order of ``sites``;
    ``focus`` is the value a generated event exercises (None for a real event).
    """
    expected = rule_test(fields)
    for semantic, change in NORMALISATIONS:
        changed = _map_strings(fields, change)
        if changed == dict(fields):
            continue
        if rule_test(changed) == target_test(changed):
            involved = _involved(fields, changed, sites, site_tests, focus, expected)
            return Cause(semantic, _detail(semantic, fields, changed, expected, mapping, involved), involved)
    involved = _involved(fields, fields, sites, site_tests, focus, expected)
    return cause_from_values(involved, mapping, expected)


def _involved(before: Fields, after: Fields, sites: Sequence[ValueSite], site_tests: Sequence[Test],
              focus: Optional[ValueSite], expected: bool) -> Tuple[ValueSite, ...]:
    """Return the rule values a divergence is about: the focus, else those the change flipped."""
    if focus is not None:
        return (focus,)
    flipped = tuple(site for site, test in zip(sites, site_tests) if test(before) != test(after))
    if flipped:
        return flipped
    if expected:
        return tuple(site for site, test in zip(sites, site_tests) if test(before))
    return ()


def _detail(semantic: str, before: Fields, after: Fields, expected: bool, mapping: FieldMapping,
            involved: Tuple[ValueSite, ...]) -> str:
    changed_chars = _changed_characters(before, after)
    if semantic == UNICODE_CASE_FOLDING:
        names = ", ".join(describe_char(char) for char in changed_chars[:3])
        if expected:
            return f"{names}: the rule folds full Unicode case (str.casefold), the target does not"
        return f"{names}: the target folds case where the rule does not"
    if semantic == CASE_FOLDING:
        types = _field_types(involved, mapping)
        if expected and types:
            return f"{types} compared case-sensitively, the rule is case-insensitive"
        if expected:
            return "the query compares case-sensitively, the rule is case-insensitive"
        return "the query folds case where the rule compares exactly"
    names = ", ".join(describe_char(char) for char in changed_chars[:3]) or "a character"
    if semantic == WINDASH:
        if expected:
            return f"{names}: the rule's windash covers it, the query does not"
        return f"{names}: the query accepts it as a dash, the rule's windash does not"
    if semantic == TOKENIZATION:
        if expected:
            return f"{names}: the query splits or compares words differently from the rule's substring match"
        return f"{names}: the query treats it as a word boundary, the rule needs the exact character"
    if semantic == WILDCARD:
        return f"{names} in the event: the query treats it differently from the rule's literal match"
    return f"{names}: escaping in the query differs from the rule's literal text"


def _changed_characters(before: Fields, after: Fields) -> List[str]:
    chars: List[str] = []
    for name, value in before.items():
        other = after.get(name)
        if isinstance(value, str) and isinstance(other, str) and value != other:
            for char in value:
                if char not in chars and char not in other:
                    chars.append(char)
    return chars


def _field_types(involved: Tuple[ValueSite, ...], mapping: FieldMapping) -> str:
    described = []
    for site in involved:
        if site.field is None or site.field not in mapping.fields:
            continue
        for name in mapping.fields[site.field]:
            kind = mapping.field_types.get(name)
            if kind and f"{name} ({kind} field)" not in described:
                described.append(f"{name} ({kind} field)")
    return ", ".join(described)


def cause_from_values(involved: Tuple[ValueSite, ...], mapping: FieldMapping, expected: bool) -> Cause:
    """Name the semantic from the rule values when no normalisation of the event explains it."""
    for site in involved:
        matcher = site.matcher
        if not isinstance(matcher, StringMatch):
            continue
        literal = "".join(part for part in matcher.patterns[0].parts if isinstance(part, str))
        if "*" in literal or "?" in literal:
            return Cause(WILDCARD, f"the value {site.label} holds a literal * or ?, which the query may read "
                                  "as a wildcard", involved)
        special = sorted({char for char in literal if char in ESCAPED_CHARACTERS})
        if special:
            names = ", ".join(repr(char) for char in special)
            return Cause(ESCAPING, f"the value {site.label} holds {names}, which the query must escape", involved)
    types = _field_types(involved, mapping)
    if types:
        return Cause(FIELD_TYPE, f"the target's field type decides the match: {types}", involved)
    verdict = "matches" if expected else "does not match"
    return Cause(UNEXPLAINED, f"the rule {verdict}; no single normalisation of the event explains the target",
                 involved)
