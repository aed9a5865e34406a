"""Recognise the shape of one parsed event document and rename its fields to Sigma's names.

Every reader hands a document (a dict) or, for EVTX and event XML, the already separated System
and EventData parts to this module, and gets back an ``Event`` plus the problems found in it.
Renames add the Sigma name next to the original one, and fields keep their original names too, so
a rule written for either name matches the value.
"""

import json
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union
from xml.etree import ElementTree

from core.events import Event, LogSource, ReadProblem
from core.logsources import classify

Fields = Dict[str, Any]
Record = Union[int, str]

# Shape names stored in Event.shape.
SHAPE_EVTX = "evtx"
SHAPE_EVTX_JSON = "evtx-json"
SHAPE_XML = "event-xml"
SHAPE_FLAT = "flat"
SHAPE_WINLOGBEAT6 = "winlogbeat6"
SHAPE_ECS = "ecs"
SHAPE_SENTINEL = "sentinel"
SHAPE_CSV = "splunk-csv"

# CreateProcess documents 32,767 characters as the maximum command line, so a longer one cannot
# come from Windows as it was logged.
MAX_COMMAND_LINE_CHARS = 32767
_COMMAND_LINE_FIELDS = ("CommandLine", "ParentCommandLine")
# Fields that rules compare as text. A number, list or object in one of them means the record is damaged.
_TEXT_FIELDS = ("CommandLine", "ParentCommandLine", "Image", "ParentImage", "User", "Channel",
                "Provider_Name", "Computer")
_TEXT_KINDS = frozenset((str, type(None)))
_REPR_CHARS = 80

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


class Builder:
    """Turn normalised fields into an ``Event`` and collect the problems of one record."""

    __slots__ = ("source", "problems")

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: List[ReadProblem] = []

    def problem(self, record: Optional[Record], message: str) -> None:
        self.problems.append(ReadProblem(self.source, record, message))

    def take_problems(self) -> Iterator[ReadProblem]:
        """Yield and forget the problems collected since the last call."""
        if not self.problems:
            return
        problems, self.problems = self.problems, []
        yield from problems

    def event(self, fields: Fields, shape: str, record: Record, time: Optional[str],
              host: Optional[str]) -> Event:
        """Classify the fields, apply the category's renames, check field types and build the event."""
        event_id = fields.get("EventID")
        if type(event_id) is not int:
            event_id = self._coerce_event_id(fields, event_id, record)

        classification = classify(fields.get("Channel"), fields.get("Provider_Name"), event_id)
        for original, renamed in classification.renames:
            if original in fields and renamed not in fields:
                fields[renamed] = fields[original]

        if not _TEXT_KINDS.issuperset(map(type, map(fields.get, _TEXT_FIELDS))):
            self._check_text_fields(fields, record)
        elif (len(fields.get("CommandLine") or "") > MAX_COMMAND_LINE_CHARS
              or len(fields.get("ParentCommandLine") or "") > MAX_COMMAND_LINE_CHARS):
            self._check_text_fields(fields, record)

        # Inlined new_event(), because this runs once per record.
        event = _new_object(Event)
        _set_attribute(event, "__dict__", {"fields": fields, "logsource": classification.logsource,
                                           "source": self.source, "record": record, "time": time,
                                           "host": host, "shape": shape})
        return event

    def _check_text_fields(self, fields: Fields, record: Record) -> None:
        for name in _TEXT_FIELDS:
            value = fields.get(name)
            if value is None:
                continue
            if isinstance(value, dict):
                # Event fields hold scalars and lists only, so an object is kept as its JSON text.
                fields[name] = _scalar(value)
                self.problem(record, f"field {name} is {describe(value)}, expected text; kept as JSON text")
            elif type(value) is not str:
                self.problem(record, f"field {name} is {describe(value)}, expected text; kept as it is")
            elif len(value) > MAX_COMMAND_LINE_CHARS and name in _COMMAND_LINE_FIELDS:
                self.problem(record, f"field {name} has {len(value)} characters, more than the "
                             f"{MAX_COMMAND_LINE_CHARS} Windows allows; kept whole")

    def _coerce_event_id(self, fields: Fields, value: Any, record: Record) -> Optional[int]:
        number: Optional[int] = None
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        if number is not None:
            fields["EventID"] = number
            return number
        if value is None:
            self.problem(record, "field EventID is missing or null; the event has no category")
        else:
            self.problem(record, f"field EventID is {describe(value)}, expected an integer; "
                         "the event has no category")
        return None


