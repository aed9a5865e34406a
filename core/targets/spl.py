"""Splunk SPL: a ``search`` over extracted fields, or ``tstats`` over a CIM data model.

Every part of the condition that the search language expresses exactly goes into ``search`` as
``field="value"`` terms. Splunk compares those after field extraction, case-insensitively, with
``*`` as the only wildcard, and a multivalue field matches when any value does. The rest goes into
``| where`` as an eval expression: a Sigma ``?`` wildcard, a literal ``*``, ``cased``, ``re``,
``cidr``, ``fieldref``, and field names with characters other than letters, digits, ``_`` and
``.``. Strings there are anchored PCRE regular expressions tested with ``mvfind``, which looks at
every value of a multivalue field. A top-level AND is split between the two commands, and any
other group that needs ``where`` goes there whole.

With a mapping that names a data model (``splunk-cim``) the query is ``| tstats ... where ...``.
tstats applies only its own search-form ``where`` before grouping, so a rule that needs an eval
expression raises ConversionError there. Keywords (values without a field) raise, because SPL
matches them against the raw event text by indexed terms, not against field values.
"""

import ipaddress
import re
from typing import Callable, Dict, List, Optional, Type

from core.errors import ConversionError, UnsupportedFeatureError
from core.ir import (
    ANY, And, BoolMatch, CidrMatch, CompareMatch, ExistsMatch, FieldMatch, FieldRefMatch, Node, Not,
    NotEqualMatch, NullMatch, NumberMatch, ONE, Or, RegexMatch, Selection, SigmaString, StringMatch,
    ValueMatcher,
)
from core.mappings import FieldMapping
from core.rules import Rule
from core.targets.common import collapse_wildcards, conjuncts, regex_with_flags, wildcard_regex

TARGET = "spl"

# Quoted strings, in search values and in eval string literals alike: a backslash escapes a
# double quote and itself (Splunk Search Manual, "Use quotes and escape characters in search";
# Search Reference, "eval", string literals). The search language has no escape for a literal
# '*', so such values go to where/mvfind instead.
QUOTED_ESCAPES: Dict[str, str] = {"\\": "\\\\", '"': '\\"'}
# Control characters other than tab, line feed and carriage return have no documented form in a
# quoted SPL string, so a value that contains one raises instead of being pasted raw.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Field names that ``search`` and tstats take bare. Eval needs single quotes around anything
# beyond letters, digits and '_', because a '.' there is the concatenation operator.
SEARCH_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
EVAL_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A value that Splunk search would read as an address range (CIDR), not as text.
CIDR_LIKE = re.compile(r"^[0-9A-Fa-f:.]+/[0-9]+$")

TSTATS_PREFIX = "| tstats summariesonly=false allow_old_summaries=true fillnull_value=\"unknown\" " \
                "count min(_time) as firstTime max(_time) as lastTime"
# Group-by fields of the CIM Endpoint.Processes dataset, as Splunk's own endpoint detections use them.
TSTATS_GROUP_BY = (
    "Processes.dest", "Processes.user", "Processes.parent_process", "Processes.process_name",
    "Processes.process", "Processes.process_id", "Processes.parent_process_id",
)


def emit(node: Node, mapping: FieldMapping, rule: Rule) -> str:
    """Return the SPL for a prepared condition tree."""
    _reject_keywords(node)
    parts = conjuncts(node)
    if mapping.table:
        return _tstats(parts, mapping)
    in_search = [part for part in parts if _searchable(part)]
    in_where = [part for part in parts if not _searchable(part)]
    search = " ".join(_search(part, allow_in=True) for part in in_search) or "*"
    query = "search " + search
    if in_where:
        query += "\n| where " + " AND ".join(_eval(part) for part in in_where)
    return query


def _tstats(parts: List[Node], mapping: FieldMapping) -> str:
    for part in parts:
        if not _searchable(part):
            feature = _eval_feature(part) or "an eval expression"
            raise ConversionError(
                f"{feature} needs an eval expression, which spl cannot apply inside tstats "
                f"(mapping '{mapping.name}')", _location(part),
                "use the splunk-sysmon or splunk-security mapping, which searches raw events")
    where = " ".join(_search(part, allow_in=False) for part in parts)
    return (f"{TSTATS_PREFIX} from datamodel={mapping.table} where {where}"
            f" by {' '.join(TSTATS_GROUP_BY)}")


def _reject_keywords(node: Node) -> None:
    for leaf in _leaves(node):
        if leaf.field is None:
            raise UnsupportedFeatureError(
                "keyword search (values without a field) cannot be expressed exactly in spl: Splunk "
                "matches bare terms against indexed segments of the raw event", leaf.location,
                "name the field that holds the value")


