"""The values of a rule, each with the selection and field it belongs to and its text as written."""

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from core.ir import And, FieldMatch, Node, Or, Selection, StringMatch, ValueMatcher, selections_in
from core.portability.textmatch import visible
from core.rules import Rule


@dataclass(frozen=True)
class ValueSite:
    """One value of one field of one selection.

    ``key`` is the field with its modifiers as the rule writes it (``CommandLine|contains|windash``)
    and ``written`` the YAML value as written; both fall back to the IR's rendering when the rule
    document does not line up with the IR (rules built by hand in tests).
    """

    selection: str
    node: FieldMatch
    index: int
    matcher: ValueMatcher
    key: str
    written: Any

    @property
    def field(self) -> Optional[str]:
        return self.node.field

    @property
    def is_string(self) -> bool:
        return isinstance(self.matcher, StringMatch)

    @property
    def label(self) -> str:
        """The value as written between single quotes, tabs drawn as ␉ so that it stays on one line."""
        if isinstance(self.written, str):
            return "'" + visible(self.written) + "'"
        return str(self.written)

    @property
    def full_label(self) -> str:
        """The selection, the key and the value, for report lines."""
        return f"{self.selection}: {self.key}: {self.label}"


def value_sites(rule: Rule) -> Tuple[ValueSite, ...]:
    """List every value of every selection that the rule's condition refers to, in rule order."""
    detection = rule.document.get("detection") if isinstance(rule.document, dict) else None
    sites: List[ValueSite] = []
    for selection in selections_in(rule.detection):
        written = detection.get(selection.name) if isinstance(detection, dict) else None
        pairs = _pair_fields(selection.body, written)
        for node, key, values in pairs:
            for index, matcher in enumerate(node.matchers):
                value = values[index] if values is not None and index < len(values) else _fallback_value(matcher)
                sites.append(ValueSite(selection.name, node, index, matcher, key, value))
    return tuple(sites)


def sites_of_selection(sites: Tuple[ValueSite, ...], name: str) -> Tuple[ValueSite, ...]:
    """Return the sites that belong to one selection."""
    return tuple(site for site in sites if site.selection == name)


def _pair_fields(body: Node, written: Any) -> List[Tuple[FieldMatch, str, Optional[List[Any]]]]:
    """Pair each FieldMatch of a selection body with its YAML key and values.

    The rule loader builds one FieldMatch per key of a map, in key order, and one Or branch per
    map of a list; this walks the document the same way and falls back when the shapes differ.
    """
    fields = _field_nodes(body)
    keyed = _written_keys(written)
    if keyed is None or len(keyed) != len(fields):
        return [(node, _fallback_key(node), None) for node in fields]
    pairs = []
    for node, (key, values) in zip(fields, keyed):
        name = key.split("|", 1)[0] if key else ""
        if (name or None) != node.field or len(values) != len(node.matchers):
            return [(field_node, _fallback_key(field_node), None) for field_node in fields]
        pairs.append((node, key, values))
    return pairs


def _field_nodes(node: Node) -> List[FieldMatch]:
    if isinstance(node, FieldMatch):
        return [node]
    if isinstance(node, (And, Or)):
        found: List[FieldMatch] = []
        for child in node.children:
            found.extend(_field_nodes(child))
        return found
    if isinstance(node, Selection):
        return _field_nodes(node.body)
    return []


def _written_keys(written: Any) -> Optional[List[Tuple[str, List[Any]]]]:
    if isinstance(written, dict):
        return [(str(key), value if isinstance(value, list) else [value]) for key, value in written.items()]
    if isinstance(written, list):
        if all(isinstance(item, dict) for item in written):
            keyed: List[Tuple[str, List[Any]]] = []
            for item in written:
                keyed.extend((str(key), value if isinstance(value, list) else [value]) for key, value in item.items())
            return keyed
        return [("", list(written))]
    if isinstance(written, (str, int, float)) and not isinstance(written, bool):
        return [("", [written])]
    return None


def _fallback_key(node: FieldMatch) -> str:
    return node.field if node.field is not None else "(keywords)"


def _fallback_value(matcher: ValueMatcher) -> Any:
    if isinstance(matcher, StringMatch):
        return str(matcher.patterns[0])
    return repr(matcher)
