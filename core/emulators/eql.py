"""An evaluator of Elastic EQL event queries (``<category> where <condition>``) on single documents.

Elasticsearch runs the condition of an event query as a Query DSL filter, so each comparison maps
onto the Query DSL emulator's leaf queries and shares its field types and multivalue rules:

- ``:`` and ``like~`` match a pattern ignoring case, ``like`` with case; ``*`` matches any run of
  characters, ``?`` one, and every other character (the backslash included) is literal, because
  Elasticsearch's EQL has no escape inside a pattern. Both take one pattern or a list.
- ``==``, ``!=``, ``in`` and ``not in`` compare with case; ``in~`` without. ``== null`` holds
  when the field is missing or null, ``!= null`` when it has a value.
- ``regex`` and ``regex~`` take Lucene regular expressions that must match the whole value.
- ``<``, ``<=``, ``>``, ``>=`` compare numbers; ``cidrMatch(field, network, ...)`` tests addresses.
- A comparison on a missing field is false, so ``not`` of it is true, as in the Query DSL.
- ``?field`` names an optional field and reads like ``field``.

The category is a case-sensitive ``term`` on ``event.category``; ``any`` matches every document.
Ignoring case folds ASCII letters only (``case_folding="ascii"``, Elasticsearch before Lucene 10.5),
or uses ``str.casefold`` with ``case_folding="casefold"``. Sequences, samples, pipes and other
functions raise ValueError.
"""

import re
from typing import Any, List, Optional, Tuple

from core.emulators.dsl import (
    FieldModel, Test, exists_query, range_query, regexp_query, term_query, wildcard_query,
)

_TOKEN = re.compile(r'''
    (?P<space>\s+)
  | (?P<raw>"""(?:.|\n)*?""")
  | (?P<string>"(?:\\.|[^"\\])*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<quoted>`(?:``|[^`])*`)
  | (?P<word>\??[A-Za-z_@][A-Za-z0-9_@]*(?:\.[A-Za-z_@][A-Za-z0-9_@]*)*~?)
  | (?P<op>==|!=|<=|>=|<|>|:|\(|\)|,)
''', re.VERBOSE | re.DOTALL)
_STRING_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'"}

Token = Tuple[str, Any]


def compile_query(query: str, mapping: Any = None, case_folding: str = "ascii") -> Test:
    """Compile an EQL event query for the mapping's field types (every field untyped without one)."""
    model = FieldModel(getattr(mapping, "field_types", None), case_folding)
    return _Parser(_tokens(query), query, model).query()


