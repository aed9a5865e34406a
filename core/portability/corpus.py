"""Events generated from a rule: each string or regex value as written, in other cases, with each windash
character, and with the near misses that trip translations.

Each case is an event with Sigma field names. Its focus is one value of the rule; the rest of the
event satisfies the other selections the condition needs, so that the focus value decides the
verdict. The cases do not say what the verdict should be: the evaluator decides, and the report
compares each target's emulator with it.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from core.ir import (
    ANY, DASH, ONE, WINDASH_CHARACTERS, And, BoolMatch, ExistsMatch, FieldMatch, Node, Not, NumberMatch, Or,
    RegexMatch, Selection, SigmaString, StringMatch, ValueMatcher,
)
from core.portability.regexsample import regex_sample
from core.portability.sites import ValueSite, value_sites
from core.portability.textmatch import LOOKALIKE_DASHES, describe_char, strip_outer_wildcards
from core.rules import Rule

# Text put where a pattern has a wildcard, and between the values that one field must contain.
FILLER = "x"
# Positions of the varied value in its field: among the others, or at the very end or start.
MIDDLE, LAST, FIRST = "middle", "last", "first"
# Letters outside ASCII whose full case folding is an ASCII letter or pair (Unicode CaseFolding.txt).
FOLD_PARTNERS = (("k", "\u212a"), ("s", "\u017f"), ("ss", "\u00df"))


@dataclass(frozen=True)
class Case:
    """One generated event: its id, its Sigma fields, the rule value it exercises and how."""

    id: str
    fields: Mapping[str, Any]
    site: ValueSite
    variant: str
    description: str

    @property
    def focus_text(self) -> Any:
        return self.fields.get(self.site.field or KEYWORD_FIELD)


# A keyword value (no field) is searched in every field; the corpus puts it here.
KEYWORD_FIELD = "CommandLine"


@dataclass(frozen=True)
class _Segment:
    """A rendered string value inside its field: text, and whether a wildcard pads each side."""

    text: str
    open_start: bool
    open_end: bool


@dataclass(frozen=True)
class _Requirement:
    field: str
    segment: Optional[_Segment]
    value: Any = None


def generate(rule: Rule) -> Tuple[Case, ...]:
    """Return the corpus of one rule: every string value with its case, dash and near-miss variants."""
    cases: List[Case] = []
    for site in value_sites(rule):
        segment = _segment_of(site.matcher)
        if segment is None:
            continue
        requirements = _witness(rule.detection, site)
        if requirements is None:
            continue
        pattern = site.matcher.patterns[0] if isinstance(site.matcher, StringMatch) else None
        # Variants that come out the same event (a value with no letters has no upper case) are
        # kept once per value; different values keep their own copies, so each is named.
        seen: Dict[str, None] = {}
        for variant, description, text, position in _variants(segment, pattern):
            fields = _assemble(requirements, site, text, position)
            if fields is None:
                continue
            signature = repr(sorted(fields.items(), key=lambda item: item[0]))
            if signature in seen:
                continue
            seen[signature] = None
            field_name = site.field or "keywords"
            case_id = f"corpus:{site.selection}.{field_name}#{site.index}.{variant}"
            cases.append(Case(case_id, fields, site, variant, description))
    return tuple(cases)


def _witness(node: Node, focus: ValueSite) -> Optional[List[_Requirement]]:
    """Return requirements that satisfy ``node`` through the focus value where it can, or None."""
    if isinstance(node, Selection):
        return _witness(node.body, focus)
    if isinstance(node, And):
        found: List[_Requirement] = []
        for child in node.children:
            part = _witness(child, focus)
            if part is None:
                return None
            found.extend(part)
        return found
    if isinstance(node, Or):
        ordered = sorted(node.children, key=lambda child: not _contains(child, focus.node))
        for child in ordered:
            part = _witness(child, focus)
            if part is not None:
                return part
        return None
    if isinstance(node, Not):
        # NOTE: the negated part is satisfied by leaving its fields out, which holds for filters
        # on fields the positive part does not set; the evaluator still decides every verdict.
        return []
    if isinstance(node, FieldMatch):
        return _field_witness(node, focus)
    return None


def _contains(node: Node, target: FieldMatch) -> bool:
    if node is target:
        return True
    if isinstance(node, Selection):
        return _contains(node.body, target)
    if isinstance(node, (And, Or)):
        return any(_contains(child, target) for child in node.children)
    if isinstance(node, Not):
        return _contains(node.child, target)
    return False


def _field_witness(node: FieldMatch, focus: ValueSite) -> Optional[List[_Requirement]]:
    field = node.field or KEYWORD_FIELD
    if node is focus.node:
        chosen = list(node.matchers) if node.require_all else [node.matchers[focus.index]]
    elif node.require_all:
        chosen = list(node.matchers)
    else:
        strings = [m for m in node.matchers if isinstance(m, StringMatch)]
        chosen = strings[:1] or list(node.matchers[:1])
    requirements: List[_Requirement] = []
    for matcher in chosen:
        segment = _segment_of(matcher)
        if segment is not None:
            requirements.append(_Requirement(field, segment))
        elif isinstance(matcher, (NumberMatch, BoolMatch)):
            requirements.append(_Requirement(field, None, matcher.value))
        elif isinstance(matcher, ExistsMatch):
            if matcher.exists:
                requirements.append(_Requirement(field, None, FILLER))
        else:
            return None
    return requirements


def _segment_of(matcher: ValueMatcher) -> Optional[_Segment]:
    """Return the text a string or regex value puts in its field, or None for other values."""
    if isinstance(matcher, StringMatch):
        return _render(matcher.patterns[0])
    if isinstance(matcher, RegexMatch):
        sample = regex_sample(matcher.pattern, matcher.ignore_case, matcher.multiline, matcher.dotall)
        return _Segment(*sample) if sample is not None else None
    return None


def _render(pattern: SigmaString, dash: str = "-") -> _Segment:
    parts, open_start, open_end = strip_outer_wildcards(pattern)
    text = []
    for part in parts:
        if part is ANY or part is ONE:
            text.append(FILLER)
        elif part is DASH:
            text.append(dash)
        else:
            text.append(part)
    return _Segment("".join(text), open_start, open_end)


def _assemble(requirements: Sequence[_Requirement], focus: ValueSite, text: str,
              position: str) -> Optional[Dict[str, Any]]:
    """Build the event: the focus value's field from its segments, the other fields as required."""
    focus_field = focus.field or KEYWORD_FIELD
    focus_segment = _segment_of(focus.matcher)
    segments: Dict[str, List[_Segment]] = {}
    fields: Dict[str, Any] = {}
    focus_placed = False
    for requirement in requirements:
        if requirement.segment is None:
            fields.setdefault(requirement.field, requirement.value)
            continue
        segment = requirement.segment
        if not focus_placed and requirement.field == focus_field and segment == focus_segment:
            segment = _Segment(text, segment.open_start, segment.open_end)
            if position == LAST:
                if not segment.open_end:
                    return None
                segment = _Segment(text, segment.open_start, False)
            elif position == FIRST:
                if not segment.open_start:
                    return None
                segment = _Segment(text, False, segment.open_end)
            focus_placed = True
            segments.setdefault(requirement.field, []).append(segment)
            continue
        segments.setdefault(requirement.field, []).append(segment)
    if not focus_placed:
        return None
    for field, parts in segments.items():
        value = _join(parts)
        if value is None:
            return None
        fields[field] = value
    return fields


