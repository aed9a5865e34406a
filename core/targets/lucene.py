"""The Lucene ``query_string`` target, and Lucene regular expressions for every Elastic target.

``query_string`` has no case-insensitive option, and ``keyword`` and ``wildcard`` fields compare
case-sensitively. By default (``case="exact"``) a case-insensitive Sigma value that contains letters
becomes a regular expression whose letters are classes of both cases (``/.*[lL][sS].*/``), which
keeps Sigma's meaning. ``case="as-written"`` emits the usual wildcard terms instead; they match only
the case the rule writes, and exist so that the portability report can show that divergence.

Escaping follows the Elasticsearch reference, "Query string query" (reserved characters
``+ - = && || > < ! ( ) { } [ ] ^ " ~ * ? : \\ /`` and whitespace, escaped with a backslash), and the
Lucene ``RegExp`` class documentation for regular expressions (Lucene 9).
"""

import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

from core.errors import ConversionError, Location
from core.ir import (
    ANY, ONE, And, BoolMatch, CidrMatch, CompareMatch, ExistsMatch, FieldMatch, FieldRefMatch, Node, Not,
    NotEqualMatch, NullMatch, NumberMatch, Or, RegexMatch, Selection, SigmaString, StringMatch, ValueMatcher,
)
from core.mappings import FieldMapping
from core.rules import Rule

try:  # Python 3.11 and later keep the regular expression parser here.
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # Python 3.9 and 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

TARGET = "lucene"
CASE_MODES = ("exact", "as-written")

# Characters that end or change a query_string term. The lexer of Lucene's classic query parser
# also separates terms at space, tab, newline, carriage return and U+3000. An escaped whitespace
# character is literal, but "\t" is the letter t, so a tab is written as a backslash and a tab.
QUERY_STRING_RESERVED = frozenset('+-=&|><!(){}[]^"~*?:\\/') | frozenset(" \t\n\r\u3000")
# Inside a quoted phrase only the quote and the backslash are special.
PHRASE_RESERVED = frozenset('"\\')
# Lucene RegExp operators with all syntax flags on (the default of the regexp query): a backslash
# makes any following character literal. Letters and digits are never escaped, because Lucene 9
# reads \d, \s, \w and their capitals as classes.
REGEXP_RESERVED = frozenset('.?+*|{}[]()"\\#@&<>~/^-$ ')

SURROGATES = (0xD800, 0xDFFF)

STRING_TYPES = frozenset({"keyword", "wildcard", "constant_keyword"})
NUMERIC_TYPES = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float",
                           "scaled_float", "unsigned_long"})


def emit(node: Node, mapping: FieldMapping, rule: Rule, case: str = "exact") -> str:
    """Return the rule as a Lucene ``query_string``; ``case`` is "exact" or "as-written"."""
    if case not in CASE_MODES:
        raise ValueError(f"case must be one of {', '.join(CASE_MODES)}, not {case!r}")
    return _Writer(mapping, case).node(node)


def escape_term(text: str) -> str:
    """Escape text for use as (part of) an unquoted query_string term."""
    return "".join("\\" + char if char in QUERY_STRING_RESERVED else char for char in text)


def escape_phrase(text: str) -> str:
    """Return text as a quoted query_string phrase."""
    return '"' + "".join("\\" + char if char in PHRASE_RESERVED else char for char in text) + '"'


def slashed(regexp: str) -> str:
    """Return a Lucene regexp between slashes, as query_string writes it.

    The query parser reads backslash-slash as an escaped slash, so a regexp that ends in an escaped
    backslash would run on to the next slash of the query. That backslash becomes the class [\\].
    """
    if regexp.endswith("\\\\"):
        regexp = regexp[:-2] + "[\\\\]"
    return "/" + regexp + "/"


def escape_regexp_char(char: str) -> str:
    """Return one character as a literal in a Lucene regular expression."""
    return "\\" + char if char in REGEXP_RESERVED else char


