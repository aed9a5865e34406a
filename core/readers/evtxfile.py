"""Read Windows EVTX files with the ``evtx`` package (pyevtx-rs), imported only when an EVTX file is read.

pyevtx-rs renders each record as JSON text in the evtx_dump layout (``Event.System``,
``Event.EventData``). When a chunk or record is damaged its iterator raises ``RuntimeError`` and
then continues with the next chunk, so the reader reports each error and reads on.

``Event.record`` is the record number from the record header, which locates the record in this
file. The ``EventRecordID`` field keeps the number from the event itself; the two differ in logs
that were saved from a filtered view.
"""

import functools
import importlib.metadata as importlib_metadata
import json
import os
import re
import sys
from typing import Any, BinaryIO, Callable, Dict, Iterator, Optional, Tuple, Union, cast

from core.events import Event, LogSource, ReadProblem, Skipped
from core.logsources import classify
from core.readers import shapes
from core.readers.builder import SHAPE_EVTX, Builder

Item = Union[Event, ReadProblem]

# EVTX files are made of 64 KiB chunks, and the parser raises at most one error per damaged chunk
# before moving on. More errors in a row than the file has chunks means it no longer advances.
_CHUNK_BYTES = 64 * 1024
# An EVTX file is a 4 KiB header block followed by whole chunks. The parser stops without an error
# at the end of a truncated file, so the reader checks the size itself.
# NOTE: a file cut exactly at a chunk boundary passes this check.
_HEADER_BYTES = 4096
_PARSER_ERRORS = (RuntimeError, OSError, ValueError)
# evtx 0.8.9, the newest release for Python 3.9, never returns from next() on a file with a
# zero-size record. 0.14.0 is the version this reader is tested with.
_MIN_PARSER_VERSION = (0, 14)

# The System element as pyevtx-rs 0.14 writes it for most records, in compact JSON. Matching it
# is cheaper than decoding it, and decoding is most of the cost of a record. A record
# of any other layout (qualified EventID, escaped text, UserData, another parser version) does not
# match, so it is decoded whole. A test checks that both ways give the same fields for the corpus.
_COMPACT_SYSTEM = re.compile(
    r'\{"Event":\{"#attributes":\{"xmlns":"http://schemas\.microsoft\.com/win/2004/08/events/event"\},'
    r'"System":\{"Provider":\{"#attributes":\{"Name":"([^"\\]*)"[^{}]*\}\},'
    r'"EventID":(\d+),(?:"Version":\d+,)?"Level":(\d+),(?:"Task":\d+,)?(?:"Opcode":\d+,)?'
    r'"Keywords":"([^"\\]*)",'
    r'"TimeCreated":\{"#attributes":\{"SystemTime":"([^"\\]*)"\}\},"EventRecordID":(\d+),'
    r'"Correlation":(?:null|\{[^{}]*\{[^{}]*\}\}),"Execution":(?:null|\{[^{}]*\{[^{}]*\}\}),'
    r'"Channel":"([^"\\]*)","Computer":"([^"\\]*)",'
    r'"Security":(?:null|\{"#attributes":\{"UserID":"([^"\\]*)"\}\})\},'
    r'"EventData":')

Fields = Dict[str, Any]
Decode = Callable[[str, int], Tuple[Any, int]]
_DECODER = json.JSONDecoder()


def compact_record_fields(data: str, decode: Decode) -> Optional[Tuple[Fields, Optional[str], Optional[str]]]:
    """Return what ``shapes.evtx_event_fields`` returns for a record's JSON text, decoding only EventData.

    Return None when the System element does not have the usual compact layout.
    """
    match = _COMPACT_SYSTEM.match(data)
    if match is None:
        return None
    start = match.end()
    event_data = decode(data, start)[0]
    if type(event_data) is dict:
        fields: Fields = event_data
        if "[" in data or data.rfind("{") != start:
            shapes.clean_event_data(fields)
    elif event_data is None:
        fields = {}
    else:
        return None

    provider, event_id, level, keywords, time, record_id, channel, computer, user_id = match.groups()
    fields["EventID"] = int(event_id)
    fields["Channel"] = channel
    fields["Provider_Name"] = provider
    fields["Computer"] = computer
    fields["EventRecordID"] = int(record_id)
    fields["Level"] = int(level)
    fields["Keywords"] = keywords
    if user_id is not None:
        fields["Security_UserID"] = user_id
    return fields, time, computer


# Records that a scan may decline without decoding them: the usual compact System layout, and none
# of what the full decode would report or rewrite (JSON \u escapes, arrays, over-long values).
_SKIPPABLE_MAX_CHARS = 30_000
SkipTest = Callable[[LogSource, str], bool]


