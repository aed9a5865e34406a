"""Rule loading: YAML with positions, rule metadata, logsource, and the detection as IR."""

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from core.condition import parse_condition
from core.errors import Location, RuleError, UnsupportedFeatureError
from core.ir import And, FieldMatch, Node, Or, Selection, ValueMatcher
from core.values import build_matcher, check_modifiers

Path = Tuple[Any, ...]
Positions = Dict[Path, Tuple[int, int]]

RULE_EXTENSIONS = (".yml", ".yaml")
LEVELS = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class LogSourceSpec:
    """A rule's logsource: each part that is set must match the event's."""

    product: Optional[str] = None
    category: Optional[str] = None
    service: Optional[str] = None


@dataclass(frozen=True)
class Rule:
    """A loaded Sigma rule: metadata, logsource and the detection as an IR tree."""

    id: str
    title: str
    level: str
    status: str
    description: str
    tags: Tuple[str, ...]
    logsource: LogSourceSpec
    detection: Node
    source: str
    document: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def attack_techniques(self) -> Tuple[str, ...]:
        """ATT&CK technique ids from the tags, such as ``T1003.001``."""
        found = []
        for tag in self.tags:
            name = tag.split(".", 1)[1] if tag.startswith("attack.") else ""
            if len(name) >= 5 and name[0] == "t" and name[1:5].isdigit():
                found.append(name.upper())
        return tuple(found)


def load_rule(path: str) -> Rule:
    """Load one Sigma rule file; raises RuleError with the file, line and column."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise RuleError(f"cannot read rule file: {error.strerror}", Location(path)) from None
    except UnicodeDecodeError as error:
        raise RuleError(f"rule file is not valid UTF-8 (byte {error.start})", Location(path),
                        "save the rule as UTF-8") from None
    from core.yamlpos import parse_yaml  # PyYAML is needed only for rule files, not for the Splunk app

    document, positions = parse_yaml(text, path)
    return build_rule(document, path, positions)


def load_rule_document(document: Mapping[str, Any], source: str) -> Rule:
    """Build a rule from already parsed data (no positions: errors name the source only)."""
    return build_rule(document, source, {})


def iter_rule_files(paths: Sequence[str]) -> Iterator[str]:
    """Yield the rule files named by ``paths``, walking folders recursively in sorted order."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(RULE_EXTENSIONS):
                        yield os.path.join(root, name)
        else:
            yield path


def load_rules(paths: Sequence[str]) -> List[Rule]:
    """Load every rule under ``paths``; the first invalid rule raises."""
    return [load_rule(path) for path in iter_rule_files(paths)]


class _Locator:
    def __init__(self, source: str, positions: Positions) -> None:
        self.source = source
        self.positions = positions

    def at(self, path: Path) -> Location:
        while path:
            found = self.positions.get(path)
            if found is not None:
                return Location(self.source, found[0], found[1])
            path = path[:-1]
        found = self.positions.get(())
        return Location(self.source, found[0], found[1]) if found else Location(self.source)

    def key(self, path: Path) -> Location:
        found = self.positions.get(path + ("key",))
        return Location(self.source, found[0], found[1]) if found else self.at(path)


def build_rule(document: Any, source: str, positions: Positions) -> Rule:
    """Check a parsed rule document and build its IR."""
    locator = _Locator(source, positions)
    if not isinstance(document, dict):
        raise RuleError("a rule must be a YAML mapping", locator.at(()))
    if "correlation" in document:
        raise UnsupportedFeatureError("correlation rules", locator.key(("correlation",)),
                                      "evaluate the rules it refers to instead")
    if "filter" in document and "detection" not in document:
        raise UnsupportedFeatureError("Sigma filter rules", locator.key(("filter",)))
    for key in ("title", "logsource", "detection"):
        if key not in document:
            raise RuleError(f"missing required key '{key}'", locator.at(()), f"add a top-level '{key}:'")
    title = _text(document, "title", locator)
    level = str(document.get("level") or "medium").lower()
    if level not in LEVELS:
        raise RuleError(f"invalid level {level!r}", locator.at(("level",)), f"use one of {', '.join(LEVELS)}")
    tags = document.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise RuleError("'tags' must be a list of strings", locator.at(("tags",)))
    return Rule(
        id=str(document.get("id") or ""),
        title=title,
        level=level,
        status=str(document.get("status") or ""),
        description=str(document.get("description") or ""),
        tags=tuple(tag.lower() for tag in tags),
        logsource=_logsource(document["logsource"], locator),
        detection=build_detection(document["detection"], locator),
        source=source,
        document=document,
    )


def _text(document: Mapping[str, Any], key: str, locator: _Locator) -> str:
    value = document[key]
    if not isinstance(value, str) or not value.strip():
        raise RuleError(f"'{key}' must be a non-empty string", locator.at((key,)))
    return value


