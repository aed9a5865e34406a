"""YAML parsing that records the line and column of every key and value, for error messages."""

from typing import Any, Dict, Tuple

import yaml

from core.errors import Location, RuleError, UnsupportedFeatureError

Path = Tuple[Any, ...]
Positions = Dict[Path, Tuple[int, int]]


def parse_yaml(text: str, source: str) -> Tuple[Any, Positions]:
    """Parse one YAML document and record the line and column of every key and value."""
    # libyaml's loader gives the same marks and is several times faster; PyYAML ships it in its wheels.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        nodes = []
        while loader.check_node():
            nodes.append(loader.get_node())
        if len(nodes) != 1:
            if not nodes:
                raise RuleError("rule file is empty", Location(source))
            raise UnsupportedFeatureError(
                f"rule collections ({len(nodes)} YAML documents in one file)", Location(source),
                "split the collection into one rule per file")
        document = loader.construct_document(nodes[0])
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        raise RuleError(f"invalid YAML: {error.problem or error.context}", where) from None
    except yaml.YAMLError as error:
        raise RuleError(f"invalid YAML: {error}", Location(source)) from None
    finally:
        loader.dispose()
    positions: Positions = {}
    _walk_positions(nodes[0], (), positions, source)
    return document, positions


def _walk_positions(node: yaml.Node, path: Path, positions: Positions, source: str) -> None:
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise RuleError(f"duplicate key {key!r}",
                                Location(source, key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                                "merge the two entries into one")
            seen.add(key)
            positions[path + (key, "key")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk_positions(value_node, path + (key,), positions, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_positions(item, path + (index,), positions, source)
