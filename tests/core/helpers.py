"""Build rules from YAML text for tests."""

import textwrap
from pathlib import Path
from typing import Any, Mapping, Optional

from core import compile_rule, load_rule
from core.rules import Rule


def rule_from_yaml(tmp_path: Path, detection: str, name: str = "rule.yml", logsource: str = "category: process_creation\n    product: windows") -> Rule:
    """Write a rule with the given detection block (YAML, indented as under 'detection:') and load it."""
    text = (
        "title: Test rule\n"
        "id: 00000000-0000-0000-0000-000000000001\n"
        "status: test\n"
        "logsource:\n"
        f"    {logsource}\n"
        "detection:\n"
        + textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
        + "\nlevel: high\n"
    )
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_rule(str(path))


def matches(rule: Rule, fields: Mapping[str, Any]) -> bool:
    return compile_rule(rule).match(fields) is not None


def selections(rule: Rule, fields: Mapping[str, Any]) -> Optional[tuple]:
    found = compile_rule(rule).match(fields)
    return None if found is None else found.selections


def shared_data() -> Path:
    """Return the shared corpus folder (``../shared/data`` beside the repository, or LSASSDUMP_SHARED_DATA)."""
    import os

    return Path(os.environ.get("LSASSDUMP_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
