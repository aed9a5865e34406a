"""An evaluator of the KQL subset that core.targets.kql emits, read from the query text.

Supported: ``<table>`` or ``union *``, then one or more ``| where <predicate>``. Predicates use
``and``, ``or``, ``not()`` and parentheses. The string operators are ``==``, ``!=``, ``=~``,
``!~``, ``contains``, ``startswith`` and ``endswith`` (each also with ``_cs``), ``has``,
``has_cs``, their ``!`` negations, ``in``, ``in~`` and ``matches regex``. The numeric comparisons
and the functions ``isempty``, ``isnotempty``, ``isnull``, ``isnotnull``, ``toreal``, ``todouble``,
``tostring``, ``ipv4_is_in_range`` and ``ipv6_is_in_range`` complete the subset. Anything else
raises ConversionError naming the construct.

Semantics modelled (Kusto documentation, "String operators", "where operator", "The string data
type"):

- ``and`` binds tighter than ``or``; operator names are lower case and case-sensitive.
- A string column holds ``""`` where the document has no value, so a missing or null field reads
  as ``""`` for string operators and ``isempty``; ``toreal("")`` is null.
- Numbers and booleans read as their text for string operators (``4688``, ``true``); a list (a
  ``dynamic`` array) reads as its JSON text, as ``tostring()`` gives it.
- Case-insensitive operators compare per character after ``str.upper`` where that yields one
  character, modelling .NET's ordinal ignore-case comparison (so ``ß`` does not equal ``SS``).
- ``has`` looks for the right side as whole terms: the characters around the match must not be
  ASCII letters or digits.
- ``matches regex`` is RE2, searched, not anchored; it runs here with Python's ``re`` after
  rewriting ``\\z`` and ``\\x{...}``. NOTE: ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII-only in RE2
  but Unicode-aware in Python; the emulator does not model that difference.
- A comparison with null is false, so ``where`` drops the row (the "where operator" page).
- Inside ``"..."`` and ``'...'`` strings the escapes are ``\\\\``, ``\\"``, ``\\'``, ``\\n``,
  ``\\r`` and ``\\t``; a verbatim string ``@"..."`` has only ``""`` for a quote.
"""

import functools
import ipaddress
import json
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from core.emulators.spl import pcre_to_python
from core.errors import ConversionError
from core.mappings import FieldMapping

Document = Mapping[str, Any]
Value = Callable[[Document], Any]

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<verbatim>@"(?:[^"]|"")*"|@'(?:[^']|'')*')
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<column>\[\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\])
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<op>==|=~|!=|!~|>=|<=|>|<)
  | (?P<punct>[(),|*])
  | (?P<word>!?[A-Za-z_][A-Za-z0-9_]*~?)
""", re.VERBOSE)
ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
TERM_CHARACTER = re.compile(r"[A-Za-z0-9]")


class Token:
    __slots__ = ("kind", "text", "value", "offset")

    def __init__(self, kind: str, text: str, value: Any, offset: int) -> None:
        self.kind = kind
        self.text = text
        self.value = value
        self.offset = offset


def _error(message: str, query: str, offset: int) -> ConversionError:
    return ConversionError(f"{message} at offset {offset} of the kql query: {query[offset:offset + 40]!r}")


def tokenize(query: str) -> List[Token]:
    """Split KQL text into tokens; string and column tokens carry their unescaped value."""
    tokens: List[Token] = []
    position = 0
    while position < len(query):
        found = TOKEN.match(query, position)
        if found is None:
            raise _error("unexpected character", query, position)
        kind = found.lastgroup or ""
        text = found.group()
        if kind == "verbatim":
            quote = text[1]
            tokens.append(Token("string", text, text[2:-1].replace(quote * 2, quote), position))
        elif kind == "string":
            tokens.append(Token(kind, text, _unescape(text[1:-1], query, position), position))
        elif kind == "column":
            inner = text[1:-1].strip()
            tokens.append(Token(kind, text, _unescape(inner[1:-1], query, position), position))
        elif kind != "space":
            tokens.append(Token(kind, text, text, position))
        position = found.end()
    return tokens


def _unescape(body: str, query: str, offset: int) -> str:
    out: List[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            escaped = body[index + 1]
            if escaped not in ESCAPES:
                raise _error(f"escape '\\{escaped}' is outside the emitted subset", query, offset + index)
            out.append(ESCAPES[escaped])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Fold case per character with str.upper, keeping characters whose upper case is longer."""
    out = []
    for char in text:
        upper = char.upper()
        out.append(upper if len(upper) == 1 else char)
    return "".join(out)


