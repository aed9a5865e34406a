"""Poller throughput through the test server, against the core evaluating the same events directly.

Usage: ``python3 bench/bench_poller.py [--repeat N] [--page-size N]`` from the repository root.

Both sides see the shared process-creation events (the true positives among them):

- poller: events per second scanned by ``elastic_watcher``'s poller, one cycle with ``--once``
  semantics, through the loopback test server of ``tests/elastic`` (run in a child process, so
  that the server and the poller do not share one interpreter lock). This includes the HTTP round
  trips, JSON encoding on both sides, the server's Query DSL evaluation, the mapping of each hit
  back to Sigma fields and the core's evaluation;
- core: events per second of ``CompiledRule.admits`` and ``match`` for every bundled rule, on the
  readers' Sigma fields.

It prints both rates and their ratio (poller / core); the best of ``--repeat`` runs counts.
"""

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, List, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "elastic"))

import core  # noqa: E402
from elastic_corpus import EVENTS_INDEX, build_corpus, read_process_events, shared_data_dir  # noqa: E402


def serve(documents: List[Tuple[str, Any]], ready: Any, done: Any) -> None:
    """Run the test server in a child process until ``done`` is set."""
    from es_test_server import FakeElasticsearch

    server = FakeElasticsearch()
    server.start()
    server.load(EVENTS_INDEX, documents)
    ready.send(server.url)
    done.wait()
    server.stop()


def poller_rate(url: str, events: int, scanned: int, page_size: int, prefilter: str) -> Tuple[float, int]:
    """Return (index events per second, alerts) for one poller cycle; ``scanned`` hits must come back."""
    from elastic_watcher import retry, rulepack
    from elastic_watcher.connection import Credentials, TlsSettings, elasticsearch_client
    from elastic_watcher.poller import Poller, PollerSettings
    from elastic_watcher.sinks import FileSink

    with tempfile.TemporaryDirectory() as folder:
        client = elasticsearch_client(url, Credentials(), TlsSettings(), 60.0)
        settings = PollerSettings(index="logs-*", state_path=os.path.join(folder, "state.json"),
                                  prefilter=prefilter, page_size=page_size, interval=0.0,
                                  since="2000-01-01T00:00:00Z", once=True)
        poller = Poller(client, rulepack.load(None), [FileSink(os.path.join(folder, "alerts.jsonl"))], settings,
                        retry.RetryPolicy(), threading.Event())
        started = time.perf_counter()
        code = poller.run()
        elapsed = time.perf_counter() - started
        if code != 0 or poller.checkpoint.events_scanned != scanned:
            raise SystemExit(f"poller run failed: exit code {code}, {poller.checkpoint.events_scanned} events scanned")
        return events / elapsed, poller.checkpoint.alerts_delivered


def core_rate(events: List[Any]) -> Tuple[float, int]:
    """Return (events per second, alerts) for the core on the readers' events, best of 5 passes."""
    rules = [core.compile_rule(rule) for rule in core.load_rules([str(REPO / "rules")])]
    best = 0.0
    alerts = 0
    for _ in range(5):
        alerts = 0
        started = time.perf_counter()
        for event in events:
            for rule in rules:
                if rule.admits(event.logsource) and rule.match(event.fields) is not None:
                    alerts += 1
        best = max(best, len(events) / (time.perf_counter() - started))
    return best, alerts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="poller runs per prefilter; the best counts (default: 3)")
    parser.add_argument("--page-size", type=int, default=1000, help="hits per search page (default: 1000)")
    args = parser.parse_args()

    import logging
    logging.disable(logging.INFO)
    events = read_process_events(shared_data_dir())
    corpus = build_corpus(events, dense=False)
    ready_receive, ready_send = multiprocessing.Pipe(duplex=False)
    done = multiprocessing.Event()
    child = multiprocessing.Process(target=serve, args=(corpus.documents, ready_send, done), daemon=True)
    child.start()
    url = ready_receive.recv()
    try:
        core_eps, core_alerts = core_rate(events)
        results = {}
        for prefilter in ("logsource", "query"):
            scanned = len(corpus.documents) if prefilter == "logsource" else len(corpus.matched_documents)
            runs = [poller_rate(url, len(corpus.documents), scanned, args.page_size, prefilter)
                    for _ in range(args.repeat)]
            results[prefilter] = max(runs)
    finally:
        done.set()
        child.join(10)

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"events: {len(corpus.documents)} shared process-creation events, {len(corpus.expected)} expected alerts "
          f"({len(core.load_rules([str(REPO / 'rules')]))} rules), page size {args.page_size}")
    print(f"core, direct:            {core_eps:12,.0f} events/s  ({core_alerts} alerts)")
    for prefilter, (eps, alerts) in results.items():
        scanned = "" if prefilter == "logsource" else " (events in the index per second of the cycle)"
        print(f"poller, prefilter {prefilter:9} {eps:10,.0f} events/s  ({alerts} alerts){scanned}")
    for prefilter, (eps, _) in results.items():
        print(f"ratio poller ({prefilter}) / core: {eps / core_eps:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