class _Writer:
    """Writes one query; holds only the mapping and the case mode of this call."""

    def __init__(self, mapping: FieldMapping, case: str) -> None:
        self.mapping = mapping
        self.case = case

    def node(self, node: Node) -> str:
        writer = _NODE_WRITERS.get(type(node))
        if writer is None:
            raise TypeError(f"target 'lucene' cannot emit IR node of type {type(node).__name__}")
        return writer(self, node)

    def and_(self, node: And) -> str:
        return _group([self.node(child) for child in node.children], "AND")

    def or_(self, node: Or) -> str:
        return _group([self.node(child) for child in node.children], "OR")

    def not_(self, node: Not) -> str:
        return f"(NOT {self.node(node.child)})"

    def selection(self, node: Selection) -> str:
        return self.node(node.body)

    def field(self, node: FieldMatch) -> str:
        if node.field is None:
            raise _unsupported("a keyword search (a value with no field)", node, "name the field that holds the value")
        field_type = self.mapping.field_types.get(node.field)
        parts: List[str] = []
        for matcher in node.matchers:
            if isinstance(matcher, StringMatch) and not node.require_all:
                parts.extend(self.string_parts(matcher, node, field_type))
            else:
                parts.append(self.matcher(matcher, node, field_type))
        return _group(parts, "AND" if node.require_all else "OR")

    def matcher(self, matcher: ValueMatcher, node: FieldMatch, field_type: Optional[str]) -> str:
        writer = _MATCHER_WRITERS.get(type(matcher))
        if writer is None:
            raise TypeError(f"target 'lucene' cannot emit value matcher of type {type(matcher).__name__}")
        return writer(self, matcher, node, field_type)

    def string(self, matcher: StringMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        return _group(self.string_parts(matcher, node, field_type), "OR")

    def string_parts(self, matcher: StringMatch, node: FieldMatch, field_type: Optional[str]) -> List[str]:
        """Return one clause per pattern of a string value; any one of them matches."""
        name = escape_term(str(node.field))
        if field_type is not None and field_type not in STRING_TYPES:
            return [f"{name}:{_typed_literal(p, node, field_type)}" for p in matcher.patterns]
        parts = []
        for pattern in matcher.patterns:
            if not matcher.cased and self.case == "exact" and _has_cased_letters(pattern):
                parts.append(f"{name}:{slashed(pattern_to_regexp(pattern, fold_case=True))}")
            else:
                parts.append(f"{name}:{_plain_term(pattern)}")
        return parts

    def regex(self, matcher: RegexMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type is not None and field_type not in STRING_TYPES:
            raise _unsupported(f"a regular expression on the {field_type} field '{node.field}'", node)
        return f"{escape_term(str(node.field))}:{slashed(regex_to_lucene(matcher, TARGET, node.location))}"

    def number(self, matcher: NumberMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type in STRING_TYPES and isinstance(matcher.value, float):
            raise _unsupported(f"the decimal number {matcher.value!r} on the {field_type} field '{node.field}'",
                               node, "match the field with an integer or a string")
        return f"{escape_term(str(node.field))}:{escape_term(str(matcher.value))}"

    def compare(self, matcher: CompareMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type is not None and field_type not in NUMERIC_TYPES:
            raise _unsupported(f"a numeric comparison ({matcher.op}) on the {field_type} field '{node.field}'",
                               node, "Elasticsearch compares keyword fields as text; map the field to a number")
        value = str(matcher.value)
        ranges = {"gt": f"{{{value} TO *}}", "gte": f"[{value} TO *]", "lt": f"{{* TO {value}}}",
                  "lte": f"[* TO {value}]"}
        return f"{escape_term(str(node.field))}:{ranges[matcher.op]}"

    def cidr(self, matcher: CidrMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        if field_type is not None and field_type != "ip":
            raise _unsupported(f"a network match (cidr) on the {field_type} field '{node.field}'", node,
                               "Elasticsearch matches networks only on ip fields")
        return f"{escape_term(str(node.field))}:{escape_phrase(matcher.network)}"

    def null(self, matcher: NullMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        return f"(NOT _exists_:{escape_term(str(node.field))})"

    def exists(self, matcher: ExistsMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        query = f"_exists_:{escape_term(str(node.field))}"
        return query if matcher.exists else f"(NOT {query})"

    def boolean(self, matcher: BoolMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        text = "true" if matcher.value else "false"
        if field_type == "boolean":
            return f"{escape_term(str(node.field))}:{text}"
        return self.string(StringMatch((SigmaString((text,)),)), node, field_type)

    def not_equal(self, matcher: NotEqualMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        inner = self.matcher(matcher.inner, node, field_type)
        return f"(_exists_:{escape_term(str(node.field))} AND (NOT {inner}))"

    def fieldref(self, matcher: FieldRefMatch, node: FieldMatch, field_type: Optional[str]) -> str:
        raise _unsupported(f"a comparison of two fields (fieldref '{matcher.other}')", node,
                           "query_string cannot compare fields; use the esql target")


def _group(parts: List[str], operator: str) -> str:
    if len(parts) == 1:
        return parts[0]
    return "(" + f" {operator} ".join(parts) + ")"


def unwrap_group(text: str) -> str:
    """Drop the parentheses that enclose the whole of ``text``, if one pair does.

    Strings in double quotes (backslash escapes) and names in backticks are skipped. Callers put
    the result back between parentheses or at the top of a query, so a wrong guess changes no meaning.
    """
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            index += 1
            while text[index] != '"':
                index += 2 if text[index] == "\\" else 1
        elif char == "`":
            index = text.index("`", index + 1)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and index < len(text) - 1:
                return text
        index += 1
    return text[1:-1]


def _plain_term(pattern: SigmaString) -> str:
    """Return a pattern as a phrase (no wildcards) or a wildcard term, in the case it is written."""
    if pattern.is_plain:
        return escape_phrase(pattern.literal())
    return render_pattern(pattern, "*", "?", escape_term, TARGET)


def render_pattern(pattern: SigmaString, many: str, one: str, literal: Callable[[str], str], target: str) -> str:
    """Write a Sigma pattern in a query language: its wildcard tokens, and ``literal(text)`` for the rest."""
    out = []
    for part in pattern.parts:
        if part is ANY:
            out.append(many)
        elif part is ONE:
            out.append(one)
        elif isinstance(part, str):
            out.append(literal(part))
        else:
            raise TypeError(f"unexpanded placeholder {part!r} reached target '{target}'")
    return "".join(out)


def _typed_literal(pattern: SigmaString, node: FieldMatch, field_type: str) -> str:
    text = pattern.literal() if pattern.is_plain else None
    if field_type in NUMERIC_TYPES and text is not None and canonical_integer(text):
        return escape_term(text)
    if field_type == "boolean" and text is not None and text.lower() in ("true", "false"):
        return text.lower()
    raise _unsupported(f"the string value {str(pattern)!r} on the {field_type} field '{node.field}'", node,
                       "match the field with a number, or map the rule field to a keyword field")


def canonical_integer(text: str) -> bool:
    """Tell whether ``text`` is an integer as Python writes it, so that every engine reads it alike."""
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def _has_cased_letters(pattern: SigmaString) -> bool:
    return any(isinstance(part, str) and len(case_variants_of_text(part)) > 0 for part in pattern.parts)


def case_variants_of_text(text: str) -> List[str]:
    """Return the characters of ``text`` that have another case."""
    return [char for char in text if len(case_variants(char)) > 1]


def case_variants(char: str) -> Tuple[str, ...]:
    """Return a character and its single-character upper and lower case forms.

    NOTE: characters whose case folding is longer than one character (German sharp s, ligatures)
    and the few that fold onto ASCII letters (Kelvin sign, long s) are not paired. The reference
    evaluator's ``casefold`` pairs them, so such values differ there.
    """
    variants = [char]
    for other in (char.lower(), char.upper()):
        if len(other) == 1 and other not in variants:
            variants.append(other)
    return tuple(variants)


def pattern_to_regexp(pattern: SigmaString, fold_case: bool) -> str:
    """Return a Sigma pattern as a Lucene regular expression, letters as case classes if asked."""
    def literal(text: str) -> str:
        return "".join(_regexp_literal(char, fold_case) for char in text)

    return render_pattern(pattern, ".*", ".", literal, "a Lucene regular expression")


def _regexp_literal(char: str, fold_case: bool) -> str:
    variants = case_variants(char) if fold_case else (char,)
    if len(variants) == 1:
        return escape_regexp_char(char)
    return "[" + "".join(escape_regexp_char(variant) for variant in variants) + "]"


# Python regular expressions to Lucene regular expressions.


def regex_to_lucene(matcher: RegexMatch, target: str, location: Optional[Location]) -> str:
    """Translate a Sigma ``re`` value (Python syntax, searched) into a Lucene regexp (whole value).

    Raises ConversionError naming ``target`` for constructs Lucene lacks: backreferences,
    lookaround, word boundaries, anchors inside the expression, possessive repeats.
    """
    flags = (sre_parse.SRE_FLAG_IGNORECASE if matcher.ignore_case else 0)
    flags |= sre_parse.SRE_FLAG_MULTILINE if matcher.multiline else 0
    flags |= sre_parse.SRE_FLAG_DOTALL if matcher.dotall else 0
    parsed = sre_parse.parse(matcher.pattern, flags)
    translator = _RegexTranslator(target, location, matcher.pattern)
    return translator.search(list(parsed), parsed.state.flags)


class _RegexTranslator:
    """Translates one parsed Python regular expression; raises on what Lucene cannot express."""

    def __init__(self, target: str, location: Optional[Location], pattern: str) -> None:
        self.target = target
        self.location = location
        self.pattern = pattern

    def fail(self, feature: str) -> ConversionError:
        return ConversionError(
            f"target '{self.target}' cannot express {feature} in the regular expression {self.pattern!r}",
            self.location, "Lucene regular expressions lack it; rewrite the expression without it")

    def search(self, items: List[Any], flags: int) -> str:
        """Translate a top-level expression that Python searches for anywhere in the value."""
        if len(items) == 1 and items[0][0] is sre_constants.BRANCH:
            branches = items[0][1][1]
            return "|".join("(" + self.search(list(branch), flags) + ")" for branch in branches)
        start, end = "(.*)", "(.*)"
        if items and items[0] == (sre_constants.AT, sre_constants.AT_BEGINNING_STRING):
            start, items = "", items[1:]
        elif items and items[0] == (sre_constants.AT, sre_constants.AT_BEGINNING):
            if flags & sre_parse.SRE_FLAG_MULTILINE:
                start, items = "(.*\n)?", items[1:]
            else:
                start, items = "", items[1:]
        if items and items[-1] == (sre_constants.AT, sre_constants.AT_END_STRING):
            end, items = "", items[:-1]
        elif items and items[-1] == (sre_constants.AT, sre_constants.AT_END):
            # Python's $ matches at the end and before a newline that ends the value; with the
            # m flag before any newline.
            end = "(\n.*)?" if flags & sre_parse.SRE_FLAG_MULTILINE else "\n?"
            items = items[:-1]
        return start + self.sequence(items, flags) + end

    def sequence(self, items: List[Any], flags: int) -> str:
        return "".join(self.item(op, av, flags) for op, av in items)

    def item(self, op: Any, av: Any, flags: int) -> str:
        fold = bool(flags & sre_parse.SRE_FLAG_IGNORECASE)
        if op is sre_constants.LITERAL:
            return _regexp_literal(chr(av), fold)
        if op is sre_constants.NOT_LITERAL:
            return "[^" + "".join(escape_regexp_char(c) for c in self.variants(chr(av), fold)) + "]"
        if op is sre_constants.ANY:
            return "." if flags & sre_parse.SRE_FLAG_DOTALL else "[^\n]"
        if op is sre_constants.IN:
            return self.char_class(av, fold)
        if op is sre_constants.BRANCH:
            return "(" + "|".join(self.sequence(list(branch), flags) for branch in av[1]) + ")"
        if op is sre_constants.SUBPATTERN:
            group, add_flags, del_flags, body = av
            inner = (flags | add_flags) & ~del_flags
            return "(" + self.sequence(list(body), inner) + ")"
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, body = av
            return "(" + self.sequence(list(body), flags) + ")" + _repeat(low, high)
        if op is sre_constants.AT:
            anchor = _ANCHOR_NAMES.get(str(av), str(av))
            raise self.fail(f"the anchor {anchor} inside the expression (Lucene matches the whole value)")
        if op in (sre_constants.GROUPREF, getattr(sre_constants, "GROUPREF_EXISTS", None)):
            raise self.fail("a backreference")
        if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            raise self.fail("a lookahead or lookbehind")
        raise self.fail(f"the construct {op}")

    def variants(self, char: str, fold: bool) -> Tuple[str, ...]:
        return case_variants(char) if fold else (char,)

    def char_class(self, items: List[Any], fold: bool) -> str:
        negate = bool(items) and items[0][0] is sre_constants.NEGATE
        ranges: List[Tuple[int, int]] = []
        for op, av in items[1:] if negate else items:
            if op is sre_constants.LITERAL:
                ranges.extend((ord(c), ord(c)) for c in self.variants(chr(av), fold))
            elif op is sre_constants.RANGE:
                ranges.extend(self.range_variants(av[0], av[1], fold))
            elif op is sre_constants.CATEGORY:
                ranges.extend(category_ranges(str(av)))
            else:
                raise self.fail(f"the class member {op}")
        return _class_text(ranges, negate)

    def range_variants(self, low: int, high: int, fold: bool) -> List[Tuple[int, int]]:
        found = [(low, high)]
        if not fold:
            return found
        if high - low > 1024:
            raise self.fail("a case-insensitive character range wider than 1024 characters")
        for code in range(low, high + 1):
            found.extend((ord(c), ord(c)) for c in case_variants(chr(code))[1:])
        return found


_ANCHOR_NAMES = {
    "AT_BEGINNING": "^", "AT_END": "$", "AT_BEGINNING_STRING": "\\A", "AT_END_STRING": "\\Z",
    "AT_BOUNDARY": "\\b (word boundary)", "AT_NON_BOUNDARY": "\\B",
}


def _repeat(low: int, high: int) -> str:
    if high == sre_constants.MAXREPEAT:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _class_text(ranges: List[Tuple[int, int]], negate: bool) -> str:
    merged: List[List[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    body = []
    for low, high in merged:
        body.append(escape_regexp_char(chr(low)))
        if high > low:
            body.append("-" + escape_regexp_char(chr(high)))
    if not body:
        # An empty class matches nothing; its negation matches any character.
        return "." if negate else "#"
    return "[" + ("^" if negate else "") + "".join(body) + "]"


@functools.lru_cache(maxsize=None)
def category_ranges(category: str) -> Tuple[Tuple[int, int], ...]:
    """Return the code point ranges of a Python class (\\d, \\s, \\w and negations) for str patterns.

    Python defines them by ``str.isdecimal``, ``str.isspace`` and ``str.isalnum`` plus ``_``;
    Lucene's own \\d, \\s and \\w are ASCII-only, so the ranges are written out.
    """
    tests: Dict[str, Callable[[str], bool]] = {
        "CATEGORY_DIGIT": str.isdecimal, "CATEGORY_SPACE": str.isspace,
        "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    }
    name = category.replace("NOT_", "")
    if name not in tests:
        raise ValueError(f"unknown regular expression category {category}")
    test = tests[name]
    wanted = "NOT_" not in category
    ranges: List[Tuple[int, int]] = []
    start: Optional[int] = None
    for code in range(0x110000):
        # Surrogates cannot travel in UTF-8 query text, and no decoded event text contains one.
        inside = test(chr(code)) is wanted and not SURROGATES[0] <= code <= SURROGATES[1]
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append((start, code - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return tuple(ranges)


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