def read_evtx(file: Union[str, BinaryIO], source: str, skip: Optional[SkipTest] = None) -> Iterator[Item]:
    """Yield the events of an EVTX file (a path or a seekable binary file), and a ReadProblem per damaged part.

    With ``skip``, a record in the usual layout whose logsource and raw JSON text make
    ``skip(logsource, text)`` true is yielded as a ``Skipped`` marker instead of being decoded.
    """
    unavailable = parser_unavailable()
    if unavailable is not None:
        yield ReadProblem(source, None, unavailable)
        return
    try:
        from evtx import PyEvtxParser
    except ImportError as error:
        yield ReadProblem(source, None, f"the 'evtx' package is installed but cannot be imported: {error}")
        return

    try:
        # The type stubs declare Optional items, but the iterator never yields None.
        records = cast(Iterator[Dict[str, Any]], PyEvtxParser(file).records_json())
        size = _size(file)
    except FileNotFoundError:
        yield ReadProblem(source, None, "file not found")
        return
    except PermissionError:
        yield ReadProblem(source, None, "permission denied")
        return
    except _PARSER_ERRORS as error:
        yield ReadProblem(source, None, f"not a readable EVTX file: {error}")
        return

    error_limit = size // _CHUNK_BYTES + 2
    errors_in_a_row = 0
    record_id = None
    builder = Builder(source)
    decode = _DECODER.raw_decode
    evtx_event_fields = shapes.evtx_event_fields
    event_of = builder.event
    shape = SHAPE_EVTX
    while True:
        # A for loop is faster than calling next() for each record. A parser error ends it, and the
        # while loop goes on with the same iterator, which resumes at the next chunk. The body
        # catches its own errors, so what reaches the except clause comes from the parser.
        try:
            for record in records:
                errors_in_a_row = 0
                record_id = record["event_record_id"]
                data = record["data"]
                if skip is not None and len(data) < _SKIPPABLE_MAX_CHARS and "\\u" not in data and "[" not in data:
                    system = _COMPACT_SYSTEM.match(data)
                    if system is not None:
                        logsource = classify(system.group(7), system.group(1), int(system.group(2))).logsource
                        if skip(logsource, data):
                            yield Skipped(logsource, source, record_id)
                            continue
                try:
                    found = compact_record_fields(data, decode)
                    if found is None:
                        event = decode(data, 0)[0]["Event"]
                        if type(event) is not dict:
                            raise TypeError("Event is not an object")
                        found = evtx_event_fields(event, data)
                except (ValueError, KeyError, TypeError) as error:
                    yield ReadProblem(source, record_id, f"EVTX record has no readable Event element: {error!r}")
                    continue
                item = event_of(found[0], shape, record_id, found[1], found[2])
                if builder.problems:
                    yield from builder.take_problems()
                yield item
            if (size - _HEADER_BYTES) % _CHUNK_BYTES:
                yield ReadProblem(source, None, f"the file size ({size} bytes) is not a 4 KiB header plus "
                                  "whole 64 KiB chunks, so the file was cut short; events of its last chunk "
                                  "are missing")
            return
        except _PARSER_ERRORS as error:
            after = "at the start" if record_id is None else f"after record {record_id}"
            yield ReadProblem(source, None, f"damaged EVTX data {after}: {error}")
            errors_in_a_row += 1
            if errors_in_a_row > error_limit:
                yield ReadProblem(source, None, f"stopped after {errors_in_a_row} errors in a row")
                return


@functools.lru_cache(maxsize=1)
def parser_unavailable() -> Optional[str]:
    """Return why EVTX files cannot be read here (evtx missing or too old), or None when they can."""
    try:
        installed = importlib_metadata.version("evtx")
    except importlib_metadata.PackageNotFoundError:
        if sys.version_info < (3, 10):
            return ("reading EVTX files needs the 'evtx' package 0.14 or later, which needs Python 3.10 or "
                    "later: run lsassdump with Python 3.10+, or convert the file to XML or JSON first")
        return "reading EVTX files needs the 'evtx' package: pip install 'evtx>=0.14'"
    parts = []
    for part in installed.split(".")[:2]:
        digits = "".join(character for character in part if character.isdigit())
        parts.append(int(digits or 0))
    if tuple(parts) < _MIN_PARSER_VERSION:
        minimum = ".".join(str(number) for number in _MIN_PARSER_VERSION)
        return (f"evtx {installed} is installed, but reading EVTX needs evtx {minimum} or later "
                "(Python 3.10 or later), because older versions hang on some damaged files: "
                "pip install -U 'evtx>=0.14' on Python 3.10+")
    return None


def _size(file: Union[str, BinaryIO]) -> int:
    if isinstance(file, str):
        return os.path.getsize(file)
    position = file.tell()
    size = file.seek(0, os.SEEK_END)
    file.seek(position)
    return size
