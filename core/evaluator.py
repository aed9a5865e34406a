"""The reference evaluator: compiles a rule's IR once into closures, then evaluates events.

Semantics (the Sigma specification leaves several of these open; lsassdump fixes them here):

- Case: string values match case-insensitively unless the ``cased`` modifier is given. Both the
  event value and the rule value are folded with Python's ``str.casefold``, which is full Unicode
  case folding (``Straße`` matches ``STRASSE``, ``Ä`` matches ``ä``). Regular expressions are
  case-sensitive unless the ``i`` flag is given, and then use Python's ``re.IGNORECASE``.
- Missing field or null value: no string, number, regex, network or comparison value matches it;
  a YAML ``null`` value matches it, ``exists: false`` matches it, ``neq`` does not.
- Lists: a field whose value is a list matches when any element matches (for ``neq``: when no
  element equals the value).
- Numbers against strings: a rule number matches an event string that parses to the same number;
  a rule string matches an event number through the number's decimal text (``4688``).
  Booleans are text ``true``/``false``.
- Spaces: leading and trailing spaces of values are kept; a tab is not a space.
- Wildcards: ``*`` matches any run of characters, ``?`` one character (after folding), and a
  windash placeholder one of ``-``, ``/``, U+2013, U+2014 or U+2015.
- Keywords (values with no field) match when any string or number value of the event contains them.
- ``re`` values are searched, not anchored: ``^`` and ``$`` anchor where the rule writes them.
"""

import functools
import ipaddress
import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from core.events import LogSource
from core.ir import (
    ANY, DASH, ONE, WINDASH_CHARACTERS, And, BoolMatch, CidrMatch, CompareMatch, ExistsMatch, FieldMatch,
    FieldRefMatch, Node, Not, NotEqualMatch, NullMatch, NumberMatch, Or, RegexMatch, Selection, SigmaString,
    StringMatch, ValueMatcher, selections_in,
)
from core.rules import Rule

Test = Callable[[Mapping[str, Any]], bool]
ValueTest = Callable[[Any], bool]

MISSING = object()
# Expanding windash placeholders into plain variants keeps the per-event work to substring checks;
# past this many variants a regular expression is cheaper to hold.
MAX_DASH_VARIANTS = 125


@dataclass(frozen=True)
class Match:
    """A rule that matched an event, and the names of the selections that matched it."""

    rule: Rule
    selections: Tuple[str, ...]


class CompiledRule:
    """A rule compiled into closures, ready to evaluate many events."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._test = compile_node(rule.detection)
        self._selections = tuple((sel.name, compile_node(sel.body)) for sel in selections_in(rule.detection))
        spec = rule.logsource
        self._logsource = (spec.product, spec.category, spec.service)

    def admits(self, logsource: LogSource) -> bool:
        """Tell whether the rule's logsource covers an event with this logsource."""
        return logsource.admits(*self._logsource)

    def test(self, fields: Mapping[str, Any]) -> bool:
        """Tell whether the detection matches the event fields (logsource not checked)."""
        return self._test(fields)

    def match(self, fields: Mapping[str, Any]) -> Optional[Match]:
        """Return a Match naming the selections that hit, or None (logsource not checked)."""
        if not self._test(fields):
            return None
        hits = tuple(name for name, test in self._selections if test(fields))
        return Match(self.rule, hits)


def compile_rule(rule: Rule) -> CompiledRule:
    """Compile a rule once for evaluation."""
    return CompiledRule(rule)


@functools.singledispatch
def compile_node(node: Any) -> Test:
    """Compile one IR node into a test on an event's fields."""
    raise TypeError(f"cannot compile IR node of type {type(node).__name__}")


@compile_node.register
def _selection(node: Selection) -> Test:
    return compile_node(node.body)


@compile_node.register
def _and(node: And) -> Test:
    fused = _fused_substrings(node.children, require_every=True)
    if fused is not None:
        return fused
    tests = tuple(compile_node(child) for child in node.children)
    if len(tests) == 2:
        first, second = tests
        return lambda fields: first(fields) and second(fields)
    return lambda fields: all(test(fields) for test in tests)


