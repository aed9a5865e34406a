"""A stand-in for splunkd's side of search command protocol v2, for tests and the benchmark.

It starts a command script as a subprocess and talks to it as splunkd does: one ``getinfo`` frame,
then ``execute`` frames, and the command replies to each with exactly one frame. A frame is
``chunked 1.0,<metadata bytes>,<body bytes>\\n`` followed by JSON metadata and a CSV body, both
counted in UTF-8 bytes. Every CSV column travels with a ``__mv_`` twin that carries multivalues as
``$a$;$b$`` (``$`` doubled inside a value). Sources: splunklib.searchcommands 2.1.1 (the reading and
writing sides), and captured splunkd exchanges published with Splunk .conf21 talk DEV1387B.
"""

import csv
import io
import json
import re
import subprocess
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote

HEADER = re.compile(rb"^chunked 1\.0,(\d+),(\d+)\n$")
# splunkd numbers the records it sends so that it can merge a command's output with the fields it
# did not send. The command must pass this column through.
CHUNK_INDEX = "_chunked_idx"


class ProtocolError(Exception):
    """The command broke the protocol: no frame, a malformed header, or a short read."""


def encode_frame(metadata: Mapping[str, Any], body: bytes = b"") -> bytes:
    """Return one protocol frame: the header line, the JSON metadata and the body."""
    meta = json.dumps(metadata, separators=(",", ":")).encode("utf-8")
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body


def encode_records(records: Sequence[Mapping[str, Any]], number_from: int = 0) -> bytes:
    """Return the CSV body splunkd would send for ``records`` (str, number, list or None values).

    The columns are the union of the records' fields in first-seen order; a record without a field
    gets an empty cell, as splunkd sends it.
    """
    if not records:
        return b""
    names: List[str] = []
    seen = set()
    for record in records:
        for name in record:
            if name not in seen:
                seen.add(name)
                names.append(name)
    if CHUNK_INDEX not in seen:
        names.append(CHUNK_INDEX)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names + ["__mv_" + name for name in names])
    for offset, record in enumerate(records):
        plain: List[str] = []
        multi: List[str] = []
        for name in names:
            value = record.get(name)
            if name == CHUNK_INDEX and value is None:
                value = str(number_from + offset)
            text, mv = _encode_value(value)
            plain.append(text)
            multi.append(mv)
        writer.writerow(plain + multi)
    return out.getvalue().encode("utf-8")


def _encode_value(value: Any) -> Tuple[str, str]:
    if value is None:
        return "", ""
    if isinstance(value, (list, tuple)):
        items = [str(item) for item in value]
        if len(items) == 0:
            return "", ""
        if len(items) == 1:
            return items[0], ""
        return "\n".join(items), "$" + "$;$".join(item.replace("$", "$$") for item in items) + "$"
    return str(value), ""


def decode_records(body: bytes) -> List[Dict[str, Any]]:
    """Parse a reply body into records; a field with a ``__mv_`` value becomes a list."""
    if not body:
        return []
    # splunklib raises the csv module's field limit to 10 MB; the parser of replies must match it.
    csv.field_size_limit(max(csv.field_size_limit(), 10 * 1024 * 1024))
    rows = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    header = next(rows)
    records = []
    for row in rows:
        cells = dict(zip(header, row))
        record: Dict[str, Any] = {}
        for name in header:
            if name.startswith("__mv_"):
                continue
            mv = cells.get("__mv_" + name, "")
            if mv:
                record[name] = [item.replace("$$", "$") for item in re.findall(r"\$((?:\$\$|[^$])*)\$", mv)]
            elif cells[name] != "":
                record[name] = cells[name]
        records.append(record)
    return records


