"""The Elastic EQL target: one event query, ``<category> where <condition>``.

The event category comes from the mapping's ``event.category`` filter (``process`` for ECS).
Mappings whose documents carry no ECS category (``winlogbeat-raw``, ``sigma``) query ``any``,
because a category query would match none of their documents.

Case-insensitive values use ``:``, which matches with ``*`` and ``?`` wildcards ignoring case;
case-sensitive ones use ``==``, ``in`` and ``like``. EQL patterns have no escape for a literal
``*`` or ``?`` (Elasticsearch's EQL turns every ``*`` and ``?`` of a pattern into a wildcard), so a
value holding one becomes a ``regex`` with letters written as classes of both cases.

Strings follow the Elasticsearch EQL syntax reference, "Strings": double quotes, with the escapes
``\\\\``, ``\\"``, ``\\n``, ``\\r``, ``\\t`` and ``\\u{XX}`` (two to eight hex digits).
"""

import re
from typing import Any, Callable, Dict, List, Optional

from core.errors import ConversionError
from core.ir import (
    And, BoolMatch, CidrMatch, CompareMatch, ExistsMatch, FieldMatch, FieldRefMatch, Node, Not, NotEqualMatch,
    NullMatch, NumberMatch, Or, RegexMatch, Selection, SigmaString, StringMatch, ValueMatcher,
)
from core.mappings import FieldMapping
from core.rules import Rule
from core.targets.lucene import (
    NUMERIC_TYPES, STRING_TYPES, canonical_integer, pattern_to_regexp, regex_to_lucene, render_pattern,
    unwrap_group,
)

TARGET = "eql"
# String escapes of the Elasticsearch EQL syntax reference ("Strings"); other control characters
# are written as \u{XX}.
STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# EQL keywords that cannot name a field unquoted (Elasticsearch EQL syntax reference).
KEYWORDS = frozenset({
    "and", "any", "by", "false", "in", "join", "like", "maxspan", "not", "null", "of", "or", "regex",
    "runs", "sample", "sequence", "true", "until", "where", "with",
})


def emit(node: Node, mapping: FieldMapping, rule: Rule) -> str:
    """Return the rule as an EQL event query."""
    category = "any"
    for clause in mapping.filter:
        for name, value in clause:
            if name == "event.category":
                category = str(value)
    return f"{category} where {_Writer(mapping).node(node)}"


def quote_string(text: str) -> str:
    """Return text as an EQL string literal."""
    out = []
    for char in text:
        escaped = STRING_ESCAPES.get(char)
        if escaped is None and (ord(char) < 0x20 or ord(char) == 0x7F):
            escaped = "\\u{%02X}" % ord(char)
        out.append(escaped or char)
    return '"' + "".join(out) + '"'


def quote_field(name: str) -> str:
    """Return a field name, in backticks where it is not a plain dotted identifier."""
    if IDENTIFIER.fullmatch(name) and not any(part.lower() in KEYWORDS for part in name.split(".")):
        return name
    return "`" + name.replace("`", "``") + "`"


