"""Recognise the shape of one parsed event document and rename its fields to Sigma's names.

Every reader hands a document (a dict) or, for EVTX, the ``Event`` object to this module and gets
back the Sigma-named fields, the time and the host, which ``Builder.event`` turns into an event.
Renames add the Sigma name next to the original one, and fields keep their original names too, so
a rule written for either name matches the value.
"""

import json
from typing import Any, Dict, Mapping, Optional, Tuple
from xml.etree import ElementTree

from core.readers.builder import (
    SHAPE_ECS, SHAPE_EVTX_JSON, SHAPE_FLAT, SHAPE_SENTINEL, SHAPE_WINLOGBEAT6, Builder, Fields, Record,
    add_aliases, data_elements, describe, flatten, iso_time, scalar,
)

__all__ = ["Builder", "detect_shape", "document_fields", "evtx_event_fields", "clean_event_data"]

# Flattened Sysmon / Mordor (HELK) records, Splunk columns and similar flat exports:
# (original name, Sigma name). Splunk's Windows add-on names come from its classic text format.
FLAT_RENAMES: Tuple[Tuple[str, str], ...] = (
    ("EventCode", "EventID"),
    ("event_id", "EventID"),
    ("LogName", "Channel"),
    ("SourceName", "Provider_Name"),
    ("ProviderName", "Provider_Name"),
    ("EventSourceName", "Provider_Name"),
    ("Hostname", "Computer"),
    ("ComputerName", "Computer"),
    ("RecordNumber", "EventRecordID"),
    ("New_Process_Name", "NewProcessName"),
    ("Creator_Process_Name", "ParentProcessName"),
    ("Process_Command_Line", "CommandLine"),
)

# Winlogbeat 6 documents, after ``event_data.*`` has been lifted to the top level.
WINLOGBEAT6_RENAMES: Tuple[Tuple[str, str], ...] = (
    ("event_id", "EventID"),
    ("log_name", "Channel"),
    ("source_name", "Provider_Name"),
    ("computer_name", "Computer"),
    ("record_number", "EventRecordID"),
)

# Winlogbeat 7 and later (ECS) documents, flattened to dotted names. Winlogbeat's Sysmon and
# Security modules move these values out of ``winlog.event_data``, so they must be mapped back.
ECS_RENAMES: Tuple[Tuple[str, str], ...] = (
    ("winlog.event_id", "EventID"),
    ("event.code", "EventID"),
    ("winlog.channel", "Channel"),
    ("winlog.provider_name", "Provider_Name"),
    ("event.provider", "Provider_Name"),
    ("winlog.computer_name", "Computer"),
    ("host.name", "Computer"),
    ("winlog.record_id", "EventRecordID"),
    ("process.command_line", "CommandLine"),
    ("process.executable", "Image"),
    ("process.pid", "ProcessId"),
    ("process.entity_id", "ProcessGuid"),
    ("process.working_directory", "CurrentDirectory"),
    ("process.parent.command_line", "ParentCommandLine"),
    ("process.parent.executable", "ParentImage"),
    ("process.parent.pid", "ParentProcessId"),
    ("process.parent.entity_id", "ParentProcessGuid"),
    ("process.pe.original_file_name", "OriginalFileName"),
    ("process.pe.description", "Description"),
    ("process.pe.product", "Product"),
    ("process.pe.company", "Company"),
    ("process.pe.file_version", "FileVersion"),
    ("file.path", "TargetFilename"),
    ("registry.path", "TargetObject"),
    ("source.ip", "SourceIp"),
    ("source.port", "SourcePort"),
    ("source.domain", "SourceHostname"),
    ("destination.ip", "DestinationIp"),
    ("destination.port", "DestinationPort"),
    ("destination.domain", "DestinationHostname"),
    ("network.transport", "Protocol"),
    ("dns.question.name", "QueryName"),
)

# Azure Sentinel / Log Analytics tables: SecurityEvent, Event and WindowsEvent.
SENTINEL_RENAMES: Tuple[Tuple[str, str], ...] = (
    ("EventSourceName", "Provider_Name"),
    ("Provider", "Provider_Name"),
    ("Source", "Provider_Name"),
    ("EventLog", "Channel"),
)

_SENTINEL_TYPES = ("SecurityEvent", "Event", "WindowsEvent")


# --- EVTX and evtx_dump-style JSON: {"Event": {"System": {...}, "EventData": {...}}} ---------

def _text(value: Any) -> Any:
    if type(value) is dict:
        return value.get("#text")
    return value