def as_text(value: Any) -> str:
    """Return the text a string operator sees for a document value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def as_real(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _has(left: str, right: str) -> bool:
    start = left.find(right)
    while start >= 0:
        end = start + len(right)
        before = left[start - 1:start]
        after = left[end:end + 1]
        clean_start = not right[:1] or not TERM_CHARACTER.match(right[:1]) or not TERM_CHARACTER.match(before)
        clean_end = not right[-1:] or not TERM_CHARACTER.match(right[-1:]) or not TERM_CHARACTER.match(after)
        if clean_start and clean_end:
            return True
        start = left.find(right, start + 1)
    return False


STRING_OPERATORS: Dict[str, Callable[[str, str], bool]] = {
    "==": lambda a, b: a == b,
    "=~": lambda a, b: fold(a) == fold(b),
    "contains": lambda a, b: fold(b) in fold(a),
    "contains_cs": lambda a, b: b in a,
    "startswith": lambda a, b: fold(a).startswith(fold(b)),
    "startswith_cs": lambda a, b: a.startswith(b),
    "endswith": lambda a, b: fold(a).endswith(fold(b)),
    "endswith_cs": lambda a, b: a.endswith(b),
    "has": lambda a, b: _has(fold(a), fold(b)),
    "has_cs": _has,
}
NEGATED = {"!=": "==", "!~": "=~"}
NUMERIC_OPERATORS: Dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


class _Parser:
    def __init__(self, tokens: List[Token], query: str) -> None:
        self.tokens = tokens
        self.position = 0
        self.query = query

    def peek(self, ahead: int = 0) -> Optional[Token]:
        index = self.position + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _error("the query ends too early", self.query, len(self.query))
        self.position += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text:
            raise _error(f"expected {text!r}, found {token.text!r}", self.query, token.offset)
        return token

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text == text


def _or(parser: _Parser) -> Value:
    parts = [_and(parser)]
    while parser.at("or"):
        parser.take()
        parts.append(_and(parser))
    if len(parts) == 1:
        return parts[0]
    return lambda document: any(part(document) is True for part in parts)


def _and(parser: _Parser) -> Value:
    parts = [_comparison(parser)]
    while parser.at("and"):
        parser.take()
        parts.append(_comparison(parser))
    if len(parts) == 1:
        return parts[0]
    return lambda document: all(part(document) is True for part in parts)


def _comparison(parser: _Parser) -> Value:
    left = _operand(parser)
    token = parser.peek()
    if token is None or token.text in ("and", "or", ")", ",", "|"):
        return left
    op = parser.take().text
    if op == "matches":
        parser.expect("regex")
        return _matches(left, parser)
    if op in ("in", "in~", "!in", "!in~"):
        return _in(left, op, parser)
    right = _operand(parser)
    if op in NUMERIC_OPERATORS or op in ("==", "!=") and _is_numeric(right):
        return _numeric(left, op, right)
    negate = op.startswith("!")
    name = NEGATED.get(op, op[1:] if negate else op)
    compare = STRING_OPERATORS.get(name)
    if compare is None:
        raise _error(f"operator {op!r} is outside the emitted subset", parser.query, token.offset)

    def test(document: Document) -> bool:
        result = compare(as_text(left(document)), as_text(right(document)))
        return not result if negate else result
    return test


def _is_numeric(operand: Value) -> bool:
    return getattr(operand, "numeric", False)


def _numeric(left: Value, op: str, right: Value) -> Value:
    compare = NUMERIC_OPERATORS.get(op) or {"==": lambda a, b: a == b, "!=": lambda a, b: a != b}[op]

    def test(document: Document) -> bool:
        a, b = as_real(left(document)), as_real(right(document))
        return a is not None and b is not None and compare(a, b)
    return test


def _matches(left: Value, parser: _Parser) -> Value:
    token = parser.take()
    if token.kind != "string":
        raise _error("matches regex needs a string literal", parser.query, token.offset)
    regex = pcre_to_python(token.value)
    return lambda document: regex.search(as_text(left(document))) is not None


def _in(left: Value, op: str, parser: _Parser) -> Value:
    parser.expect("(")
    values = [parser.take()]
    while parser.at(","):
        parser.take()
        values.append(parser.take())
    parser.expect(")")
    for token in values:
        if token.kind != "string":
            raise _error(f"'{op}' lists only string literals in the emitted subset", parser.query, token.offset)
    insensitive = op.endswith("~")
    wanted = {fold(token.value) if insensitive else token.value for token in values}
    negate = op.startswith("!")

    def test(document: Document) -> bool:
        text = as_text(left(document))
        found = (fold(text) if insensitive else text) in wanted
        return not found if negate else found
    return test


def _operand(parser: _Parser) -> Value:
    token = parser.take()
    if token.text == "(":
        inner = _or(parser)
        parser.expect(")")
        return inner
    if token.kind == "string":
        text = token.value
        return lambda document: text
    if token.kind == "number":
        number = float(token.text)

        def constant(document: Document) -> float:
            return number
        constant.numeric = True  # type: ignore[attr-defined]
        return constant
    if token.kind == "column":
        name = token.value
        return lambda document: document.get(name)
    if token.text in ("true", "false"):
        flag = token.text == "true"
        return lambda document: flag
    if token.kind == "word" and parser.at("("):
        return _call(token, parser)
    if token.kind == "word" and not token.text.startswith("!") and not token.text.endswith("~"):
        name = token.text
        return lambda document: document.get(name)
    raise _error(f"unexpected {token.text!r} in a predicate", parser.query, token.offset)


def _call(token: Token, parser: _Parser) -> Value:
    parser.expect("(")
    args = [_or(parser)]
    while parser.at(","):
        parser.take()
        args.append(_or(parser))
    parser.expect(")")
    builder = FUNCTIONS.get(token.text)
    if builder is None:
        raise _error(f"function {token.text!r} is outside the emitted subset", parser.query, token.offset)
    return builder(args)


def _in_range(version: int) -> Callable[[List[Value]], Value]:
    def build(args: List[Value]) -> Value:
        field, network_text = args
        network = ipaddress.ip_network(network_text({}), strict=False)

        def test(document: Document) -> bool:
            text = as_text(field(document))
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                return False
            if version == 4 and address.version != 4:
                return False
            if version == 6 and address.version == 4:
                # Kusto's IPv6 functions take IPv4 addresses as IPv4-mapped IPv6 addresses.
                address = ipaddress.IPv6Address("::ffff:" + text)
            return address in network
        return test
    return build


def _to_real(args: List[Value]) -> Value:
    (arg,) = args

    def call(document: Document) -> Optional[float]:
        return as_real(arg(document))
    call.numeric = True  # type: ignore[attr-defined]
    return call


FUNCTIONS: Dict[str, Callable[[List[Value]], Value]] = {
    "not": lambda args: (lambda document: args[0](document) is not True),
    "isempty": lambda args: (lambda document: as_text(args[0](document)) == ""),
    "isnotempty": lambda args: (lambda document: as_text(args[0](document)) != ""),
    # A string column is never null in Kusto; only numbers and dynamic values can be.
    "isnull": lambda args: (lambda document: False),
    "isnotnull": lambda args: (lambda document: True),
    "toreal": _to_real,
    "todouble": _to_real,
    "tostring": lambda args: (lambda document: as_text(args[0](document))),
    "ipv4_is_in_range": _in_range(4),
    "ipv6_is_in_range": _in_range(6),
}


def compile_query(query: str, mapping: Optional[FieldMapping] = None) -> Callable[[Document], bool]:
    """Compile KQL text of the emitted subset into a test on one document."""
    tokens = tokenize(query)
    commands: List[List[Token]] = [[]]
    for token in tokens:
        if token.kind == "punct" and token.text == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    _check_source(commands[0], query, mapping)
    if len(commands) < 2:
        raise _error("the query needs '| where'", query, len(query))
    tests: List[Value] = []
    for command in commands[1:]:
        if not command or command[0].text != "where":
            found = command[0].text if command else "(empty)"
            raise _error(f"operator {found!r} is outside the emitted subset", query,
                         command[0].offset if command else len(query))
        parser = _Parser(command[1:], query)
        tests.append(_or(parser))
        if parser.peek() is not None:
            raise _error("unexpected token after the predicate", query, parser.peek().offset)  # type: ignore[union-attr]

    def run(document: Document) -> bool:
        return all(test(document) is True for test in tests)
    return run


def _check_source(tokens: List[Token], query: str, mapping: Optional[FieldMapping]) -> None:
    texts = [token.text for token in tokens]
    if texts == ["union", "*"]:
        return
    if len(texts) != 1 or tokens[0].kind != "word":
        raise _error("the query must start with a table name or 'union *'", query, 0)
    if mapping is not None and mapping.table and mapping.table != texts[0]:
        raise _error(f"table {texts[0]!r} is not the mapping's {mapping.table!r}", query, 0)


def parse_literals(query: str) -> List[Tuple[str, str]]:
    """Return the (kind, value) of every string token, for checks that no value ends a string early."""
    return [(token.kind, token.value) for token in tokenize(query) if token.kind == "string"]
