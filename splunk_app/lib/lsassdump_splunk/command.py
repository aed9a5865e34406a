"""The ``| lsassdump`` streaming search command (search command protocol v2, through splunklib)."""

import logging
import sys
from typing import Any, Iterator, List, MutableMapping, Optional

from splunklib.searchcommands import Configuration, Option, StreamingCommand

import core
from lsassdump_splunk.fieldmap import AUTO, load_table, mapping_names
from lsassdump_splunk.matcher import OUTPUT_FIELDS, RecordMatcher, annotate
from lsassdump_splunk.records import read_records
from lsassdump_splunk.rulepack import load_bundled_rules, select_rules

logger = logging.getLogger(__name__)

MODES = ("filter", "annotate")
OPTION_NAMES = ("rule", "mode", "field", "mapping")
# splunklib's own options, accepted as the SDK documents them.
SDK_OPTION_NAMES = ("logging_configuration", "logging_level", "record", "show_configuration")
# Python's csv reader rejects NUL characters before Python 3.11 ("line contains NUL").
CSV_READER_REJECTS_NUL = sys.version_info < (3, 11)
# Records whose evaluation raised are logged one by one up to this count per process, then counted.
MAX_LOGGED_RECORD_ERRORS = 10


class OptionError(Exception):
    """A bad argument to the command; the message is shown to the user as a Splunk ERROR."""


