"""ECS documents mapped back to Sigma field names, and the alert documents built from them."""

import hashlib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from core import LogSource, Match
from core.mappings import MAPPINGS

from elastic_watcher.attack import technique_tactics
from elastic_watcher.rulepack import MAPPING, DeployedRule

# Kibana's detection engine scores severities 21, 47, 73 and 99 (its prebuilt rules use these);
# Sigma's "informational" has no Kibana severity, so it is reported as "low".
SEVERITY = {"informational": ("low", 21), "low": ("low", 21), "medium": ("medium", 47),
            "high": ("high", 73), "critical": ("critical", 99)}


def flatten(source: Mapping[str, Any], prefix: str = "") -> Mapping[str, Any]:
    """Flatten nested objects into dotted names; dotted keys already in ``_source`` stay as they are.

    A document with no nested object is returned as it is, not copied.
    """
    if not prefix and not any(value.__class__ is dict for value in source.values()):
        return source
    flat: Dict[str, Any] = {}
    for key, value in source.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _reverse_table() -> Tuple[Tuple[str, str], ...]:
    # The first ECS name of each Sigma field, which is the one ``document_for`` writes.
    return tuple((names[0], sigma) for sigma, names in MAPPINGS[MAPPING].fields.items())


REVERSE_ECS = _reverse_table()


def sigma_fields(source: Mapping[str, Any]) -> Dict[str, Any]:
    """Map an ECS document (``_source``) back to the Sigma field names of the ``ecs`` mapping.

    Fields the mapping does not name are left out, as in the converted queries, which can only
    test mapped fields.
    """
    flat = flatten(source)
    return {sigma_name: flat[ecs_name] for ecs_name, sigma_name in REVERSE_ECS if ecs_name in flat}


def logsource_of(flat: Mapping[str, Any]) -> LogSource:
    """Return the Sigma logsource of a flattened ECS document that passed the mapping's logsource filter.

    The ``ecs`` mapping's filter (``event.category: process`` and ``event.type: start``) selects
    category ``process_creation``. The product comes from ``host.os.type`` when the document has
    it. Without it the product is unknown, and a rule with a product still admits the event, as
    the converted queries do, because they carry no product filter.
    """
    product = flat.get("host.os.type")
    return LogSource(product=product.lower() if isinstance(product, str) else None,
                     categories=frozenset(("process_creation",)))


def admits(deployed: DeployedRule, logsource: LogSource) -> bool:
    """Tell whether a rule admits an event with this logsource; an unknown product is admitted."""
    spec = deployed.rule.logsource
    product = spec.product if logsource.product is not None else None
    return logsource.admits(product, spec.category, spec.service)


def alert_id(rule_id: str, index: str, event_id: str) -> str:
    """Return the alert's document id: SHA-256 (hex) of ``<rule id>/<event index>/<event _id>``.

    The generated watches compute the same value in Painless (``String.sha256()``), so a watch
    and the poller write one document for one alert.
    """
    return hashlib.sha256(f"{rule_id}/{index}/{event_id}".encode("utf-8")).hexdigest()


def rule_metadata(deployed: DeployedRule) -> Dict[str, Any]:
    """Return the rule's id, title, level and ATT&CK techniques, as watches and alerts carry them."""
    rule = deployed.rule
    return {"rule_id": rule.id, "title": rule.title, "level": rule.level,
            "attack_techniques": list(rule.attack_techniques)}


def alert_document(deployed: DeployedRule, hit: Mapping[str, Any], match: Match, created: str) -> Dict[str, Any]:
    """Build the alert document for one matching hit (``_index``, ``_id``, ``_source``)."""
    rule = deployed.rule
    source = hit.get("_source") or {}
    flat = flatten(source)
    severity, risk = SEVERITY[rule.level]
    return {
        "@timestamp": flat.get("@timestamp"),
        "event": {"kind": "alert", "created": created, "severity": risk},
        "rule": {"id": rule.id, "name": rule.title, "level": rule.level, "severity": severity,
                 "author": _authors(rule.document), "description": rule.description.strip()},
        "threat": {"framework": "MITRE ATT&CK", "technique": {"id": list(rule.attack_techniques)},
                   "tactic": {"name": sorted({t for tech in rule.attack_techniques for t in technique_tactics(tech)})}},
        "host": {"name": flat.get("host.name")},
        "process": {"command_line": flat.get("process.command_line"),
                    "executable": flat.get("process.executable")},
        "lsassdump": {
            "alert_id": alert_id(rule.id, str(hit["_index"]), str(hit["_id"])),
            "event": {"index": hit["_index"], "id": hit["_id"]},
            "selections": list(match.selections),
        },
    }


def _authors(document: Mapping[str, Any]) -> List[str]:
    author = document.get("author")
    if isinstance(author, str):
        return [part.strip() for part in author.split(",") if part.strip()]
    if isinstance(author, list):
        return [str(part) for part in author]
    return []


def matches(rules: Iterable[DeployedRule], hit: Mapping[str, Any]) -> List[Tuple[DeployedRule, Match]]:
    """Evaluate one hit with every rule through the core; return the rules that match it."""
    source = hit.get("_source") or {}
    flat = flatten(source)
    fields = {sigma_name: flat[ecs_name] for ecs_name, sigma_name in REVERSE_ECS if ecs_name in flat}
    logsource = logsource_of(flat)
    found = []
    for deployed in rules:
        if not admits(deployed, logsource):
            continue
        match: Optional[Match] = deployed.compiled.match(fields)
        if match is not None:
            found.append((deployed, match))
    return found