@compile_node.register
def _or(node: Or) -> Test:
    fused = _fused_substrings(node.children, require_every=False)
    if fused is not None:
        return fused
    tests = tuple(compile_node(child) for child in node.children)
    if len(tests) == 2:
        first, second = tests
        return lambda fields: first(fields) or second(fields)
    return lambda fields: any(test(fields) for test in tests)


@compile_node.register
def _not(node: Not) -> Test:
    test = compile_node(node.child)
    return lambda fields: not test(fields)


@compile_node.register
def _field(node: FieldMatch) -> Test:
    if node.field is None:
        return _keyword_test(node)
    name = node.field
    fast = _substring_fast_path(node)
    if fast is not None:
        return fast
    presence = [m for m in node.matchers if isinstance(m, (NullMatch, ExistsMatch, NotEqualMatch, FieldRefMatch))]
    if presence:
        tests = [_presence_test(name, matcher) for matcher in node.matchers]
        combine = all if node.require_all else any
        return lambda fields: combine(test(fields) for test in tests)
    if node.require_all:
        value_tests = [compile_value(matcher) for matcher in node.matchers]

        def value_test(value: Any) -> bool:
            return all(test(value) for test in value_tests)
        # With ``all``, each value may be satisfied by a different list element.
        def test_all(fields: Mapping[str, Any]) -> bool:
            value = fields.get(name, MISSING)
            if value is MISSING or value is None:
                return False
            if isinstance(value, list):
                return all(any(test(item) for item in value) for test in value_tests)
            return value_test(value)
        return test_all

    value_any = _any_value_test(node.matchers)

    def test_any(fields: Mapping[str, Any]) -> bool:
        value = fields.get(name, MISSING)
        if value is MISSING or value is None:
            return False
        if isinstance(value, list):
            return any(value_any(item) for item in value)
        return value_any(value)

    return test_any


class _TextChecks:
    """String patterns of one field, grouped by shape so that one pass of C-level checks covers them."""

    def __init__(self) -> None:
        self.equal: set = set()
        self.prefixes: List[str] = []
        self.suffixes: List[str] = []
        self.substrings: List[str] = []
        self.others: List[Callable[[str], bool]] = []
        self.anything = False

    def add(self, parts: Tuple[Any, ...]) -> None:
        if all(isinstance(part, str) for part in parts):
            self.equal.add("".join(parts))
        elif len(parts) == 1 and parts[0] is ANY:
            self.anything = True
        elif len(parts) == 3 and parts[0] is ANY and parts[2] is ANY and isinstance(parts[1], str):
            self.substrings.append(parts[1])
        elif len(parts) == 2 and isinstance(parts[0], str) and parts[1] is ANY:
            self.prefixes.append(parts[0])
        elif len(parts) == 2 and parts[0] is ANY and isinstance(parts[1], str):
            self.suffixes.append(parts[1])
        else:
            self.others.append(_simple_test(parts))

    def compile(self) -> Optional[Callable[[str], bool]]:
        if not (self.equal or self.prefixes or self.suffixes or self.substrings or self.others or self.anything):
            return None
        if self.anything:
            return lambda text: True
        equal = frozenset(self.equal)
        prefixes, suffixes = tuple(self.prefixes), tuple(self.suffixes)
        substrings, others = tuple(dict.fromkeys(self.substrings)), tuple(self.others)

        def test(text: str) -> bool:
            if text in equal:
                return True
            if prefixes and text.startswith(prefixes):
                return True
            if suffixes and text.endswith(suffixes):
                return True
            for needle in substrings:
                if needle in text:
                    return True
            for other in others:
                if other(text):
                    return True
            return False
        return test


