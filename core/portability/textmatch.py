"""Where a Sigma string value matches inside an event value, and why a near miss does not.

The verdicts come from the evaluator; this module only locates the match, so that a report can
mark the matched substring, and names the one character class that keeps a near miss apart.
"""

import re
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from core.evaluator import _to_regex  # the evaluator's own translation, so that spans agree with it
from core.ir import ANY, Part, SigmaString

Span = Tuple[int, int]

# Dashes that look like the ASCII hyphen-minus but that the windash modifier does not expand.
LOOKALIKE_DASHES = ("\u2010", "\u2011", "\u2012", "\u2212", "\ufe63", "\uff0d")
# Command-line argument parsing (CommandLineToArgvW) splits only on space and tab; the others
# are whitespace to a tokenizing search engine.
WHITESPACE = ("\t", "\n", "\r", "\u00a0", "\u2007", "\u202f", "\u3000")
QUOTES = ("\"", "'")
CARET = "^"


def fold_with_offsets(text: str) -> Tuple[str, List[int]]:
    """Casefold ``text`` and return, for each folded character, its offset in ``text``.

    Full case folding changes lengths (``ß`` folds to ``ss``), so offsets do not carry over.
    """
    folded: List[str] = []
    offsets: List[int] = []
    for position, char in enumerate(text):
        piece = char.casefold()
        folded.append(piece)
        offsets.extend([position] * len(piece))
    offsets.append(len(text))
    return "".join(folded), offsets


def strip_outer_wildcards(pattern: SigmaString) -> Tuple[List[Part], bool, bool]:
    """Return a pattern's parts without leading and trailing ``*``, and whether each side had one."""
    parts = list(pattern.parts)
    open_start = bool(parts) and parts[0] is ANY
    open_end = bool(parts) and parts[-1] is ANY
    while parts and parts[0] is ANY:
        parts.pop(0)
    while parts and parts[-1] is ANY:
        parts.pop()
    return parts, open_start, open_end


def pattern_regex(pattern: SigmaString, cased: bool) -> Tuple["re.Pattern[str]", bool]:
    """Compile a pattern to a regular expression that finds its literal core.

    Returns the expression and whether it must be searched (leading ``*``) rather than matched at
    the start. Leading and trailing ``*`` are left out so that the span covers the value itself.
    """
    parts, open_start, open_end = strip_outer_wildcards(pattern)
    folded = tuple(part if cased or not isinstance(part, str) else part.casefold() for part in parts)
    body = _to_regex(folded)
    return re.compile(body if open_end else body + r"\Z", re.DOTALL), open_start


def find_span(pattern: SigmaString, cased: bool, text: str) -> Optional[Span]:
    """Return the span of ``text`` that the pattern's literal core matched, or None."""
    regex, search = pattern_regex(pattern, cased)
    if cased:
        found = regex.search(text) if search else regex.match(text)
        return (found.start(), found.end()) if found else None
    folded, offsets = fold_with_offsets(text)
    found = regex.search(folded) if search else regex.match(folded)
    if found is None:
        return None
    start = offsets[found.start()]
    end = offsets[found.end() - 1] + 1 if found.end() > found.start() else start
    return start, end


@dataclass(frozen=True)
class NearMiss:
    """A change to the event value that would make a value match, and the reason it gives for the miss."""

    kind: str
    reason: str


def _replace_chars(chars: Tuple[str, ...], by: str) -> Callable[[str], str]:
    table = {ord(char): by for char in chars}
    return lambda text: text.translate(table)


CONTROL_PICTURES = {ord("\t"): "\u2409", ord("\n"): "\u240a", ord("\r"): "\u240d"}
CONTROL_NAMES = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN"}


def describe_char(char: str) -> str:
    """Name a character by its code point and Unicode name (``U+2010 HYPHEN``)."""
    import unicodedata

    name = CONTROL_NAMES.get(char) or unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    return f"{code} {name}" if name else code


def near_misses(pattern: SigmaString, cased: bool, text: str) -> List[NearMiss]:
    """Return the single changes to ``text`` that would let the pattern match it, with reasons.

    An empty list means the value is not a near miss of any known kind.
    """
    found: List[NearMiss] = []

    def matches(candidate: str) -> bool:
        return find_span(pattern, cased, candidate) is not None

    whitespace = [char for char in WHITESPACE if char in text]
    if whitespace and matches(_replace_chars(tuple(whitespace), " ")(text)):
        names = ", ".join(describe_char(char) for char in whitespace)
        found.append(NearMiss("whitespace", f"{names} stands where the value has a space"))
    dashes = [char for char in LOOKALIKE_DASHES if char in text]
    if dashes and matches(_replace_chars(tuple(dashes), "-")(text)):
        names = ", ".join(describe_char(char) for char in dashes)
        found.append(NearMiss("dash", f"{names} is not one of the windash characters (-, /, U+2013, U+2014, U+2015)"))
    if any(quote in text for quote in QUOTES) and matches(_replace_chars(QUOTES, "")(text)):
        found.append(NearMiss("quotes", "quotes around the word keep the space from touching it"))
    if CARET in text and matches(text.replace(CARET, "")):
        found.append(NearMiss("caret", "cmd.exe escape carets (^) split the value; cmd.exe removes them before "
                                       "the child process starts"))
    if text and matches(text + " "):
        found.append(NearMiss("end", "the value needs a space after it, but it ends the field"))
    if text and matches(" " + text):
        found.append(NearMiss("start", "the value needs a space before it, but it starts the field"))
    if cased and find_span(pattern, False, text) is not None:
        found.append(NearMiss("case", "the value is cased ('cased' modifier) and differs in case"))
    return found


def as_text(value: Any) -> Optional[str]:
    """Return the text that a string value is compared with, as the evaluator converts an event value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def visible(text: str) -> str:
    """Return ``text`` with tabs and line breaks drawn as Unicode control pictures (U+2409 and so on)."""
    return text.translate(CONTROL_PICTURES)
