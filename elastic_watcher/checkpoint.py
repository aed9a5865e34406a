"""The poller's checkpoint: the scan position and the delivered alerts, saved atomically.

The file is replaced with ``os.replace`` after the new content was written and fsynced to a
temporary file in the same folder, and the folder is fsynced after the rename, so that a crash
leaves either the old or the new checkpoint on disk, never a torn one.
"""

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Sequence

VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file that cannot be read, or that belongs to another configuration."""


@dataclass
class ScanPosition:
    """A scan in progress: its point in time, the sort values of the last delivered hit, its lower bound."""

    pit_id: str
    search_after: Optional[list]
    lower: Any


@dataclass
class Checkpoint:
    """Everything a restarted poller needs to go on without losing or repeating an alert."""

    fingerprint: str
    # Epoch milliseconds of the newest event scanned (capped at the poller's clock), or None.
    cursor: Optional[int] = None
    scan: Optional[ScanPosition] = None
    # Alert id -> event time (epoch ms) of every alert delivered within the overlap window.
    delivered: Dict[str, int] = field(default_factory=dict)
    sinks: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    events_scanned: int = 0
    alerts_delivered: int = 0

    def prune(self, keep_from: int) -> None:
        """Forget delivered alerts older than ``keep_from``: no later scan starts before it."""
        self.delivered = {key: when for key, when in self.delivered.items() if when >= keep_from}


def fingerprint(index: str, rule_ids: Sequence[str], prefilter: str) -> str:
    """Return the configuration hash a checkpoint is bound to."""
    text = json.dumps({"index": index, "rules": sorted(rule_ids), "prefilter": prefilter}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load(path: str, expected_fingerprint: str) -> Checkpoint:
    """Read the checkpoint at ``path``; a missing file gives a fresh one."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return Checkpoint(fingerprint=expected_fingerprint)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    if data.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {data.get('version')!r}, expected {VERSION}")
    if data.get("fingerprint") != expected_fingerprint:
        raise CheckpointError(f"checkpoint {path} was written for another index, rule set or --prefilter; "
                              "pass a new --state file to start over")
    scan = data.get("scan")
    return Checkpoint(
        fingerprint=data["fingerprint"],
        cursor=data.get("cursor"),
        scan=ScanPosition(**scan) if scan else None,
        delivered={str(key): int(value) for key, value in data.get("delivered", {}).items()},
        sinks=data.get("sinks", {}),
        events_scanned=int(data.get("events_scanned", 0)),
        alerts_delivered=int(data.get("alerts_delivered", 0)),
    )


def save(path: str, checkpoint: Checkpoint) -> None:
    """Write the checkpoint atomically (temporary file, fsync, rename, fsync of the folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    data = dict(asdict(checkpoint), version=VERSION)
    handle, temporary = tempfile.mkstemp(prefix=".checkpoint-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
