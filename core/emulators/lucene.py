"""An evaluator of Lucene ``query_string`` queries, as Elasticsearch runs them on single documents.

It reads the query text with its own parser and maps each clause onto the Query DSL emulator's
leaf queries, so field types act as there: ``keyword`` and ``wildcard`` fields match
case-sensitively, ``keyword:lowercase`` fields (the ``lowercase`` normalizer) lower document values
and terms, numeric and ``ip`` fields compare numbers and networks.

Supported syntax: ``field:term``, ``field:"phrase"``, ``field:/regexp/``, wildcard terms with ``*``
and ``?``, ``field:*`` (the field exists), ``_exists_:field``, ranges (``[a TO b]``, ``{a TO *]``,
``>5``, ``<=5``), groups of values (``field:(a OR b)``), backslash escapes, ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!`` and parentheses.
A group that mixes ``AND`` and ``OR``, puts ``NOT`` beside ``OR``, or joins clauses with no
operator raises ValueError, because Lucene's classic parser gives such groups a meaning that
differs from Boolean logic. A term without a field (searching the default fields), ``+``/``-``
prefixes, boosts, fuzziness and proximity also raise ValueError.
"""

import re
from typing import Any, List, Optional, Tuple

from core.emulators.dsl import (
    FieldModel, Test, exists_query, prefix_query, range_query, regexp_query, term_query,
    wildcard_query,
)

WHITESPACE = frozenset(" \t\n\r\u3000")
# Characters that cannot appear unescaped in a term (Lucene classic query parser grammar).
TERM_STOP = frozenset('+-!():^[]"{}~*?\\/') | WHITESPACE
# Lucene classic query parser: <REGEXPTERM: "/" (~["/"] | "\\/")* "/">, longest match first.
_REGEXP_TOKEN = re.compile(r"/((?:\\/|[^/])*)/", re.DOTALL)
OPERATORS = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR", "NOT": "NOT", "!": "NOT"}


def compile_query(query: str, mapping: Any = None, case_folding: str = "ascii") -> Test:
    """Compile a query_string for the mapping's field types (every field untyped without one)."""
    field_types = getattr(mapping, "field_types", None)
    return compile_lucene(query, FieldModel(field_types, case_folding))


def compile_lucene(query: str, model: FieldModel) -> Test:
    """Compile a query_string against a field model."""
    parser = _Parser(query, model)
    test = parser.group(top=True)
    return test


