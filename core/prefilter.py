"""Substrings that any event a rule matches must contain, to skip events before decoding them.

``required_groups(rule)`` returns groups of needles: an event can match only when, for every group,
at least one needle occurs in the event's raw JSON text, both case-folded. The check is sound (it
never skips an event the rule would match) under these conditions, which the caller must meet:

- the raw text is JSON whose string values are the event's field values, escaped only as JSON
  escapes them (``\\"``, ``\\\\`` and control characters), with other characters written as
  themselves: no ``\\uXXXX`` escapes of printable characters (callers skip the check when the
  text holds ``\\u``), and no other encoding inside a value (XML entities, for example);
- every field value the evaluator sees appears in that text (renamed fields keep their values).

Case folding commutes with JSON escaping: ``str.casefold`` maps characters one by one and never
produces or changes a quote, a backslash or a control character.
"""

import json
from typing import List, Optional, Tuple

from core.evaluator import _expand
from core.ir import And, FieldMatch, Node, Not, Or, Selection, SigmaString, StringMatch
from core.rules import Rule

Groups = Tuple[Tuple[str, ...], ...]

# A needle made only of these characters could occur in a number's text, which the JSON and the
# evaluator may spell differently (``1e5`` and ``100000.0``); such needles constrain nothing.
_NUMBER_CHARACTERS = frozenset("0123456789.eE+-")


def required_groups(rule: Rule) -> Optional[Groups]:
    """Return the needle groups of a rule, or None when the rule admits no such pre-check."""
    groups = _groups(rule.detection)
    return tuple(groups) if groups else None


def may_match(groups: Groups, folded_raw: str) -> bool:
    """Tell whether raw text (already case-folded) contains a needle of every group."""
    for group in groups:
        for needle in group:
            if needle in folded_raw:
                break
        else:
            return False
    return True


def _groups(node: Node) -> List[Tuple[str, ...]]:
    if isinstance(node, Selection):
        return _groups(node.body)
    if isinstance(node, And):
        out: List[Tuple[str, ...]] = []
        for child in node.children:
            out.extend(_groups(child))
        return out
    if isinstance(node, Or):
        merged: List[str] = []
        for child in node.children:
            child_groups = _groups(child)
            if not child_groups:
                return []
            # One group of each alternative is enough: the alternative that matches satisfies it.
            merged.extend(min(child_groups, key=len))
        return [tuple(dict.fromkeys(merged))]
    if isinstance(node, Not):
        return []
    if isinstance(node, FieldMatch):
        return _field_groups(node)
    return []


def _field_groups(node: FieldMatch) -> List[Tuple[str, ...]]:
    per_matcher = []
    for matcher in node.matchers:
        if not isinstance(matcher, StringMatch):
            return []
        needles: List[str] = []
        for pattern in matcher.patterns:
            variants = _expand(pattern)
            if variants is None:
                return []
            for variant in variants:
                needle = _longest_literal(variant)
                if needle is None:
                    return []
                needles.append(needle)
        per_matcher.append(tuple(dict.fromkeys(needles)))
    if not per_matcher:
        return []
    if node.require_all:
        return per_matcher
    return [tuple(dict.fromkeys(needle for group in per_matcher for needle in group))]


def _longest_literal(pattern: SigmaString) -> Optional[str]:
    literals = [part for part in pattern.parts if isinstance(part, str)]
    if not literals:
        return None
    best = max(literals, key=len).casefold()
    if not best or set(best) <= _NUMBER_CHARACTERS or any(ord(char) < 0x20 for char in best):
        return None
    return json.dumps(best, ensure_ascii=False)[1:-1]
