"""Memory: peak RSS of ``lsassdump scan`` on a JSON Lines file and on the same file repeated 20 times.

Each scan runs in its own process; its peak RSS comes from ``os.wait4``. Target: under 20% growth.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import SHARED_DATA, report

SOURCE = SHARED_DATA / "otrf-security-datasets"


def largest_jsonl() -> Path:
    return max(SOURCE.rglob("*.json*"), key=lambda path: path.stat().st_size)


def peak_rss_kib(path: Path) -> int:
    command = [sys.executable, "-m", "core.cli", "scan", "--no-progress", "--quiet", "--format", "jsonl", str(path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=str(Path(__file__).resolve().parents[1]))
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1, 3):
        raise RuntimeError(f"scan of {path} failed with status {status}")
    return usage.ru_maxrss


def main() -> int:
    source = largest_jsonl()
    with tempfile.TemporaryDirectory() as folder:
        once = Path(folder) / "once.jsonl"
        twenty = Path(folder) / "twenty.jsonl"
        data = source.read_bytes()
        if not data.endswith(b"\n"):
            data += b"\n"
        once.write_bytes(data)
        with open(twenty, "wb") as handle:
            for _ in range(20):
                handle.write(data)
        small = peak_rss_kib(once)
        large = peak_rss_kib(twenty)
    growth = (large - small) / small
    report("Memory: peak RSS, one JSON Lines file vs the same file 20 times", [
        ("file", f"{source.relative_to(SHARED_DATA)} ({len(data) / 1e6:.1f} MB)"),
        ("peak RSS, once", f"{small / 1024:.1f} MiB"),
        ("peak RSS, 20 times", f"{large / 1024:.1f} MiB"),
        ("growth (target < 20%)", f"{growth:.1%}"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