def _join(segments: List[_Segment]) -> Optional[str]:
    """Lay out the values one field must hold: anchored starts first, anchored ends last."""
    exact = [s for s in segments if not s.open_start and not s.open_end]
    if exact:
        texts = {s.text for s in exact}
        return exact[0].text if len(texts) == 1 and len(exact) == len(segments) else None
    starts = [s for s in segments if not s.open_start]
    ends = [s for s in segments if not s.open_end]
    if len(starts) > 1 or len(ends) > 1:
        return None
    middle = [s for s in segments if s.open_start and s.open_end]
    ordered = starts + middle + ends
    pieces = [] if ordered[0] in starts else [FILLER]
    for index, segment in enumerate(ordered):
        if index:
            pieces.append(FILLER)
        pieces.append(segment.text)
    if ordered[-1] not in ends:
        pieces.append(FILLER)
    return "".join(pieces)


Variant = Tuple[str, str, str, str]


def _variants(segment: _Segment, pattern: Optional[SigmaString]) -> List[Variant]:
    """Return (id, description, focus text, position) for every variant of one value.

    ``pattern`` is the Sigma string of a string value, None for a regular expression (whose
    rendered sample has no windash placeholders and no literal wildcards).
    """
    base = segment.text
    dash_offsets = _dash_offsets(pattern) if pattern is not None else []
    variants: List[Variant] = [("as-written", "the value as written", base, MIDDLE)]
    variants.extend(_case_variants(base))
    variants.extend(_dash_variants(base, dash_offsets))
    variants.extend(_space_variants(base, segment))
    variants.extend(_character_variants(base, pattern))
    return variants


