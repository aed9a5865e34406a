"""Generate the app's alerts (savedsearches.conf) and the field-normalising macro from the rules.

Each alert is ``<data source macro> | <normalising macro> | search <rule as SPL> | eval <rule fields>``.
The core's SPL target converts the rule with the ``sigma`` field mapping (Sigma field names, no
logsource filter), so the data source stays in one macro that the administrator edits. The
normalising macro copies Sysmon, Security 4688 and CIM fields to Sigma names with the same table
and the same per-event choice as ``| lsassdump mapping=auto``.
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

logger = logging.getLogger(__name__)

APP_SOURCE = Path(__file__).resolve().parent
TABLE_PATH = APP_SOURCE / "lib" / "lsassdump_splunk" / "field_mappings.json"
SOURCE_MACRO = "lsassdump_process_events"
FIELDS_MACRO = "lsassdump_sigma_fields"
# Temporary eval fields; the normalising macro removes them again.
TEMP_PREFIX = "lsassdump_"
SPL_MAPPING = "sigma"
STANZA_PREFIX = "lsassdump - "
# savedsearches.conf alert.severity: 1 debug, 2 info, 3 warning, 4 error, 5 severe, 6 fatal.
SEVERITY_BY_LEVEL = {"informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}
# Runs every 15 minutes over a 15-minute window that ends 5 minutes ago, so that events indexed up
# to 5 minutes late are still searched, and consecutive windows neither overlap nor leave gaps.
SCHEDULE = {
    "cron_schedule": "*/15 * * * *",
    "dispatch.earliest_time": "-20m@m",
    "dispatch.latest_time": "-5m@m",
}


def spl_string(text: str) -> str:
    """Quote text as an SPL string literal: backslash and double quote are escaped with a backslash."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def eval_field(name: str) -> str:
    """Quote a field name for eval, where names with dots or other symbols need single quotes."""
    return "'" + name.replace("'", "\\'") + "'"


def conf_value(text: str) -> str:
    """Fold prose onto one conf line: a newline would end the value, a trailing backslash would
    continue it onto the next line."""
    folded = " ".join(text.split())
    return folded.rstrip("\\")


def conf_search(search: str) -> str:
    """Return a search as one conf line.

    Line breaks outside quoted strings separate tokens only, so they become spaces. Raises ValueError
    for a line break inside a quoted string or a trailing backslash, which one line cannot hold.
    """
    out = []
    quoted = False
    escaped = False
    for char in search:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            elif char in "\r\n":
                raise ValueError("the search contains a line break inside a quoted string, which "
                                 "savedsearches.conf cannot hold on one line")
        elif char == '"':
            quoted = True
        elif char in "\r\n":
            char = " "
        out.append(char)
    line = "".join(out)
    if line.endswith("\\"):
        raise ValueError("the search ends with a backslash, which savedsearches.conf reads as a line continuation")
    return line


