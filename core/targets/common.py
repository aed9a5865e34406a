"""The steps every target shares before emission: field mapping, logsource filter, windash expansion."""

import itertools
from typing import Any, List, Tuple

from core.errors import MappingError
from core.ir import (
    DASH, WINDASH_CHARACTERS, And, ExistsMatch, FieldMatch, Node, Not, NotEqualMatch, NullMatch, NumberMatch,
    Or, Selection, SigmaString, StringMatch, ValueMatcher,
)
from core.mappings import FieldMapping
from core.rules import Rule

# A value with more windash placeholders than this expands into 5**n strings; pySigma rejects
# more than three such dashes in one value, and so do the targets here.
MAX_WINDASH_PLACEHOLDERS = 3


def prepare(rule: Rule, mapping: FieldMapping, target: str) -> Node:
    """Return the rule's detection on the mapping's field names, behind its logsource filter.

    Raises MappingError when the mapping does not suit the target language or the rule's category,
    or when a rule field has no mapping. Windash placeholders are expanded into plain strings.
    """
    if target not in mapping.languages:
        raise MappingError(f"mapping '{mapping.name}' is not for target '{target}'", None,
                           f"use a mapping for {target}, or 'sigma'")
    category = rule.logsource.category
    if mapping.categories is not None and category not in mapping.categories:
        raise MappingError(
            f"mapping '{mapping.name}' covers {', '.join(mapping.categories)} events, "
            f"not the rule's category '{category}'", None, "use the 'sigma' mapping for this rule")
    detection = map_fields(rule.detection, mapping)
    detection = expand_windash(detection)
    filter_node = filter_node_for(mapping)
    if filter_node is None:
        return detection
    return And((filter_node, detection))


def filter_node_for(mapping: FieldMapping) -> Any:
    """Return the mapping's logsource filter as IR, or None when it has none."""
    clauses: List[Node] = []
    for clause in mapping.filter:
        options = tuple(FieldMatch(name, (_literal_matcher(value),)) for name, value in clause)
        clauses.append(options[0] if len(options) == 1 else Or(options))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else And(tuple(clauses))


def _literal_matcher(value: Any) -> ValueMatcher:
    if isinstance(value, int):
        return NumberMatch(value)
    return StringMatch((SigmaString((str(value),)),))


def map_fields(node: Node, mapping: FieldMapping) -> Node:
    """Rename the fields of an IR tree to the mapping's names."""
    if isinstance(node, Selection):
        return Selection(node.name, map_fields(node.body, mapping), node.location)
    if isinstance(node, And):
        return And(tuple(map_fields(child, mapping) for child in node.children), node.location)
    if isinstance(node, Or):
        return Or(tuple(map_fields(child, mapping) for child in node.children), node.location)
    if isinstance(node, Not):
        return Not(map_fields(node.child, mapping), node.location)
    if isinstance(node, FieldMatch):
        if node.field is None:
            return node
        names = mapping.target_fields(node.field, node.location)
        renamed = [FieldMatch(name, node.matchers, node.require_all, node.location) for name in names]
        if len(renamed) == 1:
            return renamed[0]
        # A field that lives under several names (XML and classic text) is present under one of
        # them at most: a positive match may hit either, an absence needs both.
        absent = all(isinstance(m, (NullMatch, NotEqualMatch)) or isinstance(m, ExistsMatch) and not m.exists
                     for m in node.matchers)
        return And(tuple(renamed), node.location) if absent else Or(tuple(renamed), node.location)
    raise TypeError(f"cannot map IR node of type {type(node).__name__}")


def expand_windash(node: Node) -> Node:
    """Replace every windash placeholder by its five characters, as separate string patterns."""
    if isinstance(node, Selection):
        return Selection(node.name, expand_windash(node.body), node.location)
    if isinstance(node, And):
        return And(tuple(expand_windash(child) for child in node.children), node.location)
    if isinstance(node, Or):
        return Or(tuple(expand_windash(child) for child in node.children), node.location)
    if isinstance(node, Not):
        return Not(expand_windash(node.child), node.location)
    if isinstance(node, FieldMatch):
        matchers = tuple(_expand_matcher(m, node) for m in node.matchers)
        return FieldMatch(node.field, matchers, node.require_all, node.location)
    raise TypeError(f"cannot expand IR node of type {type(node).__name__}")


def _expand_matcher(matcher: ValueMatcher, node: FieldMatch) -> ValueMatcher:
    if isinstance(matcher, NotEqualMatch):
        return NotEqualMatch(_expand_matcher(matcher.inner, node))
    if not isinstance(matcher, StringMatch):
        return matcher
    patterns: List[SigmaString] = []
    for pattern in matcher.patterns:
        patterns.extend(expand_pattern(pattern, node))
    return StringMatch(tuple(patterns), matcher.cased)


def expand_pattern(pattern: SigmaString, node: Any = None) -> Tuple[SigmaString, ...]:
    """Expand one pattern's windash placeholders into 5**n plain patterns."""
    count = sum(1 for part in pattern.parts if part is DASH)
    if count == 0:
        return (pattern,)
    if count > MAX_WINDASH_PLACEHOLDERS:
        from core.errors import UnsupportedFeatureError

        raise UnsupportedFeatureError(
            f"windash on a value with {count} dashes ({5 ** count} variants; at most "
            f"{MAX_WINDASH_PLACEHOLDERS} dashes are expanded)", getattr(node, "location", None),
            "split the value into several shorter values")
    variants = []
    for dashes in itertools.product(WINDASH_CHARACTERS, repeat=count):
        chosen = iter(dashes)
        merged: List[Any] = []
        for part in pattern.parts:
            part = next(chosen) if part is DASH else part
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        variants.append(SigmaString(tuple(merged)))
    return tuple(variants)