def _any_value_test(matchers: Tuple[ValueMatcher, ...]) -> ValueTest:
    """Compile the values of a field that needs any one of them, for one scalar event value.

    String patterns are grouped: the text is folded once and tested by shape (equality, prefix,
    suffix, substring, then the rest); other matchers are tested one by one.
    """
    folded, cased = _TextChecks(), _TextChecks()
    others: List[ValueTest] = []
    for matcher in matchers:
        if not isinstance(matcher, StringMatch):
            others.append(compile_value(matcher))
            continue
        checks = cased if matcher.cased else folded
        for pattern in matcher.patterns:
            parts = tuple(part if not isinstance(part, str) or matcher.cased else part.casefold()
                          for part in pattern.parts)
            variants = _expand(SigmaString(parts))
            if variants is None:
                regex = re.compile(_to_regex(parts), re.DOTALL)
                checks.others.append(lambda text, regex=regex: regex.fullmatch(text) is not None)
                continue
            for variant in variants:
                checks.add(variant.parts)
    folded_test, cased_test = folded.compile(), cased.compile()
    other_tests = tuple(others)

    def test(value: Any) -> bool:
        text = value if value.__class__ is str else _as_text(value)
        if text is not None:
            if folded_test is not None and folded_test(text.casefold()):
                return True
            if cased_test is not None and cased_test(text):
                return True
        for other in other_tests:
            if other(value):
                return True
        return False
    return test


def _substring_spec(node: Any) -> Optional[Tuple[str, Tuple[str, ...], bool]]:
    """Return (field, folded needles, require_all) for a field of case-insensitive plain ``contains``.

    That is the shape of most process-creation rules (the LSASS rule included); such a field costs
    one casefold and a few ``in`` checks per event. Returns None for any other node.
    """
    if isinstance(node, Selection):
        node = node.body
    if not isinstance(node, FieldMatch) or node.field is None:
        return None
    needles: List[str] = []
    for matcher in node.matchers:
        if not isinstance(matcher, StringMatch) or matcher.cased or len(matcher.patterns) != 1:
            return None
        variants = _expand(matcher.patterns[0])
        if variants is None or node.require_all and len(variants) > 1:
            return None
        for variant in variants:
            parts = variant.parts
            if len(parts) != 3 or parts[0] is not ANY or parts[2] is not ANY or not isinstance(parts[1], str):
                return None
            needles.append(parts[1].casefold())
    return node.field, tuple(dict.fromkeys(needles)), node.require_all


def _substring_fast_path(node: FieldMatch) -> Optional[Test]:
    spec = _substring_spec(node)
    if spec is None:
        return None
    name, found, require_all = spec
    slow = _slow_substrings(found, require_all)

    if require_all:
        def test_all(fields: Mapping[str, Any]) -> bool:
            value = fields.get(name)
            if value.__class__ is str:
                value = value.casefold()
                for needle in found:
                    if needle not in value:
                        return False
                return True
            return slow(value)
        return test_all

    def test_any(fields: Mapping[str, Any]) -> bool:
        value = fields.get(name)
        if value.__class__ is str:
            value = value.casefold()
            for needle in found:
                if needle in value:
                    return True
            return False
        return slow(value)

    return test_any


def _fused_substrings(children: Tuple[Node, ...], require_every: bool) -> Optional[Test]:
    """Fuse an and/or of contains-only fields on one field: one lookup and one casefold per event.

    Each child is an "any needle" group; the fused test needs every group (and) or one (or).
    Lists and non-string values take the unfused path, so their semantics stay per child.
    """
    specs = [_substring_spec(child) for child in children]
    if len(specs) < 2 or any(spec is None for spec in specs):
        return None
    names = {spec[0] for spec in specs}  # type: ignore[index]
    if len(names) != 1 or any(spec[2] for spec in specs):  # type: ignore[index]
        return None
    name = names.pop()
    groups = tuple(spec[1] for spec in specs)  # type: ignore[index]
    tests = tuple(compile_node(child) for child in children)

    if require_every:
        def test_every(fields: Mapping[str, Any]) -> bool:
            value = fields.get(name)
            if value.__class__ is not str:
                return all(test(fields) for test in tests)
            value = value.casefold()
            for group in groups:
                for needle in group:
                    if needle in value:
                        break
                else:
                    return False
            return True
        return test_every

    def test_some(fields: Mapping[str, Any]) -> bool:
        value = fields.get(name)
        if value.__class__ is not str:
            return any(test(fields) for test in tests)
        value = value.casefold()
        for group in groups:
            for needle in group:
                if needle in value:
                    return True
        return False
    return test_some