class _Parser:
    """Reads one query string, building tests as it goes."""

    def __init__(self, text: str, model: FieldModel) -> None:
        self.text = text
        self.index = 0
        self.model = model
        # The field of an enclosing field:(...) group, which its bare values search.
        self.field_context: Optional[str] = None

    def error(self, message: str) -> ValueError:
        return ValueError(f"{message} at offset {self.index} of query {self.text!r}")

    def skip_space(self) -> None:
        while self.index < len(self.text) and self.text[self.index] in WHITESPACE:
            self.index += 1

    def peek_operator(self) -> Optional[str]:
        self.skip_space()
        for word in ("AND", "OR", "NOT", "&&", "||", "!"):
            end = self.index + len(word)
            if self.text.startswith(word, self.index):
                if word.isalpha() and end < len(self.text) and self.text[end] not in WHITESPACE | {"("}:
                    continue
                return word
        return None

    def group(self, top: bool = False) -> Test:
        """Read clauses up to ``)`` (or the end) joined by one kind of operator."""
        items: List[Tuple[bool, Test]] = []
        joins: List[str] = []
        while True:
            self.skip_space()
            if self.index >= len(self.text) or self.text[self.index] == ")":
                break
            if items:
                word = self.peek_operator()
                if word is None or OPERATORS[word] == "NOT":
                    raise self.error("clauses joined with no AND or OR (the default operator) are not emulated")
                joins.append(OPERATORS[word])
                self.index += len(word)
            negated = False
            word = self.peek_operator()
            if word is not None and OPERATORS[word] == "NOT":
                self.index += len(word)
                negated = True
            items.append((negated, self.primary()))
        if top and self.index < len(self.text):
            raise self.error("unbalanced ')'")
        if not items:
            raise self.error("empty group")
        return self.combine(items, joins)

    def combine(self, items: List[Tuple[bool, Test]], joins: List[str]) -> Test:
        if len(set(joins)) > 1:
            raise self.error("a group that mixes AND and OR is not emulated; add parentheses")
        if joins and joins[0] == "OR" and any(negated for negated, _ in items):
            raise self.error("NOT inside an OR group is not emulated (Lucene reads it as a required exclusion)")
        tests = [_negate(test) if negated else test for negated, test in items]
        if len(tests) == 1:
            return tests[0]
        if joins[0] == "AND":
            return lambda document: all(test(document) for test in tests)
        return lambda document: any(test(document) for test in tests)

    def primary(self) -> Test:
        self.skip_space()
        if self.index >= len(self.text):
            raise self.error("missing clause")
        char = self.text[self.index]
        if char == "(":
            self.index += 1
            inner = self.group()
            if self.index >= len(self.text) or self.text[self.index] != ")":
                raise self.error("missing ')'")
            self.index += 1
            return inner
        if char in "+-":
            raise self.error("'+' and '-' prefixes are not emulated")
        if self.field_context is not None:
            return self.value(self.field_context)
        name = self.field_name()
        if name == "_exists_":
            field = _unescape(self.raw_term())
            return exists_query(self.model, field)
        return self.value(name)

    def field_name(self) -> str:
        raw = self.raw_term(stop_at_colon=True)
        if self.index >= len(self.text) or self.text[self.index] != ":":
            raise self.error("a term without a field (a search of the default fields) is not emulated")
        self.index += 1
        return _unescape(raw)

    def raw_term(self, stop_at_colon: bool = False) -> str:
        """Read a term with its escapes kept; ``*`` and ``?`` stay in it as wildcards."""
        start = self.index
        while self.index < len(self.text):
            char = self.text[self.index]
            if char == "\\":
                self.index += 2
                continue
            if char in WHITESPACE or char in '()"[]{}^~' or char == ":" and stop_at_colon:
                break
            if char == ":" and not stop_at_colon:
                raise self.error("unescaped ':' inside a term")
            self.index += 1
        if self.index > len(self.text):
            raise self.error("a trailing backslash escapes nothing")
        if self.index == start:
            raise self.error("missing term")
        return self.text[start:self.index]

    def value(self, name: str) -> Test:
        char = self.text[self.index] if self.index < len(self.text) else ""
        if char == '"':
            return term_query(self.model, name, self.phrase())
        if char == "/":
            return regexp_query(self.model, name, self.regexp())
        if char in "[{":
            return self.range(name)
        if char in "<>":
            return self.comparison(name)
        if char == "(":
            return self.field_group(name)
        raw = self.raw_term()
        if raw == "*":
            return exists_query(self.model, name)
        if _has_wildcard(raw):
            if raw.endswith("*") and not _has_wildcard(raw[:-1]):
                return prefix_query(self.model, name, _unescape(raw[:-1]))
            return wildcard_query(self.model, name, raw)
        return term_query(self.model, name, _unescape(raw))

    def field_group(self, name: str) -> Test:
        """Read ``field:(a OR b)``, whose values all search the field."""
        outer = self.field_context
        self.field_context = name
        self.index += 1
        inner = self.group()
        if self.index >= len(self.text) or self.text[self.index] != ")":
            raise self.error("missing ')'")
        self.index += 1
        self.field_context = outer
        return inner

    def phrase(self) -> str:
        self.index += 1
        out = []
        while self.index < len(self.text) and self.text[self.index] != '"':
            if self.text[self.index] == "\\":
                self.index += 1
                if self.index >= len(self.text):
                    break
            out.append(self.text[self.index])
            self.index += 1
        if self.index >= len(self.text):
            raise self.error("unterminated phrase")
        self.index += 1
        self.reject_suffix()
        return "".join(out)

    def regexp(self) -> str:
        """Read ``/.../`` as the lexer does: the longest run in which every slash is escaped."""
        found = _REGEXP_TOKEN.match(self.text, self.index)
        if found is None:
            raise self.error("unterminated regular expression")
        self.index = found.end()
        self.reject_suffix()
        return found.group(1)

    def range(self, name: str) -> Test:
        opening = self.text[self.index]
        close = min((i for i in (self.text.find("]", self.index), self.text.find("}", self.index)) if i >= 0),
                    default=-1)
        if close < 0:
            raise self.error("unterminated range")
        words = self.text[self.index + 1:close].split()
        if len(words) != 3 or words[1] != "TO":
            raise self.error("a range must read [low TO high]")
        low, high = _unescape(words[0].strip('"')), _unescape(words[2].strip('"'))
        bounds = {}
        if low != "*":
            bounds["gte" if opening == "[" else "gt"] = low
        if high != "*":
            bounds["lte" if self.text[close] == "]" else "lt"] = high
        self.index = close + 1
        return range_query(self.model, name, bounds)

    def comparison(self, name: str) -> Test:
        operator = ">=" if self.text.startswith(">=", self.index) else "<=" if self.text.startswith(
            "<=", self.index) else self.text[self.index]
        self.index += len(operator)
        bound = _unescape(self.raw_term())
        op = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[operator]
        return range_query(self.model, name, {op: bound})

    def reject_suffix(self) -> None:
        if self.index < len(self.text) and self.text[self.index] in "~^":
            raise self.error("fuzziness, proximity and boosts are not emulated")


def _negate(test: Test) -> Test:
    return lambda document: not test(document)


def _has_wildcard(raw: str) -> bool:
    index = 0
    while index < len(raw):
        if raw[index] == "\\":
            index += 2
            continue
        if raw[index] in "*?":
            return True
        index += 1
    return False


def _unescape(raw: str) -> str:
    out = []
    index = 0
    while index < len(raw):
        if raw[index] == "\\" and index + 1 < len(raw):
            out.append(raw[index + 1])
            index += 2
            continue
        out.append(raw[index])
        index += 1
    return "".join(out)
