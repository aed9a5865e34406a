"""Field mappings: where a Sigma process-creation field lives on each platform, as data.

Each mapping renames Sigma's field names to the platform's, says which query languages it suits,
and adds a logsource filter that selects process-creation events there. A rule field the mapping
does not name raises MappingError; it is never dropped. The ``sigma`` mapping keeps field names as
the rule writes them and adds no filter, for rules outside process creation.

Field names follow, per mapping: Splunk Add-on for Sysmon and Splunk Add-on for Microsoft Windows
(field extractions of Sysmon and Security 4688 events), the Splunk CIM Endpoint data model
(Processes dataset), the Elastic Common Schema 8.x field reference and Winlogbeat's Sysmon module,
Microsoft Sentinel's ASIM Process Event schema (imProcessCreate), the SecurityEvent table, and
Microsoft Defender for Endpoint's DeviceProcessEvents table.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from core.errors import MappingError

# One clause of a logsource filter: the event matches when any (field, value) pair holds.
FilterClause = Tuple[Tuple[str, Any], ...]


@dataclass(frozen=True)
class FieldMapping:
    """A platform's names for Sigma fields, the languages that query it, and its logsource filter."""

    name: str
    description: str
    languages: Tuple[str, ...]
    fields: Mapping[str, Tuple[str, ...]]
    # Clauses are joined with AND; the pairs inside one clause with OR.
    filter: Tuple[FilterClause, ...] = ()
    # Elasticsearch field types, where they decide how a query matches: "keyword" and "wildcard"
    # compare case-sensitively, "text" is analysed (lower-cased tokens).
    field_types: Mapping[str, str] = field(default_factory=dict)
    categories: Optional[Tuple[str, ...]] = ("process_creation",)
    table: Optional[str] = None  # the KQL table, or the Splunk data model for tstats
    passthrough: bool = False

    def target_fields(self, sigma_field: str, where: Optional[Any] = None) -> Tuple[str, ...]:
        """Return the platform field names for a Sigma field; raises MappingError when unmapped."""
        found = self.fields.get(sigma_field)
        if found is not None:
            return found
        if self.passthrough:
            return (sigma_field,)
        known = ", ".join(sorted(self.fields))
        raise MappingError(f"field '{sigma_field}' has no mapping in '{self.name}'", where,
                           f"use a rule field the mapping knows ({known}) or the 'sigma' mapping")

    def document_for(self, sigma_fields: Mapping[str, Any]) -> Dict[str, Any]:
        """Build the document this platform would hold for an event with these Sigma fields.

        Each Sigma field goes to the first platform field that the mapping names for it, and the
        filter's first pair of every clause is set, so that the document passes the filter.
        """
        document: Dict[str, Any] = {}
        for clause in self.filter:
            name, value = clause[0]
            document[name] = value
        for sigma_field, value in sigma_fields.items():
            names = self.fields.get(sigma_field)
            if names is not None:
                document.setdefault(names[0], value)
            elif self.passthrough:
                document.setdefault(sigma_field, value)
        return document


def _same(*names: str) -> Dict[str, Tuple[str, ...]]:
    return {name: (name,) for name in names}


SYSMON_PROCESS_FIELDS = (
    "CommandLine", "Image", "ParentImage", "ParentCommandLine", "OriginalFileName", "User",
    "IntegrityLevel", "CurrentDirectory", "Hashes", "Company", "Description", "Product", "FileVersion",
    "ProcessId", "ParentProcessId", "ProcessGuid", "ParentProcessGuid", "LogonId", "LogonGuid",
    "TerminalSessionId", "ParentUser", "UtcTime", "RuleName",
)
SYSMON_SOURCE = "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"

MAPPINGS: Dict[str, FieldMapping] = {}


def _register(mapping: FieldMapping) -> None:
    MAPPINGS[mapping.name] = mapping


_register(FieldMapping(
    name="splunk-sysmon",
    description="Splunk, Sysmon events through the Splunk Add-on for Sysmon (EventCode 1)",
    languages=("spl",),
    fields={**_same(*SYSMON_PROCESS_FIELDS), "EventID": ("EventCode",), "Computer": ("host",)},
    # Older add-ons set the sourcetype to the Sysmon source name; newer ones set it as source
    # with sourcetype XmlWinEventLog.
    filter=((("source", SYSMON_SOURCE), ("sourcetype", SYSMON_SOURCE)), (("EventCode", 1),)),
))

