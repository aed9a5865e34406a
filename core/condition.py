"""The Sigma condition grammar: and, or, not, parentheses, ``1 of``/``all of`` patterns and ``them``.

Precedence, from the Sigma specification ("Condition"): ``not`` binds tightest, then ``and``, then
``or``. ``them`` covers every search identifier except those whose name starts with ``_``.
"""

import fnmatch
import re
from typing import Callable, Dict, List, Optional, Tuple

from core.errors import ConditionError, Location, UnsupportedFeatureError
from core.ir import And, Node, Not, Or, Selection

TOKEN_PATTERN = re.compile(
    r"\s*(?:(?P<paren>[()])|(?P<pipe>\|)|(?P<quantifier>1|all|any)\s+of\b|(?P<word>[A-Za-z0-9_*.\-]+)|(?P<bad>\S))"
)
KEYWORDS = {"and", "or", "not"}


class _Token:
    __slots__ = ("kind", "text", "offset")

    def __init__(self, kind: str, text: str, offset: int) -> None:
        self.kind = kind
        self.text = text
        self.offset = offset


def parse_condition(
    text: str,
    selections: Dict[str, Selection],
    locate: Callable[[int], Optional[Location]],
) -> Node:
    """Parse one condition string into a tree over ``selections``.

    ``locate`` maps an offset in ``text`` to a location in the rule file, for error messages.
    """
    parser = _Parser(text, selections, locate)
    return parser.parse()


class _Parser:
    def __init__(self, text: str, selections: Dict[str, Selection],
                 locate: Callable[[int], Optional[Location]]) -> None:
        self.text = text
        self.selections = selections
        self.locate = locate
        self.tokens = self._tokenize()
        self.position = 0

    def _tokenize(self) -> List[_Token]:
        tokens = []
        for found in TOKEN_PATTERN.finditer(self.text):
            kind = found.lastgroup or "bad"
            start = found.start(kind)
            if kind == "bad":
                raise ConditionError(f"unexpected character {found.group(kind)!r} in condition",
                                     self.locate(start))
            if kind == "pipe":
                raise UnsupportedFeatureError(
                    "aggregation expressions ('| count() ...') in conditions", self.locate(start),
                    "rewrite the aggregation as a Sigma correlation rule")
            value = found.group(kind)
            if kind == "word" and value.lower() in KEYWORDS:
                kind, value = value.lower(), value.lower()
            tokens.append(_Token(kind, value, start))
        return tokens

    def _error(self, message: str, token: Optional[_Token], fix: Optional[str] = None) -> ConditionError:
        offset = token.offset if token is not None else len(self.text)
        return ConditionError(message, self.locate(offset), fix)

    def _peek(self) -> Optional[_Token]:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> Optional[_Token]:
        token = self._peek()
        self.position += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise self._error("empty condition", None, "name at least one search identifier")
        node = self._or()
        leftover = self._peek()
        if leftover is not None:
            raise self._error(f"unexpected {leftover.text!r} in condition", leftover,
                              "join search identifiers with 'and' or 'or'")
        return node

    def _or(self) -> Node:
        children = [self._and()]
        while self._peek() is not None and self._peek().kind == "or":  # type: ignore[union-attr]
            self._take()
            children.append(self._and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _and(self) -> Node:
        children = [self._not()]
        while self._peek() is not None and self._peek().kind == "and":  # type: ignore[union-attr]
            self._take()
            children.append(self._not())
        return children[0] if len(children) == 1 else And(tuple(children))

    def _not(self) -> Node:
        token = self._peek()
        if token is not None and token.kind == "not":
            self._take()
            return Not(self._not())
        return self._atom()

    def _atom(self) -> Node:
        token = self._take()
        if token is None:
            raise self._error("condition ends too early", None, "complete the expression")
        if token.kind == "paren" and token.text == "(":
            node = self._or()
            closing = self._take()
            if closing is None or closing.text != ")":
                raise self._error("missing ')' in condition", closing or token)
            return node
        if token.kind == "quantifier":
            return self._quantified(token)
        if token.kind == "word":
            if "*" in token.text:
                raise self._error(f"a pattern such as {token.text!r} needs '1 of' or 'all of'", token,
                                  f"write '1 of {token.text}' or 'all of {token.text}'")
            selection = self.selections.get(token.text)
            if selection is None:
                raise self._error(f"unknown search identifier {token.text!r}", token,
                                  self._suggest(token.text))
            return selection
        raise self._error(f"unexpected {token.text!r} in condition", token)

    def _quantified(self, token: _Token) -> Node:
        quantifier = token.text.split()[0]
        target = self._take()
        if target is None or target.kind != "word":
            raise self._error(f"'{quantifier} of' needs a search identifier pattern or 'them'", target or token)
        if target.text == "them":
            chosen = [sel for name, sel in self.selections.items() if not name.startswith("_")]
        else:
            chosen = [sel for name, sel in self.selections.items() if fnmatch.fnmatchcase(name, target.text)]
        if not chosen:
            raise self._error(f"pattern {target.text!r} matches no search identifier", target,
                              self._suggest(target.text))
        if len(chosen) == 1:
            return chosen[0]
        if quantifier == "all":
            return And(tuple(chosen))
        return Or(tuple(chosen))

    def _suggest(self, name: str) -> str:
        known = ", ".join(sorted(self.selections)) or "none"
        return f"the detection defines: {known}"


