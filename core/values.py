"""Sigma values and value modifiers: from a YAML value and its modifier chain to a value matcher.

Modifiers apply left to right, as the Sigma specification ("Value modifiers") and pySigma apply
them: ``contains|windash`` first wraps the value in wildcards, then marks the dashes.
"""

import base64
import difflib
import ipaddress
import re
from typing import Any, List, Optional, Sequence, Tuple, Union

from core.errors import Location, RuleError, UnsupportedFeatureError
from core.ir import (
    ANY, DASH, ONE, BoolMatch, CidrMatch, CompareMatch, ExistsMatch, FieldRefMatch, NotEqualMatch,
    NullMatch, NumberMatch, Part, RegexMatch, SigmaString, StringMatch, ValueMatcher,
)

STRING_MODIFIERS = frozenset({
    "contains", "startswith", "endswith", "windash", "base64", "base64offset",
    "utf16le", "utf16be", "utf16", "wide",
})
TYPE_MODIFIERS = frozenset({"re", "cidr", "exists", "gt", "gte", "lt", "lte", "fieldref"})
FLAG_MODIFIERS = frozenset({"i", "m", "s"})
# "expand" needs placeholder values from a processing pipeline, which lsassdump does not have.
UNSUPPORTED_MODIFIERS = {"expand": "replace each %placeholder% in the value with literal values"}
KNOWN_MODIFIERS = STRING_MODIFIERS | TYPE_MODIFIERS | FLAG_MODIFIERS | {"all", "cased", "neq"}

# pySigma's windash pattern: a dash or slash that starts a word.
WINDASH_PATTERN = re.compile(r"\B[-/]\b")
COMPARE_OPERATORS = ("gt", "gte", "lt", "lte")
# Sigma's escape rules (specification, "Escaping"): a backslash escapes *, ? and itself; before
# any other character it is an ordinary backslash.
ESCAPABLE = frozenset("*?\\")