_register(FieldMapping(
    name="splunk-security",
    description="Splunk, Security 4688 events, XML (XmlWinEventLog) and classic text (WinEventLog) field names",
    languages=("spl",),
    fields={
        "CommandLine": ("CommandLine", "Process_Command_Line"),
        "Image": ("NewProcessName", "New_Process_Name"),
        "ParentImage": ("ParentProcessName", "Creator_Process_Name"),
        "User": ("SubjectUserName", "Account_Name"),
        "ProcessId": ("NewProcessId", "New_Process_ID"),
        "ParentProcessId": ("ProcessId", "Creator_Process_ID"),
        "IntegrityLevel": ("MandatoryLabel", "Mandatory_Label"),
        "LogonId": ("SubjectLogonId", "Logon_ID"),
        "EventID": ("EventCode",),
        "Computer": ("host",),
    },
    filter=((("source", "XmlWinEventLog:Security"), ("source", "WinEventLog:Security")), (("EventCode", 4688),)),
))

_register(FieldMapping(
    name="splunk-cim",
    description="Splunk, the CIM Endpoint.Processes data model, searched with tstats",
    languages=("spl",),
    fields={
        "CommandLine": ("Processes.process",),
        "Image": ("Processes.process_path",),
        "ParentImage": ("Processes.parent_process_path",),
        "ParentCommandLine": ("Processes.parent_process",),
        "OriginalFileName": ("Processes.original_file_name",),
        "User": ("Processes.user",),
        "IntegrityLevel": ("Processes.process_integrity_level",),
        "CurrentDirectory": ("Processes.process_current_directory",),
        "Hashes": ("Processes.process_hash",),
        "ProcessId": ("Processes.process_id",),
        "ParentProcessId": ("Processes.parent_process_id",),
        "ProcessGuid": ("Processes.process_guid",),
        "ParentProcessGuid": ("Processes.parent_process_guid",),
        "Computer": ("Processes.dest",),
    },
    table="Endpoint.Processes",
))

ECS_FIELDS = {
    "CommandLine": ("process.command_line",),
    "Image": ("process.executable",),
    "ParentImage": ("process.parent.executable",),
    "ParentCommandLine": ("process.parent.command_line",),
    "OriginalFileName": ("process.pe.original_file_name",),
    "User": ("user.name",),
    "IntegrityLevel": ("winlog.event_data.IntegrityLevel",),
    "CurrentDirectory": ("process.working_directory",),
    "Company": ("process.pe.company",),
    "Description": ("process.pe.description",),
    "Product": ("process.pe.product",),
    "FileVersion": ("process.pe.file_version",),
    "ProcessId": ("process.pid",),
    "ParentProcessId": ("process.parent.pid",),
    "ProcessGuid": ("process.entity_id",),
    "ParentProcessGuid": ("process.parent.entity_id",),
    "Hashes": ("winlog.event_data.Hashes",),
    "LogonId": ("winlog.event_data.LogonId",),
    "ParentUser": ("winlog.event_data.ParentUser",),
    "Computer": ("host.name",),
    "EventID": ("event.code",),
}
_register(FieldMapping(
    name="ecs",
    description="Elastic, Elastic Common Schema documents from Winlogbeat, Elastic Agent or Elastic Defend",
    languages=("eql", "lucene", "dsl", "esql"),
    fields=ECS_FIELDS,
    filter=((("event.category", "process"),), (("event.type", "start"),)),
    # ECS 8.x: command lines are "wildcard" fields, paths and names "keyword"; both are
    # case-sensitive. The ".text" multi-fields are analysed but not used here.
    field_types={
        "process.command_line": "wildcard", "process.parent.command_line": "wildcard",
        "process.executable": "keyword", "process.parent.executable": "keyword",
        "process.pe.original_file_name": "keyword", "user.name": "keyword",
        "process.working_directory": "keyword", "process.pe.company": "keyword",
        "process.pe.description": "keyword", "process.pe.product": "keyword",
        "process.pe.file_version": "keyword", "process.pid": "long", "process.parent.pid": "long",
        "process.entity_id": "keyword", "process.parent.entity_id": "keyword", "host.name": "keyword",
        "event.category": "keyword", "event.type": "keyword", "event.code": "keyword",
        "winlog.event_data.IntegrityLevel": "keyword", "winlog.event_data.Hashes": "keyword",
        "winlog.event_data.LogonId": "keyword", "winlog.event_data.ParentUser": "keyword",
    },
))

