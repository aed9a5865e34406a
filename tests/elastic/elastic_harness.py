"""Helpers that run the poller against the test server, in this process or as a subprocess."""

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from elastic_watcher import retry, rulepack
from elastic_watcher.connection import Credentials, TlsSettings, elasticsearch_client
from elastic_watcher.poller import Poller, PollerSettings
from elastic_watcher.sinks import FileSink, IndexSink, Sink, WebhookSink

REPO = Path(__file__).resolve().parent.parent.parent
ALERTS_INDEX = "lsassdump-alerts-test"
# Long enough that every restart rescans everything, so only the de-duplication prevents repeats.
TEN_YEARS_MS = 10 * 365 * 86400 * 1000

FAST_RETRIES = dict(attempts=10, base=0.01, cap=0.05)


def make_poller(url: str, state: str, *, alerts_file: Optional[str] = None, index_sink: bool = True,
                webhook: Optional[str] = None, timeout: float = 5.0, page_size: int = 500,
                prefilter: str = "logsource", overlap_ms: int = TEN_YEARS_MS,
                stop: Optional[threading.Event] = None, keep_alive: str = "5m") -> Poller:
    """Return an in-process poller over ``logs-*`` with fast retries, running one cycle."""
    stop = stop or threading.Event()
    policy = retry.RetryPolicy(**FAST_RETRIES)  # type: ignore[arg-type]
    client = elasticsearch_client(url, Credentials(), TlsSettings(), timeout)
    sinks: List[Sink] = []
    if alerts_file:
        sinks.append(FileSink(alerts_file))
    if index_sink:
        sinks.append(IndexSink(client, ALERTS_INDEX, policy, stop))
    if webhook:
        sinks.append(WebhookSink(webhook, TlsSettings(), timeout, policy, stop))
    settings = PollerSettings(index="logs-*", state_path=state, prefilter=prefilter, page_size=page_size,
                              interval=0.0, overlap_ms=overlap_ms, since="2000-01-01T00:00:00Z",
                              keep_alive=keep_alive, once=True)
    return Poller(client, rulepack.load(None), sinks, settings, policy, stop)


def alert_pairs(alerts: Sequence[Dict[str, Any]]) -> Counter:
    """Count the (rule id, event id) pairs of alert documents; a count above 1 is a repeated alert."""
    return Counter((alert["rule"]["id"], alert["lsassdump"]["event"]["id"]) for alert in alerts)


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def poller_command(url: str, state: str, *extra: str) -> List[str]:
    """Return the command line that runs the poller as ``python -m elastic_watcher watch``."""
    return [sys.executable, "-m", "elastic_watcher", "watch", "--url", url, "--index", "logs-*",
            "--state", state, "--page-size", "500", "--since", "2000-01-01T00:00:00Z",
            "--overlap", str(TEN_YEARS_MS // 1000), "--timeout", "10", *extra]


def subprocess_env() -> Dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ES_", "KIBANA_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_poller(command: List[str], log_path: str) -> subprocess.Popen:
    handle = open(log_path, "ab")
    return subprocess.Popen(command, cwd=str(REPO), env=subprocess_env(), stdout=handle, stderr=handle)
