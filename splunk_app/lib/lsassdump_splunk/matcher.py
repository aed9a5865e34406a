"""Apply the selected rules to one Splunk search result and build the fields the command adds."""

from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Sequence, Tuple

from lsassdump_splunk.fieldmap import FieldMapper, FieldMapping
from lsassdump_splunk.rulepack import BundledRule

OUTPUT_FIELDS = (
    "sigma_rule_id", "sigma_title", "sigma_level", "sigma_tags", "mitre_technique_id", "sigma_matched",
)

Hit = Tuple[BundledRule, Any]


class RecordMatcher:
    """Evaluates records against rules; the logsource check is decided once per mapping."""

    def __init__(self, rules: Sequence[BundledRule], table: Mapping[str, Any], mapping: str,
                 command_line_field: Optional[str] = None) -> None:
        self.rules = list(rules)
        sigma_fields: List[str] = []
        for rule in self.rules:
            for name in rule.sigma_fields:
                if name not in sigma_fields:
                    sigma_fields.append(name)
        self.mapper = FieldMapper(table, mapping, sigma_fields, command_line_field)
        # NOTE: keyword searches (values under no field) are evaluated against the event's _raw text
        # only, which is what a Splunk keyword search looks at.
        self.reads_raw = any(rule.has_keywords for rule in self.rules)

        self._admitted: Dict[Tuple[int, bool], List[BundledRule]] = {}
        for mapping_row in self.mapper.mappings + (self.mapper.fallback,):
            for is_process in (True, False):
                logsource = mapping_row.process_logsource if is_process else mapping_row.other_logsource
                admitted = [rule for rule in self.rules if rule.compiled.admits(logsource)]
                self._admitted[(id(mapping_row), is_process)] = admitted

    def required_fields(self) -> List[str]:
        """Return the Splunk fields to declare in the getinfo reply."""
        names = set(self.mapper.required_fields())
        if self.reads_raw:
            names.add("_raw")
        return sorted(names)

    def match(self, record: Mapping[str, Any]) -> List[Hit]:
        """Return the rules that match the record, with their Match, in rule order."""
        mapping = self.mapper.choose(record)
        logsource = mapping.logsource(record)
        rules = self._admitted[(id(mapping), logsource is mapping.process_logsource)]
        if not rules:
            return []

        fields = mapping.sigma_fields(record)
        if self.reads_raw and record.get("_raw"):
            fields["_raw"] = record["_raw"]

        hits = []
        for rule in rules:
            found = rule.compiled.match(fields)
            if found is not None:
                hits.append((rule, found))
        return hits

    def mapping_for(self, record: Mapping[str, Any]) -> FieldMapping:
        """Return the mapping the matcher uses for a record (for tests and diagnostics)."""
        return self.mapper.choose(record)


def annotate(record: MutableMapping[str, Any], hits: Sequence[Hit]) -> None:
    """Set the output fields on a matching record.

    With one matching rule each field contains that rule's values. With several, sigma_rule_id,
    sigma_title and sigma_level are multivalue fields in rule order. sigma_tags and
    mitre_technique_id contain the union, and sigma_matched writes each selection as
    ``<rule id>:<selection>`` so that it names its rule.
    """
    if len(hits) == 1:
        rule, found = hits[0]
        record["sigma_rule_id"] = rule.id
        record["sigma_title"] = rule.title
        record["sigma_level"] = rule.level
        record["sigma_tags"] = list(rule.tags)
        record["mitre_technique_id"] = list(rule.techniques)
        record["sigma_matched"] = list(found.selections)
        return

    record["sigma_rule_id"] = [rule.id for rule, _found in hits]
    record["sigma_title"] = [rule.title for rule, _found in hits]
    record["sigma_level"] = [rule.level for rule, _found in hits]
    record["sigma_tags"] = _union(tag for rule, _found in hits for tag in rule.tags)
    record["mitre_technique_id"] = _union(technique for rule, _found in hits for technique in rule.techniques)
    record["sigma_matched"] = [f"{rule.id}:{name}" for rule, found in hits for name in found.selections]


def _union(values: Any) -> List[str]:
    seen: List[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen
