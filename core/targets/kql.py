"""KQL (Kusto Query Language) for Microsoft Sentinel and Defender: ``<table> | where <predicate>``.

Case-insensitive Sigma strings use ``=~``, ``in~``, ``contains``, ``startswith`` and ``endswith``;
``cased`` ones the ``_cs`` forms and ``==``/``in``. ``has`` is never emitted: it matches whole terms,
so ``has " ls"`` is not ``contains " ls"``. Patterns with a ``?`` wildcard or a ``*`` inside use
``matches regex`` (RE2) with an anchored pattern. Numbers compare through ``toreal()``, so a
column that contains numbers as text compares as a number, as Sigma's evaluator does.

Kusto string columns hold ``""`` where a value is missing, so ``null`` and ``exists`` become
``isempty()``/``isnotempty()``. Keywords (values without a field) raise: ``where * has`` is the only
all-column test and it matches terms, not substrings.
"""

import re
from typing import Callable, Dict, List, Optional, Tuple, Type

from core.errors import ConversionError, UnsupportedFeatureError
from core.ir import (
    ANY, And, BoolMatch, CidrMatch, CompareMatch, ExistsMatch, FieldMatch, FieldRefMatch, Node, Not,
    NotEqualMatch, NullMatch, NumberMatch, Or, RegexMatch, Selection, SigmaString, StringMatch, ValueMatcher,
)
from core.mappings import FieldMapping
from core.rules import Rule
from core.targets.common import collapse_wildcards, conjuncts, regex_with_flags, wildcard_regex

TARGET = "kql"
# The table for a mapping that names none (the 'sigma' mapping): every table of the database.
ANY_TABLE = "union *"

# Escapes inside a double-quoted KQL string literal (Kusto documentation, "The string data type",
# section "String literals"). A verbatim literal @"..." has a single escape, "" for a quote.
STRING_ESCAPES: Dict[str, str] = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words that cannot stand bare as a column name in a predicate.
RESERVED = frozenset({
    "and", "or", "not", "in", "has", "contains", "startswith", "endswith", "matches", "between",
    "where", "true", "false", "null", "union", "let", "project", "extend", "by",
})

CASE_INSENSITIVE = {"equals": "=~", "contains": "contains", "startswith": "startswith", "endswith": "endswith"}
CASE_SENSITIVE = {"equals": "==", "contains": "contains_cs", "startswith": "startswith_cs",
                  "endswith": "endswith_cs"}
COMPARE_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def emit(node: Node, mapping: FieldMapping, rule: Rule) -> str:
    """Return the KQL for a prepared condition tree."""
    parts = conjuncts(node)
    predicate = _bare(parts[0]) if len(parts) == 1 else " and ".join(_expression(part) for part in parts)
    return f"{mapping.table or ANY_TABLE}\n| where {predicate}"


def string_literal(text: str) -> str:
    """Return ``text`` as a double-quoted KQL string, escaped from STRING_ESCAPES."""
    found = CONTROL_CHARACTERS.search(text)
    if found:
        raise ConversionError(f"the control character U+{ord(found.group()):04X} in a value cannot be "
                              f"written in a {TARGET} string literal", None, "remove it from the rule value")
    return '"' + "".join(STRING_ESCAPES.get(char, char) for char in text) + '"'


def regex_literal(pattern: str) -> str:
    """Return a regex as a verbatim string (no backslash doubling) unless it holds a line break."""
    if "\n" in pattern or "\r" in pattern:
        return string_literal(pattern)
    string_literal(pattern)  # raises on control characters
    return '@"' + pattern.replace('"', '""') + '"'


def column(name: str) -> str:
    """Return a column reference: bare when it is a plain identifier, else ['name']."""
    if IDENTIFIER.match(name) and name.lower() not in RESERVED:
        return name
    escaped = "".join({"\\": "\\\\", "'": "\\'"}.get(char, char) for char in name)
    return f"['{escaped}']"


def _expression(node: Node) -> str:
    if isinstance(node, (And, Or)) or isinstance(node, Selection) and isinstance(node.body, (And, Or)):
        return "(" + _bare(node) + ")"
    return _bare(node)


def _bare(node: Node) -> str:
    """Return a node's text without parentheses around a top-level and/or."""
    if isinstance(node, Selection):
        return _bare(node.body)
    if isinstance(node, (And, Or)):
        joiner = " and " if isinstance(node, And) else " or "
        return joiner.join(_expression(child) for child in node.children)
    if isinstance(node, Not):
        return f"not({_unwrap(_bare(node.child))})"
    if isinstance(node, FieldMatch):
        return _field(node)
    raise TypeError(f"cannot emit IR node of type {type(node).__name__}")


