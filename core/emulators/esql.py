"""An evaluator of ES|QL queries of the form ``FROM <indices> | WHERE <condition> [| WHERE ...]``.

It keeps ES|QL's three-valued logic: a comparison with a null operand is null, ``NOT null`` is null,
``AND`` and ``OR`` follow SQL's tables, and ``WHERE`` keeps a document only when the condition is
true. A field that is missing, null or an empty list is null. A field with several values is
multivalued: ``IS NULL`` is false for it, and every function and comparison on it returns null
(ES|QL reference, "Multivalued fields").

Supported: ``AND``, ``OR``, ``NOT``, ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE`` (``*``,
``?``, ``\\`` escapes), ``RLIKE`` (Lucene regular expressions, whole value), ``IN``, ``IS [NOT]
NULL``, ``TO_LOWER``, ``TO_UPPER``, ``STARTS_WITH``, ``ENDS_WITH`` and ``CIDR_MATCH``. Other commands and functions raise ValueError.
``TO_LOWER`` lowers with Python's ``str.lower``, close to Java's ``String.toLowerCase`` that
Elasticsearch uses. A keyword field that contains a number compares as its text.
"""

import ipaddress
import re
from typing import Any, Callable, List, Mapping, Optional, Tuple

from core.emulators.dsl import NUMERIC_TYPES, STRING_TYPES, Document, Test, lucene_regexp_to_python

_TOKEN = re.compile(r'''
    (?P<space>\s+)
  | (?P<raw>"""(?:.|\n)*?""")
  | (?P<string>"(?:\\.|[^"\\])*")
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<quoted>`(?:``|[^`])*`)
  | (?P<word>[A-Za-z_@][A-Za-z0-9_@]*(?:\.[A-Za-z_@][A-Za-z0-9_@]*)*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|,|-)
''', re.VERBOSE | re.DOTALL)
_STRING_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}

Token = Tuple[str, Any]
Value = Any
Expression = Callable[[Document], Value]


class _Multivalued:
    """A field with several values: null for functions and comparisons, but not IS NULL."""

    def __repr__(self) -> str:
        return "MULTIVALUED"


MULTIVALUED = _Multivalued()


def compile_query(query: str, mapping: Any = None, case_folding: str = "lower") -> Test:
    """Compile an ES|QL query for the mapping's field types (every field untyped without one)."""
    if case_folding != "lower":
        raise ValueError("ES|QL lowers case only through TO_LOWER; case_folding must be 'lower'")
    field_types = dict(getattr(mapping, "field_types", None) or {})
    conditions: List[Expression] = []
    commands = split_commands(query)
    if not commands or not commands[0].upper().startswith("FROM "):
        raise ValueError(f"an ES|QL query must start with FROM: {query!r}")
    for command in commands[1:]:
        keyword = command.split(None, 1)[0].upper() if command.strip() else ""
        if keyword != "WHERE":
            raise ValueError(f"the ES|QL command {keyword or command!r} is not emulated (only WHERE)")
        parser = _Parser(_tokens(command.split(None, 1)[1]), command, field_types)
        conditions.append(parser.condition())
    return lambda document: all(condition(document) is True for condition in conditions)


def split_commands(query: str) -> List[str]:
    """Split a query at the pipes that stand outside strings and backticks."""
    commands: List[str] = []
    start = 0
    index = 0
    while index < len(query):
        char = query[index]
        if query.startswith('"""', index):
            index = query.index('"""', index + 3) + 3
            continue
        if char == '"':
            index += 1
            while query[index] != '"':
                index += 2 if query[index] == "\\" else 1
        elif char == "`":
            index = query.index("`", index + 1)
        elif char == "|":
            commands.append(query[start:index].strip())
            start = index + 1
        index += 1
    commands.append(query[start:].strip())
    return commands


