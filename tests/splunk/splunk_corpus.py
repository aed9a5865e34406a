"""The shared corpus's process-creation events, rendered as the Splunk records each add-on produces."""

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import core
from splunk_support import REPO_ROOT

TABLE = json.loads((REPO_ROOT / "splunk_app" / "lib" / "lsassdump_splunk" / "field_mappings.json")
                   .read_text(encoding="utf-8"))
# The Splunk shapes each kind of corpus event is sent in.
RENDERINGS = {"sysmon": ("sysmon",), "security": ("security_xml", "security_text")}

Key = Tuple[str, str]


def process_creation_events(shared_data: Path) -> List[Any]:
    """Read every process-creation event of the corpus with the core's readers."""
    events = []
    for path in core.iter_event_files([str(shared_data)]):
        for item in core.read_events(path):
            if isinstance(item, core.ReadProblem):
                continue
            if "process_creation" in item.logsource.categories:
                events.append(item)
    return events


def event_key(event: Any) -> Key:
    return (str(event.source), str(event.record))


def splunk_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value if item is not None]
    return str(value)


def render(event: Any, mapping: str) -> Dict[str, Any]:
    """Return the event as a Splunk record under one mapping's field names, with its EventCode.

    Only the fields the mapping names are kept, which is all that the command reads.
    """
    fields = TABLE["mappings"][mapping]["fields"]
    record: Dict[str, Any] = {"EventCode": str(event.fields.get("EventID", ""))}
    for sigma, value in event.fields.items():
        if value is None or sigma not in fields:
            continue
        record[fields[sigma][0]] = splunk_value(value)
    return record


def renderings(event: Any) -> List[Tuple[str, Dict[str, Any]]]:
    """Return (mapping name, record) for each Splunk shape of the event."""
    kinds = [service for service in RENDERINGS if service in event.logsource.services] or ["sysmon"]
    return [(mapping, render(event, mapping)) for kind in kinds for mapping in RENDERINGS[kind]]