@Configuration()
class LsassdumpCommand(StreamingCommand):
    """Adds sigma_* fields to the events that the bundled Sigma rules match.

    mode=filter (the default) passes only the matching events; mode=annotate passes every event.
    """

    rule = Option(doc="A bundled rule's id, or a title pattern (* and ? wildcards). Default: every rule.")
    mode = Option(doc="filter: pass only matching events (default). annotate: pass every event.")
    field = Option(doc="The field that holds the process command line, when it is not a known name.")
    mapping = Option(doc="sysmon, security_xml, security_text, cim, or auto (default): per event.")

    def __init__(self) -> None:
        super().__init__()
        self._matcher: Optional[RecordMatcher] = None
        self._nul_stand_in: Optional[str] = None
        self._annotate_all = False
        self._record_errors = 0

    def _protocol_v2_option_parser(self, arg: str) -> List[str]:
        # Unknown names come back as positional arguments, so prepare() can report them with the list
        # of valid options instead of splunklib's bare "Unrecognized option".
        parts = arg.split("=", 1)
        if len(parts) == 2 and parts[0] not in OPTION_NAMES + SDK_OPTION_NAMES:
            return [arg]
        return parts

    def prepare(self) -> None:
        """Check the options, load the selected rules and declare the fields the command reads."""
        try:
            self._matcher = self._build_matcher()
        except OptionError as error:
            self.write_error(str(error))
            logger.error("lsassdump options rejected: %s", error)
            sys.exit(1)

        self._annotate_all = unquote(self.mode or "filter").lower() == "annotate"
        self.configuration.required_fields = self._matcher.required_fields()

    def _build_matcher(self) -> RecordMatcher:
        if self.fieldnames:
            listed = ", ".join(f'"{name}"' for name in self.fieldnames)
            raise OptionError(
                f"lsassdump: unknown argument {listed}. The command takes only the options rule=, mode=, "
                f"field= and mapping=, for example: | lsassdump mode=annotate mapping=sysmon"
            )

        mode = unquote(self.mode or "filter").lower()
        if mode not in MODES:
            raise OptionError(
                f'lsassdump: mode="{self.mode}" is not valid. Use mode=filter to pass only matching events '
                f"or mode=annotate to pass every event and mark the matches."
            )

        table = load_table()
        valid_mappings = mapping_names(table)
        mapping = unquote(self.mapping or AUTO).lower()
        if mapping not in valid_mappings:
            raise OptionError(
                f'lsassdump: mapping="{self.mapping}" is not valid. Use one of: {", ".join(valid_mappings)} '
                f"(auto chooses per event from the fields present)."
            )

        command_line_field = None
        if self.field is not None:
            command_line_field = unquote(self.field)
            if not command_line_field:
                raise OptionError(
                    "lsassdump: field= is empty. Give the name of the field that contains the process "
                    "command line, for example field=process_command_line"
                )

        try:
            rules = load_bundled_rules()
        except (OSError, ValueError, KeyError, core.LsassdumpError) as error:
            raise OptionError(
                f"lsassdump: the bundled rules could not be loaded ({error}). Reinstall the app."
            ) from None

        selected = select_rules(rules, unquote(self.rule) if self.rule is not None else None)
        if not selected:
            known = "; ".join(f"{rule.id} ({rule.title})" for rule in rules) or "none"
            raise OptionError(
                f'lsassdump: rule="{self.rule.strip(chr(34))}" matches no bundled rule. Give a rule id or a title pattern '
                f'such as rule="*LSASS*". Bundled rules: {known}'
            )

        return RecordMatcher(selected, table, mapping, command_line_field)

    def _execute_chunk_v2(self, process: Any, chunk: Any) -> None:
        # Before Python 3.11 one NUL anywhere in a chunk would end the search. NUL is swapped for a
        # private-use character that the chunk lacks, and swapped back in every value after parsing.
        metadata, body = chunk
        self._nul_stand_in = None
        if CSV_READER_REJECTS_NUL and "\x00" in body:
            self._nul_stand_in = next(chr(code) for code in range(0xE000, 0xF900) if chr(code) not in body)
            body = body.replace("\x00", self._nul_stand_in)
        super()._execute_chunk_v2(process, (metadata, body))

    def _read_csv_records(self, ifile: Any) -> Iterator[MutableMapping[str, Any]]:
        # splunklib's own reader gives the same records more slowly (see records.py).
        records = read_records(ifile, self._decode_list)
        stand_in = self._nul_stand_in
        if stand_in is None:
            return records
        return (_restore_nul(record, stand_in) for record in records)

    def stream(self, records: Iterator[MutableMapping[str, Any]]) -> Iterator[MutableMapping[str, Any]]:
        """Yield matching records with sigma_* fields (and, with mode=annotate, the others unchanged)."""
        matcher = self._matcher
        if matcher is None:
            raise RuntimeError("lsassdump: stream() called before prepare()")

        # splunklib takes a chunk's columns from its first record plus the fields added through
        # add_field, so the output fields are declared once even if the first record does not match.
        declared: MutableMapping[str, Any] = {}
        for name in OUTPUT_FIELDS:
            self.add_field(declared, name, None)

        match = matcher.match
        annotate_all = self._annotate_all
        errors_before = self._record_errors
        for record in records:
            try:
                hits = match(record)
            except Exception as error:  # noqa: BLE001 - one odd record must not end the search
                hits = []
                self._log_record_error(error)
            if hits:
                annotate(record, hits)
                yield record
            elif annotate_all:
                yield record

        failed = self._record_errors - errors_before
        if failed:
            self.write_warning(
                f"lsassdump: {failed} event(s) in this batch could not be evaluated and were treated as "
                f"not matching; search.log has the errors."
            )

    def _log_record_error(self, error: Exception) -> None:
        self._record_errors += 1
        if self._record_errors <= MAX_LOGGED_RECORD_ERRORS:
            logger.warning("lsassdump: record passed on unmatched after %s: %s", type(error).__name__, error)
        elif self._record_errors == MAX_LOGGED_RECORD_ERRORS + 1:
            logger.warning("lsassdump: more records raised errors; further errors are counted, not logged")


def _restore_nul(record: MutableMapping[str, Any], stand_in: str) -> MutableMapping[str, Any]:
    for name, value in record.items():
        if isinstance(value, str):
            if stand_in in value:
                record[name] = value.replace(stand_in, "\x00")
        elif isinstance(value, list):
            record[name] = [item.replace(stand_in, "\x00") for item in value]
    return record


def unquote(value: str) -> str:
    """Strip spaces and one pair of enclosing double quotes, in case splunkd passes ``rule="*x*"``
    with its quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"')
    return value
