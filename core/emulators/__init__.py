"""Evaluators of emitted query text, one module per language, with that language's matching rules.

They read the query text, not the IR, so that a fault in an emitter shows as a different verdict.
Each module exposes ``compile_query(query, mapping) -> Callable[[document], bool]``; documents are
flat mappings from the platform's field names (``process.command_line``) to values.
"""

import importlib
from typing import Any, Callable, Mapping, Optional

from core.errors import ConversionError
from core.mappings import get_mapping

EMULATED = ("spl", "eql", "lucene", "dsl", "esql", "kql")


def compile_query(target: str, query: str, mapping: Optional[str] = None) -> Callable[[Mapping[str, Any]], bool]:
    """Compile query text of ``target`` once, for many documents."""
    if target not in EMULATED:
        raise ConversionError(f"no emulator for target '{target}'", None, f"choose one of {', '.join(EMULATED)}")
    module = importlib.import_module(f"core.emulators.{target}")
    field_mapping = get_mapping(mapping) if mapping else None
    return module.compile_query(query, field_mapping)  # type: ignore[no-any-return]


def emulate(target: str, query: str, document: Mapping[str, Any], mapping: Optional[str] = None) -> bool:
    """Evaluate query text of ``target`` on one document."""
    return compile_query(target, query, mapping)(document)
