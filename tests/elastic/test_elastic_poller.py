"""The poller against the test server with no faults: requests, alerts, checkpoints, shutdown."""

import json
import os
import signal
import subprocess
import time

import pytest

from elastic_corpus import EVENTS_INDEX
from elastic_harness import (
    ALERTS_INDEX, alert_pairs, make_poller, poller_command, read_jsonl, start_poller,
)
from elastic_watcher.checkpoint import CheckpointError
from elastic_watcher.documents import alert_id
from elastic_watcher.rulepack import load


def test_poller_alerts_equal_core_matches(fake_es, corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, corpus.documents)
    poller = make_poller(fake_es.url, str(tmp_path / "state.json"), alerts_file=str(tmp_path / "alerts.jsonl"))

    assert poller.run() == 0

    indexed = list(fake_es.sources(ALERTS_INDEX).values())
    assert set(alert_pairs(indexed)) == corpus.expected
    assert len(corpus.matched_documents) >= 3  # the shared true positives
    written = alert_pairs(read_jsonl(str(tmp_path / "alerts.jsonl")))
    assert set(written) == corpus.expected
    assert max(written.values()) == 1
    assert poller.checkpoint.events_scanned == len(corpus.documents)


def test_poller_requests_follow_pit_api(fake_es, corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, corpus.documents)
    make_poller(fake_es.url, str(tmp_path / "state.json")).run()

    opened = fake_es.recorded("POST", r"/_pit$")
    assert [r.path for r in opened] == ["/logs-*/_pit"]
    assert opened[0].query == {"keep_alive": ["5m"]}
    searches = fake_es.recorded("POST", r"^/_search$")
    assert len(searches) == len(corpus.documents) // 500 + 1
    first, second = searches[0].json(), searches[1].json()
    assert first["pit"] == {"id": first["pit"]["id"], "keep_alive": "5m"}
    assert first["sort"] == [{"@timestamp": {"order": "asc"}}, {"_shard_doc": "asc"}]
    assert first["size"] == 500
    assert first["track_total_hits"] is False
    assert "search_after" not in first
    assert len(second["search_after"]) == 2
    window = first["query"]["bool"]["filter"][1]["range"]["@timestamp"]
    assert window == {"gte": "2000-01-01T00:00:00Z", "format": "strict_date_optional_time||epoch_millis"}
    assert first["query"]["bool"]["filter"][0] == {"bool": {"filter": [
        {"term": {"event.category": "process"}}, {"term": {"event.type": "start"}}]}}
    closed = fake_es.recorded("DELETE", r"^/_pit$")
    assert [r.json() for r in closed] == [{"id": first["pit"]["id"]}]


def test_poller_bulk_uses_alert_ids(fake_es, corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, corpus.documents)
    make_poller(fake_es.url, str(tmp_path / "state.json")).run()
    rules = {deployed.id: deployed.rule for deployed in load(None)}

    lines = [line for request in fake_es.recorded(path=r"^/_bulk$") for line in request.ndjson()]
    actions, documents = lines[0::2], lines[1::2]
    assert {next(iter(action)) for action in actions} == {"create"}
    for action, document in zip(actions, documents):
        event, rule = document["lsassdump"]["event"], rules[document["rule"]["id"]]
        assert action["create"] == {"_index": ALERTS_INDEX, "_id": alert_id(rule.id, event["index"], event["id"])}
        assert document["rule"]["name"] == rule.title
        assert document["threat"]["technique"]["id"] == list(rule.attack_techniques)
        assert document["lsassdump"]["selections"]


def test_poller_query_prefilter(fake_es, corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, corpus.documents)
    poller = make_poller(fake_es.url, str(tmp_path / "state.json"), prefilter="query")

    assert poller.run() == 0

    assert set(alert_pairs(fake_es.sources(ALERTS_INDEX).values())) == corpus.expected
    # The server returned only the events that one of the rules' Query DSL matched.
    assert poller.checkpoint.events_scanned == len(corpus.matched_documents)


