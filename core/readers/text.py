"""Decode a byte stream into text pieces and remember which pieces held invalid bytes.

Text readers (JSON, CSV) need each record's text and whether its bytes were valid, because an
invalid byte must both be replaced (U+FFFD) and reported for that record. Python's text wrappers
only offer the replacement, so this module decodes line by line itself.
"""

import codecs
from typing import BinaryIO, Iterator, Optional, Set, Tuple

# Bytes read at a time. A line longer than this arrives in several pieces.
PIECE_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def detect_encoding(head: bytes) -> Tuple[str, int]:
    """Return the encoding named by a byte order mark and the mark's length; UTF-8 when there is none."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    return "utf-8", 0


def _incomplete_tail(data: bytes) -> int:
    """Return how many bytes at the end of data start a UTF-8 sequence that the next read completes."""
    for back in range(1, min(4, len(data) + 1)):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue
        if byte >= 0xF0:
            needed = 4
        elif byte >= 0xE0:
            needed = 3
        elif byte >= 0xC0:
            needed = 2
        else:
            needed = 1
        return back if needed > back else 0
    return 0


def text_pieces(stream: BinaryIO, encoding: str) -> Iterator[Tuple[str, bool]]:
    """Yield (text, invalid) pairs: whole lines, or parts of lines longer than ``PIECE_BYTES``.

    ``invalid`` is True when the piece held bytes that are not valid in the encoding, which are
    replaced with U+FFFD. The stream must be positioned after any byte order mark.
    """
    if encoding == "utf-8":
        yield from _utf8_pieces(stream)
    else:
        yield from _other_pieces(stream, encoding)


def _utf8_byte_pieces(stream: BinaryIO) -> Iterator[bytes]:
    """Yield lines, or parts of long lines, without cutting a UTF-8 sequence in two."""
    carry = b""
    while True:
        data = stream.readline(PIECE_BYTES)
        if not data:
            break
        if carry:
            data = carry + data
            carry = b""
        if not data.endswith(b"\n"):
            cut = _incomplete_tail(data)
            if cut:
                data, carry = data[:-cut], data[-cut:]
        yield data
    if carry:
        yield carry


def _utf8_pieces(stream: BinaryIO) -> Iterator[Tuple[str, bool]]:
    for data in _utf8_byte_pieces(stream):
        try:
            yield data.decode("utf-8"), False
        except UnicodeDecodeError:
            yield data.decode("utf-8", "replace"), True


def _other_pieces(stream: BinaryIO, encoding: str) -> Iterator[Tuple[str, bool]]:
    # NOTE: for encodings other than UTF-8 a piece counts as invalid when its text contains U+FFFD,
    # so a file that contains U+FFFD itself is reported as invalid too.
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    pending = ""
    while True:
        data = stream.read(PIECE_BYTES)
        text = decoder.decode(data, final=not data)
        pending += text
        lines = pending.split("\n")
        pending = lines.pop()
        for line in lines:
            line += "\n"
            yield line, "\ufffd" in line
        if not data:
            break
        if len(pending) > PIECE_BYTES:
            yield pending, "\ufffd" in pending
            pending = ""
    if pending:
        yield pending, "\ufffd" in pending


def text_lines(stream: BinaryIO, encoding: str, max_chars: int,
               bad_lines: Optional[Set[int]] = None) -> Iterator[str]:
    """Yield whole lines, and add to bad_lines the 1-based numbers of lines that held invalid bytes.

    A line longer than max_chars is cut into parts of at most max_chars, so memory stays bounded.
    Each part then counts as a line.
    """
    number = 0
    parts = []
    size = 0
    invalid = False
    for text, piece_invalid in text_pieces(stream, encoding):
        parts.append(text)
        size += len(text)
        invalid = invalid or piece_invalid
        if not text.endswith("\n") and size < max_chars:
            continue
        number += 1
        if invalid and bad_lines is not None:
            bad_lines.add(number)
        yield "".join(parts)
        parts, size, invalid = [], 0, False
    if parts:
        number += 1
        if invalid and bad_lines is not None:
            bad_lines.add(number)
        yield "".join(parts)


def checked_utf8_chunks(stream: BinaryIO) -> Iterator[Tuple[bytes, bool]]:
    """Yield (bytes, invalid) pairs of valid UTF-8, in which invalid bytes are replaced with U+FFFD.

    Valid chunks pass through unchanged. A chunk is a line or a part of a long line.
    """
    for data in _utf8_byte_pieces(stream):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            yield data.decode("utf-8", "replace").encode("utf-8"), True
            continue
        yield data, False
