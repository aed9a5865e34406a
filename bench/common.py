"""Shared helpers for the benchmarks: repeated timing, shared data location, machine description.

Every benchmark reports a ratio against a baseline measured in the same run, because the machines
are shared and absolute times drift. Each side is timed several times, interleaved, and the best
time of each is kept.
"""

import os
import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LSASSDUMP_SHARED_DATA") or REPO.parent / "shared" / "data")


def best_times(cases: Dict[str, Callable[[], object]], repeats: int = 5) -> Dict[str, float]:
    """Time each case ``repeats`` times, interleaved, and return the best seconds of each."""
    best = {name: float("inf") for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            start = time.perf_counter()
            case()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def machine() -> str:
    """Describe the processor, core count and Python, for docs/benchmarks.md."""
    cpu = platform.processor() or "unknown processor"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def process_creation_fields() -> List[dict]:
    """Return the Sigma fields of every process-creation event of the shared data."""
    from core.readers import iter_event_files, read_events
    from core.events import Event

    out = []
    for path in iter_event_files([str(SHARED_DATA)]):
        for item in read_events(path):
            if isinstance(item, Event) and "process_creation" in item.logsource.categories:
                out.append(dict(item.fields))
    return out


def report(title: str, rows: List[Tuple[str, str]]) -> None:
    print(f"## {title}")
    print(f"machine: {machine()}")
    for name, value in rows:
        print(f"  {name:<40} {value}")