def _dash_offsets(pattern: SigmaString) -> List[int]:
    """Return the offsets, in the rendered value, of its windash placeholders."""
    offsets = []
    text = _render(pattern, "\0").text
    for offset, char in enumerate(text):
        if char == "\0":
            offsets.append(offset)
    return offsets


def _case_variants(base: str) -> List[Variant]:
    found: List[Variant] = []
    upper = base.upper()
    if upper != base:
        found.append(("upper", "the value in upper case", upper, MIDDLE))
    mixed = _mixed_case(base)
    if mixed not in (base, upper):
        found.append(("mixed", "the value in mixed case", mixed, MIDDLE))
    non_ascii = "".join(char.swapcase() if ord(char) > 127 and char.isalpha() else char for char in base)
    if non_ascii != base:
        found.append(("unicode-case", "the value's non-ASCII letters in the other case", non_ascii, MIDDLE))
    for ascii_text, partner in FOLD_PARTNERS:
        position = base.lower().find(ascii_text)
        if position < 0:
            continue
        text = base[:position] + partner + base[position + len(ascii_text):]
        name = f"fold-U+{ord(partner):04X}"
        found.append((name, f"{describe_char(partner)}, whose case folding is '{ascii_text}'", text, MIDDLE))
    return found


def _mixed_case(text: str) -> str:
    out = []
    letter = 0
    for char in text:
        if char.isalpha():
            out.append(char.upper() if letter % 2 == 0 else char.lower())
            letter += 1
        else:
            out.append(char)
    return "".join(out)


def _dash_variants(base: str, dash_offsets: List[int]) -> List[Variant]:
    found: List[Variant] = []
    for number, offset in enumerate(dash_offsets):
        suffix = f"-{number}" if len(dash_offsets) > 1 else ""
        for char in WINDASH_CHARACTERS[1:]:
            text = base[:offset] + char + base[offset + 1:]
            found.append((f"windash-U+{ord(char):04X}{suffix}", f"windash {describe_char(char)} for the dash",
                          text, MIDDLE))
    hyphens = dash_offsets or [offset for offset, char in enumerate(base) if char == "-"][:1]
    for number, offset in enumerate(hyphens):
        suffix = f"-{number}" if len(hyphens) > 1 else ""
        for char in LOOKALIKE_DASHES:
            text = base[:offset] + char + base[offset + 1:]
            found.append((f"lookalike-U+{ord(char):04X}{suffix}",
                          f"{describe_char(char)}, a look-alike dash outside windash", text, MIDDLE))
    return found


def _space_variants(base: str, segment: _Segment) -> List[Variant]:
    found: List[Variant] = []
    spaces = [offset for offset, char in enumerate(base) if char == " "]
    for offset in spaces:
        text = base[:offset] + "\t" + base[offset + 1:]
        found.append((f"tab@{offset}", f"a tab for the space at offset {offset}", text, MIDDLE))
    if spaces:
        found.append(("double-spaces", "every space doubled", base.replace(" ", "  "), MIDDLE))
    if base != base.rstrip(" ") and segment.open_end:
        found.append(("last-token", "the value ends the field, without its trailing space", base.rstrip(" "), LAST))
    if base != base.lstrip(" ") and segment.open_start:
        found.append(("first-token", "the value starts the field, without its leading space", base.lstrip(" "),
                      FIRST))
    return found


def _character_variants(base: str, pattern: Optional[SigmaString]) -> List[Variant]:
    found: List[Variant] = []
    core = base.strip(" ")
    lead = base[:len(base) - len(base.lstrip(" "))]
    trail = base[len(base.rstrip(" ")):]
    if core:
        found.append(("quotes", "the word in double quotes", f'{lead}"{core}"{trail}', MIDDLE))
    if "\\" in base:
        found.append(("double-backslash", "every backslash doubled", base.replace("\\", "\\\\"), MIDDLE))
    elif core:
        found.append(("backslash", "a backslash before the word", f"{lead}\\{core}{trail}", MIDDLE))
    literal = "".join(part for part in pattern.parts if isinstance(part, str)) if pattern is not None else ""
    for char in "*?":
        if char in literal:
            found.append((f"literal-{'star' if char == '*' else 'question'}-replaced",
                          f"an x where the value has a literal {char}", base.replace(char, FILLER), MIDDLE))
    letters = [offset for offset, char in enumerate(base) if char.isalpha()]
    if letters:
        offset = letters[-1]
        for char, name in (("*", "star"), ("?", "question")):
            text = base[:offset] + char + base[offset + 1:]
            found.append((f"{name}-in-event", f"a literal {char} in the event where the value has a letter",
                          text, MIDDLE))
    return found