def _leaves(node: Node) -> List[FieldMatch]:
    if isinstance(node, FieldMatch):
        return [node]
    if isinstance(node, Selection):
        return _leaves(node.body)
    if isinstance(node, Not):
        return _leaves(node.child)
    if isinstance(node, (And, Or)):
        return [leaf for child in node.children for leaf in _leaves(child)]
    raise TypeError(f"cannot emit IR node of type {type(node).__name__}")


def _location(node: Node) -> object:
    return getattr(node, "location", None)


# Deciding between search and where.


def _searchable(node: Node) -> bool:
    return all(_leaf_searchable(leaf) for leaf in _leaves(node))


def _leaf_searchable(leaf: FieldMatch) -> bool:
    if leaf.field is None or not SEARCH_FIELD.match(leaf.field):
        return False
    return all(_matcher_searchable(matcher) for matcher in leaf.matchers)


def _matcher_searchable(matcher: ValueMatcher) -> bool:
    if isinstance(matcher, StringMatch):
        return not matcher.cased and all(_pattern_searchable(p) for p in matcher.patterns)
    if isinstance(matcher, NotEqualMatch):
        return _matcher_searchable(matcher.inner)
    return isinstance(matcher, (NumberMatch, CompareMatch, NullMatch, ExistsMatch, BoolMatch))


def _pattern_searchable(pattern: SigmaString) -> bool:
    pattern = collapse_wildcards(pattern)
    if not pattern.parts:
        return False  # an empty value: search cannot tell "" from a missing field
    for part in pattern.parts:
        if part is ONE or isinstance(part, str) and "*" in part:
            return False
    if pattern.is_plain and _cidr_like(pattern.literal()):
        return False
    return True


def _cidr_like(text: str) -> bool:
    if not CIDR_LIKE.match(text):
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _eval_feature(node: Node) -> Optional[str]:
    for leaf in _leaves(node):
        if leaf.field is not None and not SEARCH_FIELD.match(leaf.field):
            return f"field name '{leaf.field}'"
        for matcher in leaf.matchers:
            if not _matcher_searchable(matcher):
                return _feature_name(matcher)
    return None


def _feature_name(matcher: ValueMatcher) -> str:
    if isinstance(matcher, NotEqualMatch):
        return _feature_name(matcher.inner)
    if isinstance(matcher, StringMatch):
        if matcher.cased:
            return "the 'cased' modifier"
        return "a '?' wildcard, a literal '*', an empty value or an address range written as text"
    names = {RegexMatch: "the 're' modifier", CidrMatch: "the 'cidr' modifier",
             FieldRefMatch: "the 'fieldref' modifier"}
    return names.get(type(matcher), type(matcher).__name__)


# Search form.


def quote(text: str) -> str:
    """Return ``text`` as a double-quoted SPL string, escaped from QUOTED_ESCAPES."""
    found = CONTROL_CHARACTERS.search(text)
    if found:
        raise ConversionError(f"the control character U+{ord(found.group()):04X} in a value cannot be "
                              f"written in a quoted {TARGET} string", None, "remove it from the rule value")
    return '"' + "".join(QUOTED_ESCAPES.get(char, char) for char in text) + '"'


def _glob(pattern: SigmaString) -> str:
    pattern = collapse_wildcards(pattern)
    return quote("".join("*" if part is ANY else str(part) for part in pattern.parts))


def _search(node: Node, allow_in: bool) -> str:
    if isinstance(node, Selection):
        return _search(node.body, allow_in)
    if isinstance(node, And):
        return "(" + " ".join(_search(child, allow_in) for child in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_search(child, allow_in) for child in node.children) + ")"
    if isinstance(node, Not):
        inner = _search(node.child, allow_in)
        # "NOT " starts only a single negated unit here, so a double negation cancels.
        return inner[4:] if inner.startswith("NOT ") else "NOT " + inner
    if isinstance(node, FieldMatch):
        return _search_field(node, allow_in)
    raise TypeError(f"cannot emit IR node of type {type(node).__name__}")


def _search_field(leaf: FieldMatch, allow_in: bool) -> str:
    name = str(leaf.field)
    terms: List[str] = []
    globs: List[str] = []
    for matcher in leaf.matchers:
        if isinstance(matcher, StringMatch) and not leaf.require_all:
            globs.extend(_glob(p) for p in matcher.patterns)
        else:
            terms.append(_search_matcher(name, matcher, allow_in))
    if len(globs) == 1:
        terms.insert(0, f"{name}={globs[0]}")
    elif globs and allow_in:
        terms.insert(0, f"{name} IN ({', '.join(globs)})")
    elif globs:
        terms.insert(0, "(" + " OR ".join(f"{name}={glob}" for glob in globs) + ")")
    if len(terms) == 1:
        return terms[0]
    return "(" + (" " if leaf.require_all else " OR ").join(terms) + ")"