_register(FieldMapping(
    name="winlogbeat-raw",
    description="Elastic, raw Sysmon event data from Winlogbeat (winlog.event_data.*)",
    languages=("eql", "lucene", "dsl", "esql"),
    fields={
        **{name: ("winlog.event_data." + name,) for name in SYSMON_PROCESS_FIELDS},
        "EventID": ("winlog.event_id",),
        "Channel": ("winlog.channel",),
        "Provider_Name": ("winlog.provider_name",),
        "Computer": ("winlog.computer_name",),
    },
    filter=((("winlog.channel", "Microsoft-Windows-Sysmon/Operational"),), (("winlog.event_id", 1),)),
    # Winlogbeat's index template maps winlog.event_data.* as keyword (case-sensitive).
    field_types={**{"winlog.event_data." + name: "keyword" for name in SYSMON_PROCESS_FIELDS},
                 "winlog.event_id": "keyword", "winlog.channel": "keyword",
                 "winlog.provider_name": "keyword", "winlog.computer_name": "keyword"},
))

_register(FieldMapping(
    name="sentinel-asim",
    description="Microsoft Sentinel, the ASIM process event parser imProcessCreate",
    languages=("kql",),
    fields={
        "CommandLine": ("TargetProcessCommandLine",),
        "Image": ("TargetProcessName",),
        "ParentImage": ("ActingProcessName",),
        "ParentCommandLine": ("ActingProcessCommandLine",),
        "OriginalFileName": ("TargetProcessFileOriginalName",),
        "User": ("TargetUsername",),
        "IntegrityLevel": ("TargetProcessIntegrityLevel",),
        "CurrentDirectory": ("TargetProcessCurrentDirectory",),
        "Company": ("TargetProcessFileCompany",),
        "Description": ("TargetProcessFileDescription",),
        "Product": ("TargetProcessFileProduct",),
        "FileVersion": ("TargetProcessFileVersion",),
        "ProcessId": ("TargetProcessId",),
        "ParentProcessId": ("ActingProcessId",),
        "ProcessGuid": ("TargetProcessGuid",),
        "ParentProcessGuid": ("ActingProcessGuid",),
        "Computer": ("DvcHostname",),
    },
    table="imProcessCreate",
))

_register(FieldMapping(
    name="sentinel-securityevent",
    description="Microsoft Sentinel, the SecurityEvent table, Security 4688 events",
    languages=("kql",),
    fields={
        "CommandLine": ("CommandLine",),
        "Image": ("NewProcessName",),
        "ParentImage": ("ParentProcessName",),
        "User": ("SubjectUserName",),
        "IntegrityLevel": ("MandatoryLabel",),
        "ProcessId": ("NewProcessId",),
        "ParentProcessId": ("ProcessId",),
        "LogonId": ("SubjectLogonId",),
        "Computer": ("Computer",),
        "EventID": ("EventID",),
    },
    filter=((("EventID", 4688),),),
    table="SecurityEvent",
))

_register(FieldMapping(
    name="mde",
    description="Microsoft Defender for Endpoint advanced hunting, the DeviceProcessEvents table",
    languages=("kql",),
    fields={
        "CommandLine": ("ProcessCommandLine",),
        "Image": ("FolderPath",),
        "ParentImage": ("InitiatingProcessFolderPath",),
        "ParentCommandLine": ("InitiatingProcessCommandLine",),
        "OriginalFileName": ("ProcessVersionInfoOriginalFileName",),
        "User": ("AccountName",),
        "IntegrityLevel": ("ProcessIntegrityLevel",),
        "Company": ("ProcessVersionInfoCompanyName",),
        "Description": ("ProcessVersionInfoFileDescription",),
        "Product": ("ProcessVersionInfoProductName",),
        "FileVersion": ("ProcessVersionInfoProductVersion",),
        "ProcessId": ("ProcessId",),
        "ParentProcessId": ("InitiatingProcessId",),
        "Computer": ("DeviceName",),
    },
    table="DeviceProcessEvents",
))

_register(FieldMapping(
    name="sigma",
    description="Field names as the rule writes them, with no logsource filter (any category)",
    languages=("spl", "eql", "lucene", "dsl", "esql", "kql"),
    fields={},
    categories=None,
    passthrough=True,
))

# The mapping each language uses when none is named.
DEFAULT_MAPPING = {
    "spl": "splunk-sysmon", "eql": "ecs", "lucene": "ecs", "dsl": "ecs", "esql": "ecs", "kql": "sentinel-asim",
}


def get_mapping(name: str) -> FieldMapping:
    """Return a mapping by name; raises MappingError naming the known ones."""
    found = MAPPINGS.get(name)
    if found is None:
        raise MappingError(f"unknown field mapping '{name}'", None,
                           f"choose one of {', '.join(sorted(MAPPINGS))}")
    return found