def evtx_event_fields(event: Mapping[str, Any], raw: Optional[str] = None) -> Tuple[Fields, Optional[str], Optional[str]]:
    """Return the fields, time and host of an ``Event`` object as pyevtx-rs renders it in JSON.

    The EventData object becomes the field dict itself (no copy), and the System values are
    written into it under Sigma's names, so a System value wins over an EventData value of the
    same name. ``raw`` is the compact JSON text the object was decoded from. When it is given, a
    text search replaces the scan of EventData values for nested objects and lists.
    """
    fields = event.get("EventData")
    if type(fields) is not dict:
        fields = {} if fields is None else {"EventData": scalar(fields)}
    elif raw is None or "[" in raw or not raw.startswith('"EventData":{', raw.rfind("{") - 12):
        # pyevtx-rs writes EventData last. So when the text has no "[" and its last "{" opens
        # EventData, no EventData value is an object or a list. These single-character searches cost
        # less than scanning the values, and a "{" or "[" inside a string value only costs the scan.
        clean_event_data(fields)
    if "UserData" in event:
        user_data = event["UserData"]
        if type(user_data) is dict:
            _merge_user_data(fields, user_data)

    system = event.get("System")
    if type(system) is not dict:
        return fields, None, None
    # Subscripts are faster than .get(). A record that lacks one of these takes the slow path.
    try:
        fields["EventID"] = system["EventID"]
        fields["Channel"] = system["Channel"]
        fields["Provider_Name"] = system["Provider"]["#attributes"]["Name"]
        computer = fields["Computer"] = system["Computer"]
        fields["EventRecordID"] = system["EventRecordID"]
        fields["Level"] = system["Level"]
        fields["Keywords"] = system["Keywords"]
        time = system["TimeCreated"]["#attributes"]["SystemTime"]
    except (KeyError, TypeError):
        return _system_fields(fields, system)
    if type(fields["EventID"]) is dict:
        fields["EventID"] = fields["EventID"].get("#text")
    try:
        fields["Security_UserID"] = system["Security"]["#attributes"]["UserID"]
    except (KeyError, TypeError):
        pass
    return fields, time, computer


def _attribute(element: Any, name: str) -> Any:
    if type(element) is dict:
        attributes = element.get("#attributes")
        if type(attributes) is dict:
            return attributes.get(name)
    return None


def _system_fields(fields: Fields, system: Mapping[str, Any]) -> Tuple[Fields, Optional[str], Optional[str]]:
    """Read the System values one by one, for records where some are missing or malformed."""
    event_id = system.get("EventID")
    fields["EventID"] = _text(event_id)
    fields["Channel"] = system.get("Channel")
    fields["Provider_Name"] = _attribute(system.get("Provider"), "Name")
    computer = system.get("Computer")
    fields["Computer"] = computer
    for name in ("EventRecordID", "Level", "Keywords"):
        fields[name] = system.get(name)
    user_id = _attribute(system.get("Security"), "UserID")
    if user_id is not None:
        fields["Security_UserID"] = user_id
    return fields, _attribute(system.get("TimeCreated"), "SystemTime"), computer


def clean_event_data(fields: Fields) -> None:
    """Unwrap ``{"#text": ...}`` values and unnamed ``Data`` lists in place."""
    if "#attributes" in fields:
        del fields["#attributes"]
    kinds = set(map(type, fields.values()))
    if dict not in kinds and list not in kinds:
        return
    odd = [key for key, value in fields.items() if type(value) is dict or type(value) is list]
    for key in odd:
        value = fields[key]
        if type(value) is dict and "#text" in value:
            value = value["#text"]
        fields[key] = scalar(value)


def _merge_user_data(fields: Fields, user_data: Mapping[str, Any]) -> None:
    """Lift the fields of UserData's single child (``<LogFileCleared>`` and the like) to the top."""
    for key, child in user_data.items():
        if key == "#attributes":
            continue
        if type(child) is dict:
            for name, value in child.items():
                if name != "#attributes" and name not in fields:
                    fields[name] = scalar(_text(value))
        elif key not in fields:
            fields[key] = scalar(child)


# --- Shapes of JSON documents -----------------------------------------------------------------

def detect_shape(document: Mapping[str, Any]) -> Optional[str]:
    """Name the shape of a parsed JSON document, or None when it is no known event shape."""
    event = document.get("Event")
    if isinstance(event, dict) and ("System" in event or "EventData" in event):
        return SHAPE_EVTX_JSON
    if isinstance(document.get("winlog"), dict):
        return SHAPE_ECS
    if isinstance(document.get("event_data"), dict) or ("log_name" in document and "event_id" in document):
        return SHAPE_WINLOGBEAT6
    if document.get("Type") in _SENTINEL_TYPES or "TenantId" in document:
        return SHAPE_SENTINEL
    if "EventID" in document or "EventCode" in document:
        return SHAPE_FLAT
    if isinstance(document.get("event"), dict) and isinstance(document.get("process"), dict):
        return SHAPE_ECS
    return None