def _search_matcher(name: str, matcher: ValueMatcher, allow_in: bool) -> str:
    if isinstance(matcher, StringMatch):
        globs = [_glob(p) for p in matcher.patterns]
        if len(globs) == 1:
            return f"{name}={globs[0]}"
        if allow_in:
            return f"{name} IN ({', '.join(globs)})"
        return "(" + " OR ".join(f"{name}={glob}" for glob in globs) + ")"
    if isinstance(matcher, NumberMatch):
        return f"{name}={_number(matcher.value)}"
    if isinstance(matcher, CompareMatch):
        return f"{name}{COMPARE_OPERATORS[matcher.op]}{_number(matcher.value)}"
    if isinstance(matcher, NullMatch):
        return f"NOT {name}=*"
    if isinstance(matcher, ExistsMatch):
        return f"{name}=*" if matcher.exists else f"NOT {name}=*"
    if isinstance(matcher, BoolMatch):
        return f"{name}={quote('true' if matcher.value else 'false')}"
    if isinstance(matcher, NotEqualMatch):
        return f"({name}=* NOT {_search_matcher(name, matcher.inner, allow_in)})"
    raise TypeError(f"cannot emit value matcher of type {type(matcher).__name__} in search form")


COMPARE_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# Eval form, for | where.


def eval_field(name: str) -> str:
    """Return a field reference for an eval expression, single-quoted where needed."""
    if EVAL_FIELD.match(name):
        return name
    if "'" in name or "\\" in name:
        raise ConversionError(f"field name {name!r} cannot be written in a {TARGET} eval expression", None,
                              "rename the field in the mapping")
    return f"'{name}'"


def _eval(node: Node) -> str:
    if isinstance(node, Selection):
        return _eval(node.body)
    if isinstance(node, And):
        return "(" + " AND ".join(_eval(child) for child in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_eval(child) for child in node.children) + ")"
    if isinstance(node, Not):
        return "NOT " + _eval(node.child)
    if isinstance(node, FieldMatch):
        field = eval_field(str(node.field))
        terms = [_eval_matcher(field, matcher, node) for matcher in node.matchers]
        if len(terms) == 1:
            return terms[0]
        return "(" + (" AND " if node.require_all else " OR ").join(terms) + ")"
    raise TypeError(f"cannot emit IR node of type {type(node).__name__}")


def _mvfind(field: str, regex: str) -> str:
    return f"isnotnull(mvfind({field}, {quote(regex)}))"


def _eval_string(field: str, matcher: StringMatch, node: FieldMatch) -> str:
    bodies = [wildcard_regex(collapse_wildcards(p)) for p in matcher.patterns]
    body = bodies[0] if len(bodies) == 1 else "(?:" + "|".join(bodies) + ")"
    flags = "(?s)" if matcher.cased else "(?is)"
    return _mvfind(field, flags + "^" + body + "\\z")


def _eval_regex(field: str, matcher: RegexMatch, node: FieldMatch) -> str:
    return _mvfind(field, regex_with_flags(matcher, "pcre", TARGET, node.location))


def _eval_matcher(field: str, matcher: ValueMatcher, node: FieldMatch) -> str:
    handler = EVAL_HANDLERS.get(type(matcher))
    if handler is None:
        raise TypeError(f"cannot emit value matcher of type {type(matcher).__name__}")
    return handler(field, matcher, node)


def _eval_number(field: str, op: str, value: object) -> str:
    # The isnotnull() guard keeps the result true or false, never null, so that NOT around it
    # keeps Sigma's meaning for a field that is missing or not a number.
    return f"(isnotnull(tonumber({field})) AND tonumber({field}){op}{_number(value)})"


def _eval_not_equal(field: str, matcher: NotEqualMatch, node: FieldMatch) -> str:
    return f"(isnotnull({field}) AND NOT {_eval_matcher(field, matcher.inner, node)})"


def _eval_fieldref(field: str, matcher: FieldRefMatch, node: FieldMatch) -> str:
    other = eval_field(matcher.other)
    guard = f"isnotnull({field}) AND isnotnull({other})"
    if matcher.cased:
        return f"({guard} AND {field}=={other})"
    return f"({guard} AND lower({field})==lower({other}))"


EVAL_HANDLERS: Dict[Type[object], Callable[..., str]] = {
    StringMatch: _eval_string,
    RegexMatch: _eval_regex,
    NumberMatch: lambda field, m, node: _eval_number(field, "==", m.value),
    CompareMatch: lambda field, m, node: _eval_number(field, COMPARE_OPERATORS[m.op], m.value),
    CidrMatch: lambda field, m, node: f"(isnotnull({field}) AND cidrmatch({quote(m.network)}, {field}))",
    NullMatch: lambda field, m, node: f"isnull({field})",
    ExistsMatch: lambda field, m, node: f"isnotnull({field})" if m.exists else f"isnull({field})",
    BoolMatch: lambda field, m, node: _mvfind(field, "(?i)^" + ("true" if m.value else "false") + "\\z"),
    FieldRefMatch: _eval_fieldref,
    NotEqualMatch: _eval_not_equal,
}

