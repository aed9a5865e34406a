"""Read CSV exported from Splunk: a header row, then one event per row.

When a row's ``_raw`` contains the event's XML (sourcetype ``XmlWinEventLog``) or JSON, the reader
parses it as such. Otherwise the columns are the fields, renamed like flat exports (``EventCode``
becomes ``EventID``, Splunk's ``Process_Command_Line`` becomes ``CommandLine`` ...).

Splunk writes a field that an event lacks as an empty cell, so empty cells are left out: an empty
value and a missing field cannot be told apart in this format. The record number is the line on
which the row starts.
"""

import csv
import json
from typing import Optional, BinaryIO, Dict, Iterator, Set, Union
from xml.etree import ElementTree

from core.events import Event, ReadProblem
from core.readers import shapes
from core.readers.builder import (
    SHAPE_CSV, SHAPE_XML, Builder, Fields, add_aliases, describe, iso_time, local_name,
)
from core.readers.jsonfile import event_from_document
from core.readers.text import text_lines
from core.readers.xmlfile import event_element_fields

Item = Union[Event, ReadProblem]

# The csv module limits fields to 131,072 characters by default, and a ``_raw`` event with a long
# command line can exceed that. The limit is process-wide, so the reader only ever raises it.
MAX_FIELD_CHARS = 16 << 20

# A CSV file is taken as events when its header has one of these columns.
EVENT_COLUMNS = ("_raw", "EventCode", "EventID", "event_id", "winlog.event_id", "Channel", "LogName")


def read_csv(stream: BinaryIO, source: str, encoding: str) -> Iterator[Item]:
    """Yield the events of a Splunk CSV export, and a ReadProblem for each bad row."""
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    bad_lines: Set[int] = set()
    reader = csv.reader(text_lines(stream, encoding, MAX_FIELD_CHARS, bad_lines))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        yield ReadProblem(source, 1, f"invalid CSV header: {error}")
        return
    columns = [name.strip().lstrip("\ufeff") for name in header]
    if not any(name in columns for name in EVENT_COLUMNS):
        yield ReadProblem(source, None, "not an event export: the CSV header has none of the columns "
                          f"{', '.join(EVENT_COLUMNS)} (header: {', '.join(columns[:8])})")
        return

    builder = Builder(source)
    last_line = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield ReadProblem(source, last_line + 1, f"invalid CSV row: {error}")
            last_line = reader.line_num
            continue
        first_line, last_line = last_line + 1, reader.line_num
        if not row:
            continue
        if any(number in bad_lines for number in range(first_line, last_line + 1)):
            bad_lines.difference_update(range(first_line, last_line + 1))
            yield ReadProblem(source, first_line, "invalid bytes, replaced with U+FFFD")
        if len(row) != len(columns):
            yield ReadProblem(source, first_line, f"the row has {len(row)} values but the header "
                              f"has {len(columns)} columns; values were matched by position")
        yield from _row_items(dict(zip(columns, row)), builder, first_line)


def _row_items(row: Dict[str, str], builder: Builder, record: int) -> Iterator[Item]:
    raw = (row.get("_raw") or "").lstrip()
    if raw.startswith("<"):
        yield from _raw_xml_items(raw, row, builder, record)
        return
    if raw.startswith("{"):
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as error:
            yield ReadProblem(builder.source, record, f"_raw holds invalid JSON: {error}")
        else:
            if isinstance(document, dict):
                yield from event_from_document(document, builder.source, record)
                return
            yield ReadProblem(builder.source, record, f"_raw holds {describe(document)}, "
                              "expected a JSON object; reading the columns instead")

    fields: Fields = {name: value for name, value in row.items() if value != "" and name != "_raw"}
    add_aliases(fields, shapes.FLAT_RENAMES)
    if "Channel" not in fields:
        channel = _channel_from_splunk_source(fields)
        if channel is not None:
            fields["Channel"] = channel
    host = fields.get("Computer") or fields.get("host")
    event = builder.event(fields, SHAPE_CSV, record, iso_time(fields.get("_time")), host)
    yield from builder.take_problems()
    yield event


# Splunk's Windows add-ons name the event log in source or sourcetype, after one of these prefixes:
# ``XmlWinEventLog:Microsoft-Windows-Sysmon/Operational``, ``WinEventLog:Security``.
_SPLUNK_LOG_PREFIXES = ("XmlWinEventLog:", "WinEventLog:")


def _channel_from_splunk_source(fields: Fields) -> Optional[str]:
    """Return the event log named by a Splunk export's source or sourcetype column, or None."""
    for column in ("source", "sourcetype"):
        value = fields.get(column)
        if not isinstance(value, str):
            continue
        for prefix in _SPLUNK_LOG_PREFIXES:
            if value.startswith(prefix) and len(value) > len(prefix):
                return value[len(prefix):]
    return None


def _raw_xml_items(raw: str, row: Dict[str, str], builder: Builder, record: int) -> Iterator[Item]:
    try:
        element = ElementTree.fromstring(raw)
    except ElementTree.ParseError as error:
        yield ReadProblem(builder.source, record, f"_raw holds invalid XML: {error}")
        return
    if local_name(element.tag) != "Event":
        yield ReadProblem(builder.source, record, f"_raw holds a <{local_name(element.tag)}> "
                          "element, expected <Event>")
        return
    fields, time, host, _ = event_element_fields(element)
    time = time or iso_time(row.get("_time"))
    host = host or row.get("host") or None
    event = builder.event(fields, SHAPE_XML, record, time, host)
    yield from builder.take_problems()
    yield event