def getinfo_metadata(args: Sequence[str], dispatch_dir: str, command: str = "lsassdump",
                     splunk_version: str = "9.3.0") -> Dict[str, Any]:
    """Return getinfo metadata shaped like splunkd's, for a search ``| <command> <args>``."""
    search = " ".join(["|", command] + list(args))
    return {
        "action": "getinfo",
        "preview": False,
        "streaming_command_will_restart": False,
        "searchinfo": {
            "args": list(args),
            "raw_args": list(args),
            "dispatch_dir": dispatch_dir,
            "sid": "1700000000.1",
            "app": "search",
            "owner": "admin",
            "username": "admin",
            # Never contacted: the command does not use splunklib's service connection.
            "session_key": "stub-session-key",
            "splunkd_uri": "https://127.0.0.1:8089",
            "splunk_version": splunk_version,
            "search": quote(search),
            "command": command,
            "maxresultrows": 50000,
            "earliest_time": "0",
            "latest_time": "0",
        },
    }


class Reply:
    """One frame from the command: its JSON metadata and raw body."""

    def __init__(self, metadata: Dict[str, Any], body: bytes) -> None:
        self.metadata = metadata
        self.body = body

    @property
    def records(self) -> List[Dict[str, Any]]:
        return decode_records(self.body)

    @property
    def messages(self) -> List[Tuple[str, str]]:
        inspector = self.metadata.get("inspector") or {}
        return [(level, text) for level, text in inspector.get("messages", [])]


class CommandProcess:
    """A command script started as splunkd starts it: no arguments, frames on stdin and stdout."""

    def __init__(self, argv: Sequence[str], cwd: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=cwd, env=dict(env) if env is not None else None,
        )

    def send(self, metadata: Mapping[str, Any], body: bytes = b"") -> None:
        """Write one frame; a command that has exited raises BrokenPipeError."""
        assert self.process.stdin is not None
        self.process.stdin.write(encode_frame(metadata, body))
        self.process.stdin.flush()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (for frames built by hand)."""
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def receive(self) -> Optional[Reply]:
        """Read one frame, or return None when the command closed stdout."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            return None
        match = HEADER.match(line)
        if match is None:
            raise ProtocolError(f"malformed frame header {line[:200]!r}")
        meta_length, body_length = int(match.group(1)), int(match.group(2))
        meta = self._read_exactly(meta_length)
        body = self._read_exactly(body_length)
        return Reply(json.loads(meta.decode("utf-8")) if meta else {}, body)

    def _read_exactly(self, length: int) -> bytes:
        assert self.process.stdout is not None
        data = self.process.stdout.read(length) if length else b""
        if len(data) != length:
            raise ProtocolError(f"expected {length} bytes, got {len(data)} before end of stream")
        return data

    def getinfo(self, args: Sequence[str], dispatch_dir: str) -> Reply:
        """Send the getinfo frame and return the command's configuration reply."""
        self.send(getinfo_metadata(args, dispatch_dir))
        reply = self.receive()
        if reply is None:
            raise ProtocolError(f"no getinfo reply; stderr: {self.stderr()[-2000:]}")
        return reply

    def execute(self, body: bytes, finished: bool) -> Reply:
        """Send one execute frame and return its reply."""
        self.send({"action": "execute", "finished": finished}, body)
        reply = self.receive()
        if reply is None:
            raise ProtocolError(f"no execute reply; stderr: {self.stderr()[-2000:]}")
        return reply

    def close(self, timeout: float = 30.0) -> int:
        """Close stdin (splunkd's end of search) and return the exit status."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        """Return what the command wrote to stderr so far (splunkd puts it in search.log)."""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")

    def kill(self) -> None:
        """End the process if it still runs (test clean-up)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def run_command(argv: Sequence[str], args: Sequence[str], chunks: Iterable[Sequence[Mapping[str, Any]]],
                dispatch_dir: str, cwd: Optional[str] = None,
                env: Optional[Mapping[str, str]] = None) -> Tuple[Reply, List[Reply], int, str]:
    """Run a whole search: getinfo, one execute frame per chunk (the last marked finished), close.

    Returns the getinfo reply, the execute replies, the exit status and stderr.
    """
    command = CommandProcess(argv, cwd=cwd, env=env)
    try:
        info = command.getinfo(args, dispatch_dir)
        replies = []
        chunk_list = list(chunks)
        number = 0
        for index, records in enumerate(chunk_list):
            body = encode_records(records, number)
            number += len(records)
            replies.append(command.execute(body, finished=index == len(chunk_list) - 1))
        status = command.close()
        return info, replies, status, command.stderr()
    finally:
        command.kill()
