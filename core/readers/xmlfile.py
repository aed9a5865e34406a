"""Read Windows event XML: an ``<Events>`` root with ``<Event>`` children, or bare ``<Event>`` elements.

``wevtutil qe`` writes bare ``<Event>`` elements one after another with no root, so the reader
wraps such a file in a synthetic ``<Events>`` root. Elements are streamed with ``ElementTree.iterparse``
and each ``<Event>`` is cleared and detached once read, so memory does not grow with the file.

Tags compare by local name, so the reader accepts any namespace or none. ``Event.record`` is the
event's EventRecordID, or its position in the file (1-based) when it has none.

After a syntax error the parser cannot go on, so the reader reports it, finds the next ``<Event``
start tag after the error and parses again from there, inside a copy of the original root tag.
"""

import re
from typing import BinaryIO, Iterator, List, Optional, Tuple, Union
from xml.etree import ElementTree

from core.events import Event, ReadProblem
from core.readers.builder import SHAPE_XML, Builder, Fields, data_elements, local_name
from core.readers.text import checked_utf8_chunks, detect_encoding

Item = Union[Event, ReadProblem]

_HEAD_BYTES = 1 << 16
_SCAN_BYTES = 1 << 16
_DECLARATION = re.compile(r"<\?xml[^>]*\?>")
_DECLARED_ENCODING = re.compile(r"encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_FIRST_START_TAG = re.compile(r"<(?![?!/])([^\s/>]+)[^>]*>")
_EVENT_START_TAG = re.compile(rb"<(?:[\w.\-]+:)?Event[\s>/]")
_SYSTEM_TEXT_FIELDS = ("Channel", "Computer", "Level", "Keywords")


class _Layout:
    """The start of the file: encoding, declaration, root start tag, and whether to wrap the events."""

    def __init__(self, head: bytes) -> None:
        self.encoding, bom_length = detect_encoding(head)
        text = head[bom_length:].decode(self.encoding, "replace")
        declaration = _DECLARATION.match(text.lstrip())
        declared = None
        self.prologue_end = bom_length
        if declaration is not None:
            declared_match = _DECLARED_ENCODING.search(declaration.group(0))
            declared = declared_match.group(1).lower() if declared_match else None
            prologue_text = text[:text.index(declaration.group(0)) + len(declaration.group(0))]
            self.prologue_end = bom_length + len(prologue_text.encode(self.encoding))
        self.utf8 = self.encoding == "utf-8" and declared in (None, "utf-8", "utf8")
        root = _FIRST_START_TAG.search(text)
        self.wrapped = root is not None and root.group(1).split(":")[-1] == "Event"
        if root is None or self.wrapped:
            self.root_tag = self.encode("<Events>")
        else:
            self.root_tag = self.encode(root.group(0)) if not root.group(0).endswith("/>") else b""

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding)


class _Segment:
    """A file-like view for iterparse: an opening, the file from an offset, and a closing."""

    def __init__(self, stream: BinaryIO, opening: bytes, offset: int, closing: bytes, utf8: bool) -> None:
        stream.seek(offset)
        self.offset = offset
        self.opening_length = len(opening)
        self.pending = opening
        self.closing = closing
        self.chunks = checked_utf8_chunks(stream) if utf8 else None
        self.stream = stream
        self.replaced = 0  # chunks that held invalid UTF-8
        self.done = False

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size < 0 or len(self.pending) < size):
            data = self._next_chunk()
            if data is None:
                self.pending += self.closing
                self.done = True
            else:
                self.pending += data
        if size < 0 or size >= len(self.pending):
            data, self.pending = self.pending, b""
        else:
            data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def _next_chunk(self) -> Optional[bytes]:
        if self.chunks is None:
            data = self.stream.read(_SCAN_BYTES)
            return data or None
        for data, invalid in self.chunks:
            if invalid:
                self.replaced += 1
            return data
        return None


def read_xml(stream: BinaryIO, source: str) -> Iterator[Item]:
    """Yield the events of an event XML file from a seekable stream, which the reader may re-read."""
    head = stream.read(_HEAD_BYTES)
    stream.seek(0)
    layout = _Layout(head)
    builder = Builder(source)
    prologue = head[:layout.prologue_end]

    if layout.wrapped:
        segment = _Segment(stream, prologue + layout.root_tag, layout.prologue_end,
                           layout.encode("</Events>"), layout.utf8)
    else:
        segment = _Segment(stream, b"", 0, b"", layout.utf8)
    base_line = 1
    position = 0

    while True:
        parsed = _ParsedSegment(segment, builder, position)
        yield from parsed
        position = parsed.position
        error = parsed.error
        if error is None:
            return
        line, column = error.position
        error_line = base_line + line - 1
        message = str(error).split(":", 1)[0]
        if line == 1:
            column = max(column - segment.opening_length, 0)
        # NOTE: only UTF-8 files resume after an error, because the search works on bytes.
        resume = _find_next_event(stream, segment.offset, line, column) if layout.utf8 else None
        if resume is None:
            yield ReadProblem(source, None, f"invalid XML at line {error_line} column {column}: {message}")
            return
        resume_offset, lines_skipped = resume
        base_line += lines_skipped
        yield ReadProblem(source, None, f"invalid XML at line {error_line} column {column}: {message}; "
                          f"reading goes on at the next <Event> on line {base_line}")
        closing = layout.encode("</Events>") if layout.wrapped else b""
        segment = _Segment(stream, prologue + layout.root_tag, resume_offset, closing, layout.utf8)


