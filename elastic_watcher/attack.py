"""A small offline MITRE ATT&CK table, and the Kibana ``threat`` mapping built from a rule's tags.

Tactic and technique ids and names are those of ATT&CK Enterprise before version 19, which split
the Defense Evasion tactic into Stealth and Defense Impairment.
NOTE: the table does not know the ids of the version 19 tactics, so a rule tagged only with
``attack.stealth`` maps its techniques to Defense Evasion (TA0005), their pre-19 tactic.
"""

import logging
from typing import Any, Dict, List, Sequence, Tuple

log = logging.getLogger(__name__)

ATTACK_URL = "https://attack.mitre.org"

# Sigma tag name (after "attack.") -> (tactic id, tactic name).
TACTICS: Dict[str, Tuple[str, str]] = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource-development": ("TA0042", "Resource Development"),
    "initial-access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege-escalation": ("TA0004", "Privilege Escalation"),
    "defense-evasion": ("TA0005", "Defense Evasion"),
    "credential-access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral-movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command-and-control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}

# Technique id -> (name, tactic tag names). Sub-techniques carry their own name; their parent's
# entry gives the parent name for the Kibana mapping.
TECHNIQUES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "T1003": ("OS Credential Dumping", ("credential-access",)),
    "T1003.001": ("LSASS Memory", ("credential-access",)),
    "T1003.002": ("Security Account Manager", ("credential-access",)),
    "T1003.003": ("NTDS", ("credential-access",)),
    "T1036": ("Masquerading", ("defense-evasion",)),
    "T1036.005": ("Match Legitimate Name or Location", ("defense-evasion",)),
    "T1047": ("Windows Management Instrumentation", ("execution",)),
    "T1053": ("Scheduled Task/Job", ("execution", "persistence", "privilege-escalation")),
    "T1053.005": ("Scheduled Task", ("execution", "persistence", "privilege-escalation")),
    "T1059": ("Command and Scripting Interpreter", ("execution",)),
    "T1059.001": ("PowerShell", ("execution",)),
    "T1059.003": ("Windows Command Shell", ("execution",)),
    "T1105": ("Ingress Tool Transfer", ("command-and-control",)),
    "T1218": ("System Binary Proxy Execution", ("defense-evasion",)),
    "T1218.011": ("Rundll32", ("defense-evasion",)),
}


def technique_tactics(technique: str) -> Tuple[str, ...]:
    """Return the tactic names of a technique from the table, or () when the table lacks it."""
    entry = TECHNIQUES.get(technique)
    return tuple(TACTICS[tag][1] for tag in entry[1]) if entry else ()


def _tactic_tags(tags: Sequence[str]) -> List[str]:
    return [tag.split(".", 1)[1] for tag in tags if tag.startswith("attack.") and tag.split(".", 1)[1] in TACTICS]


def _is_object_id(name: str) -> bool:
    # Technique (t1003), group (g0007) and software (s0002) tags, as opposed to tactic names.
    return len(name) >= 5 and name[0] in "tgs" and name[1:5].isdigit()


def _technique_entry(technique: str) -> Dict[str, Any]:
    name = TECHNIQUES.get(technique, (technique, ()))[0]
    return {"id": technique, "name": name, "reference": f"{ATTACK_URL}/techniques/{technique.replace('.', '/')}/"}


def kibana_threat(tags: Sequence[str], techniques: Sequence[str]) -> List[Dict[str, Any]]:
    """Build the Kibana ``threat`` array (framework, tactic, techniques, sub-techniques).

    A technique goes under each of its table tactics that the rule also tags. When the rule tags
    none of them, it goes under all of its table tactics. A technique the table lacks keeps its id
    as its name and goes under every tactic the rule tags.
    """
    tagged = _tactic_tags(tags)
    for tag in tags:
        name = tag.split(".", 1)[1] if tag.startswith("attack.") else ""
        if not name or name in TACTICS or _is_object_id(name):
            continue
        log.info("tag %s: tactic not in the offline ATT&CK table, left out of the Kibana mapping", tag)

    by_tactic: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for technique in techniques:
        parent = technique.split(".", 1)[0]
        entry = TECHNIQUES.get(technique) or TECHNIQUES.get(parent)
        own = list(entry[1]) if entry else []
        chosen = [tag for tag in own if tag in tagged] or own or tagged
        for tag in chosen:
            slot = by_tactic.setdefault(tag, {})
            node = slot.setdefault(parent, dict(_technique_entry(parent), subtechnique=[]))
            if technique != parent:
                node["subtechnique"].append(_technique_entry(technique))

    threat = []
    for tag in sorted(by_tactic, key=lambda name: TACTICS[name][0]):
        tactic_id, tactic_name = TACTICS[tag]
        techniques_out = []
        for node in by_tactic[tag].values():
            if not node["subtechnique"]:
                node = {key: value for key, value in node.items() if key != "subtechnique"}
            techniques_out.append(node)
        threat.append({
            "framework": "MITRE ATT&CK",
            "tactic": {"id": tactic_id, "name": tactic_name, "reference": f"{ATTACK_URL}/tactics/{tactic_id}/"},
            "technique": techniques_out,
        })
    return threat