def decode_string(literal: str) -> str:
    """Decode an ES|QL string literal (with its quotes) into its text."""
    if literal.startswith('"""'):
        return literal[3:-3]
    body = literal[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            escaped = body[index + 1]
            if escaped not in _STRING_ESCAPES:
                raise ValueError(f"invalid escape \\{escaped} in ES|QL string {literal!r}")
            out.append(_STRING_ESCAPES[escaped])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def like_to_python(pattern: str) -> str:
    """Translate a LIKE pattern (``*``, ``?``, backslash escapes) into a Python regex for fullmatch."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append({"*": ".*", "?": "."}.get(char) or re.escape(char))
        index += 1
    return "".join(out)


def _tokens(text: str) -> List[Token]:
    tokens: List[Token] = []
    index = 0
    while index < len(text):
        found = _TOKEN.match(text, index)
        if found is None:
            raise ValueError(f"unexpected {text[index]!r} at offset {index} of ES|QL {text!r}")
        kind = found.lastgroup or ""
        index = found.end()
        if kind == "space":
            continue
        value = found.group()
        if kind in ("string", "raw"):
            tokens.append(("string", decode_string(value)))
        elif kind == "number":
            tokens.append(("number", float(value) if any(c in value for c in ".eE") else int(value)))
        elif kind == "quoted":
            tokens.append(("field", value[1:-1].replace("``", "`")))
        else:
            tokens.append((kind, value))
    return tokens


def _and(left: Value, right: Value) -> Value:
    if left is False or right is False:
        return False
    if left is None or right is None:
        return None
    return True


def _or(left: Value, right: Value) -> Value:
    if left is True or right is True:
        return True
    if left is None or right is None:
        return None
    return False


def _scalar(value: Value) -> Value:
    """Return None for null and multivalued operands, which make functions and comparisons null."""
    return None if value is MULTIVALUED else value


class _Parser:
    """Recursive descent over one WHERE condition, building closures that return true, false or None."""

    def __init__(self, tokens: List[Token], text: str, field_types: Mapping[str, str]) -> None:
        self.tokens = tokens
        self.index = 0
        self.text = text
        self.field_types = field_types

    def error(self, message: str) -> ValueError:
        return ValueError(f"{message} (token {self.index + 1} of {self.text!r})")

    def peek_word(self) -> Optional[str]:
        if self.index < len(self.tokens) and self.tokens[self.index][0] == "word":
            return str(self.tokens[self.index][1]).upper()
        return None

    def accept_word(self, word: str) -> bool:
        if self.peek_word() == word:
            self.index += 1
            return True
        return False

    def accept_op(self, op: str) -> bool:
        if self.index < len(self.tokens) and self.tokens[self.index] == ("op", op):
            self.index += 1
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.error(f"expected {op!r}")

    def take(self) -> Token:
        if self.index >= len(self.tokens):
            raise self.error("the condition ends too early")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def condition(self) -> Expression:
        expression = self.or_()
        if self.index != len(self.tokens):
            raise self.error(f"unexpected {self.tokens[self.index][1]!r}")
        return expression

    def or_(self) -> Expression:
        operands = [self.and_()]
        while self.accept_word("OR"):
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else _chain(_or, operands)

    def and_(self) -> Expression:
        operands = [self.not_()]
        while self.accept_word("AND"):
            operands.append(self.not_())
        return operands[0] if len(operands) == 1 else _chain(_and, operands)

    def not_(self) -> Expression:
        if self.accept_word("NOT"):
            inner = self.not_()

            def negate(document: Document) -> Value:
                value = inner(document)
                return None if value is None else not value
            return negate
        return self.predicate()

    def predicate(self) -> Expression:
        left = self.operand()
        negated = self.accept_word("NOT")
        word = self.peek_word()
        if word in ("LIKE", "RLIKE"):
            self.index += 1
            kind, pattern = self.take()
            if kind != "string":
                raise self.error(f"{word} needs a string pattern")
            source = like_to_python(pattern) if word == "LIKE" else lucene_regexp_to_python(pattern)
            test = _pattern(left, re.compile(source, re.DOTALL))
            return _maybe_not(test, negated)
        if word == "IN":
            self.index += 1
            self.expect_op("(")
            options = [self.operand()]
            while self.accept_op(","):
                options.append(self.operand())
            self.expect_op(")")
            return _maybe_not(_membership(left, options), negated)
        if negated:
            raise self.error("NOT must be followed by LIKE, RLIKE or IN here")
        if word == "IS":
            self.index += 1
            wanted_null = not self.accept_word("NOT")
            if not self.accept_word("NULL"):
                raise self.error("expected NULL")
            return lambda document: (left(document) is None) is wanted_null
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.accept_op(op):
                return _comparison(op, left, self.operand())
        return left

    def operand(self) -> Expression:
        kind, value = self.take()
        if kind == "op" and value == "(":
            inner = self.or_()
            self.expect_op(")")
            return inner
        if kind == "op" and value == "-":
            number = self.take()
            if number[0] != "number":
                raise self.error("expected a number after '-'")
            negative = -number[1]
            return lambda document: negative
        if kind in ("string", "number"):
            return lambda document: value
        if kind == "word" and value.upper() in ("TRUE", "FALSE", "NULL"):
            constant = {"TRUE": True, "FALSE": False, "NULL": None}[value.upper()]
            return lambda document: constant
        if kind == "word" and self.accept_op("("):
            return self.function(str(value).upper())
        if kind in ("word", "field"):
            return self.field(str(value))
        raise self.error(f"unexpected {value!r}")

    def function(self, name: str) -> Expression:
        arguments = [self.operand()]
        while self.accept_op(","):
            arguments.append(self.operand())
        self.expect_op(")")
        if name in ("TO_LOWER", "TO_UPPER") and len(arguments) == 1:
            convert = str.lower if name == "TO_LOWER" else str.upper
            argument = arguments[0]

            def change_case(document: Document) -> Value:
                value = _scalar(argument(document))
                return convert(value) if isinstance(value, str) else None
            return change_case
        if name == "CIDR_MATCH" and len(arguments) >= 2:
            return _cidr_match(arguments[0], arguments[1:])
        if name in ("STARTS_WITH", "ENDS_WITH") and len(arguments) == 2:
            return _affix(name == "STARTS_WITH", arguments[0], arguments[1])
        raise self.error(f"the function {name} is not emulated")

    def field(self, name: str) -> Expression:
        field_type = self.field_types.get(name)

        def read(document: Document) -> Value:
            value = document.get(name)
            if isinstance(value, list):
                items = [item for item in value if item is not None]
                if not items:
                    return None
                if len(items) > 1:
                    return MULTIVALUED
                value = items[0]
            if value is None:
                return None
            if field_type in STRING_TYPES and isinstance(value, bool):
                return "true" if value else "false"
            if field_type in STRING_TYPES and not isinstance(value, str):
                return str(value)
            if field_type in NUMERIC_TYPES and isinstance(value, str):
                try:
                    return float(value) if "." in value else int(value)
                except ValueError:
                    return None
            return value
        return read


def _chain(combine: Callable[[Value, Value], Value], operands: List[Expression]) -> Expression:
    """Fold a run of AND or OR operands in one closure, so long chains need no deep recursion."""
    def evaluate(document: Document) -> Value:
        result = operands[0](document)
        for operand in operands[1:]:
            result = combine(result, operand(document))
        return result
    return evaluate


def _maybe_not(test: Expression, negated: bool) -> Expression:
    if not negated:
        return test

    def negate(document: Document) -> Value:
        value = test(document)
        return None if value is None else not value
    return negate


def _pattern(subject: Expression, regex: Any) -> Expression:
    def test(document: Document) -> Value:
        value = _scalar(subject(document))
        if value is None:
            return None
        return regex.fullmatch(str(value)) is not None
    return test


def _membership(subject: Expression, options: List[Expression]) -> Expression:
    def test(document: Document) -> Value:
        value = _scalar(subject(document))
        if value is None:
            return None
        return any(_equal(value, option(document)) is True for option in options)
    return test


def _equal(left: Value, right: Value) -> Value:
    left, right = _scalar(left), _scalar(right)
    if left is None or right is None:
        return None
    if isinstance(left, str) != isinstance(right, str):
        # NOTE: Elasticsearch rejects a comparison of text with a number when it plans the query;
        # the emulator compares the number's text, as for a keyword field that contains a number.
        return str(left) == str(right)
    return left == right


def _comparison(op: str, left: Expression, right: Expression) -> Expression:
    order: Callable[[Any, Any], bool] = {
        "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    }.get(op, lambda a, b: False)

    def test(document: Document) -> Value:
        first, second = _scalar(left(document)), _scalar(right(document))
        if first is None or second is None:
            return None
        if op in ("==", "!="):
            equal = _equal(first, second)
            return equal if op == "==" else not equal
        if isinstance(first, str) != isinstance(second, str):
            return None
        return order(first, second)
    return test


def _affix(prefix: bool, subject: Expression, affix: Expression) -> Expression:
    def test(document: Document) -> Value:
        value, part = _scalar(subject(document)), _scalar(affix(document))
        if not isinstance(value, str) or not isinstance(part, str):
            return None
        return value.startswith(part) if prefix else value.endswith(part)
    return test


def _cidr_match(subject: Expression, networks: List[Expression]) -> Expression:
    def test(document: Document) -> Value:
        value = _scalar(subject(document))
        if value is None:
            return None
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            return None
        return any(address in ipaddress.ip_network(str(network(document)), strict=False) for network in networks)
    return test
