"""Query emitters, one module per language; ``convert`` is the single entry point.

Each module exposes ``emit(node, mapping, rule) -> str``: ``node`` is the output of
``core.targets.common.prepare`` (fields already mapped, filter added, windash expanded). Escaping
happens inside each module, from one table per language.
"""

import importlib
from typing import Optional

from core.errors import ConversionError
from core.mappings import DEFAULT_MAPPING, get_mapping
from core.rules import Rule

TARGETS = ("spl", "eql", "lucene", "dsl", "esql", "kql")


def convert(rule: Rule, target: str, mapping: Optional[str] = None) -> str:
    """Return the query for ``rule`` in ``target`` with a field mapping (default per target)."""
    from core.targets.common import prepare

    if target not in TARGETS:
        raise ConversionError(f"unknown target '{target}'", None, f"choose one of {', '.join(TARGETS)}")
    field_mapping = get_mapping(mapping or DEFAULT_MAPPING[target])
    module = importlib.import_module(f"core.targets.{target}")
    node = prepare(rule, field_mapping, target)
    return module.emit(node, field_mapping, rule)  # type: ignore[no-any-return]
