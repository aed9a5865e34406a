"""Decode an 8-bit RGB or RGBA PNG into rows of pixels with zlib and struct only."""

import struct
import zlib
from typing import List, Tuple

Pixel = Tuple[int, int, int]
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(data: bytes) -> Tuple[int, int, List[List[Pixel]]]:
    """Return (width, height, rows of RGB pixels); raises ValueError on a PNG this cannot read."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")

    offset = len(SIGNATURE)
    header = b""
    compressed = bytearray()
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed.extend(body)
        elif kind == b"IEND":
            break

    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {colour}, interlace {interlace}")

    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    rows: List[List[Pixel]] = []
    previous = bytearray(stride)
    position = 0
    for _ in range(height):
        kind = raw[position]
        line = bytearray(raw[position + 1:position + 1 + stride])
        position += 1 + stride
        _unfilter(kind, line, previous, channels)
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])  # type: ignore[misc]
        previous = line
    return width, height, rows


def _unfilter(kind: int, line: bytearray, previous: bytearray, channels: int) -> None:
    for index in range(len(line)):
        left = line[index - channels] if index >= channels else 0
        up = previous[index]
        upper_left = previous[index - channels] if index >= channels else 0
        if kind == 1:
            line[index] = (line[index] + left) & 0xFF
        elif kind == 2:
            line[index] = (line[index] + up) & 0xFF
        elif kind == 3:
            line[index] = (line[index] + (left + up) // 2) & 0xFF
        elif kind == 4:
            estimate = left + up - upper_left
            distances = (abs(estimate - left), abs(estimate - up), abs(estimate - upper_left))
            predictor = (left, up, upper_left)[distances.index(min(distances))]
            line[index] = (line[index] + predictor) & 0xFF
        elif kind != 0:
            raise ValueError(f"unknown PNG filter type {kind}")
