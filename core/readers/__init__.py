"""Event readers: stream events from EVTX, JSON / JSON Lines, event XML and Splunk CSV files.

``read_events(path)`` picks the format from the file's first bytes and its extension and yields
``Event`` and ``ReadProblem`` objects in file order. A problem never stops reading: the reader
reports it and goes on with the next record. A file that cannot be opened gives one ReadProblem.

``iter_event_files(paths)`` expands folders into the event files below them.
"""

import io
import os
import shutil
import sys
import tempfile
from typing import BinaryIO, Iterable, Iterator, Optional, Union

from core.events import Event, ReadProblem
from core.readers.csvfile import read_csv
from core.readers.evtxfile import SkipTest, read_evtx
from core.readers.jsonfile import read_json
from core.readers.text import detect_encoding
from core.readers.xmlfile import read_xml

__all__ = ["EVENT_FILE_EXTENSIONS", "iter_event_files", "read_events", "sniff_format"]

FORMAT_EVTX = "evtx"
FORMAT_JSON = "json"
FORMAT_XML = "xml"
FORMAT_CSV = "csv"

# Extensions that iter_event_files collects from folders. ".log" is left out because many programs
# write plain-text logs under that name; a file named explicitly is read whatever its extension.
EVENT_FILE_EXTENSIONS = (".evtx", ".json", ".jsonl", ".ndjson", ".xml", ".csv")

_EXTENSION_FORMATS = {
    ".evtx": FORMAT_EVTX,
    ".json": FORMAT_JSON,
    ".jsonl": FORMAT_JSON,
    ".ndjson": FORMAT_JSON,
    ".xml": FORMAT_XML,
    ".csv": FORMAT_CSV,
}
_EVTX_MAGIC = b"ElfFile\x00"
_HEAD_BYTES = 4096
# Blank lines before the first event are skipped while sniffing the format, up to this many bytes.
_MAX_BLANK_BYTES = 16 * 1024 * 1024
_STDIN = "-"

Item = Union[Event, ReadProblem]


def iter_event_files(paths: Iterable[str]) -> Iterator[str]:
    """Yield each path that is not a folder as given, and the event files below each folder.

    Folders are walked recursively in sorted order, a folder's files before its subfolders. Only
    files with an extension in ``EVENT_FILE_EXTENSIONS`` are taken, and names starting with "."
    are skipped. A CSV file that is not an event export (a manifest, say) is still yielded, and
    ``read_events`` reports it with one ReadProblem.
    """
    for path in paths:
        if path == _STDIN or not os.path.isdir(path):
            yield path
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                if os.path.splitext(name)[1].lower() in EVENT_FILE_EXTENSIONS:
                    yield os.path.join(folder, name)


def sniff_format(head: bytes, name: str = "") -> Optional[str]:
    """Name the format of a file from its first bytes and, where they do not tell, its name.

    EVTX is recognised by its "ElfFile" signature. Text starting with "<" is XML, and text
    starting with "{" or "[" is JSON. Otherwise the extension decides, and a first line with a comma means CSV.
    """
    if head.startswith(_EVTX_MAGIC):
        return FORMAT_EVTX
    extension = os.path.splitext(name)[1].lower()
    if extension == ".evtx":
        return FORMAT_EVTX

    encoding, bom_length = detect_encoding(head)
    text = head[bom_length:].decode(encoding, "replace").lstrip()
    if text.startswith("<"):
        return FORMAT_XML
    if text.startswith("{") or text.startswith("["):
        return FORMAT_JSON
    if extension in _EXTENSION_FORMATS:
        return _EXTENSION_FORMATS[extension]
    if "," in text.split("\n", 1)[0]:
        return FORMAT_CSV
    return None


def read_events(path: str, skip: Optional[SkipTest] = None) -> Iterator[Item]:
    """Stream the events of one file (``-`` for standard input), with a ReadProblem for each bad part.

    ``skip`` lets a scan decline EVTX records before they are decoded (see ``read_evtx``); other
    formats ignore it.
    """
    if path == _STDIN:
        yield from _read_stdin()
        return

    if path[-5:].lower() == ".evtx":
        # The EVTX parser checks the file signature itself, so sniffing would only add an open and a read.
        yield from read_evtx(path, path, skip)
        return

    try:
        stream = open(path, "rb")
    except OSError as error:
        yield ReadProblem(path, None, _open_error(error))
        return
    with stream:
        try:
            head = _read_head(stream)
            stream.seek(0)
        except OSError as error:
            yield ReadProblem(path, None, _open_error(error))
            return
        file_format = sniff_format(head, path)
        if file_format == FORMAT_EVTX:
            yield from read_evtx(path, path, skip)
            return
        yield from _read_text_format(file_format, head, stream, path)


def _read_head(stream: BinaryIO) -> bytes:
    """Read the first bytes to sniff the format, past any leading blank lines (up to _MAX_BLANK_BYTES)."""
    head = stream.read(_HEAD_BYTES)
    while head and not head.strip() and len(head) < _MAX_BLANK_BYTES:
        more = stream.read(_HEAD_BYTES)
        if not more:
            break
        head += more
    return head


def _read_text_format(file_format: Optional[str], head: bytes, stream: BinaryIO, source: str) -> Iterator[Item]:
    if not head.strip():
        if len(head) >= _MAX_BLANK_BYTES:
            yield ReadProblem(source, None, f"no data in the first {_MAX_BLANK_BYTES} bytes: only blank lines")
        return
    if file_format is None:
        yield ReadProblem(source, None, "unknown format: the file is not EVTX, XML, JSON or CSV")
        return
    encoding, bom_length = detect_encoding(head)
    if file_format == FORMAT_XML:
        yield from read_xml(stream, source)
        return
    stream.read(bom_length)
    if file_format == FORMAT_JSON:
        yield from read_json(stream, source, encoding)
    else:
        yield from read_csv(stream, source, encoding)


def _read_stdin() -> Iterator[Item]:
    """Read standard input. EVTX and XML need a seekable file, so they are first copied to a temporary one."""
    stdin = sys.stdin.buffer
    head = _read_head(stdin)
    file_format = sniff_format(head)
    if file_format in (FORMAT_EVTX, FORMAT_XML):
        with tempfile.TemporaryFile() as spool:
            spool.write(head)
            shutil.copyfileobj(stdin, spool)
            spool.seek(0)
            if file_format == FORMAT_EVTX:
                yield from read_evtx(spool, _STDIN)
            else:
                yield from read_xml(spool, _STDIN)
        return
    stream = io.BufferedReader(_Prepended(head, stdin))  # type: ignore[type-var]
    yield from _read_text_format(file_format, head, stream, _STDIN)


class _Prepended(io.RawIOBase):
    """A raw stream that returns the bytes already read from a stream, then the rest of it."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if self.head:
            size = min(len(buffer), len(self.head))
            buffer[:size] = self.head[:size]
            self.head = self.head[size:]
            return size
        data = self.rest.read1(len(buffer)) if hasattr(self.rest, "read1") else self.rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _open_error(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file; pass it to iter_event_files to read the files inside"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, io.UnsupportedOperation) or "seekable" in str(error):
        # A FIFO or a shell process substitution cannot be read twice, as format sniffing needs.
        return "cannot read a pipe or FIFO as a file; pipe it to standard input instead (lsassdump scan -)"
    return f"cannot read the file: {error.strerror or error}"
