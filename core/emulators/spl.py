"""An evaluator of the SPL subset that core.targets.spl emits, read from the query text.

Supported: ``search <expr>`` (the word ``search`` may be left out), any number of ``| where
<eval-expr>``, and ``| tstats ... from datamodel=<name> where <expr> by <fields>``. Anything
else raises ConversionError naming the construct.

Search semantics modelled (Splunk Search Reference, "search"; Search Manual, "Boolean expressions"):

- Precedence is NOT, then OR, then AND, and AND is implied between terms.
- ``field="value"`` compares after field extraction, case-insensitively, with ``*`` the only
  wildcard; a multivalue field matches when any value does. A missing or null field matches
  nothing. Case folding is per character with Python's ``str.lower`` where that yields one
  character. NOTE: Splunk does not document how it folds non-ASCII letters, so this is a model.
- A value shaped like an address range (``10.0.0.0/8``) is a CIDR match, quoted or not.
- An unquoted number matches a value that parses as the same number, and ``>``, ``<``, ``>=``,
  ``<=`` compare numbers and never match a value that is not one. NOTE: a model of the documented
  numeric comparison; how Splunk treats text such as ``01`` against ``=1`` was not measured.
- Inside quotes a backslash escapes ``\\`` and ``"``; any other escape raises (it is outside the
  emitted subset).

Eval semantics modelled (Search Reference, "Evaluation functions"): precedence NOT, AND, OR;
three-valued logic where null comparisons give null and ``where`` keeps only true rows.
``mvfind`` searches every value of a multivalue field with a PCRE pattern, which runs here with
Python's ``re`` after rewriting ``\\z`` and ``\\x{...}``. ``lower``, ``tonumber`` and ``cidrmatch``
give null on a multivalue field. NOTE: that is a model, because Splunk does not document how these
functions treat several values.

tstats: the ``where`` clause uses the search semantics; without ``fillnull_value`` a document with
a null group-by field produces no row, as tstats drops such rows.
"""

import functools
import ipaddress
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from core.errors import ConversionError
from core.mappings import FieldMapping

