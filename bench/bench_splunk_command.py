"""Events per second through ``| lsassdump`` over search command protocol v2, against a no-op.

Both commands run from the same built app (same lib/, same splunklib 2.1.1, same interpreter) and
get the same frames: 200,000 records in chunks of 50,000 plus an empty final chunk, as splunkd
sends them. The no-op is a splunklib StreamingCommand whose stream() yields every record unchanged,
so the ratio isolates the cost of field mapping and rule evaluation. Only the execute phase is
timed (from the first execute frame to the last reply); process start and getinfo are not. Each
command gets two numbers: wall-clock time, and the CPU time of the command process read from
/proc (Linux), which stays meaningful when other work shares the machine.

Record shapes: "required" has exactly the columns that ``| lsassdump`` declares in required_fields,
because that is what splunkd sends it (absent fields empty). "wide" is a whole Sysmon event 1
with _raw.

Usage: python bench/bench_splunk_command.py [--python PATH] [--records N] [--repeat N] [--json]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "splunk"))

from splunk_support import build_and_extract, command_environment, find_interpreter  # noqa: E402
from splunkd_stub import CommandProcess, encode_records  # noqa: E402

CHUNK = 50_000
NOOP_SCRIPT = '''"""A streaming command that passes every record through unchanged (benchmark baseline)."""
import os
import sys


def main():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
    from splunklib.searchcommands import Configuration, StreamingCommand, dispatch

    @Configuration()
    class NoopCommand(StreamingCommand):
        def stream(self, records):
            for record in records:
                yield record

    dispatch(NoopCommand, sys.argv, sys.stdin, sys.stdout, __name__)


if __name__ == "__main__":
    main()
'''
PROGRAMS = ["C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\cmd.exe",
            "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "C:\\Windows\\System32\\conhost.exe",
            "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"]
DUMP_LINE = "C:\\Tools\\procdump64.exe -accepteula -ma lsass.exe C:\\Temp\\out.dmp"


def make_records(count: int, columns: Sequence[str], wide: bool, seed: int = 1) -> List[Dict[str, Any]]:
    """Return Sysmon process-creation records, one in a thousand an LSASS dump, with every column in
    ``columns`` present (empty where a Sysmon event has no such field)."""
    rng = random.Random(seed)
    records = []
    for index in range(count):
        image = rng.choice(PROGRAMS)
        if index % 1000 == 999:
            command_line = DUMP_LINE
        else:
            command_line = f'"{image}" ' + " ".join(f"--flag{rng.randrange(100)}=value{rng.randrange(10_000)}"
                                                    for _ in range(rng.randrange(1, 8)))
        record: Dict[str, Any] = {name: "" for name in columns}
        record.update({"EventCode": "1", "CommandLine": command_line, "Image": image})
        if wide:
            record.update({
                "_time": str(1_700_000_000 + index), "host": f"ws{index % 50:03d}",
                "source": "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational", "sourcetype": "XmlWinEventLog",
                "ParentImage": "C:\\Windows\\explorer.exe", "User": "CORP\\alice", "IntegrityLevel": "Medium",
                "ProcessId": str(1000 + index % 60_000), "ParentProcessId": "4242",
                "Hashes": "SHA256=" + "%064x" % rng.getrandbits(256),
                "CurrentDirectory": "C:\\Users\\alice\\", "_raw": "<Event>" + command_line * 4 + "</Event>",
            })
        records.append(record)
    return records


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of a running process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # After the command name: state is field 3, utime and stime are fields 14 and 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def required_fields(argv: Sequence[str], workdir: str) -> List[str]:
    """Return the required_fields that the command declares in its getinfo reply."""
    command = CommandProcess(argv, cwd=workdir, env=command_environment())
    try:
        reply = command.getinfo([], workdir)
        command.execute(b"", finished=True)
        command.close()
    finally:
        command.kill()
    return list(reply.metadata.get("required_fields", []))


def time_command(argv: Sequence[str], args: Sequence[str], bodies: Sequence[bytes],
                 workdir: str) -> Tuple[float, float]:
    """Run one search; return the wall-clock and CPU seconds spent on the execute frames."""
    command = CommandProcess(argv, cwd=workdir, env=command_environment())
    try:
        command.getinfo(args, workdir)
        cpu_before = cpu_seconds(command.process.pid)
        started = time.perf_counter()
        for index, body in enumerate(bodies[:-1]):
            command.execute(body, finished=False)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(command.process.pid) - cpu_before
        command.execute(bodies[-1], finished=True)
        status = command.close()
    finally:
        command.kill()
    if status != 0:
        raise RuntimeError(f"{argv[-1]} exited with {status}: {command.stderr()[-2000:]}")
    return elapsed, cpu


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="interpreter to run the commands (default: pyenv 3.9, else this one)")
    parser.add_argument("--records", type=int, default=200_000, help="records per run (default: 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the fastest counts (default: 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(list(argv))
    interpreter = args.python or find_interpreter("3.9") or sys.executable

    results = []
    with tempfile.TemporaryDirectory() as scratch:
        app = build_and_extract(Path(scratch))
        noop = app.app_dir / "bin" / "noop.py"
        noop.write_text(NOOP_SCRIPT, encoding="utf-8")

        columns = required_fields([interpreter, str(app.script)], scratch)
        for shape in ("required", "wide"):
            records = make_records(args.records, columns, wide=shape == "wide")
            bodies = [encode_records(records[start:start + CHUNK], start) for start in range(0, len(records), CHUNK)]
            # The final chunk is empty, as splunkd sends it; its reply is not timed.
            bodies.append(b"")
            for mode in ("filter", "annotate"):
                wall: Dict[str, float] = {}
                cpu: Dict[str, float] = {}
                for _ in range(args.repeat):
                    # Alternate the two commands so that a slow spell of the machine hits both.
                    for name, script, command_args in (("noop", noop, []), ("lsassdump", app.script, [f"mode={mode}"])):
                        seconds, cpu_used = time_command([interpreter, str(script)], command_args, bodies, scratch)
                        wall[name] = min(wall.get(name, seconds), seconds)
                        cpu[name] = min(cpu.get(name, cpu_used), cpu_used)
                results.append({
                    "shape": shape, "mode": mode, "records": args.records,
                    "noop_events_per_second": round(args.records / wall["noop"]),
                    "lsassdump_events_per_second": round(args.records / wall["lsassdump"]),
                    "ratio_wall": round(wall["noop"] / wall["lsassdump"], 3),
                    "noop_cpu_seconds": round(cpu["noop"], 2),
                    "lsassdump_cpu_seconds": round(cpu["lsassdump"], 2),
                    "ratio_cpu": round(cpu["noop"] / cpu["lsassdump"], 3),
                })

    if args.json:
        print(json.dumps({"python": interpreter, "results": results}, indent=2))
        return 0
    print(f"python: {interpreter}, {args.records} records, best of {args.repeat}")
    print(f"{'shape':9} {'mode':9} {'no-op ev/s':>11} {'lsassdump ev/s':>15} {'ratio':>6} "
          f"{'no-op cpu s':>12} {'lsassdump cpu s':>16} {'cpu ratio':>10}")
    for result in results:
        print(f"{result['shape']:9} {result['mode']:9} {result['noop_events_per_second']:>11} "
              f"{result['lsassdump_events_per_second']:>15} {result['ratio_wall']:>6} "
              f"{result['noop_cpu_seconds']:>12} {result['lsassdump_cpu_seconds']:>16} {result['ratio_cpu']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