def _slow_substrings(needles: Tuple[str, ...], require_all: bool) -> ValueTest:
    def one(value: Any) -> Optional[str]:
        text = _as_text(value)
        return text.casefold() if text is not None else None

    def test(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list):
            texts = [t for t in (one(item) for item in value) if t is not None]
            if require_all:
                return all(any(n in t for t in texts) for n in needles)
            return any(n in t for t in texts for n in needles)
        text = one(value)
        if text is None:
            return False
        return all(n in text for n in needles) if require_all else any(n in text for n in needles)

    return test


def _keyword_test(node: FieldMatch) -> Test:
    value_tests = [compile_value(matcher) for matcher in node.matchers]

    def values_of(fields: Mapping[str, Any]) -> List[Any]:
        out: List[Any] = []
        for value in fields.values():
            if isinstance(value, list):
                out.extend(item for item in value if isinstance(item, (str, int, float)))
            elif isinstance(value, (str, int, float)):
                out.append(value)
        return out

    def test(fields: Mapping[str, Any]) -> bool:
        values = values_of(fields)
        hits = (any(vt(value) for value in values) for vt in value_tests)
        return all(hits) if node.require_all else any(hits)

    return test


def _presence_test(name: str, matcher: ValueMatcher) -> Test:
    if isinstance(matcher, NullMatch):
        return lambda fields: fields.get(name) is None
    if isinstance(matcher, ExistsMatch):
        wanted = matcher.exists
        return lambda fields: (fields.get(name) is not None) is wanted
    if isinstance(matcher, NotEqualMatch):
        inner = compile_value(matcher.inner)

        def not_equal(fields: Mapping[str, Any]) -> bool:
            value = fields.get(name)
            if value is None:
                return False
            items = value if isinstance(value, list) else [value]
            return not any(inner(item) for item in items)
        return not_equal
    if isinstance(matcher, FieldRefMatch):
        return _fieldref_test(name, matcher)
    value_test = compile_value(matcher)

    def test(fields: Mapping[str, Any]) -> bool:
        value = fields.get(name)
        if value is None:
            return False
        if isinstance(value, list):
            return any(value_test(item) for item in value)
        return value_test(value)
    return test


def _fieldref_test(name: str, matcher: FieldRefMatch) -> Test:
    other = matcher.other

    def norm(value: Any) -> Optional[str]:
        text = _as_text(value)
        if text is None or matcher.cased:
            return text
        return text.casefold()

    def test(fields: Mapping[str, Any]) -> bool:
        left, right = fields.get(name), fields.get(other)
        if left is None or right is None:
            return False
        lefts = {norm(v) for v in (left if isinstance(left, list) else [left])}
        rights = {norm(v) for v in (right if isinstance(right, list) else [right])}
        lefts.discard(None)
        return bool(lefts & rights)
    return test


def _as_text(value: Any) -> Optional[str]:
    """Return the text a string pattern sees for an event value, or None when it sees none."""
    if value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _as_number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else None
        except ValueError:
            return None
    return None


@functools.singledispatch
def compile_value(matcher: Any) -> ValueTest:
    """Compile one value matcher into a test on one scalar event value."""
    raise TypeError(f"cannot compile value matcher of type {type(matcher).__name__}")


@compile_value.register
def _string(matcher: StringMatch) -> ValueTest:
    tests = [_pattern_test(pattern, matcher.cased) for pattern in matcher.patterns]
    fold = not matcher.cased

    def test(value: Any) -> bool:
        text = _as_text(value)
        if text is None:
            return False
        if fold:
            text = text.casefold()
        return any(t(text) for t in tests)
    return test


def _expand(pattern: SigmaString) -> Optional[List[SigmaString]]:
    """Expand windash placeholders into plain variants; None when there would be too many."""
    count = sum(1 for part in pattern.parts if part is DASH)
    if count == 0:
        return [pattern]
    if len(WINDASH_CHARACTERS) ** count > MAX_DASH_VARIANTS:
        return None
    variants = []
    for dashes in itertools.product(WINDASH_CHARACTERS, repeat=count):
        chosen = iter(dashes)
        parts = [next(chosen) if part is DASH else part for part in pattern.parts]
        variants.append(_merge(parts))
    return variants