def parse_sigma_string(text: str) -> SigmaString:
    """Split a plain Sigma value into literal text and wildcard placeholders."""
    parts: List[Part] = []
    literal: List[str] = []
    escaped = False
    for char in text:
        if escaped:
            literal.append(char if char in ESCAPABLE else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*" or char == "?":
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(ANY if char == "*" else ONE)
        else:
            literal.append(char)
    if escaped:
        literal.append("\\")
    if literal:
        parts.append("".join(literal))
    return SigmaString(tuple(parts))


def check_modifiers(modifiers: Sequence[str], location: Optional[Location]) -> None:
    """Raise on an unknown, unsupported or contradictory modifier chain."""
    for name in modifiers:
        if name in UNSUPPORTED_MODIFIERS:
            raise UnsupportedFeatureError(
                f"unsupported value modifier '{name}'", location, UNSUPPORTED_MODIFIERS[name])
        if name not in KNOWN_MODIFIERS:
            close = difflib.get_close_matches(name, sorted(KNOWN_MODIFIERS), n=1)
            fix = f"did you mean '{close[0]}'?" if close else "see the Sigma specification's list of value modifiers"
            raise RuleError(f"unknown value modifier '{name}'", location, fix)
    types = [name for name in modifiers if name in TYPE_MODIFIERS]
    if len(types) > 1:
        raise RuleError(f"modifiers '{types[0]}' and '{types[1]}' cannot be combined", location)
    if types and types[0] != "fieldref":
        extra = [name for name in modifiers if name in STRING_MODIFIERS]
        if extra:
            raise RuleError(f"modifier '{extra[0]}' cannot be combined with '{types[0]}'", location)
    flags = [name for name in modifiers if name in FLAG_MODIFIERS]
    if flags and "re" not in modifiers:
        raise RuleError(f"modifier '{flags[0]}' is a regular expression flag and needs 're'", location,
                        f"write '|re|{flags[0]}'")


def build_matcher(value: Any, modifiers: Sequence[str], location: Optional[Location]) -> ValueMatcher:
    """Turn one YAML value and its modifiers into a value matcher."""
    mods = [name for name in modifiers if name != "all"]
    negate = "neq" in mods
    mods = [name for name in mods if name != "neq"]
    matcher = _build(value, mods, location)
    return NotEqualMatch(matcher) if negate else matcher


def _build(value: Any, mods: List[str], location: Optional[Location]) -> ValueMatcher:
    cased = "cased" in mods
    mods = [name for name in mods if name != "cased"]

    if "exists" in mods:
        if not isinstance(value, bool):
            raise RuleError(f"modifier 'exists' takes true or false, not {value!r}", location)
        return ExistsMatch(value)
    if value is None:
        if mods:
            raise RuleError(f"a null value cannot take the modifier '{mods[0]}'", location)
        return NullMatch()
    if isinstance(value, bool):
        if mods:
            raise RuleError(f"a boolean value cannot take the modifier '{mods[0]}'", location)
        return BoolMatch(value)
    if isinstance(value, (list, dict)):
        raise RuleError(f"a value must be a string, number, boolean or null, not {type(value).__name__}",
                        location, "nest lists only one level below a field")
    for op in COMPARE_OPERATORS:
        if op in mods:
            return _compare(op, value, location)
    if "re" in mods:
        return _regex(value, mods, location)
    if "cidr" in mods:
        return _cidr(value, location)
    if "fieldref" in mods:
        if mods != ["fieldref"]:
            raise UnsupportedFeatureError("modifier 'fieldref' combined with other modifiers", location)
        return FieldRefMatch(str(value), cased)
    if isinstance(value, (int, float)) and not mods:
        return NumberMatch(value)
    return StringMatch(_transform(str(value), mods, location), cased)


def _compare(op: str, value: Any, location: Optional[Location]) -> CompareMatch:
    if isinstance(value, (int, float)):
        return CompareMatch(op, value)
    try:
        return CompareMatch(op, float(value) if "." in str(value) else int(str(value)))
    except ValueError:
        raise RuleError(f"modifier '{op}' needs a number, not {value!r}", location) from None


def _regex(value: Any, mods: List[str], location: Optional[Location]) -> RegexMatch:
    pattern = str(value)
    try:
        re.compile(pattern)
    except re.error as error:
        raise RuleError(f"invalid regular expression {pattern!r}: {error}", location,
                        "lsassdump evaluates 're' values with Python's re module") from None
    return RegexMatch(pattern, ignore_case="i" in mods, multiline="m" in mods, dotall="s" in mods)


def _cidr(value: Any, location: Optional[Location]) -> CidrMatch:
    try:
        network = ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise RuleError(f"invalid network {value!r} for modifier 'cidr'", location,
                        "write an address with a prefix length, such as 10.0.0.0/8") from None
    return CidrMatch(str(network))


Encoded = Union[str, bytes]


def _transform(text: str, mods: List[str], location: Optional[Location]) -> Tuple[SigmaString, ...]:
    """Apply the string modifiers in order; base64offset yields three alternatives."""
    values: List[Union[SigmaString, bytes]] = [parse_sigma_string(text)]
    for name in mods:
        values = [_apply(name, value, location) for value in values]
        if name == "base64offset":
            values = [item for group in values for item in group]  # type: ignore[union-attr]
    result = []
    for value in values:
        if isinstance(value, bytes):
            raise RuleError("modifiers 'utf16le', 'utf16be', 'utf16' and 'wide' must be followed by "
                            "'base64' or 'base64offset'", location)
        result.append(value)
    return tuple(result)


def _apply(name: str, value: Union[SigmaString, bytes], location: Optional[Location]) -> Any:
    if name in ("contains", "startswith", "endswith"):
        if isinstance(value, bytes):
            raise RuleError(f"modifier '{name}' cannot follow an encoding modifier", location)
        parts = value.parts
        if name in ("contains", "endswith") and parts[:1] != (ANY,):
            parts = (ANY,) + parts
        if name in ("contains", "startswith") and parts[-1:] != (ANY,):
            parts = parts + (ANY,)
        return SigmaString(parts)
    if name == "windash":
        if isinstance(value, bytes):
            raise RuleError("modifier 'windash' cannot follow an encoding modifier", location)
        return _windash(value)
    if name in ("utf16le", "wide", "utf16be", "utf16"):
        text = _plain(value, name, location)
        encoding = {"utf16le": "utf-16-le", "wide": "utf-16-le", "utf16be": "utf-16-be"}.get(name)
        if encoding is None:
            return b"\xff\xfe" + text.encode("utf-16-le")  # utf16: little-endian with a byte order mark
        return text.encode(encoding)
    if name == "base64":
        raw = value if isinstance(value, bytes) else _plain(value, name, location).encode("utf-8")
        return SigmaString((base64.b64encode(raw).decode("ascii"),))
    if name == "base64offset":
        raw = value if isinstance(value, bytes) else _plain(value, name, location).encode("utf-8")
        return [SigmaString((text,)) for text in base64_offsets(raw)]
    raise AssertionError(f"modifier {name!r} reached the string transformation")


def _plain(value: Union[SigmaString, bytes], name: str, location: Optional[Location]) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if not value.is_plain:
        raise UnsupportedFeatureError(f"modifier '{name}' on a value with wildcards", location,
                                      "remove the wildcards, or apply 'contains' after the encoding")
    return value.literal()


def base64_offsets(raw: bytes) -> Tuple[str, str, str]:
    """Return the three base64 forms of ``raw`` as it may sit at any offset in a longer text.

    Each form keeps only the characters that do not depend on the bytes around ``raw``.
    """
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        start = (0, 2, 3)[shift]
        end_trim = (0, 3, 2)[(len(raw) + shift) % 3]
        forms.append(encoded[start:len(encoded) - end_trim])
    return tuple(forms)  # type: ignore[return-value]


def _windash(value: SigmaString) -> SigmaString:
    parts: List[Part] = []
    for part in value.parts:
        if not isinstance(part, str):
            parts.append(part)
            continue
        position = 0
        for found in WINDASH_PATTERN.finditer(part):
            if found.start() > position:
                parts.append(part[position:found.start()])
            parts.append(DASH)
            position = found.end()
        if position < len(part):
            parts.append(part[position:])
    return SigmaString(tuple(parts))