def new_event(fields: Fields, logsource: LogSource, source: str, record: Record, time: Optional[str],
              host: Optional[str], shape: str) -> Event:
    """Build an ``Event`` like its constructor does, in a quarter of the time.

    The frozen dataclass constructor sets each attribute through ``object.__setattr__``. That costs
    more per EVTX record than the rest of the normalisation, and filling the instance dict directly
    gives an equal object. A test compares both.
    """
    event = _new_object(Event)
    _set_attribute(event, "__dict__", {"fields": fields, "logsource": logsource, "source": source,
                                       "record": record, "time": time, "host": host, "shape": shape})
    return event


_new_object = object.__new__
_set_attribute = object.__setattr__


def describe(value: Any) -> str:
    """Describe a JSON value for a message: its kind and its start, as in 'a list (["a", "b"])'."""
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, (int, float)):
        kind = "a number"
    elif isinstance(value, list):
        kind = "a list"
    elif isinstance(value, dict):
        kind = "an object"
    elif value is None:
        kind = "null"
    else:
        kind = f"a {type(value).__name__}"
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    if len(text) > _REPR_CHARS:
        text = text[:_REPR_CHARS] + "..."
    return f"{kind} ({text})"


def add_aliases(fields: Fields, renames: Tuple[Tuple[str, str], ...]) -> None:
    """Copy each original field to its Sigma name, unless the Sigma name is already set."""
    for original, renamed in renames:
        if renamed not in fields:
            value = fields.get(original)
            if value is not None or original in fields:
                fields[renamed] = value


def _scalar(value: Any) -> Any:
    """Return a field value as a scalar or a list of scalars, turning nested structures into JSON text."""
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and all(not isinstance(item, (dict, list)) for item in value):
            return value
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def flatten(document: Mapping[str, Any], prefix: str = "", into: Optional[Fields] = None) -> Fields:
    """Flatten nested objects into dotted names (``process.parent.executable``).

    A top-level text field such as ``CommandLine`` that contains an object stays an object, so that
    ``Builder.event`` reports it instead of the field disappearing into dotted names.
    """
    fields: Fields = {} if into is None else into
    for key, value in document.items():
        name = prefix + key
        if isinstance(value, dict) and not (not prefix and key in _TEXT_FIELDS):
            flatten(value, name + ".", fields)
        elif isinstance(value, dict):
            fields[name] = value
        else:
            fields[name] = _scalar(value)
    return fields


def iso_time(value: Any) -> Optional[str]:
    """Return a timestamp as ISO 8601 text, putting the "T" back into "2020-10-19 12:28:31.089"."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) > 10 and value[10] == " ":
        return value[:10] + "T" + value[11:]
    return value


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
        fields = {} if fields is None else {"EventData": _scalar(fields)}
    elif raw is None or "[" in raw or not raw.startswith('"EventData":{', raw.rfind("{") - 12):
        # pyevtx-rs writes EventData last. So when the text has no "[" and its last "{" opens
        # EventData, no EventData value is an object or a list. These single-character searches cost
        # less than scanning the values, and a "{" or "[" inside a string value only costs the scan.
        _clean_event_data(fields)
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


def _clean_event_data(fields: Fields) -> None:
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
        fields[key] = _scalar(value)


def _merge_user_data(fields: Fields, user_data: Mapping[str, Any]) -> None:
    """Lift the fields of UserData's single child (``<LogFileCleared>`` and the like) to the top."""
    for key, child in user_data.items():
        if key == "#attributes":
            continue
        if type(child) is dict:
            for name, value in child.items():
                if name != "#attributes" and name not in fields:
                    fields[name] = _scalar(_text(value))
        elif key not in fields:
            fields[key] = _scalar(child)


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
            fields[key] = _scalar(value)
    for key, value in document.items():
        if key == "event_data":
            continue
        if isinstance(value, dict):
            flatten(value, key + ".", fields)
        elif key not in fields:
            fields[key] = _scalar(value)
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
                fields[key] = _scalar(value)
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


def local_name(tag: Any) -> str:
    """Return an element tag without its ``{namespace}``."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def data_elements(root: ElementTree.Element) -> Fields:
    """Collect ``<Data Name="X">value</Data>`` elements below root; unnamed ones become list ``Data``."""
    fields: Fields = {}
    unnamed: List[str] = []
    for element in root.iter():
        if local_name(element.tag) != "Data":
            continue
        name = element.get("Name")
        value = element.text or ""
        if name is None:
            unnamed.append(value)
        else:
            fields[name] = value
    if unnamed:
        fields.setdefault("Data", unnamed if len(unnamed) > 1 else unnamed[0])
    return fields
