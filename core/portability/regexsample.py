"""A short text that a regular expression matches, so that the corpus can exercise ``re`` values.

The sample takes the first alternative of every branch, the first member of every character
class and the minimum count of every repetition, then is checked with ``re.search``: an
expression this walk cannot satisfy (back references, look-arounds, negated classes that exclude
the guess) yields None instead of a wrong sample.
"""

import re
from typing import Any, List, Optional, Tuple

# The parser moved from ``sre_parse`` to ``re._parser`` in Python 3.11; both are private, so a
# failure to import only turns regex sampling off.
try:
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # Python 3.9 and 3.10
    import sre_parse as _sre  # type: ignore[no-redef]

_CATEGORY_SAMPLES = {
    "CATEGORY_DIGIT": "0", "CATEGORY_NOT_DIGIT": "x", "CATEGORY_SPACE": " ", "CATEGORY_NOT_SPACE": "x",
    "CATEGORY_WORD": "x", "CATEGORY_NOT_WORD": " ",
}
_START_ANCHORS = {"AT_BEGINNING", "AT_BEGINNING_STRING"}
_END_ANCHORS = {"AT_END", "AT_END_STRING"}


class _Unsupported(Exception):
    pass


def regex_sample(pattern: str, ignore_case: bool = False, multiline: bool = False,
                 dotall: bool = False) -> Optional[Tuple[str, bool, bool]]:
    """Return (text, open at start, open at end) for a text the expression finds, or None.

    "Open" means that the expression does not anchor that side, so other text may stand there.
    """
    flags = 0
    if ignore_case:
        flags |= re.IGNORECASE
    if multiline:
        flags |= re.MULTILINE
    if dotall:
        flags |= re.DOTALL
    try:
        parsed = _sre.parse(pattern, flags)
        items = list(parsed)
        anchored_start = bool(items) and _at_name(items[0]) in _START_ANCHORS
        anchored_end = bool(items) and _at_name(items[-1]) in _END_ANCHORS
        text = _emit(items)
    except (_Unsupported, re.error, RecursionError):
        return None
    if re.search(pattern, text, flags) is None:
        return None
    return text, not anchored_start, not anchored_end


def _at_name(item: Any) -> str:
    op, argument = item
    return str(argument) if str(op) == "AT" else ""


def _emit(items: List[Any]) -> str:
    return "".join(_emit_one(op, argument) for op, argument in items)


def _emit_one(op: Any, argument: Any) -> str:
    name = str(op)
    if name == "LITERAL":
        return chr(argument)
    if name in ("NOT_LITERAL", "ANY"):
        return "y" if name == "NOT_LITERAL" and chr(argument) == "x" else "x"
    if name == "IN":
        return _class_member(argument)
    if name == "BRANCH":
        return _emit(list(argument[1][0]))
    if name == "SUBPATTERN":
        return _emit(list(argument[-1]))
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, body = argument
        return _emit(list(body)) * low
    if name == "AT":
        return ""
    if name == "CATEGORY":
        return _CATEGORY_SAMPLES.get(str(argument), "x")
    raise _Unsupported(name)


def _class_member(items: List[Any]) -> str:
    for op, argument in items:
        name = str(op)
        if name == "NEGATE":
            return "x"
        if name == "LITERAL":
            return chr(argument)
        if name == "RANGE":
            return chr(argument[0])
        if name == "CATEGORY":
            return _CATEGORY_SAMPLES.get(str(argument), "x")
    raise _Unsupported("empty character class")