def decode_string(literal: str) -> str:
    """Decode an EQL string literal (with its quotes) into its text."""
    if literal.startswith('"""'):
        return literal[3:-3]
    body = literal[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escaped = body[index + 1]
        if escaped == "u":
            end = body.index("}", index)
            digits = body[index + 3:end]
            if not 2 <= len(digits) <= 8 or body[index + 2] != "{":
                raise ValueError(f"invalid unicode escape in EQL string {literal!r}")
            out.append(chr(int(digits, 16)))
            index = end + 1
            continue
        if escaped not in _STRING_ESCAPES:
            raise ValueError(f"invalid escape \\{escaped} in EQL string {literal!r}")
        out.append(_STRING_ESCAPES[escaped])
        index += 2
    return "".join(out)


def eql_pattern_to_wildcard(pattern: str) -> str:
    """Rewrite an EQL pattern (no escapes) in Lucene wildcard syntax (backslash escapes)."""
    return pattern.replace("\\", "\\\\")


def _tokens(query: str) -> List[Token]:
    tokens: List[Token] = []
    index = 0
    while index < len(query):
        found = _TOKEN.match(query, index)
        if found is None:
            raise ValueError(f"unexpected {query[index]!r} at offset {index} of EQL query {query!r}")
        kind = found.lastgroup or ""
        text = found.group()
        index = found.end()
        if kind == "space":
            continue
        if kind in ("string", "raw"):
            tokens.append(("string", decode_string(text)))
        elif kind == "number":
            tokens.append(("number", float(text) if any(c in text for c in ".eE") else int(text)))
        elif kind == "quoted":
            tokens.append(("field", text[1:-1].replace("``", "`")))
        elif kind == "word" and text.startswith("?"):
            # ?field names an optional field, which may be missing from the index mapping.
            tokens.append(("field", text[1:]))
        elif kind == "word":
            tokens.append(("word", text))
        else:
            tokens.append(("op", text))
    return tokens


class _Parser:
    """Recursive descent over the tokens of one query."""

    def __init__(self, tokens: List[Token], text: str, model: FieldModel) -> None:
        self.tokens = tokens
        self.index = 0
        self.text = text
        self.model = model

    def error(self, message: str) -> ValueError:
        return ValueError(f"{message} (token {self.index + 1} of EQL query {self.text!r})")

    def peek(self) -> Optional[Token]:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("the query ends too early")
        self.index += 1
        return token

    def accept(self, kind: str, value: Any) -> bool:
        token = self.peek()
        if token is not None and token[0] == kind and str(token[1]).lower() == value:
            self.index += 1
            return True
        return False

    def expect(self, kind: str, value: str) -> None:
        if not self.accept(kind, value):
            raise self.error(f"expected {value!r}")

    def query(self) -> Test:
        kind, category = self.take()
        if kind != "word" or category.lower() in ("sequence", "sample", "join"):
            raise self.error("only event queries (<category> where <condition>) are emulated")
        self.expect("word", "where")
        condition = self.or_()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r} after the condition")  # type: ignore[index]
        if category.lower() == "any":
            return condition
        in_category = term_query(self.model, "event.category", category)
        return lambda document: in_category(document) and condition(document)

    def or_(self) -> Test:
        tests = [self.and_()]
        while self.accept("word", "or"):
            tests.append(self.and_())
        return tests[0] if len(tests) == 1 else lambda document: any(test(document) for test in tests)

    def and_(self) -> Test:
        tests = [self.not_()]
        while self.accept("word", "and"):
            tests.append(self.not_())
        return tests[0] if len(tests) == 1 else lambda document: all(test(document) for test in tests)

    def not_(self) -> Test:
        if self.accept("word", "not"):
            inner = self.not_()
            return lambda document: not inner(document)
        return self.comparison()

    def comparison(self) -> Test:
        if self.accept("op", "("):
            inner = self.or_()
            self.expect("op", ")")
            return inner
        kind, value = self.take()
        if kind == "word" and value.lower() in ("true", "false"):
            constant = value.lower() == "true"
            return lambda document: constant
        if kind == "word" and self.accept("op", "("):
            return self.function(value)
        if kind not in ("word", "field"):
            raise self.error(f"expected a field, not {value!r}")
        return self.predicate(str(value))

    def function(self, name: str) -> Test:
        if name.lower() != "cidrmatch":
            raise self.error(f"the function {name} is not emulated")
        kind, field = self.take()
        if kind not in ("word", "field"):
            raise self.error("cidrMatch needs a field first")
        networks = []
        while self.accept("op", ","):
            networks.append(self.literal())
        self.expect("op", ")")
        tests = [term_query(self.model, field, network) for network in networks]
        return lambda document: any(test(document) for test in tests)

    def predicate(self, field: str) -> Test:
        token = self.take()
        operator = str(token[1]).lower()
        if token[0] == "word" and operator == "not":
            self.expect("word", "in")
            test = self.membership(field, False)
            return lambda document: not test(document)
        if token[0] == "op" and operator in ("==", "!="):
            test = self.equality(field, self.literal())
            return test if operator == "==" else lambda document: not test(document)
        if token[0] == "op" and operator in ("<", "<=", ">", ">="):
            op = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[operator]
            return range_query(self.model, field, {op: self.literal()})
        if operator == ":":
            return self.patterns(field, wildcard=True, insensitive=True)
        if operator in ("like", "like~"):
            return self.patterns(field, wildcard=True, insensitive=operator.endswith("~"))
        if operator in ("regex", "regex~"):
            return self.patterns(field, wildcard=False, insensitive=operator.endswith("~"))
        if operator in ("in", "in~"):
            return self.membership(field, operator.endswith("~"))
        raise self.error(f"the operator {operator!r} is not emulated")

    def equality(self, field: str, value: Any) -> Test:
        if value is None:
            present = exists_query(self.model, field)
            return lambda document: not present(document)
        return term_query(self.model, field, value)

    def membership(self, field: str, insensitive: bool) -> Test:
        values = self.literal_list()
        tests = [term_query(self.model, field, value, insensitive) for value in values]
        return lambda document: any(test(document) for test in tests)

    def patterns(self, field: str, wildcard: bool, insensitive: bool) -> Test:
        tests: List[Test] = []
        for pattern in self.literal_list():
            if not isinstance(pattern, str):
                # NOTE: a number or boolean after ':' or like is read as an equality, which is what
                # Elasticsearch does for ':'; for like it may instead reject the query.
                tests.append(term_query(self.model, field, pattern, insensitive))
            elif wildcard:
                tests.append(wildcard_query(self.model, field, eql_pattern_to_wildcard(pattern), insensitive))
            else:
                tests.append(regexp_query(self.model, field, pattern, insensitive))
        return lambda document: any(test(document) for test in tests)

    def literal_list(self) -> List[Any]:
        if not self.accept("op", "("):
            return [self.literal()]
        values = [self.literal()]
        while self.accept("op", ","):
            values.append(self.literal())
        self.expect("op", ")")
        return values

    def literal(self) -> Any:
        kind, value = self.take()
        if kind in ("string", "number"):
            return value
        if kind == "word" and value.lower() == "null":
            return None
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.error(f"expected a literal, not {value!r}")