def load_table() -> Dict[str, Any]:
    """Read the app's field mapping table."""
    with open(TABLE_PATH, encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


def rule_fields(rules: Sequence[Any]) -> List[str]:
    """Return the Sigma field names that the rules read, sorted, so rule order does not matter."""
    detection_fields = _rulepack().detection_fields
    names = set()
    for rule in rules:
        names.update(detection_fields(rule.document)[0])
    return sorted(names)


def _rulepack():  # type: ignore[no-untyped-def]
    # The app's own modules live under lib/ in the tarball; reading them from the source tree keeps
    # one copy of the field logic. Appended, so nothing on sys.path is shadowed.
    lib = str(APP_SOURCE / "lib")
    if lib not in sys.path:
        sys.path.append(lib)
    from lsassdump_splunk import rulepack

    return rulepack


def normalising_eval(table: Mapping[str, Any], sigma_fields: Sequence[str]) -> str:
    """Return the SPL that copies each Sigma field from the Splunk field the table names for it.

    The mapping is chosen per event as mapping=auto does: the first mapping in auto_order with a
    marker field present, else sysmon. Values go to temporary fields first, because a Splunk field
    may feed one Sigma field and be another (Security 4688 ProcessId is the parent's id).
    """
    specs = table["mappings"]
    order = list(table["auto_order"])
    choices = []
    for name in order:
        present = " OR ".join(f"isnotnull({eval_field(marker)})" for marker in specs[name]["markers"])
        choices.append(f"{present}, {spl_string(name)}")
    choose = f"eval {TEMP_PREFIX}mapping=case({', '.join(choices)}, true(), {spl_string('sysmon')})"

    copies = []
    for sigma in sigma_fields:
        branches = []
        for name in order:
            candidates = specs[name]["fields"].get(sigma, [sigma])
            source = _coalesce(candidates)
            branches.append(f"{TEMP_PREFIX}mapping={spl_string(name)}, {source}")
        copies.append(f"{TEMP_PREFIX}{sigma}=case({', '.join(branches)}, true(), {eval_field(sigma)})")
    assigns = [f"{sigma}={eval_field(TEMP_PREFIX + sigma)}" for sigma in sigma_fields]

    parts = [choose]
    if copies:
        parts.append("eval " + ", ".join(copies))
        parts.append("eval " + ", ".join(assigns))
    parts.append(f"fields - {TEMP_PREFIX}mapping" + "".join(f" {TEMP_PREFIX}{sigma}" for sigma in sigma_fields))
    return " | ".join(parts)


def _coalesce(candidates: Sequence[str]) -> str:
    if len(candidates) == 1:
        return eval_field(candidates[0])
    return f"coalesce({', '.join(eval_field(name) for name in candidates)})"


def render_macros(rules: Sequence[Any]) -> str:
    """Return the generated macros.conf stanza that the build appends to default/macros.conf."""
    definition = normalising_eval(load_table(), rule_fields(rules))
    return (
        "\n# Generated by the build from lib/lsassdump_splunk/field_mappings.json; the alerts use it to\n"
        "# read Sysmon, Security 4688 and CIM events under Sigma field names.\n"
        f"[{FIELDS_MACRO}]\n"
        f"definition = {definition}\n"
        "iseval = 0\n"
        "description = Copies process fields to their Sigma names, choosing the mapping per event "
        "as | lsassdump mapping=auto does.\n"
    )


def detection_query(rule: Any) -> str:
    """Return the rule as an SPL pipeline over Sigma field names, starting with a command name."""
    import core

    query = core.convert(rule, "spl", SPL_MAPPING).strip()
    # The SPL target writes a whole search ("search ..."), which may go on with more commands; a bare
    # expression is given the search command here.
    if query.split(" ", 1)[0] in ("search", "where"):
        return query  # type: ignore[no-any-return]
    return f"search {query}"


def enrichment_eval(rule: Any) -> str:
    """Return the eval that adds the rule's fields to each event the alert finds."""
    assigns = [
        f"sigma_rule_id={spl_string(rule.id)}",
        f"sigma_title={spl_string(rule.title)}",
        f"sigma_level={spl_string(rule.level or '')}",
    ]
    tags = list(rule.tags)
    techniques = _rulepack().technique_ids(tags)
    if tags:
        assigns.append(f"sigma_tags=split({spl_string('|'.join(tags))}, \"|\")")
    if techniques:
        assigns.append(f"mitre_technique_id=split({spl_string('|'.join(techniques))}, \"|\")")
    return "eval " + ", ".join(assigns)


def alert_search(rule: Any) -> str:
    """Return the whole search of a rule's alert."""
    return (
        f"`{SOURCE_MACRO}` | `{FIELDS_MACRO}` | {detection_query(rule)} | {enrichment_eval(rule)}"
    )


def alert_settings(rule: Any) -> List[Tuple[str, str]]:
    """Return the savedsearches.conf settings of a rule's alert, in file order."""
    level = (rule.level or "").lower()
    description = f"Sigma rule {rule.id} ({level or 'no level'}). {rule.description or ''}"
    settings = [
        ("description", conf_value(description)),
        ("search", conf_search(alert_search(rule))),
        ("disabled", "1"),
        ("enableSched", "1"),
    ]
    settings.extend(SCHEDULE.items())
    settings.extend([
        ("counttype", "number of events"),
        ("relation", "greater than"),
        ("quantity", "0"),
        ("alert.severity", str(SEVERITY_BY_LEVEL.get(level, 3))),
        ("alert.track", "1"),
        ("alert.digest_mode", "1"),
        ("alert.suppress", "0"),
    ])
    return settings


def stanza_name(rule: Any, taken: Sequence[str]) -> str:
    """Return a unique stanza name from the rule title; brackets would end the stanza header."""
    title = rule.title.replace("[", "(").replace("]", ")")
    name = conf_value(STANZA_PREFIX + title)
    if name in taken:
        name = f"{name} ({rule.id})"
    return name


def render_savedsearches(rules: Sequence[Any]) -> str:
    """Return savedsearches.conf with one disabled, scheduled alert per rule.

    A rule that the SPL target cannot express gets no alert, and the build logs a warning naming it.
    The search command still evaluates that rule.
    """
    import core

    lines = [
        "# Generated by the lsassdump build from the bundled Sigma rules: one alert per rule, shipped",
        "# disabled. Enable an alert in Settings > Searches, reports, and alerts after editing the",
        f"# `{SOURCE_MACRO}` macro for your indexes.",
    ]
    taken: List[str] = []
    for rule in sorted(rules, key=lambda item: item.id):
        try:
            settings = alert_settings(rule)
        except (core.LsassdumpError, ValueError) as error:
            logger.warning("no alert for rule %s (%s): %s", rule.id, rule.source, error)
            continue
        name = stanza_name(rule, taken)
        taken.append(name)
        lines.append("")
        lines.append(f"[{name}]")
        for key, value in settings:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"