class _ParsedSegment:
    """Iterable of the items of one segment. Afterwards ``error`` is the syntax error that ended it, if any."""

    def __init__(self, segment: _Segment, builder: Builder, position: int) -> None:
        self.segment = segment
        self.builder = builder
        self.position = position
        self.error: Optional[ElementTree.ParseError] = None

    def __iter__(self) -> Iterator[Item]:
        stack: List[ElementTree.Element] = []
        open_events = 0
        try:
            for kind, element in ElementTree.iterparse(self.segment, events=("start", "end")):
                if kind == "start":
                    stack.append(element)
                    if local_name(element.tag) == "Event":
                        open_events += 1
                    continue
                stack.pop()
                if local_name(element.tag) != "Event":
                    continue
                open_events -= 1
                if open_events:
                    continue
                self.position += 1
                yield from self._event_items(element)
                element.clear()
                if stack:
                    stack[-1].remove(element)
        except ElementTree.ParseError as error:
            self.error = error

    def _event_items(self, element: ElementTree.Element) -> Iterator[Item]:
        fields, time, host, record_id = event_element_fields(element)
        record: Union[int, str] = record_id if record_id is not None else self.position
        if self.segment.replaced and any(isinstance(value, str) and "\ufffd" in value
                                         for value in fields.values()):
            # NOTE: a value that held U+FFFD in the file itself is reported here as well.
            self.builder.problem(record, "invalid UTF-8 bytes, replaced with U+FFFD")
        event = self.builder.event(fields, SHAPE_XML, record, time, host)
        yield from self.builder.take_problems()
        yield event


def event_element_fields(element: ElementTree.Element) -> Tuple[Fields, Optional[str], Optional[str],
                                                                  Optional[int]]:
    """Return the fields, time, host and EventRecordID of one ``<Event>`` element."""
    fields: Fields = {}
    system = None
    for child in element:
        name = local_name(child.tag)
        if name == "System":
            system = child
        elif name == "EventData":
            fields.update(data_elements(child))
            _add_other_children(fields, child)
        elif name == "UserData":
            for container in child:
                for item in container:
                    fields.setdefault(local_name(item.tag), item.text or "")

    time = None
    record_id = None
    if system is None:
        return fields, time, None, record_id
    for item in system:
        name = local_name(item.tag)
        text = (item.text or "").strip()
        if name == "EventID":
            fields["EventID"] = text
        elif name == "Provider":
            fields["Provider_Name"] = item.get("Name")
        elif name == "TimeCreated":
            time = item.get("SystemTime")
        elif name == "EventRecordID":
            record_id = int(text) if text.isdigit() else None
            fields["EventRecordID"] = record_id if record_id is not None else text
        elif name == "Security":
            if item.get("UserID") is not None:
                fields["Security_UserID"] = item.get("UserID")
        elif name in _SYSTEM_TEXT_FIELDS:
            fields[name] = text
    host = fields.get("Computer")
    return fields, time, host if isinstance(host, str) else None, record_id


def _add_other_children(fields: Fields, event_data: ElementTree.Element) -> None:
    """Keep EventData children other than ``<Data>`` (``<Binary>`` and the like) under their tag name."""
    for child in event_data:
        name = local_name(child.tag)
        if name != "Data":
            fields.setdefault(name, child.text or "")


def _find_next_event(stream: BinaryIO, offset: int, line: int, column: int) -> Optional[Tuple[int, int]]:
    """Return the byte offset of the first ``<Event`` start tag after (line, column) of the segment at
    offset, and how many lines lie between offset and it; None when there is none.

    On the first line the column is only approximate, so the search may start a little early.
    A repeated error still moves forward, because a resume offset must lie after the segment's start.
    """
    stream.seek(offset)
    for _ in range(line - 1):
        if not stream.readline():
            return None
    start = stream.tell() + max(column, 1)
    stream.seek(start)
    carry = b""
    scanned = start
    while True:
        data = stream.read(_SCAN_BYTES)
        if not data:
            return None
        window = carry + data
        found = _EVENT_START_TAG.search(window)
        if found is not None:
            resume = scanned - len(carry) + found.start()
            if resume <= offset:
                carry = window[found.end():]
                scanned += len(data)
                continue
            return resume, _count_newlines(stream, offset, resume)
        carry = window[-16:]
        scanned += len(data)


def _count_newlines(stream: BinaryIO, start: int, end: int) -> int:
    stream.seek(start)
    count = 0
    remaining = end - start
    while remaining > 0:
        data = stream.read(min(remaining, _SCAN_BYTES))
        if not data:
            break
        count += data.count(b"\n")
        remaining -= len(data)
    return count
