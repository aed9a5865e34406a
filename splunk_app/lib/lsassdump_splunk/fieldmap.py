"""Map the fields of a Splunk search result onto Sigma field names, using field_mappings.json."""

import json
import os
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from core.events import LogSource

AUTO = "auto"
TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "field_mappings.json")
PROCESS_CREATION = "process_creation"


def load_table(path: str = TABLE_PATH) -> Dict[str, Any]:
    """Read the field mapping table (see the ``about`` entry in the file for its format)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def mapping_names(table: Mapping[str, Any]) -> List[str]:
    """Return the values that ``mapping=`` accepts: every mapping in the table, then ``auto``."""
    return sorted(table["mappings"]) + [AUTO]


class FieldMapping:
    """One row of the table, narrowed to the Sigma fields that the selected rules read.

    ``plan`` pairs each Sigma field with the Splunk fields that may hold it, in order of preference.
    """

    def __init__(self, name: str, spec: Mapping[str, Any], sigma_fields: Sequence[str],
                 command_line_field: Optional[str]) -> None:
        self.name = name
        self.markers: Tuple[str, ...] = tuple(spec["markers"])
        self.event_code_fields: Tuple[str, ...] = tuple(spec["event_code_fields"])
        self.process_creation_codes: FrozenSet[str] = frozenset(spec["process_creation_codes"])

        sources: Dict[str, List[str]] = {key: list(value) for key, value in spec["fields"].items()}
        if command_line_field:
            sources["CommandLine"] = [command_line_field]
        self.plan: Tuple[Tuple[str, Tuple[str, ...]], ...] = tuple(
            (sigma, tuple(sources.get(sigma, [sigma]))) for sigma in sigma_fields
        )

        services = frozenset([spec["service"]]) if spec.get("service") else frozenset()
        self.process_logsource = LogSource("windows", frozenset([PROCESS_CREATION]), services)
        self.other_logsource = LogSource("windows", frozenset(), services)

    def splunk_fields(self) -> List[str]:
        """Return every Splunk field this mapping reads, markers and event codes included."""
        names = list(self.markers) + list(self.event_code_fields)
        for _sigma, candidates in self.plan:
            names.extend(candidates)
        return names

    def sigma_fields(self, record: Mapping[str, Any]) -> Dict[str, Any]:
        """Return the record's values under Sigma names; empty values are left out, as Splunk sends
        an empty string for a field that the event lacks."""
        fields: Dict[str, Any] = {}
        get = record.get
        for sigma, candidates in self.plan:
            for name in candidates:
                value = get(name)
                if value:
                    fields[sigma] = value
                    break
        return fields

    def logsource(self, record: Mapping[str, Any]) -> LogSource:
        """Return the event's logsource: a process creation, unless its event code is another one."""
        for name in self.event_code_fields:
            code = record.get(name)
            if isinstance(code, list):
                code = code[0] if code else None
            if code:
                if str(code).strip() in self.process_creation_codes:
                    return self.process_logsource
                return self.other_logsource
        return self.process_logsource


class FieldMapper:
    """Chooses the mapping for each record (fixed, or by marker fields when ``auto``)."""

    def __init__(self, table: Mapping[str, Any], mapping: str, sigma_fields: Sequence[str],
                 command_line_field: Optional[str] = None) -> None:
        specs = table["mappings"]
        if mapping == AUTO:
            order = list(table["auto_order"])
        else:
            order = [mapping]
        self.mappings: Tuple[FieldMapping, ...] = tuple(
            FieldMapping(name, specs[name], sigma_fields, command_line_field) for name in order
        )
        # A record with none of the marker fields still goes through the Sysmon mapping, whose
        # Splunk names are the Sigma names; with field= it reads the command line from that field.
        self.fallback = (
            self.mappings[0] if mapping != AUTO else FieldMapping("sysmon", specs["sysmon"], sigma_fields,
                                                                  command_line_field)
        )
        self.single = mapping != AUTO
        # One flat list in auto_order, because this runs for every record.
        self._markers: Tuple[Tuple[str, FieldMapping], ...] = tuple(
            (marker, row) for row in self.mappings for marker in row.markers
        )

    def choose(self, record: Mapping[str, Any]) -> FieldMapping:
        """Return the mapping that applies to one record."""
        if self.single:
            return self.fallback
        get = record.get
        for marker, mapping in self._markers:
            if get(marker):
                return mapping
        return self.fallback

    def required_fields(self) -> List[str]:
        """Return the Splunk fields the command reads, sorted, without duplicates."""
        names = set()
        for mapping in self.mappings + (self.fallback,):
            names.update(mapping.splunk_fields())
        return sorted(names)