def document_fields(document: Dict[str, Any], shape: str,
                    builder: Builder, record: Record) -> Tuple[Fields, Optional[str], Optional[str]]:
    """Return the Sigma-named fields, time and host of a JSON document of a known shape."""
    if shape == SHAPE_EVTX_JSON:
        return evtx_event_fields(document["Event"])
    if shape == SHAPE_FLAT:
        return _flat_fields(document)
    if shape == SHAPE_WINLOGBEAT6:
        return _winlogbeat6_fields(document)
    if shape == SHAPE_ECS:
        return _ecs_fields(document)
    return _sentinel_fields(document, builder, record)


def _flat_fields(document: Dict[str, Any]) -> Tuple[Fields, Optional[str], Optional[str]]:
    if any(isinstance(value, (dict, list)) for value in document.values()):
        fields = flatten(document)
    else:
        fields = document
    add_aliases(fields, FLAT_RENAMES)
    time = iso_time(fields.get("@timestamp") or fields.get("TimeCreated") or fields.get("EventTime")
                    or fields.get("UtcTime"))
    host = fields.get("Computer")
    return fields, time, host if isinstance(host, str) else None


def _winlogbeat6_fields(document: Dict[str, Any]) -> Tuple[Fields, Optional[str], Optional[str]]:
    event_data = document.get("event_data")
    fields: Fields = {}
    if isinstance(event_data, dict):
        for key, value in event_data.items():
            fields[key] = scalar(value)
    for key, value in document.items():
        if key == "event_data":
            continue
        if isinstance(value, dict):
            flatten(value, key + ".", fields)
        elif key not in fields:
            fields[key] = scalar(value)
    add_aliases(fields, WINLOGBEAT6_RENAMES)
    host = fields.get("Computer")
    return fields, iso_time(fields.get("@timestamp")), host if isinstance(host, str) else None


def _ecs_fields(document: Dict[str, Any]) -> Tuple[Fields, Optional[str], Optional[str]]:
    fields = flatten(document)
    winlog = document.get("winlog")
    event_data = winlog.get("event_data") if isinstance(winlog, dict) else None
    if isinstance(event_data, dict):
        for key, value in event_data.items():
            if key not in fields:
                fields[key] = scalar(value)
    add_aliases(fields, ECS_RENAMES)
    if "User" not in fields and isinstance(fields.get("user.name"), str):
        domain = fields.get("user.domain")
        fields["User"] = f"{domain}\\{fields['user.name']}" if isinstance(domain, str) else fields["user.name"]
    host = fields.get("Computer")
    return fields, iso_time(fields.get("@timestamp")), host if isinstance(host, str) else None


def _sentinel_fields(document: Dict[str, Any], builder: Builder,
                     record: Record) -> Tuple[Fields, Optional[str], Optional[str]]:
    fields = flatten(document) if any(isinstance(v, dict) for v in document.values()) else document
    event_data = document.get("EventData")
    parsed: Optional[Fields] = None
    if isinstance(event_data, dict):
        parsed = flatten(event_data)
    elif isinstance(event_data, str) and event_data.strip():
        parsed = _parse_embedded_event_data(event_data, builder, record)
    if parsed:
        for key, value in parsed.items():
            if key not in fields:
                fields[key] = value
    add_aliases(fields, SENTINEL_RENAMES)
    host = fields.get("Computer")
    return fields, iso_time(fields.get("TimeGenerated")), host if isinstance(host, str) else None


def _parse_embedded_event_data(text: str, builder: Builder, record: Record) -> Optional[Fields]:
    """Parse the EventData column of Sentinel tables: XML (SecurityEvent, Event) or JSON (WindowsEvent)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError as error:
            builder.problem(record, f"EventData holds invalid JSON: {error}")
            return None
        if not isinstance(value, dict):
            builder.problem(record, f"EventData holds {describe(value)}, expected a JSON object")
            return None
        return flatten(value)
    if stripped.startswith("<"):
        try:
            root = ElementTree.fromstring(stripped)
        except ElementTree.ParseError as error:
            builder.problem(record, f"EventData holds invalid XML: {error}")
            return None
        return data_elements(root)
    builder.problem(record, "EventData is neither JSON nor XML; kept as text")
    return None