Document = Mapping[str, Any]
Test = Callable[[Document], Optional[bool]]

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<field>'[^']*')
  | (?P<op>==|!=|>=|<=|=|>|<)
  | (?P<punct>[(),|])
  | (?P<word>[^\s()=<>!,|"']+)
""", re.VERBOSE | re.DOTALL)
SEARCH_KEYWORDS = ("AND", "OR", "NOT", "IN")
CIDR_LIKE = re.compile(r"^[0-9A-Fa-f:.]+/[0-9]+$")
NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")
EVAL_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Token:
    __slots__ = ("kind", "text", "value", "offset")

    def __init__(self, kind: str, text: str, value: str, offset: int) -> None:
        self.kind = kind
        self.text = text
        self.value = value
        self.offset = offset

    def __repr__(self) -> str:
        return f"{self.kind}:{self.text}"


def _error(message: str, query: str, offset: int) -> ConversionError:
    return ConversionError(f"{message} at offset {offset} of the spl query: {query[offset:offset + 40]!r}")


def tokenize(query: str) -> List[Token]:
    """Split SPL text into tokens; string tokens carry their unescaped value."""
    tokens: List[Token] = []
    position = 0
    while position < len(query):
        found = TOKEN.match(query, position)
        if found is None:
            raise _error("unexpected character", query, position)
        kind = found.lastgroup or ""
        text = found.group()
        if kind == "string":
            tokens.append(Token(kind, text, _unquote(text, query, position), position))
        elif kind == "field":
            tokens.append(Token(kind, text, text[1:-1], position))
        elif kind != "space":
            tokens.append(Token(kind, text, text, position))
        position = found.end()
    return tokens


def _unquote(text: str, query: str, offset: int) -> str:
    out: List[str] = []
    index = 1
    while index < len(text) - 1:
        char = text[index]
        if char == "\\":
            escaped = text[index + 1]
            if escaped not in '\\"':
                raise _error(f"escape '\\{escaped}' is outside the emitted subset", query, offset + index)
            out.append(escaped)
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Fold case per character, keeping characters whose lower case is longer than one."""
    out = []
    for char in text:
        lower = char.lower()
        out.append(lower if len(lower) == 1 else char)
    return "".join(out)


def as_text(value: Any) -> Optional[str]:
    """Return the text Splunk holds for a scalar value, or None for a non-scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def values_of(document: Document, field: str) -> List[Any]:
    """Return the values of a field: empty when missing or null, every value when multivalue."""
    value = document.get(field)
    if value is None:
        return []
    if isinstance(value, list):
        return [item for item in value if item is not None]
    return [value]


def as_number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else None
        except ValueError:
            return None
    return None


def pcre_to_python(pattern: str) -> "re.Pattern[str]":
    """Compile a PCRE or RE2 pattern of the emitted subset with Python's re."""
    out: List[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            letter = pattern[index + 1]
            if letter == "z":
                out.append("\\Z")
                index += 2
                continue
            if letter == "x" and pattern[index + 2:index + 3] == "{":
                closing = pattern.index("}", index)
                out.append(re.escape(chr(int(pattern[index + 3:closing], 16))))
                index = closing + 1
                continue
            out.append(pattern[index:index + 2])
            index += 2
            continue
        out.append(char)
        index += 1
    try:
        return re.compile("".join(out))
    except re.error as error:
        raise ConversionError(f"invalid regular expression {pattern!r}: {error}") from None


class _Parser:
    """A recursive-descent reader over one command's tokens."""

    def __init__(self, tokens: Sequence[Token], query: str) -> None:
        self.tokens = list(tokens)
        self.position = 0
        self.query = query

    def peek(self) -> Optional[Token]:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _error("the command ends too early", self.query, len(self.query))
        self.position += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text:
            raise _error(f"expected {text!r}, found {token.text!r}", self.query, token.offset)
        return token

    def done(self) -> bool:
        return self.position >= len(self.tokens)

    def fail(self, message: str) -> ConversionError:
        token = self.peek()
        return _error(message, self.query, token.offset if token else len(self.query))


# Search expressions.


def _search_and(parser: _Parser) -> Test:
    parts = [_search_or(parser)]
    while True:
        token = parser.peek()
        if token is None or token.text == ")":
            break
        if token.text == "AND":
            parser.take()
        parts.append(_search_or(parser))
    return _all(parts)


def _search_or(parser: _Parser) -> Test:
    parts = [_search_not(parser)]
    while parser.peek() is not None and parser.peek().text == "OR":  # type: ignore[union-attr]
        parser.take()
        parts.append(_search_not(parser))
    return _any(parts)


def _search_not(parser: _Parser) -> Test:
    token = parser.peek()
    if token is not None and token.text == "NOT":
        parser.take()
        inner = _search_not(parser)
        return lambda document: not inner(document)
    return _search_primary(parser)


def _search_primary(parser: _Parser) -> Test:
    token = parser.take()
    if token.text == "(":
        inner = _search_and(parser)
        parser.expect(")")
        return inner
    if token.kind != "word" or token.text in SEARCH_KEYWORDS:
        raise _error(f"expected a field name, found {token.text!r}", parser.query, token.offset)
    field = token.text
    following = parser.peek()
    if following is not None and following.text == "IN":
        parser.take()
        parser.expect("(")
        tests = [_value_test(parser.take(), parser)]
        while parser.peek() is not None and parser.peek().text == ",":  # type: ignore[union-attr]
            parser.take()
            tests.append(_value_test(parser.take(), parser))
        parser.expect(")")
        return _field_any(field, tests)
    if following is None or following.kind != "op":
        raise parser.fail(f"bare search term {field!r} is outside the emitted subset")
    op = parser.take().text
    value = parser.take()
    if op == "=":
        return _field_any(field, [_value_test(value, parser)])
    if op == "!=":
        inner = _field_any(field, [_value_test(value, parser)])
        return lambda document: bool(values_of(document, field)) and not inner(document)
    return _compare(field, op, value, parser)


def _compare(field: str, op: str, token: Token, parser: _Parser) -> Test:
    if token.kind != "word" or not NUMBER.match(token.text):
        raise _error(f"'{op}' needs a number", parser.query, token.offset)
    bound = float(token.text)
    compare = COMPARE[op]

    def test(document: Document) -> bool:
        for value in values_of(document, field):
            number = as_number(value)
            if number is not None and compare(number, bound):
                return True
        return False
    return test


COMPARE: Dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _value_test(token: Token, parser: _Parser) -> Callable[[Any], bool]:
    if token.kind not in ("string", "word") or token.kind == "word" and token.text in SEARCH_KEYWORDS:
        raise _error(f"expected a value, found {token.text!r}", parser.query, token.offset)
    text = token.value
    if CIDR_LIKE.match(text):
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            network = None
        if network is not None:
            return lambda value: _in_network(value, network)
    if token.kind == "word" and NUMBER.match(text):
        wanted = float(text)
        return lambda value: as_number(value) == wanted
    regex = re.compile("".join(".*" if char == "*" else re.escape(char) for char in fold(text)), re.DOTALL)

    def test(value: Any) -> bool:
        value_text = as_text(value)
        return value_text is not None and regex.fullmatch(fold(value_text)) is not None
    return test


def _in_network(value: Any, network: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value.strip()) in network
    except ValueError:
        return False


def _field_any(field: str, tests: List[Callable[[Any], bool]]) -> Test:
    def test(document: Document) -> bool:
        for value in values_of(document, field):
            for value_test in tests:
                if value_test(value):
                    return True
        return False
    return test


def _all(parts: List[Test]) -> Test:
    if len(parts) == 1:
        return parts[0]
    return lambda document: all(part(document) for part in parts)


def _any(parts: List[Test]) -> Test:
    if len(parts) == 1:
        return parts[0]
    return lambda document: any(part(document) for part in parts)


# Eval expressions: each compiles to a function of the document returning a value (None is null).

Value = Callable[[Document], Any]


def _eval_or(parser: _Parser) -> Value:
    parts = [_eval_and(parser)]
    while parser.peek() is not None and parser.peek().text == "OR":  # type: ignore[union-attr]
        parser.take()
        parts.append(_eval_and(parser))
    if len(parts) == 1:
        return parts[0]

    def either(document: Document) -> Optional[bool]:
        results = [part(document) for part in parts]
        if any(result is True for result in results):
            return True
        return None if any(result is None for result in results) else False
    return either


def _eval_and(parser: _Parser) -> Value:
    parts = [_eval_not(parser)]
    while parser.peek() is not None and parser.peek().text == "AND":  # type: ignore[union-attr]
        parser.take()
        parts.append(_eval_not(parser))
    if len(parts) == 1:
        return parts[0]

    def both(document: Document) -> Optional[bool]:
        results = [part(document) for part in parts]
        if any(result is False for result in results):
            return False
        return None if any(result is None for result in results) else True
    return both


def _eval_not(parser: _Parser) -> Value:
    token = parser.peek()
    if token is not None and token.text == "NOT":
        parser.take()
        inner = _eval_not(parser)

        def negate(document: Document) -> Optional[bool]:
            result = inner(document)
            return None if result is None else not result
        return negate
    return _eval_comparison(parser)


def _eval_comparison(parser: _Parser) -> Value:
    left = _eval_operand(parser)
    token = parser.peek()
    if token is None or token.kind != "op":
        return left
    op = parser.take().text
    right = _eval_operand(parser)
    compare = EVAL_COMPARE.get(op)
    if compare is None:
        raise _error(f"operator {op!r} is outside the emitted subset", parser.query, token.offset)

    def test(document: Document) -> Optional[bool]:
        a, b = left(document), right(document)
        if a is None or b is None or isinstance(a, list) or isinstance(b, list):
            return None
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return compare(a, b)
        return compare(str(a), str(b))
    return test


EVAL_COMPARE: Dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _eval_operand(parser: _Parser) -> Value:
    token = parser.take()
    if token.text == "(":
        inner = _eval_or(parser)
        parser.expect(")")
        return inner
    if token.kind == "string":
        text = token.value
        return lambda document: text
    if token.kind == "field":
        name = token.value
        return lambda document: _field_value(document, name)
    if token.kind == "word" and NUMBER.match(token.text):
        number = float(token.text)
        return lambda document: number
    if token.kind == "word" and parser.peek() is not None and parser.peek().text == "(":  # type: ignore[union-attr]
        return _eval_call(token, parser)
    if token.kind == "word" and EVAL_FIELD.match(token.text) and token.text not in SEARCH_KEYWORDS:
        name = token.text
        return lambda document: _field_value(document, name)
    raise _error(f"unexpected {token.text!r} in an eval expression", parser.query, token.offset)


def _field_value(document: Document, name: str) -> Any:
    value = document.get(name)
    if isinstance(value, list):
        items = [item for item in value if item is not None]
        return items if len(items) > 1 else (items[0] if items else None)
    return value


def _eval_call(token: Token, parser: _Parser) -> Value:
    name = token.text
    parser.expect("(")
    args = [_eval_or(parser)]
    while parser.peek() is not None and parser.peek().text == ",":  # type: ignore[union-attr]
        parser.take()
        args.append(_eval_or(parser))
    parser.expect(")")
    function = FUNCTIONS.get(name)
    if function is None:
        raise _error(f"eval function {name!r} is outside the emitted subset", parser.query, token.offset)
    return function(args, parser)


def _mvfind(args: List[Value], parser: _Parser) -> Value:
    field, pattern = args
    probe = pattern({})
    if not isinstance(probe, str):
        raise parser.fail("mvfind needs a string literal pattern")
    regex = pcre_to_python(probe)

    def find(document: Document) -> Optional[int]:
        value = field(document)
        items = value if isinstance(value, list) else ([] if value is None else [value])
        for index, item in enumerate(items):
            text = as_text(item)
            if text is not None and regex.search(text):
                return index
        return None
    return find


def _scalar(function: Callable[[Any], Any]) -> Callable[[List[Value], _Parser], Value]:
    def build(args: List[Value], parser: _Parser) -> Value:
        (arg,) = args

        def call(document: Document) -> Any:
            value = arg(document)
            if value is None or isinstance(value, list):
                return None
            return function(value)
        return call
    return build


def _cidrmatch(args: List[Value], parser: _Parser) -> Value:
    network_text, field = args
    network = ipaddress.ip_network(network_text({}), strict=False)

    def call(document: Document) -> Optional[bool]:
        value = field(document)
        if value is None or isinstance(value, list):
            return None
        return _in_network(value, network)
    return call


FUNCTIONS: Dict[str, Callable[[List[Value], _Parser], Value]] = {
    "isnull": lambda args, parser: (lambda document: args[0](document) is None),
    "isnotnull": lambda args, parser: (lambda document: args[0](document) is not None),
    "mvfind": _mvfind,
    "lower": _scalar(lambda value: fold(as_text(value) or "")),
    "tonumber": _scalar(as_number),
    "cidrmatch": _cidrmatch,
}


# Commands.


def _split_commands(tokens: List[Token]) -> List[List[Token]]:
    commands: List[List[Token]] = [[]]
    for token in tokens:
        if token.kind == "punct" and token.text == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    return commands


def compile_query(query: str, mapping: Optional[FieldMapping] = None) -> Callable[[Document], bool]:
    """Compile SPL text of the emitted subset into a test on one document."""
    commands = _split_commands(tokenize(query))
    tests: List[Test] = []
    if not commands[0]:
        if len(commands) < 2 or not commands[1] or commands[1][0].text != "tstats":
            raise _error("a query that starts with '|' must start with tstats", query, 0)
        tests.append(_tstats(commands[1], query, mapping))
        rest = commands[2:]
    else:
        first = commands[0][1:] if commands[0][0].text == "search" else commands[0]
        if not first:
            raise _error("search needs an expression", query, 0)
        tests.append(_search_command(first, query))
        rest = commands[1:]
    for command in rest:
        if not command or command[0].text != "where":
            found = command[0].text if command else "(empty)"
            raise _error(f"command {found!r} is outside the emitted subset", query,
                         command[0].offset if command else len(query))
        tests.append(_where_command(command[1:], query))

    def run(document: Document) -> bool:
        return all(test(document) is True for test in tests)
    return run


def _search_command(tokens: List[Token], query: str) -> Test:
    if len(tokens) == 1 and tokens[0].text == "*":
        return lambda document: True
    parser = _Parser(tokens, query)
    test = _search_and(parser)
    if not parser.done():
        raise parser.fail("unexpected token after the search expression")
    return test


def _where_command(tokens: List[Token], query: str) -> Test:
    parser = _Parser(tokens, query)
    value = _eval_or(parser)
    if not parser.done():
        raise parser.fail("unexpected token after the where expression")
    return lambda document: value(document) is True


def _tstats(tokens: List[Token], query: str, mapping: Optional[FieldMapping]) -> Test:
    words = [token.text for token in tokens]
    try:
        where_at = words.index("where")
        by_at = len(words) - 1 - words[::-1].index("by")
        from_at = words.index("from")
    except ValueError:
        raise _error("tstats needs 'from datamodel=...', 'where' and 'by'", query, tokens[0].offset) from None
    options = _tstats_options(tokens[1:from_at])
    source = tokens[from_at + 1:where_at]
    if [token.text for token in source[:2]] != ["datamodel", "="] or len(source) != 3:
        raise _error("tstats needs 'from datamodel=<name>'", query, tokens[from_at].offset)
    table = source[2].text
    if mapping is not None and mapping.table and mapping.table != table:
        raise _error(f"data model {table!r} is not the mapping's {mapping.table!r}", query, source[2].offset)
    condition = _search_command(tokens[where_at + 1:by_at], query)
    group_by = [token.text for token in tokens[by_at + 1:]]
    fills_null = "fillnull_value" in options

    def test(document: Document) -> bool:
        if not fills_null and any(not values_of(document, name) for name in group_by):
            return False
        return bool(condition(document))
    return test


def _tstats_options(tokens: List[Token]) -> Dict[str, str]:
    options: Dict[str, str] = {}
    index = 0
    while index + 2 < len(tokens) and tokens[index + 1].text == "=":
        options[tokens[index].text] = tokens[index + 2].value
        index += 3
    return options


def parse_literals(query: str) -> List[Tuple[str, str]]:
    """Return the (kind, value) of every string token, for checks that no value ends a string early."""
    return [(token.kind, token.value) for token in tokenize(query) if token.kind == "string"]