def test_poller_second_cycle_delivers_nothing(fake_es, corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, corpus.documents)
    state, alerts = str(tmp_path / "state.json"), str(tmp_path / "alerts.jsonl")
    make_poller(fake_es.url, state, alerts_file=alerts).run()
    poller = make_poller(fake_es.url, state, alerts_file=alerts)

    poller.run()

    assert poller.checkpoint.events_scanned == 2 * len(corpus.documents)
    assert len(read_jsonl(alerts)) == len(corpus.expected)
    bulk = fake_es.recorded(path=r"^/_bulk$")
    assert sum(len(r.ndjson()) // 2 for r in bulk) == len(corpus.expected)


def test_poller_late_event_inside_overlap(fake_es, tmp_path):
    dump = {"@timestamp": "2026-11-01T10:00:00.000Z", "event.category": "process", "event.type": "start",
            "process.command_line": "procdump.exe -ma lsass.exe out.dmp"}
    fake_es.load(EVENTS_INDEX, [("a", dump), ("b", dict(dump, **{"@timestamp": "2026-11-01T10:10:00.000Z"}))])
    state = str(tmp_path / "state.json")
    make_poller(fake_es.url, state, overlap_ms=5 * 60 * 1000).run()
    # Indexed after the cycle, timestamped before the newest event seen: 3 minutes late, then 20.
    fake_es.load(EVENTS_INDEX, [("late", dict(dump, **{"@timestamp": "2026-11-01T10:07:00.000Z"})),
                                ("too-late", dict(dump, **{"@timestamp": "2026-11-01T09:50:00.000Z"}))])

    make_poller(fake_es.url, state, overlap_ms=5 * 60 * 1000).run()

    found = {event for _, event in alert_pairs(fake_es.sources(ALERTS_INDEX).values())}
    assert sorted(found) == ["a", "b", "late"]
    second_search = fake_es.recorded("POST", r"^/_search$")[-1].json()
    lower = second_search["query"]["bool"]["filter"][1]["range"]["@timestamp"]["gte"]
    assert lower == 1793527800000 - 5 * 60 * 1000  # 2026-11-01T10:10:00Z minus the overlap


def test_checkpoint_saved_after_each_page(fake_es, corpus, tmp_path):
    fake_es.load(EVENTS_INDEX, corpus.documents)
    state = tmp_path / "state.json"
    poller = make_poller(fake_es.url, str(state))
    saved = []
    original = poller._save

    def spy():
        original()
        saved.append(json.loads(state.read_text()))
    poller._save = spy

    poller.run()

    pages = len(corpus.documents) // 500 + 1
    assert len(saved) == pages + 1  # one per page, and the end of the scan
    assert [s["events_scanned"] for s in saved[:pages]] == [min(500 * n, len(corpus.documents))
                                                            for n in range(1, pages + 1)]
    assert saved[-1]["scan"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


def test_checkpoint_of_other_rules_rejected(fake_es, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "fingerprint": "0000000000000000"}))

    with pytest.raises(CheckpointError, match="another index, rule set or --prefilter"):
        make_poller(fake_es.url, str(state))


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_poller_stops_on_signal(fake_es, corpus, tmp_path, stop_signal):
    fake_es.load(EVENTS_INDEX, corpus.documents)
    state, log = str(tmp_path / "state.json"), str(tmp_path / "poller.log")
    command = [part for part in poller_command(fake_es.url, state, "--alerts-file", str(tmp_path / "a.jsonl"),
                                               "--interval", "0.2")]
    process = start_poller(command, log)
    try:
        deadline = time.monotonic() + 30
        while b"cycle done" not in open(log, "rb").read():
            assert process.poll() is None, open(log, encoding="utf-8").read()
            assert time.monotonic() < deadline, "the poller did not finish a cycle in 30 s"
            time.sleep(0.1)
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    text = open(log, encoding="utf-8").read()
    assert "poller started" in text
    assert f"received {stop_signal.name}" in text
    assert "poller stopped" in text
    assert len(read_jsonl(str(tmp_path / "a.jsonl"))) == len(corpus.expected)


def test_poller_requires_an_output(fake_es, tmp_path):
    command = poller_command(fake_es.url, str(tmp_path / "state.json"), "--once")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env=__import__("elastic_harness").subprocess_env())
    assert done.returncode == 2
    assert "no alert output" in done.stderr
    assert not os.path.exists(tmp_path / "state.json")