def _logsource(value: Any, locator: _Locator) -> LogSourceSpec:
    if not isinstance(value, dict):
        raise RuleError("'logsource' must be a mapping", locator.at(("logsource",)))
    parts = {}
    for key in ("product", "category", "service"):
        part = value.get(key)
        if part is not None and not isinstance(part, str):
            raise RuleError(f"'logsource.{key}' must be a string", locator.at(("logsource", key)))
        parts[key] = part.lower() if part else None
    return LogSourceSpec(**parts)


def build_detection(detection: Any, locator: _Locator) -> Node:
    """Build the condition tree of a rule's ``detection`` section."""
    base: Path = ("detection",)
    if not isinstance(detection, dict):
        raise RuleError("'detection' must be a mapping", locator.at(base))
    if "condition" not in detection:
        raise RuleError("missing 'condition' in detection", locator.at(base),
                        "add 'condition: selection' naming the search identifiers")
    selections: Dict[str, Selection] = {}
    for name, body in detection.items():
        if name in ("condition", "timeframe"):
            continue
        selections[str(name)] = Selection(str(name), _search(body, base + (name,), locator), locator.key(base + (name,)))
    if "timeframe" in detection:
        raise UnsupportedFeatureError("'timeframe' in detection", locator.key(base + ("timeframe",)),
                                      "use a Sigma correlation rule for time windows")
    conditions = detection["condition"]
    condition_path = base + ("condition",)
    if isinstance(conditions, str):
        conditions = [conditions]
        paths = [condition_path]
    elif isinstance(conditions, list) and conditions and all(isinstance(item, str) for item in conditions):
        paths = [condition_path + (index,) for index in range(len(conditions))]
    else:
        raise RuleError("'condition' must be a string or a list of strings", locator.at(condition_path))
    trees = []
    for text, path in zip(conditions, paths):
        start = locator.at(path)

        def locate(offset: int, start: Location = start) -> Location:
            if start.line is None or start.column is None:
                return start
            return Location(start.file, start.line, start.column + offset)

        trees.append(parse_condition(text, selections, locate))
    return trees[0] if len(trees) == 1 else Or(tuple(trees))


def _search(body: Any, path: Path, locator: _Locator) -> Node:
    """Build one search identifier: a map (AND of fields), a list of maps (OR) or keywords."""
    if isinstance(body, dict):
        if not body:
            raise RuleError("empty search identifier", locator.at(path), "add at least one field")
        children = [_field(key, value, path + (key,), locator) for key, value in body.items()]
        return children[0] if len(children) == 1 else _and(children, locator.at(path))
    if isinstance(body, list):
        if not body:
            raise RuleError("empty search identifier", locator.at(path), "add at least one value")
        if all(isinstance(item, dict) for item in body):
            children = [_search(item, path + (index,), locator) for index, item in enumerate(body)]
            return children[0] if len(children) == 1 else Or(tuple(children), locator.at(path))
        if any(isinstance(item, (dict, list)) for item in body):
            raise RuleError("a search identifier list mixes maps and plain values", locator.at(path),
                            "use either a list of maps or a list of keywords")
        return _keywords(body, path, locator)
    if isinstance(body, (str, int, float)) and not isinstance(body, bool):
        return _keywords([body], path, locator)
    raise RuleError(f"a search identifier must be a map, a list or a keyword, not {type(body).__name__}",
                    locator.at(path))


def _and(children: List[Node], location: Location) -> Node:
    return And(tuple(children), location)


def _keywords(values: List[Any], path: Path, locator: _Locator) -> Node:
    matchers = tuple(build_matcher(value, ["contains"] if isinstance(value, str) else [],
                                   locator.at(path + (index,)))
                     for index, value in enumerate(values))
    return FieldMatch(None, matchers, False, locator.at(path))


def _field(key: Any, value: Any, path: Path, locator: _Locator) -> Node:
    location = locator.key(path)
    if not isinstance(key, str):
        raise RuleError(f"field name must be a string, not {key!r}", location)
    name, *modifiers = key.split("|")
    check_modifiers(modifiers, location)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise RuleError(f"field {name!r} has an empty list of values", location, "add a value or remove the field")
    if "exists" in modifiers and len(values) != 1:
        raise RuleError("modifier 'exists' takes a single true or false", location)
    matchers: List[ValueMatcher] = []
    for index, item in enumerate(values):
        where = locator.at(path + (index,)) if isinstance(value, list) else locator.at(path)
        matchers.append(build_matcher(item, modifiers, where))
    field_name: Optional[str] = name or None
    return FieldMatch(field_name, tuple(matchers), "all" in modifiers, location)
