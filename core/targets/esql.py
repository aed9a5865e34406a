"""The ES|QL target: ``FROM <indices> | WHERE <condition>``.

ES|QL compares strings case-sensitively. By default (``lowercase=True``) a case-insensitive Sigma
value is compared with ``TO_LOWER(field)`` against the value lowered by Python's ``str.lower``,
which lowers as Java's ``String.toLowerCase`` does for all but a few characters. With
``lowercase=False`` the value is compared as written; that variant exists so that the portability
report can show the case divergence.

ES|QL has three-valued logic: a comparison on a missing (null) field is null, and ``NOT null`` is
null, so the row is dropped. Sigma treats such a comparison as false, so under ``NOT`` each field's
comparisons are guarded with ``field IS NOT NULL AND ...``. A multivalued field makes most
comparisons null (Elasticsearch ES|QL reference, "Multivalued fields"), which this target does
not work around.

Strings follow the ES|QL syntax reference: double quotes with the escapes ``\\\\``, ``\\"``,
``\\n``, ``\\r`` and ``\\t``. ``LIKE`` patterns take ``*`` and ``?`` as wildcards and ``\\`` as
their escape, inside the string escaping.
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
    NUMERIC_TYPES, STRING_TYPES, canonical_integer, regex_to_lucene, render_pattern, unwrap_group,
)

TARGET = "esql"
# String escapes of the ES|QL syntax reference ("Literals"), and the LIKE operator's own escapes
# (ES|QL reference, "LIKE"): a backslash before *, ? or itself makes it literal.
STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
LIKE_ESCAPES = {"\\": "\\\\", "*": "\\*", "?": "\\?"}
IDENTIFIER = re.compile(r"[A-Za-z_@][A-Za-z0-9_@]*(\.[A-Za-z_@][A-Za-z0-9_@]*)*")
# Words that ES|QL reads as keywords or literals wherever they stand, so a field of that name
# needs backticks.
KEYWORDS = frozenset({
    "and", "as", "asc", "by", "desc", "false", "first", "from", "in", "is", "last", "like", "limit",
    "metadata", "not", "null", "nulls", "on", "or", "rlike", "true", "where", "with",
})
# The indices each mapping's documents live in, when the caller names none.
DEFAULT_INDICES = {"ecs": "logs-*", "winlogbeat-raw": "winlogbeat-*"}


def emit(node: Node, mapping: FieldMapping, rule: Rule, lowercase: bool = True,
         indices: Optional[str] = None) -> str:
    """Return the rule as an ES|QL query; ``lowercase=False`` compares values in their written case."""
    source = indices or DEFAULT_INDICES.get(mapping.name, "*")
    return f"FROM {source} | WHERE {unwrap_group(_Writer(mapping, lowercase).node(node, False))}"


def quote_string(text: str) -> str:
    """Return text as an ES|QL string literal."""
    return '"' + "".join(STRING_ESCAPES.get(char, char) for char in text) + '"'


def quote_field(name: str) -> str:
    """Return a field name, in backticks where it is not a plain dotted identifier."""
    if IDENTIFIER.fullmatch(name) and not any(part.lower() in KEYWORDS for part in name.split(".")):
        return name
    return "`" + name.replace("`", "``") + "`"


def like_pattern(pattern: SigmaString, lower: bool) -> str:
    """Return a Sigma pattern as the text of a LIKE pattern (before string escaping)."""
    def literal(text: str) -> str:
        text = text.lower() if lower else text
        return "".join(LIKE_ESCAPES.get(char, char) for char in text)

    return render_pattern(pattern, "*", "?", literal, TARGET)


class _Writer:
    """Writes one query; holds only the mapping and the lowercase option of this call."""

    def __init__(self, mapping: FieldMapping, lowercase: bool) -> None:
        self.mapping = mapping
        self.lowercase = lowercase

    def node(self, node: Node, negated: bool) -> str:
        """Write a node; ``negated`` is true under a NOT, where comparisons need null guards."""
        writer = _NODE_WRITERS.get(type(node))
        if writer is None:
            raise TypeError(f"target 'esql' cannot emit IR node of type {type(node).__name__}")
        return writer(self, node, negated)

    def and_(self, node: And, negated: bool) -> str:
        return _group([self.node(child, negated) for child in node.children], "AND")

    def or_(self, node: Or, negated: bool) -> str:
        return _group([self.node(child, negated) for child in node.children], "OR")

    def not_(self, node: Not, negated: bool) -> str:
        return f"NOT ({unwrap_group(self.node(node.child, True))})"

    def selection(self, node: Selection, negated: bool) -> str:
        return self.node(node.body, negated)

    def field(self, node: FieldMatch, negated: bool) -> str:
        if node.field is None:
            raise _unsupported("a keyword search (a value with no field)", node, "name the field that holds the value")
        field_type = self.mapping.field_types.get(node.field)
        parts: List[str] = []
        for matcher in node.matchers:
            if isinstance(matcher, StringMatch) and not node.require_all:
                parts.extend(self.string_parts(matcher, node, field_type))
            else:
                parts.append(self.matcher(matcher, node, field_type))
        condition = _group(parts, "AND" if node.require_all else "OR")
        nullable = any(not isinstance(m, (NullMatch, ExistsMatch, NotEqualMatch)) for m in node.matchers)
        if not negated or not nullable:
            return condition
        guards = [f"{quote_field(str(node.field))} IS NOT NULL"]
        guards.extend(f"{quote_field(self.other_field(m, node))} IS NOT NULL"
                      for m in node.matchers if isinstance(m, FieldRefMatch))
        return _group(guards + [condition], "AND")

    def matcher(self, matcher: ValueMatcher, node: FieldMatch, field_type: Optional[str]) -> str:
        writer = _MATCHER_WRITERS.get(type(matcher))
        if writer is None:
            raise TypeError(f"target 'esql' cannot emit value matcher of type {type(matcher).__name__}")
        return writer(self, matcher, node, field_type)

    def string(self, matcher: StringMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        return _group(self.string_parts(matcher, node, field_type), "OR")

    def string_parts(self, matcher: StringMatch, node: FieldMatch, field_type: Optional[str]) -> List[str]:
        """Return one comparison per pattern of a string value (plain ones joined by IN)."""
        name = quote_field(str(node.field))
        if field_type is not None and field_type not in STRING_TYPES:
            return [self.typed_literal(p, node, field_type) for p in matcher.patterns]
        lower = self.lowercase and not matcher.cased
        subject = f"TO_LOWER({name})" if lower else name
        plain = [quote_string(p.literal().lower() if lower else p.literal()) for p in matcher.patterns if p.is_plain]
        parts = []
        if len(plain) == 1:
            parts.append(f"{subject} == {plain[0]}")
        elif plain:
            parts.append(f"{subject} IN ({', '.join(plain)})")
        for pattern in matcher.patterns:
            if not pattern.is_plain:
                parts.append(f"{subject} LIKE {quote_string(like_pattern(pattern, lower))}")
        return parts

    def typed_literal(self, pattern: SigmaString, node: FieldMatch, field_type: str) -> str:
        name = quote_field(str(node.field))
        text = pattern.literal() if pattern.is_plain else None
        if field_type in NUMERIC_TYPES and text is not None and canonical_integer(text):
            return f"{name} == {text}"
        if field_type == "boolean" and text is not None and text.lower() in ("true", "false"):
            return f"{name} == {text.lower()}"
        raise _unsupported(f"the string value {str(pattern)!r} on the {field_type} field '{node.field}'", node,
                           "match the field with a number, or map the rule field to a keyword field")

    def regex(self, matcher: RegexMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type is not None and field_type not in STRING_TYPES:
            raise _unsupported(f"a regular expression on the {field_type} field '{node.field}'", node)
        regexp = regex_to_lucene(matcher, TARGET, node.location)
        return f"{quote_field(str(node.field))} RLIKE {quote_string(regexp)}"

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
                               node, "ES|QL compares keyword fields as text; map the field to a number")
        operator = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[matcher.op]
        return f"{quote_field(str(node.field))} {operator} {matcher.value}"

    def cidr(self, matcher: CidrMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type is not None and field_type != "ip":
            raise _unsupported(f"a network match (cidr) on the {field_type} field '{node.field}'", node,
                               "CIDR_MATCH works only on ip fields")
        return f"CIDR_MATCH({quote_field(str(node.field))}, {quote_string(matcher.network)})"

    def null(self, matcher: NullMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        return f"{quote_field(str(node.field))} IS NULL"

    def exists(self, matcher: ExistsMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        return f"{quote_field(str(node.field))} IS {'NOT NULL' if matcher.exists else 'NULL'}"

    def boolean(self, matcher: BoolMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        text = "true" if matcher.value else "false"
        if field_type == "boolean":
            return f"{quote_field(str(node.field))} == {text}"
        return self.string(StringMatch((SigmaString((text,)),)), node, field_type)

    def not_equal(self, matcher: NotEqualMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        name = quote_field(str(node.field))
        inner = self.matcher(matcher.inner, node, field_type)
        return f"({name} IS NOT NULL AND NOT ({unwrap_group(inner)}))"

    def other_field(self, matcher: FieldRefMatch, node: FieldMatch) -> str:
        """Return the platform name of the field that ``fieldref`` compares with."""
        names = self.mapping.target_fields(matcher.other, node.location)
        if len(names) > 1:
            raise _unsupported(f"fieldref to '{matcher.other}', which the mapping splits over {len(names)} fields",
                               node)
        return names[0]

    def fieldref(self, matcher: FieldRefMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        left, right = quote_field(str(node.field)), quote_field(self.other_field(matcher, node))
        if self.lowercase and not matcher.cased:
            return f"TO_LOWER({left}) == TO_LOWER({right})"
        return f"{left} == {right}"


def _group(parts: List[str], operator: str) -> str:
    if len(parts) == 1:
        return parts[0]
    return "(" + f" {operator} ".join(parts) + ")"


def _unsupported(feature: str, node: Any, fix: Optional[str] = None) -> ConversionError:
    return ConversionError(f"target '{TARGET}' cannot express {feature}", getattr(node, "location", None), fix)


_NODE_WRITERS: Dict[type, Callable[[_Writer, Any, bool], str]] = {
    And: _Writer.and_, Or: _Writer.or_, Not: _Writer.not_, Selection: _Writer.selection,
    FieldMatch: _Writer.field,
}
_MATCHER_WRITERS: Dict[type, Callable[[_Writer, Any, FieldMatch, Optional[str]], str]] = {
    StringMatch: _Writer.string, RegexMatch: _Writer.regex, NumberMatch: _Writer.number,
    CompareMatch: _Writer.compare, CidrMatch: _Writer.cidr, NullMatch: _Writer.null,
    ExistsMatch: _Writer.exists, BoolMatch: _Writer.boolean, NotEqualMatch: _Writer.not_equal,
    FieldRefMatch: _Writer.fieldref,
}
