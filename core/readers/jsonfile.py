"""Read JSON event files: JSON Lines, concatenated (pretty-printed) documents and top-level arrays.

The file is decoded incrementally with ``json.JSONDecoder.raw_decode`` over a buffer of at most
about ``MAX_DOCUMENT_CHARS`` characters, so memory does not grow with the file. Each document gets
the line number where it starts as its record number; a second document starting on the same line
gets "line:column".

A document that does not parse is reported and skipped. In JSON Lines the next line is itself a
complete document, so only the broken line is skipped. Otherwise reading goes on at the next line
that opens an object at the broken document's indentation.
"""

import json
import sys
import re
from typing import Any, BinaryIO, Dict, Iterator, List, Tuple, Union

from core.events import Event, ReadProblem
from core.readers import shapes
from core.readers.builder import Builder, describe
from core.readers.text import text_pieces

# A Windows event record fits in one 64 KiB EVTX chunk, so a real event rendered as JSON stays far
# below this. A longer document is reported as unterminated.
MAX_DOCUMENT_CHARS = 4 << 20
# Characters requested from the file whenever the buffer runs short.
_READ_AHEAD_CHARS = 1 << 16

_WHITESPACE = re.compile(r"[ \t\r\n]*")
_ARRAY_SEPARATORS = re.compile(r"[ \t\r\n,]*")

Item = Union[Event, ReadProblem]


