"""The Elasticsearch Query DSL target: the ``query`` clause of a search request, as JSON text.

The output is always a ``bool`` query. Case-insensitive Sigma values become ``term``, ``prefix``
and ``wildcard`` queries with ``"case_insensitive": true`` (Elasticsearch 7.10 and later), so the
query keeps Sigma's case-insensitivity on ``keyword`` and ``wildcard`` fields. Elasticsearch
releases before July 2026 fold only ASCII letters in such queries, and the emulator models that.
Later releases use Unicode case folding (elastic/elasticsearch pull request 153513).

Each selection becomes a ``bool`` query with ``_name`` set to the selection's name, so a search
response lists the selections that matched in ``matched_queries``.
"""

import json
from typing import Any, Callable, Dict, List, Optional

from core.errors import ConversionError
from core.ir import (
    ANY, And, BoolMatch, CidrMatch, CompareMatch, ExistsMatch, FieldMatch, FieldRefMatch, Node, Not,
    NotEqualMatch, NullMatch, NumberMatch, Or, RegexMatch, Selection, SigmaString, StringMatch, ValueMatcher,
)
from core.mappings import FieldMapping
from core.rules import Rule
from core.targets.lucene import NUMERIC_TYPES, STRING_TYPES, canonical_integer, regex_to_lucene, render_pattern

TARGET = "dsl"
Query = Dict[str, Any]

# Characters that a ``wildcard`` query value treats as special, escaped with a backslash
# (Elasticsearch Query DSL reference, "Wildcard query": ``*``, ``?`` and the escape character).
WILDCARD_ESCAPES = {"*": "\\*", "?": "\\?", "\\": "\\\\"}


def emit(node: Node, mapping: FieldMapping, rule: Rule) -> str:
    """Return the rule's ``query`` clause (a ``bool`` query) as JSON text."""
    query = _build(node, mapping)
    if "bool" not in query:
        query = {"bool": {"filter": [query]}}
    return json.dumps(query, ensure_ascii=False)


def build_query(node: Node, mapping: FieldMapping) -> Query:
    """Return the Query DSL for a prepared IR node as a Python dict."""
    return _build(node, mapping)


def _build(node: Node, mapping: FieldMapping) -> Query:
    builder = _NODE_BUILDERS.get(type(node))
    if builder is None:
        raise TypeError(f"target 'dsl' cannot emit IR node of type {type(node).__name__}")
    return builder(node, mapping)


def _and(node: And, mapping: FieldMapping) -> Query:
    return {"bool": {"filter": [_build(child, mapping) for child in node.children]}}


def _or(node: Or, mapping: FieldMapping) -> Query:
    return _any_of([_build(child, mapping) for child in node.children])


def _not(node: Not, mapping: FieldMapping) -> Query:
    return {"bool": {"must_not": [_build(node.child, mapping)]}}


def _selection(node: Selection, mapping: FieldMapping) -> Query:
    body = _build(node.body, mapping)
    if "bool" in body and "_name" not in body["bool"]:
        return {"bool": {**body["bool"], "_name": node.name}}
    return {"bool": {"filter": [body], "_name": node.name}}


def _any_of(queries: List[Query]) -> Query:
    """Return a bool query that needs one of ``queries``, lifting the clauses of nested ones."""
    if len(queries) == 1:
        return queries[0]
    flat: List[Query] = []
    for query in queries:
        body = query.get("bool")
        if body is not None and set(body) == {"should", "minimum_should_match"} and body["minimum_should_match"] == 1:
            flat.extend(body["should"])
        else:
            flat.append(query)
    return {"bool": {"should": flat, "minimum_should_match": 1}}


def _field(node: FieldMatch, mapping: FieldMapping) -> Query:
    if node.field is None:
        raise _unsupported("a keyword search (a value with no field)", node,
                           "name the field that holds the value")
    field_type = mapping.field_types.get(node.field)
    if node.require_all:
        queries = [_matcher(matcher, node, field_type) for matcher in node.matchers]
        return queries[0] if len(queries) == 1 else {"bool": {"filter": queries}}
    # Case-sensitive plain values of one field share a single terms query.
    exact: List[str] = []
    queries = []
    for matcher in node.matchers:
        if isinstance(matcher, StringMatch) and matcher.cased and field_type in (None, *STRING_TYPES):
            exact.extend(pattern.literal() for pattern in matcher.patterns if pattern.is_plain)
            rest = tuple(pattern for pattern in matcher.patterns if not pattern.is_plain)
            if not rest:
                continue
            matcher = StringMatch(rest, cased=True)
        queries.append(_matcher(matcher, node, field_type))
    if len(exact) == 1:
        queries.insert(0, _term(str(node.field), exact[0], False))
    elif exact:
        queries.insert(0, {"terms": {str(node.field): exact}})
    return _any_of(queries)


def _matcher(matcher: ValueMatcher, node: FieldMatch, field_type: Optional[str]) -> Query:
    builder = _MATCHER_BUILDERS.get(type(matcher))
    if builder is None:
        raise TypeError(f"target 'dsl' cannot emit value matcher of type {type(matcher).__name__}")
    return builder(matcher, node, field_type)