class _Writer:
    """Writes one query; holds only the mapping of this call."""

    def __init__(self, mapping: FieldMapping) -> None:
        self.mapping = mapping

    def node(self, node: Node) -> str:
        writer = _NODE_WRITERS.get(type(node))
        if writer is None:
            raise TypeError(f"target 'eql' cannot emit IR node of type {type(node).__name__}")
        return writer(self, node)

    def and_(self, node: And) -> str:
        return _group([self.node(child) for child in node.children], "and")

    def or_(self, node: Or) -> str:
        return _group([self.node(child) for child in node.children], "or")

    def not_(self, node: Not) -> str:
        return f"not ({unwrap_group(self.node(node.child))})"

    def selection(self, node: Selection) -> str:
        return self.node(node.body)

    def field(self, node: FieldMatch) -> str:
        if node.field is None:
            raise _unsupported("a keyword search (a value with no field)", node, "name the field that holds the value")
        field_type = self.mapping.field_types.get(node.field)
        if node.require_all:
            return _group([self.matcher(m, node, field_type) for m in node.matchers], "and")
        return _group(self.any_value(node, field_type), "or")

    def any_value(self, node: FieldMatch, field_type: Optional[str]) -> List[str]:
        """Return clauses of which one must hold, joining like string values into one list."""
        insensitive: List[str] = []
        exact: List[str] = []
        patterns: List[str] = []
        clauses: List[str] = []
        for matcher in node.matchers:
            if not isinstance(matcher, StringMatch) or not _is_string_field(field_type):
                clauses.append(self.matcher(matcher, node, field_type))
                continue
            for pattern in matcher.patterns:
                if _has_literal_wildcard(pattern):
                    clauses.append(self.regex_pattern(pattern, node, not matcher.cased))
                elif not matcher.cased:
                    insensitive.append(_eql_pattern(pattern))
                elif pattern.is_plain:
                    exact.append(quote_string(pattern.literal()))
                else:
                    patterns.append(_eql_pattern(pattern))
        name = quote_field(str(node.field))
        lists = [(insensitive, ":"), (exact, "=="), (patterns, "like")]
        heads = [_compare_any(name, operator, values) for values, operator in lists if values]
        return heads + clauses

    def matcher(self, matcher: ValueMatcher, node: FieldMatch, field_type: Optional[str]) -> str:
        writer = _MATCHER_WRITERS.get(type(matcher))
        if writer is None:
            raise TypeError(f"target 'eql' cannot emit value matcher of type {type(matcher).__name__}")
        return writer(self, matcher, node, field_type)

    def string(self, matcher: StringMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if not _is_string_field(field_type):
            return _group([self.typed_literal(p, node, str(field_type)) for p in matcher.patterns], "or")
        single = FieldMatch(node.field, (matcher,), False, node.location)
        return _group(self.any_value(single, field_type), "or")

    def typed_literal(self, pattern: SigmaString, node: FieldMatch, field_type: str) -> str:
        name = quote_field(str(node.field))
        text = pattern.literal() if pattern.is_plain else None
        if field_type in NUMERIC_TYPES and text is not None and canonical_integer(text):
            return f"{name} == {text}"
        if field_type == "boolean" and text is not None and text.lower() in ("true", "false"):
            return f"{name} == {text.lower()}"
        raise _unsupported(f"the string value {str(pattern)!r} on the {field_type} field '{node.field}'", node,
                           "match the field with a number, or map the rule field to a keyword field")

    def regex_pattern(self, pattern: SigmaString, node: FieldMatch, fold_case: bool) -> str:
        return f"{quote_field(str(node.field))} regex {quote_string(pattern_to_regexp(pattern, fold_case))}"

    def regex(self, matcher: RegexMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if not _is_string_field(field_type):
            raise _unsupported(f"a regular expression on the {field_type} field '{node.field}'", node)
        regexp = regex_to_lucene(matcher, TARGET, node.location)
        return f"{quote_field(str(node.field))} regex {quote_string(regexp)}"

    def number(self, matcher: NumberMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        name = quote_field(str(node.field))
        if field_type in STRING_TYPES:
            if isinstance(matcher.value, float):
                raise _unsupported(f"the decimal number {matcher.value!r} on the {field_type} field '{node.field}'",
                                   node, "match the field with an integer or a string")
            return f"{name} == {quote_string(str(matcher.value))}"
        return f"{name} == {matcher.value}"

    def compare(self, matcher: CompareMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type is not None and field_type not in NUMERIC_TYPES:
            raise _unsupported(f"a numeric comparison ({matcher.op}) on the {field_type} field '{node.field}'",
                               node, "EQL compares keyword fields as text; map the field to a number")
        operator = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[matcher.op]
        return f"{quote_field(str(node.field))} {operator} {matcher.value}"

    def cidr(self, matcher: CidrMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type is not None and field_type != "ip":
            raise _unsupported(f"a network match (cidr) on the {field_type} field '{node.field}'", node,
                               "cidrMatch works only on ip fields")
        return f"cidrMatch({quote_field(str(node.field))}, {quote_string(matcher.network)})"

    def null(self, matcher: NullMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        return f"{quote_field(str(node.field))} == null"

    def exists(self, matcher: ExistsMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        return f"{quote_field(str(node.field))} {'!=' if matcher.exists else '=='} null"

    def boolean(self, matcher: BoolMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        text = "true" if matcher.value else "false"
        if field_type == "boolean":
            return f"{quote_field(str(node.field))} == {text}"
        return f"{quote_field(str(node.field))} : {quote_string(text)}"

    def not_equal(self, matcher: NotEqualMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        inner = self.matcher(matcher.inner, node, field_type)
        return f"({quote_field(str(node.field))} != null and not ({unwrap_group(inner)}))"

    def fieldref(self, matcher: FieldRefMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        raise _unsupported(f"a comparison of two fields (fieldref '{matcher.other}')", node,
                           "Elasticsearch EQL compares a field only with literals; use the esql target")


def _is_string_field(field_type: Optional[str]) -> bool:
    return field_type is None or field_type in STRING_TYPES


def _has_literal_wildcard(pattern: SigmaString) -> bool:
    return any(isinstance(part, str) and ("*" in part or "?" in part) for part in pattern.parts)


def _eql_pattern(pattern: SigmaString) -> str:
    """Return a pattern as an EQL string whose ``*`` and ``?`` are wildcards (no literal ones)."""
    return quote_string(render_pattern(pattern, "*", "?", lambda text: text, TARGET))


def _compare_any(name: str, operator: str, values: List[str]) -> str:
    if len(values) == 1:
        return f"{name} {operator} {values[0]}"
    keyword = "in" if operator == "==" else operator
    return f"{name} {keyword} ({', '.join(values)})"


def _group(parts: List[str], operator: str) -> str:
    if len(parts) == 1:
        return parts[0]
    return "(" + f" {operator} ".join(parts) + ")"


def _unsupported(feature: str, node: Any, fix: Optional[str] = None) -> ConversionError:
    return ConversionError(f"target '{TARGET}' cannot express {feature}", getattr(node, "location", None), fix)


_NODE_WRITERS: Dict[type, Callable[[_Writer, Any], str]] = {
    And: _Writer.and_, Or: _Writer.or_, Not: _Writer.not_, Selection: _Writer.selection,
    FieldMatch: _Writer.field,
}
_MATCHER_WRITERS: Dict[type, Callable[[_Writer, Any, FieldMatch, Optional[str]], str]] = {
    StringMatch: _Writer.string, RegexMatch: _Writer.regex, NumberMatch: _Writer.number,
    CompareMatch: _Writer.compare, CidrMatch: _Writer.cidr, NullMatch: _Writer.null,
    ExistsMatch: _Writer.exists, BoolMatch: _Writer.boolean, NotEqualMatch: _Writer.not_equal,
    FieldRefMatch: _Writer.fieldref,
}
