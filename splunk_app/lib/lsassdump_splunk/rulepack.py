"""The Sigma rules bundled with the app: loading them from JSON, selecting them with ``rule=``."""

import fnmatch
import json
import os
import re
from typing import Any, Iterable, List, Mapping, Optional, Tuple

import core

# The build writes one JSON file per rule here; the source tree has no such folder.
RULES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules")
# Sigma detection keys that are not search identifiers.
NON_SEARCH_KEYS = ("condition", "timeframe")
TECHNIQUE_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)


class BundledRule:
    """A rule ready to run: the compiled rule and the field values the command adds on a match."""

    def __init__(self, rule: Any) -> None:
        self.rule = rule
        self.compiled = core.compile_rule(rule)
        self.id: str = rule.id
        self.title: str = rule.title
        self.level: str = rule.level or ""
        self.tags: List[str] = list(rule.tags)
        self.techniques: List[str] = technique_ids(rule.tags)
        self.sigma_fields, self.has_keywords = detection_fields(rule.document)


def technique_ids(tags: Iterable[str]) -> List[str]:
    """Return the ATT&CK technique ids in Sigma tags: ``attack.t1003.001`` gives ``T1003.001``."""
    found = []
    for tag in tags:
        match = TECHNIQUE_TAG.match(tag)
        if match:
            found.append(match.group(1).upper())
    return found


def detection_fields(document: Mapping[str, Any]) -> Tuple[List[str], bool]:
    """Return the Sigma field names that a rule's detection reads, and whether it has keywords.

    This reads the rule document as plain data: a search identifier is a map (``Field|modifier:
    values``), a list of maps, or a list of plain values (keywords, which name no field).
    """
    names: List[str] = []
    has_keywords = False
    detection = document.get("detection") or {}
    for key, body in detection.items():
        if key in NON_SEARCH_KEYS:
            continue
        if isinstance(body, dict):
            items = [body]
        elif isinstance(body, list):
            items = body
        else:
            items = []
        for item in items:
            if not isinstance(item, dict):
                has_keywords = True
                continue
            for field_key in item:
                name = str(field_key).split("|", 1)[0]
                if not name:
                    has_keywords = True
                elif name not in names:
                    names.append(name)
    return names, has_keywords


def load_bundled_rules(rules_dir: str = RULES_DIR) -> List[BundledRule]:
    """Load and compile every rule the build wrote as JSON, in file name order.

    Raises OSError or ValueError for a missing or unreadable file, and core.LsassdumpError for a
    document that is not a valid rule.
    """
    rules = []
    for name in sorted(os.listdir(rules_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(rules_dir, name), encoding="utf-8") as handle:
            entry = json.load(handle)
        rule = core.load_rule_document(entry["document"], entry["source"])
        rules.append(BundledRule(rule))
    return rules


def select_rules(rules: List[BundledRule], selector: Optional[str]) -> List[BundledRule]:
    """Return the rules that ``rule=`` names: an id (exact, any case) or a title pattern.

    A title pattern with ``*`` or ``?`` is a glob over the whole title; without them it matches titles
    that contain it. Both ignore case. No selector selects every rule.
    """
    if not selector:
        return list(rules)

    wanted = selector.strip().lower()
    by_id = [rule for rule in rules if rule.id.lower() == wanted]
    if by_id:
        return by_id

    # "[" would open a character class in fnmatch, which the documented syntax does not have.
    pattern = wanted.replace("[", "[[]")
    if "*" not in pattern and "?" not in pattern:
        pattern = f"*{pattern}*"
    return [rule for rule in rules if fnmatch.fnmatchcase(rule.title.lower(), pattern)]