def _string(matcher: StringMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    name = str(node.field)
    if field_type is not None and field_type not in STRING_TYPES:
        return _any_of([_string_on_typed_field(pattern, node, field_type) for pattern in matcher.patterns])
    plain = [pattern.literal() for pattern in matcher.patterns if pattern.is_plain]
    queries: List[Query] = []
    if matcher.cased and len(plain) > 1:
        queries.append({"terms": {name: plain}})
    else:
        queries.extend(_term(name, value, not matcher.cased) for value in plain)
    for pattern in matcher.patterns:
        if not pattern.is_plain:
            queries.append(_pattern_query(name, pattern, not matcher.cased))
    return _any_of(queries)


def _term(name: str, value: Any, case_insensitive: bool) -> Query:
    body: Dict[str, Any] = {"value": value}
    if case_insensitive:
        body["case_insensitive"] = True
    return {"term": {name: body}}


def _pattern_query(name: str, pattern: SigmaString, case_insensitive: bool) -> Query:
    """Return a ``prefix`` query for ``text*`` and a ``wildcard`` query for any other pattern."""
    parts = pattern.parts
    kind = "wildcard"
    if len(parts) == 2 and isinstance(parts[0], str) and parts[1] is ANY:
        kind, value = "prefix", parts[0]
    else:
        value = wildcard_value(pattern)
    body: Dict[str, Any] = {"value": value}
    if case_insensitive:
        body["case_insensitive"] = True
    return {kind: {name: body}}


def wildcard_value(pattern: SigmaString) -> str:
    """Return a Sigma pattern as a ``wildcard`` query value, literal text escaped."""
    def literal(text: str) -> str:
        return "".join(WILDCARD_ESCAPES.get(char, char) for char in text)

    return render_pattern(pattern, "*", "?", literal, TARGET)


def _string_on_typed_field(pattern: SigmaString, node: FieldMatch, field_type: str) -> Query:
    """Return a term query for a string value on a numeric or boolean field, where exact."""
    name = str(node.field)
    text = pattern.literal() if pattern.is_plain else None
    if field_type in NUMERIC_TYPES and text is not None and canonical_integer(text):
        return {"term": {name: int(text)}}
    if field_type == "boolean" and text is not None and text.lower() in ("true", "false"):
        return {"term": {name: text.lower() == "true"}}
    raise _unsupported(f"the string value {str(pattern)!r} on the {field_type} field '{name}'", node,
                       "match the field with a number, or map the rule field to a keyword field")


def _regex(matcher: RegexMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    _require_string_field(node, field_type, "a regular expression")
    body: Dict[str, Any] = {"value": regex_to_lucene(matcher, TARGET, node.location), "flags": "ALL"}
    if matcher.ignore_case:
        body["case_insensitive"] = True
    return {"regexp": {str(node.field): body}}


def _number(matcher: NumberMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    value: Any = matcher.value
    if field_type in STRING_TYPES:
        # A keyword field indexes the number as text. A number written in another way (1.0, 01)
        # is a different term, so only the canonical text is exact.
        if isinstance(value, float):
            raise _unsupported(f"the decimal number {value!r} on the {field_type} field '{node.field}'", node,
                               "match the field with an integer or a string")
        value = str(value)
    return {"term": {str(node.field): value}}


def _compare(matcher: CompareMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    if field_type is not None and field_type not in NUMERIC_TYPES:
        raise _unsupported(f"a numeric comparison ({matcher.op}) on the {field_type} field '{node.field}'",
                           node, "Elasticsearch compares keyword fields as text; map the field to a number")
    return {"range": {str(node.field): {matcher.op: matcher.value}}}


def _cidr(matcher: CidrMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    if field_type is not None and field_type != "ip":
        raise _unsupported(f"a network match (cidr) on the {field_type} field '{node.field}'", node,
                           "Elasticsearch matches networks only on ip fields")
    return {"term": {str(node.field): matcher.network}}


def _null(matcher: NullMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    return {"bool": {"must_not": [{"exists": {"field": str(node.field)}}]}}


def _exists(matcher: ExistsMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    query: Query = {"exists": {"field": str(node.field)}}
    return query if matcher.exists else {"bool": {"must_not": [query]}}


def _bool(matcher: BoolMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    if field_type == "boolean":
        return {"term": {str(node.field): matcher.value}}
    return _term(str(node.field), "true" if matcher.value else "false", True)


def _not_equal(matcher: NotEqualMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    inner = _matcher(matcher.inner, node, field_type)
    return {"bool": {"filter": [{"exists": {"field": str(node.field)}}], "must_not": [inner]}}


def _fieldref(matcher: FieldRefMatch, node: FieldMatch, field_type: Optional[str]) -> Query:
    raise _unsupported(f"a comparison of two fields (fieldref '{matcher.other}')", node,
                       "the Query DSL compares fields only in script queries; use the esql target")


def _require_string_field(node: FieldMatch, field_type: Optional[str], feature: str) -> None:
    if field_type is not None and field_type not in STRING_TYPES:
        raise _unsupported(f"{feature} on the {field_type} field '{node.field}'", node)


def _unsupported(feature: str, node: Any, fix: Optional[str] = None) -> ConversionError:
    return ConversionError(f"target '{TARGET}' cannot express {feature}", getattr(node, "location", None), fix)


_NODE_BUILDERS: Dict[type, Callable[[Any, FieldMapping], Query]] = {
    And: _and, Or: _or, Not: _not, Selection: _selection, FieldMatch: _field,
}
_MATCHER_BUILDERS: Dict[type, Callable[[Any, FieldMatch, Optional[str]], Query]] = {
    StringMatch: _string, RegexMatch: _regex, NumberMatch: _number, CompareMatch: _compare,
    CidrMatch: _cidr, NullMatch: _null, ExistsMatch: _exists, BoolMatch: _bool,
    NotEqualMatch: _not_equal, FieldRefMatch: _fieldref,
}