class _Buffer:
    """Text read so far, the read position, its line number and the ranges that held invalid bytes."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self.pieces = text_pieces(stream, encoding)
        self.text = ""
        self.pos = 0
        self.base = 0  # absolute character offset of text[0]
        self.line = 1  # line number at pos
        self.eof = False
        self.invalid: List[Tuple[int, int]] = []  # absolute [start, end) ranges

    def fill(self, wanted: int) -> bool:
        """Read until at least wanted characters follow pos, and return False when the file had no more."""
        if self.eof:
            return False
        added = []
        size = len(self.text) - self.pos
        end = self.base + len(self.text)
        grew = False
        while size < wanted:
            try:
                piece, invalid = next(self.pieces)
            except StopIteration:
                self.eof = True
                break
            if invalid:
                self.invalid.append((end, end + len(piece)))
            added.append(piece)
            size += len(piece)
            end += len(piece)
            grew = True
        if added:
            self.base += self.pos
            self.text = self.text[self.pos:] + "".join(added)
            self.pos = 0
        return grew

    def advance(self, to: int) -> None:
        self.line += self.text.count("\n", self.pos, to)
        self.pos = to

    def skip_line(self) -> None:
        """Move pos past the end of its line, reading more when the line is not complete yet."""
        while True:
            newline = self.text.find("\n", self.pos)
            if newline != -1:
                self.advance(newline + 1)
                return
            self.advance(len(self.text))
            if not self.fill(_READ_AHEAD_CHARS):
                return

    def had_invalid_bytes(self, start: int, end: int) -> bool:
        """Tell whether absolute range [start, end) overlaps invalid bytes, and forget ranges before end."""
        found = any(low < end and high > start for low, high in self.invalid)
        if self.invalid:
            self.invalid = [(low, high) for low, high in self.invalid if high > end]
        return found

    def line_of(self, index: int) -> int:
        """Return the line number of buffer index ``index`` (at or after pos)."""
        return self.line + self.text.count("\n", self.pos, index)


def read_json(stream: BinaryIO, source: str, encoding: str) -> Iterator[Item]:
    """Yield the events of a JSON, JSON Lines or JSON array file, and a ReadProblem for each bad document."""
    decoder = json.JSONDecoder()
    buffer = _Buffer(stream, encoding)
    builder = Builder(source)
    in_array = False
    last_start_line = 0
    buffer.fill(_READ_AHEAD_CHARS)

    while True:
        separators = _ARRAY_SEPARATORS if in_array else _WHITESPACE
        skipped = separators.match(buffer.text, buffer.pos)
        if skipped is not None:
            buffer.advance(skipped.end())
        if buffer.pos >= len(buffer.text):
            if buffer.fill(_READ_AHEAD_CHARS):
                continue
            if in_array:
                yield ReadProblem(source, buffer.line, "the JSON array is not closed with ']'")
            return

        char = buffer.text[buffer.pos]
        if char == "[" and not in_array:
            in_array = True
            buffer.advance(buffer.pos + 1)
            continue
        if char == "]" and in_array:
            in_array = False
            buffer.advance(buffer.pos + 1)
            continue

        start_line = buffer.line
        if start_line == last_start_line:
            column = buffer.pos - buffer.text.rfind("\n", 0, buffer.pos)
            record: Union[int, str] = f"{start_line}:{column}"
        else:
            record = start_line
        last_start_line = start_line

        decoded = _decode_document(decoder, buffer, source, record)
        if isinstance(decoded, ReadProblem):
            yield decoded
            continue
        document, start, end = decoded
        invalid = buffer.had_invalid_bytes(buffer.base + start, buffer.base + end)
        buffer.advance(end)
        if invalid:
            yield ReadProblem(source, record, "invalid UTF-8 bytes, replaced with U+FFFD")
        yield from _document_items(document, builder, record)


def _decode_document(decoder: json.JSONDecoder, buffer: _Buffer, source: str,
                     record: Union[int, str]) -> Union[Tuple[Any, int, int], ReadProblem]:
    """Decode the document at the buffer position, reading more text while it is incomplete."""
    start = buffer.pos
    while True:
        try:
            document, end = decoder.raw_decode(buffer.text, start)
            return document, start, end
        except json.JSONDecodeError as error:
            failure = error
        except RecursionError:
            # Python's decoder recurses once per nesting level; no event nests this deep.
            buffer.skip_line()
            return ReadProblem(source, record, "JSON document nested too deeply to decode "
                               f"(more than {sys.getrecursionlimit()} levels); the line is skipped")
        first_newline = buffer.text.find("\n", start)
        if first_newline != -1:
            next_newline = buffer.text.find("\n", first_newline + 1)
            if next_newline == -1 and not buffer.eof:
                buffer.fill(len(buffer.text) - start + _READ_AHEAD_CHARS)
                start = buffer.pos
                continue
            next_line = buffer.text[first_newline + 1:next_newline if next_newline != -1 else None]
            if _is_complete_document(next_line):
                if failure.pos > first_newline:
                    problem = ReadProblem(source, record, f"invalid JSON: the document on line "
                                          f"{buffer.line} ends before it is complete")
                else:
                    problem = _invalid_json(source, record, buffer, failure)
                buffer.skip_line()
                return problem
        if buffer.eof:
            problem = _invalid_json(source, record, buffer, failure)
            _skip_to_sibling(buffer)
            return problem
        if len(buffer.text) - start > MAX_DOCUMENT_CHARS:
            _skip_to_sibling(buffer)
            return ReadProblem(source, record, f"JSON document not closed within {MAX_DOCUMENT_CHARS} characters")
        # Grow the read-ahead geometrically so a long document is decoded O(log n) times, not once a line.
        buffer.fill(2 * (len(buffer.text) - start) + _READ_AHEAD_CHARS)
        start = buffer.pos


def _is_complete_document(line: str) -> bool:
    stripped = line.strip()
    if not stripped.startswith("{") or not stripped.endswith("}"):
        return False
    try:
        json.loads(stripped)
    except (ValueError, RecursionError):
        return False
    return True


def _invalid_json(source: str, record: Union[int, str], buffer: _Buffer,
                  error: json.JSONDecodeError) -> ReadProblem:
    line = buffer.line_of(error.pos)
    column = error.pos - buffer.text.rfind("\n", 0, error.pos)
    rest = buffer.text[error.pos:].rstrip("\r\n")
    if error.pos >= len(buffer.text) or (error.msg.startswith("Unterminated string") and "\n" not in rest):
        return ReadProblem(source, record, f"JSON document truncated at line {line} column {column}: {error.msg}")
    return ReadProblem(source, record, f"invalid JSON at line {line} column {column}: {error.msg}")


def _skip_to_sibling(buffer: _Buffer) -> None:
    """Skip the broken document by going to the next line that opens an object at its indentation."""
    line_start = buffer.text.rfind("\n", 0, buffer.pos) + 1
    indent = buffer.pos - line_start
    buffer.skip_line()
    while True:
        newline = buffer.text.find("\n", buffer.pos)
        if newline == -1 and not buffer.eof:
            buffer.fill(_READ_AHEAD_CHARS)
            newline = buffer.text.find("\n", buffer.pos)
        if buffer.pos >= len(buffer.text):
            return
        line = buffer.text[buffer.pos:newline if newline != -1 else None]
        content = line.lstrip(" \t")
        if content.startswith("{") and len(line) - len(content) == indent:
            buffer.advance(buffer.pos + indent)
            return
        buffer.skip_line()


def _document_items(document: Any, builder: Builder, record: Union[int, str]) -> Iterator[Item]:
    if not isinstance(document, dict):
        yield ReadProblem(builder.source, record, f"expected a JSON object, found {describe(document)}")
        return
    shape = shapes.detect_shape(document)
    if shape is None:
        keys = ", ".join(sorted(document)[:8])
        yield ReadProblem(builder.source, record, "not a Windows event: no EventID, Event.System, "
                          f"event_data or winlog field (keys: {keys})")
        return
    fields, time, host = shapes.document_fields(document, shape, builder, record)
    event = builder.event(fields, shape, record, time, host)
    yield from builder.take_problems()
    yield event


def event_from_document(document: Dict[str, Any], source: str, record: Union[int, str]) -> Iterator[Item]:
    """Yield the problems and the event of one parsed JSON document (the CSV reader's ``_raw`` values)."""
    yield from _document_items(document, Builder(source), record)
