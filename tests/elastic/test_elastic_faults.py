"""Fault injection on the poller: every alert the core expects is delivered, and none twice.

The data set is the shared process-creation events with every 25th command line turned into a
ProcDump LSASS dump, so that every page contains alerts and every fault lands among them. The overlap
window spans ten years, so a poller that restarts rescans everything and only its
de-duplication keeps alerts from repeating.
"""

import json
import os
import signal
import time

import pytest

from elastic_corpus import EVENTS_INDEX
from elastic_harness import (
    ALERTS_INDEX, alert_pairs, make_poller, poller_command, read_jsonl, start_poller,
)


def assert_exactly_once(alerts, expected):
    counts = alert_pairs(alerts)
    assert set(counts) == expected, "alerts lost or invented"
    repeated = {pair: count for pair, count in counts.items() if count > 1}
    assert not repeated, f"alerts repeated: {repeated}"


def wait_for(event, description, seconds=30.0):
    assert event.wait(seconds), f"{description} did not happen within {seconds} s"


def test_faults_on_search_pit_and_bulk(fake_es, dense_corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, dense_corpus.documents)
    faults = [
        fake_es.faults.add("status", "POST", r"/_pit$", status=503),
        fake_es.faults.add("drop", "POST", r"^/_search$", skip=1),
        fake_es.faults.add("status", "POST", r"^/_search$", status=500, skip=2),
        fake_es.faults.add("status", "POST", r"^/_search$", status=429, skip=3, times=2),
        fake_es.faults.add("delay", "POST", r"^/_search$", delay=1.5, skip=5),
        fake_es.faults.add("drop", None, r"^/_bulk$"),
        fake_es.faults.add("status", None, r"^/_bulk$", status=502, skip=1),
        fake_es.faults.add("bulk_item_429", None, r"^/_bulk$", skip=3, items=5),
    ]
    alerts_file = str(tmp_path / "alerts.jsonl")
    poller = make_poller(fake_es.url, str(tmp_path / "state.json"), alerts_file=alerts_file, timeout=0.5)

    assert poller.run() == 0

    for fault in faults:
        assert fault.applied == fault.times, f"fault {fault.action} on {fault.path} was not injected"
    assert len(dense_corpus.expected) > 200
    assert_exactly_once(list(fake_es.sources(ALERTS_INDEX).values()), dense_corpus.expected)
    assert_exactly_once(read_jsonl(alerts_file), dense_corpus.expected)


def test_bulk_cut_after_half_the_items(fake_es, dense_corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, dense_corpus.documents)
    fault = fake_es.faults.add("bulk_partial", None, r"^/_bulk$", skip=2, items=10)
    fault.release.set()  # cut the connection at once instead of waiting
    poller = make_poller(fake_es.url, str(tmp_path / "state.json"), timeout=2.0)

    assert poller.run() == 0

    assert fault.applied == 1
    resent = fake_es.recorded(path=r"^/_bulk$")[3].ndjson()[0::2]
    assert resent == fake_es.recorded(path=r"^/_bulk$")[2].ndjson()[0::2]  # the whole page again
    assert_exactly_once(list(fake_es.sources(ALERTS_INDEX).values()), dense_corpus.expected)


def test_point_in_time_lost_mid_scan(fake_es, dense_corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, dense_corpus.documents)
    fault = fake_es.faults.add("expire_pits", "POST", r"^/_search$", skip=4)
    poller = make_poller(fake_es.url, str(tmp_path / "state.json"))

    assert poller.run() == 0

    assert fault.applied == 1
    assert len(fake_es.recorded("POST", r"/_pit$")) == 2  # reopened from the checkpoint cursor
    assert_exactly_once(list(fake_es.sources(ALERTS_INDEX).values()), dense_corpus.expected)


def test_webhook_errors_retried(fake_es, fake_webhook, dense_corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, dense_corpus.documents)
    fake_webhook.failures = [500, 429, 503]
    poller = make_poller(fake_es.url, str(tmp_path / "state.json"), index_sink=False, webhook=fake_webhook.url)

    assert poller.run() == 0

    assert fake_webhook.failures == []
    delivered = [alert for post in fake_webhook.posts for alert in post["alerts"]]
    assert_exactly_once(delivered, dense_corpus.expected)


@pytest.mark.parametrize("pit_lost", [False, True], ids=["pit-kept", "pit-lost"])
def test_poller_killed_mid_bulk_then_restarted(fake_es, dense_corpus, tmp_path, pit_lost):
    fake_es.load(EVENTS_INDEX, dense_corpus.documents)
    # The third bulk request stores 7 alerts of its page, then hangs until the poller is killed.
    fault = fake_es.faults.add("bulk_partial", None, r"^/_bulk$", skip=2, items=7)
    state, alerts_file, log = str(tmp_path / "state.json"), str(tmp_path / "alerts.jsonl"), str(tmp_path / "log")
    command = poller_command(fake_es.url, state, "--alerts-index", ALERTS_INDEX, "--alerts-file", alerts_file, "--once")

    process = start_poller(command, log)
    try:
        wait_for(fault.reached, "the third bulk request")
        time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        fault.release.set()
        if process.poll() is None:
            process.kill()
    # Killed mid-page: the file sink, which runs first, has the whole page. The index has 7 of its
    # alerts, and the checkpoint none of them.
    checkpointed = json.loads(open(state, encoding="utf-8").read())["alerts_delivered"]
    assert len(fake_es.sources(ALERTS_INDEX)) == checkpointed + 7
    assert len(read_jsonl(alerts_file)) > checkpointed + 7
    if pit_lost:
        # The restarted poller rescans from the start, so the killed page is not its first page.
        fake_es.expire_pits()

    restarted = start_poller(command, log)
    assert restarted.wait(timeout=60) == 0, open(log, encoding="utf-8").read()

    assert_exactly_once(list(fake_es.sources(ALERTS_INDEX).values()), dense_corpus.expected)
    assert_exactly_once(read_jsonl(alerts_file), dense_corpus.expected)
    text = open(log, encoding="utf-8").read()
    assert "resuming the scan of point in time" in text
    assert "will not be written again" in text
    assert ("point in time expired or lost" in text) is pit_lost


def test_poller_killed_mid_scan_pit_expired(fake_es, dense_corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, dense_corpus.documents)
    fault = fake_es.faults.add("hang", "POST", r"^/_search$", skip=6)
    state, alerts_file, log = str(tmp_path / "state.json"), str(tmp_path / "alerts.jsonl"), str(tmp_path / "log")
    command = poller_command(fake_es.url, state, "--alerts-file", alerts_file, "--once")

    process = start_poller(command, log)
    try:
        wait_for(fault.reached, "the seventh search")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        fault.release.set()
        if process.poll() is None:
            process.kill()
    fake_es.expire_pits()

    restarted = start_poller(command, log)
    assert restarted.wait(timeout=60) == 0, open(log, encoding="utf-8").read()

    assert_exactly_once(read_jsonl(alerts_file), dense_corpus.expected)
    assert "point in time expired or lost" in open(log, encoding="utf-8").read()
    assert os.path.exists(state)