def _merge(parts: List[Any]) -> SigmaString:
    merged: List[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return SigmaString(tuple(merged))


def _pattern_test(pattern: SigmaString, cased: bool) -> Callable[[str], bool]:
    """Compile one Sigma string into a test on (already folded) text."""
    parts = tuple(part if not isinstance(part, str) or cased else part.casefold() for part in pattern.parts)
    variants = _expand(SigmaString(parts))
    if variants is None:
        regex = re.compile(_to_regex(parts), re.DOTALL)
        return lambda text: regex.fullmatch(text) is not None
    tests = [_simple_test(variant.parts) for variant in variants]
    if len(tests) == 1:
        return tests[0]
    return lambda text: any(t(text) for t in tests)


def _simple_test(parts: Tuple[Any, ...]) -> Callable[[str], bool]:
    if all(isinstance(part, str) for part in parts):
        literal = "".join(parts)
        return lambda text: text == literal
    if len(parts) == 1 and parts[0] is ANY:
        return lambda text: True
    if len(parts) == 3 and parts[0] is ANY and parts[2] is ANY and isinstance(parts[1], str):
        middle = parts[1]
        return lambda text: middle in text
    if len(parts) == 2 and isinstance(parts[0], str) and parts[1] is ANY:
        prefix = parts[0]
        return lambda text: text.startswith(prefix)
    if len(parts) == 2 and parts[0] is ANY and isinstance(parts[1], str):
        suffix = parts[1]
        return lambda text: text.endswith(suffix)
    regex = re.compile(_to_regex(parts), re.DOTALL)
    return lambda text: regex.fullmatch(text) is not None


def _to_regex(parts: Tuple[Any, ...]) -> str:
    out = []
    for part in parts:
        if part is ANY:
            out.append(".*")
        elif part is ONE:
            out.append(".")
        elif part is DASH:
            out.append("[" + re.escape("".join(WINDASH_CHARACTERS)) + "]")
        else:
            out.append(re.escape(part))
    return "".join(out)


@compile_value.register
def _regex(matcher: RegexMatch) -> ValueTest:
    flags = (re.IGNORECASE if matcher.ignore_case else 0) | (re.MULTILINE if matcher.multiline else 0)
    flags |= re.DOTALL if matcher.dotall else 0
    regex = re.compile(matcher.pattern, flags)

    def test(value: Any) -> bool:
        text = _as_text(value)
        return text is not None and regex.search(text) is not None
    return test


@compile_value.register
def _number(matcher: NumberMatch) -> ValueTest:
    wanted = matcher.value

    def test(value: Any) -> bool:
        number = _as_number(value)
        return number is not None and number == wanted
    return test


_COMPARE: Dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


@compile_value.register
def _compare(matcher: CompareMatch) -> ValueTest:
    op, bound = _COMPARE[matcher.op], matcher.value

    def test(value: Any) -> bool:
        number = _as_number(value)
        return number is not None and op(number, bound)
    return test


@compile_value.register
def _cidr(matcher: CidrMatch) -> ValueTest:
    network = ipaddress.ip_network(matcher.network)

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return ipaddress.ip_address(value.strip()) in network
        except ValueError:
            return False
    return test


@compile_value.register
def _bool(matcher: BoolMatch) -> ValueTest:
    wanted = "true" if matcher.value else "false"

    def test(value: Any) -> bool:
        text = _as_text(value)
        return text is not None and text.casefold() == wanted
    return test


@compile_value.register
def _null(matcher: NullMatch) -> ValueTest:
    return lambda value: value is None


@compile_value.register
def _exists(matcher: ExistsMatch) -> ValueTest:
    return lambda value: (value is not None) is matcher.exists


@compile_value.register
def _not_equal(matcher: NotEqualMatch) -> ValueTest:
    inner = compile_value(matcher.inner)
    return lambda value: value is not None and not inner(value)
