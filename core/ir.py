"""The intermediate representation: small frozen nodes, one per Sigma construct.

A rule's detection becomes a tree of condition nodes (``And``, ``Or``, ``Not``, ``Selection``) whose
leaves are ``FieldMatch`` nodes. A ``FieldMatch`` names one field (or none, for keywords) and holds
the value matchers that the rule's values and modifiers produced. Every node remembers where in the
rule it came from; that location takes no part in equality.
"""

from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

from core.errors import Location


class Special:
    """A wildcard or dash placeholder inside a Sigma string (never a literal character)."""

    __slots__ = ("name", "symbol")

    def __init__(self, name: str, symbol: str) -> None:
        self.name = name
        self.symbol = symbol

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        return self.name


# ``*`` and ``?`` in a plain Sigma value (Sigma specification, "Wildcards").
ANY = Special("ANY", "*")
ONE = Special("ONE", "?")
# A dash that the ``windash`` modifier found at the start of a word: it stands for each of
# WINDASH_CHARACTERS. pySigma applies the regular expression ``\B[-/]\b`` to find such dashes.
DASH = Special("DASH", "-")
WINDASH_CHARACTERS = ("-", "/", "\u2013", "\u2014", "\u2015")

Part = Union[str, Special]


@dataclass(frozen=True)
class SigmaString:
    """A string value as a sequence of literal text and ``Special`` placeholders."""

    parts: Tuple[Part, ...]

    @property
    def is_plain(self) -> bool:
        """Tell whether the value holds literal text only."""
        return all(isinstance(part, str) for part in self.parts)

    def literal(self) -> str:
        """Return the literal text; raises ValueError when the value holds a placeholder."""
        if not self.is_plain:
            raise ValueError(f"{self!r} holds wildcards or dash placeholders")
        return "".join(self.parts)  # type: ignore[arg-type]

    def __str__(self) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, Special):
                out.append(part.symbol)
            else:
                out.append(part.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?"))
        return "".join(out)


# Value matchers: what one value of a field must satisfy.


@dataclass(frozen=True)
class StringMatch:
    """The field equals one of ``patterns`` (with wildcards); case-insensitive unless ``cased``.

    Several patterns arise from one value only through ``base64offset`` (three encodings).
    """

    patterns: Tuple[SigmaString, ...]
    cased: bool = False


@dataclass(frozen=True)
class RegexMatch:
    """The field matches a regular expression (``re``), with the ``i``, ``m`` and ``s`` flags."""

    pattern: str
    ignore_case: bool = False
    multiline: bool = False
    dotall: bool = False


@dataclass(frozen=True)
class NumberMatch:
    """The field equals a number (an integer or float given as a YAML number)."""

    value: Union[int, float]


@dataclass(frozen=True)
class CompareMatch:
    """The field compares with a number: ``op`` is one of gt, gte, lt, lte."""

    op: str
    value: Union[int, float]


@dataclass(frozen=True)
class CidrMatch:
    """The field is an IP address inside a network (``cidr``)."""

    network: str


@dataclass(frozen=True)
class NullMatch:
    """The field is missing or null (a YAML ``null`` value)."""


@dataclass(frozen=True)
class ExistsMatch:
    """The field is present (``exists: true``) or absent (``exists: false``)."""

    exists: bool


@dataclass(frozen=True)
class BoolMatch:
    """The field equals a boolean (a YAML ``true`` or ``false`` value)."""

    value: bool


@dataclass(frozen=True)
class FieldRefMatch:
    """The field equals another field of the same event (``fieldref``)."""

    other: str
    cased: bool = False


@dataclass(frozen=True)
class NotEqualMatch:
    """The field is present and does not satisfy ``inner`` (``neq``)."""

    inner: "ValueMatcher"


ValueMatcher = Union[
    StringMatch, RegexMatch, NumberMatch, CompareMatch, CidrMatch, NullMatch,
    ExistsMatch, BoolMatch, FieldRefMatch, NotEqualMatch,
]


# Condition nodes.


@dataclass(frozen=True)
class FieldMatch:
    """One field (None for a keyword search) against its values.

    With ``require_all`` (the ``all`` modifier) every value must match; otherwise any one does.
    """

    field: Optional[str]
    matchers: Tuple[ValueMatcher, ...]
    require_all: bool = False
    location: Optional[Location] = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class And:
    children: Tuple["Node", ...]
    location: Optional[Location] = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Or:
    children: Tuple["Node", ...]
    location: Optional[Location] = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Not:
    child: "Node"
    location: Optional[Location] = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Selection:
    """A named search identifier of the detection, as the condition refers to it."""

    name: str
    body: "Node"
    location: Optional[Location] = field(default=None, compare=False, repr=False)


Node = Union[FieldMatch, And, Or, Not, Selection]


def selections_in(node: Node) -> Tuple[Selection, ...]:
    """Return the selections a condition tree refers to, in order, each once."""
    seen: dict = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Selection):
            seen.setdefault(current.name, current)
        elif isinstance(current, (And, Or)):
            stack.extend(reversed(current.children))
        elif isinstance(current, Not):
            stack.append(current.child)
    return tuple(seen.values())
