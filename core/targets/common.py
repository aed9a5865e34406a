"""The steps every target shares before emission: field mapping, logsource filter, windash expansion."""

import itertools
import re
from typing import Any, List, Tuple

from core.errors import MappingError, UnsupportedFeatureError
from core.ir import (
    ANY, DASH, ONE, WINDASH_CHARACTERS, And, ExistsMatch, FieldMatch, Node, Not, NotEqualMatch, NullMatch, NumberMatch,
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
    try:
        detection = map_fields(rule.detection, mapping)
        detection = expand_windash(detection)
    except (MappingError, UnsupportedFeatureError) as error:
        # Name the target too, so that a refusal over a whole corpus says where it applies.
        raise type(error)(f"{error.message} (target '{target}')", error.location, error.fix) from None
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


# Characters that have a meaning outside a character class in PCRE (Splunk's match() and mvfind())
# and in RE2 (KQL's matches regex); a backslash before any of them makes it literal in both.
REGEX_METACHARACTERS = frozenset("\\.^$|?*+()[]{}")


def wildcard_regex(pattern: SigmaString) -> str:
    """Return an unanchored PCRE and RE2 regex for a Sigma string whose windash is expanded."""
    out: List[str] = []
    for part in pattern.parts:
        if part is ANY:
            out.append(".*")
        elif part is ONE:
            out.append(".")
        elif isinstance(part, str):
            out.extend("\\" + char if char in REGEX_METACHARACTERS else char for char in part)
        else:
            raise TypeError(f"unexpanded placeholder {part!r} in a pattern")
    return "".join(out)


def collapse_wildcards(pattern: SigmaString) -> SigmaString:
    """Merge runs of ``*`` and adjacent literal text, which changes no match."""
    merged: List[Any] = []
    for part in pattern.parts:
        if part is ANY and merged and merged[-1] is ANY:
            continue
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        elif part != "":
            merged.append(part)
    return SigmaString(tuple(merged))


REGEX_DIALECTS = ("pcre", "re2")
# Inline flags that Python, PCRE and RE2 read the same way.
SHARED_REGEX_FLAGS = frozenset("ims")


def translate_regex(pattern: str, dialect: str, target: str, location: Any = None, multiline: bool = False) -> str:
    """Rewrite a Sigma ``re`` value (Python ``re`` syntax) for PCRE or RE2, keeping its meaning.

    Rewrites ``\\Z`` to ``\\z``, ``{,n}`` to ``{0,n}`` and ``\\uXXXX`` to ``\\x{XXXX}``. For RE2 a
    ``$`` that ends the pattern or a branch becomes ``(?:\\n?\\z)``, because RE2's ``$`` never matches
    before a final newline. Raises UnsupportedFeatureError, naming the construct and the target,
    for what the dialect lacks (RE2: lookaround, backreferences, atomic groups, possessive
    quantifiers, comments) or reads differently (POSIX classes inside brackets).
    """
    from core.errors import UnsupportedFeatureError

    def reject(feature: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(f"{feature} in a regular expression cannot be expressed in {target}",
                                       location, "rewrite the 're' value without it")

    # Python accepts global inline flags only at the start of a pattern.
    leading = re.match(r"\(\?([a-zA-Z]+)\)", pattern)
    multiline = multiline or bool(leading and "m" in leading.group(1))
    out: List[str] = []
    index, size, in_class = 0, len(pattern), False
    while index < size:
        char = pattern[index]
        if char == "\\" and index + 1 < size:
            escape, index = _translate_escape(pattern, index, dialect, reject)
            out.append(escape)
            continue
        if in_class:
            if char == "[" and pattern[index + 1:index + 2] in (":", ".", "="):
                raise reject("a POSIX class such as [:alpha:] inside brackets")
            if char == "]":
                in_class = False
            out.append(char)
            index += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            index += 1
            # A ']' right after '[' or '[^' is a literal member in all three dialects.
            for lead in ("^", "]"):
                if pattern[index:index + 1] == lead:
                    out.append(lead)
                    index += 1
            continue
        if char == "(" and pattern[index + 1:index + 2] == "?":
            _check_group(pattern, index, dialect, reject)
        elif char == "{" and pattern[index + 1:index + 2] == ",":
            closing = pattern.find("}", index)
            if closing > index + 2 and pattern[index + 2:closing].isdigit():
                out.append("{0")
                index += 1
                continue
        elif char in "*+?}" and pattern[index + 1:index + 2] == "+" and dialect == "re2":
            if not (char == "?" and index > 0 and pattern[index - 1] == "("):
                raise reject("a possessive quantifier")
        elif char == "$" and dialect == "re2" and not multiline:
            if pattern[index + 1:index + 2] not in ("", "|", ")"):
                raise reject("'$' followed by more pattern")
            out.append("(?:\\n?\\z)")
            index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _translate_escape(pattern: str, index: int, dialect: str, reject: Any) -> Tuple[str, int]:
    letter = pattern[index + 1]
    if letter == "Z":
        return "\\z", index + 2
    if letter in "uU":
        width = 4 if letter == "u" else 8
        digits = pattern[index + 2:index + 2 + width]
        return "\\x{" + digits.lstrip("0").upper().rjust(1, "0") + "}", index + 2 + width
    if letter == "N":
        raise reject("a named character escape (\\N{...})")
    if letter.isdigit() and letter != "0" and dialect == "re2":
        raise reject("a backreference")
    return pattern[index:index + 2], index + 2


def _check_group(pattern: str, index: int, dialect: str, reject: Any) -> None:
    head = pattern[index + 2:index + 5]
    if head.startswith(("=", "!", "<=", "<!")):
        if dialect == "re2":
            raise reject("a lookaround assertion")
        return
    if head.startswith("P="):
        if dialect == "re2":
            raise reject("a named backreference")
        return
    if head.startswith((">", "(")):
        if dialect == "re2":
            raise reject("an atomic group or a conditional")
        return
    if head.startswith("#"):
        if dialect == "re2":
            raise reject("a comment group")
        return
    if head.startswith((":", "P<")):
        return
    flags = []
    for char in pattern[index + 2:]:
        if char in ":)":
            break
        flags.append(char)
    unknown = [flag for flag in flags if flag not in SHARED_REGEX_FLAGS and flag != "-"]
    if unknown:
        raise reject(f"the inline flag '{unknown[0]}'")


def conjuncts(node: Node) -> List[Node]:
    """Flatten a top-level AND, through selections, into its parts."""
    if isinstance(node, Selection):
        return conjuncts(node.body)
    if isinstance(node, And):
        return [part for child in node.children for part in conjuncts(child)]
    return [node]


def regex_with_flags(matcher: Any, dialect: str, target: str, location: Any = None) -> str:
    """Return a RegexMatch's pattern for PCRE or RE2 with its flags as one leading ``(?ims)`` group.

    The pattern's own leading flag group is merged in, because Python (and so the emulators)
    accepts global flags only at the very start.
    """
    pattern = translate_regex(matcher.pattern, dialect, target, location, matcher.multiline)
    flags = ("i" if matcher.ignore_case else "") + ("m" if matcher.multiline else "") + ("s" if matcher.dotall else "")
    leading = re.match(r"\(\?([a-z]+)\)", pattern)
    if leading:
        flags += leading.group(1)
        pattern = pattern[leading.end():]
    flags = "".join(sorted(set(flags)))
    return (f"(?{flags})" if flags else "") + pattern