def _unwrap(text: str) -> str:
    """Drop one pair of parentheses that encloses the whole text."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for index, char in enumerate(tokens_outside_strings(text)):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and index < len(text) - 1:
            return text
    return text[1:-1]


def tokens_outside_strings(text: str) -> str:
    """Return ``text`` with every character inside a string literal replaced by a space."""
    out: List[str] = []
    quote: Optional[str] = None
    verbatim = False
    index = 0
    while index < len(text):
        char = text[index]
        if quote is None:
            if char in "\"'":
                quote, verbatim = char, index > 0 and text[index - 1] == "@"
            out.append(char)
        elif char == "\\" and not verbatim:
            out.append("  ")
            index += 1
        elif char == quote:
            if verbatim and text[index + 1:index + 2] == quote:
                out.append("  ")
                index += 1
            else:
                quote = None
                out.append(char)
        else:
            out.append(" ")
        index += 1
    return "".join(out)


def _field(node: FieldMatch) -> str:
    if node.field is None:
        raise UnsupportedFeatureError(
            "keyword search (values without a field) cannot be expressed exactly in kql: 'where * has' "
            "matches whole terms, not substrings", node.location, "name the field that holds the value")
    name = column(node.field)
    terms: List[str] = []
    equals: List[Tuple[bool, str]] = []
    for matcher in node.matchers:
        if isinstance(matcher, StringMatch) and not node.require_all:
            for pattern in matcher.patterns:
                pattern = collapse_wildcards(pattern)
                if pattern.is_plain and pattern.parts:
                    equals.append((matcher.cased, pattern.literal()))
                else:
                    terms.append(_pattern(name, pattern, matcher.cased))
        else:
            terms.append(_matcher(name, matcher, node))
    terms = _equalities(name, equals) + terms
    if len(terms) == 1:
        return terms[0]
    return "(" + (" and " if node.require_all else " or ").join(terms) + ")"


def _equalities(name: str, equals: List[Tuple[bool, str]]) -> List[str]:
    out: List[str] = []
    for cased in (False, True):
        values = [text for flag, text in equals if flag is cased]
        if len(values) == 1:
            out.append(f"{name} {'==' if cased else '=~'} {string_literal(values[0])}")
        elif values:
            listed = ", ".join(string_literal(value) for value in values)
            out.append(f"{name} {'in' if cased else 'in~'} ({listed})")
    return out


def _pattern(name: str, pattern: SigmaString, cased: bool) -> str:
    """Return the test for one Sigma string (already collapsed) on a column."""
    operators = CASE_SENSITIVE if cased else CASE_INSENSITIVE
    parts = pattern.parts
    if not parts:
        return f"isempty({name})"
    if parts == (ANY,):
        return f"isnotempty({name})"
    shape = _shape(parts)
    if shape is not None:
        kind, text = shape
        return f"{name} {operators[kind]} {string_literal(text)}"
    flags = "(?s)" if cased else "(?is)"
    return f"{name} matches regex {regex_literal(flags + '^' + wildcard_regex(pattern) + chr(92) + 'z')}"


def _shape(parts: Tuple[object, ...]) -> Optional[Tuple[str, str]]:
    if len(parts) == 1 and isinstance(parts[0], str):
        return "equals", parts[0]
    if len(parts) == 3 and parts[0] is ANY and parts[2] is ANY and isinstance(parts[1], str):
        return "contains", parts[1]
    if len(parts) == 2 and isinstance(parts[0], str) and parts[1] is ANY:
        return "startswith", parts[0]
    if len(parts) == 2 and parts[0] is ANY and isinstance(parts[1], str):
        return "endswith", parts[1]
    return None


def _matcher(name: str, matcher: ValueMatcher, node: FieldMatch) -> str:
    handler = HANDLERS.get(type(matcher))
    if handler is None:
        raise TypeError(f"cannot emit value matcher of type {type(matcher).__name__}")
    return handler(name, matcher, node)


def _string(name: str, matcher: StringMatch, node: FieldMatch) -> str:
    terms = [_pattern(name, collapse_wildcards(p), matcher.cased) for p in matcher.patterns]
    return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"


def _regex(name: str, matcher: RegexMatch, node: FieldMatch) -> str:
    return f"{name} matches regex {regex_literal(regex_with_flags(matcher, 're2', TARGET, node.location))}"


def _number(value: object) -> str:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConversionError(f"the number {value!r} has no {TARGET} literal", None)
        return repr(value)
    return str(value)


def _cidr(name: str, matcher: CidrMatch, node: FieldMatch) -> str:
    function = "ipv6_is_in_range" if ":" in matcher.network else "ipv4_is_in_range"
    return f"{function}({name}, {string_literal(matcher.network)})"


def _fieldref(name: str, matcher: FieldRefMatch, node: FieldMatch) -> str:
    return f"(isnotempty({name}) and {name} {'==' if matcher.cased else '=~'} {column(matcher.other)})"


def _not_equal(name: str, matcher: NotEqualMatch, node: FieldMatch) -> str:
    return f"(isnotempty({name}) and not({_matcher(name, matcher.inner, node)}))"


HANDLERS: Dict[Type[object], Callable[..., str]] = {
    StringMatch: _string,
    RegexMatch: _regex,
    NumberMatch: lambda name, m, node: f"toreal({name}) == {_number(m.value)}",
    CompareMatch: lambda name, m, node: f"toreal({name}) {COMPARE_OPERATORS[m.op]} {_number(m.value)}",
    CidrMatch: _cidr,
    NullMatch: lambda name, m, node: f"isempty({name})",
    ExistsMatch: lambda name, m, node: f"isnotempty({name})" if m.exists else f"isempty({name})",
    BoolMatch: lambda name, m, node: f"tostring({name}) =~ {string_literal('true' if m.value else 'false')}",
    FieldRefMatch: _fieldref,
    NotEqualMatch: _not_equal,
}
