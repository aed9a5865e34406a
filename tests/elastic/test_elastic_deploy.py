"""``lsassdump elastic deploy`` against the test servers: the exact requests, licences and credentials.

Expected shapes, from the Elasticsearch and Kibana references: ``GET /_license``;
``PUT /_watcher/watch/<id>`` with the watch as body; ``POST /_watcher/watch/<id>/_execute`` with
``action_modes`` and ``record_execution``; ``POST /api/detection_engine/rules/_import?overwrite=true``
with a ``kbn-xsrf`` header and the NDJSON as the multipart ``file`` field.
"""

import base64
import json
import logging
import os
import time
import urllib.request

import pytest

from es_test_server import FakeElasticsearch, iso, multipart_file
from test_elastic_build import run

from elastic_corpus import EVENTS_INDEX
from elastic_watcher.kibana import detection_rule
from elastic_watcher.rulepack import load
from elastic_watcher.watches import WatchSettings, eql_watch, search_watch

API_KEY = "c2VjcmV0LWlkOnNlY3JldC1rZXk="


@pytest.fixture
def recent_events(corpus):
    """The shared true positives and 200 other events, timestamped a minute ago."""
    now = iso(int((time.time() - 60) * 1000))
    chosen = [(doc_id, dict(source, **{"@timestamp": now})) for doc_id, source in corpus.documents
              if doc_id in corpus.matched_documents]
    chosen += [(doc_id, dict(source, **{"@timestamp": now})) for doc_id, source in corpus.documents[:200]]
    return chosen


@pytest.fixture
def secured_es(recent_events):
    server = FakeElasticsearch(require_auth=f"ApiKey {API_KEY}")
    server.start()
    server.load(EVENTS_INDEX, recent_events)
    yield server
    server.stop()


def test_deploy_requests(secured_es, fake_kibana, recent_events, corpus, no_credentials, monkeypatch, capsys, caplog):
    monkeypatch.setenv("ES_API_KEY", API_KEY)
    monkeypatch.setenv("ES_WATCH_USERNAME", "watcher_reader")
    monkeypatch.setenv("ES_WATCH_PASSWORD", "reader-password")
    caplog.set_level(logging.DEBUG)

    code = run("deploy", "--url", secured_es.url, "--kibana-url", fake_kibana.url)

    out, err = capsys.readouterr()
    assert code == 0, err
    rules = load(None)
    settings = WatchSettings()
    expected = ["/_license"]
    for deployed in rules:
        for name in (f"lsassdump-{deployed.id}", f"lsassdump-{deployed.id}-eql"):
            expected += [f"/_watcher/watch/{name}", f"/_watcher/watch/{name}/_execute"]
    assert [r.path for r in secured_es.requests] == expected
    assert secured_es.requests[0].method == "GET"
    # The execute watch API takes PUT or POST; elasticsearch-py sends PUT.
    assert {r.method for r in secured_es.requests[1:]} <= {"PUT", "POST"}
    assert {r.headers["authorization"] for r in secured_es.requests} == {f"ApiKey {API_KEY}"}

    puts = [r for r in secured_es.requests if r.path.startswith("/_watcher/") and not r.path.endswith("_execute")]
    for deployed, (plain, eql) in zip(rules, zip(puts[0::2], puts[1::2])):
        assert plain.json() == search_watch(deployed, settings)
        assert eql.json() == eql_watch(deployed, settings, secured_es.url, ("watcher_reader", "reader-password"))
    executes = secured_es.recorded(path=r"/_execute$")
    assert executes[0].json() == {"action_modes": {"log": "simulate", "index_alerts": "simulate"},
                                  "record_execution": False}
    lsass = [line for line in out.splitlines() if line.startswith("watch lsassdump-5afee48e")]
    assert lsass[0].endswith("-f74259dcf998: stored, simulated run executed (3 hit(s) now)")
    assert lsass[1].endswith("-f74259dcf998-eql: stored, simulated run executed (3 hit(s) now)")
    assert len(corpus.matched_documents) == 3

    (imported,) = fake_kibana.requests
    assert (imported.method, imported.path, imported.query) == (
        "POST", "/api/detection_engine/rules/_import", {"overwrite": ["true"]})
    assert imported.headers["kbn-xsrf"] == "true"
    assert imported.headers["authorization"] == f"ApiKey {API_KEY}"
    assert imported.headers["content-type"].startswith("multipart/form-data; boundary=")
    sent = [json.loads(line) for line in multipart_file(imported.headers["content-type"], imported.body).splitlines()]
    assert sent == [detection_rule(d, settings, v) for d in rules for v in ("eql", "lucene")]
    assert "Kibana: 4 detection rule(s) imported" in out

    assert API_KEY not in out + err + caplog.text
    assert "reader-password" not in out + err + caplog.text


def test_deploy_basic_licence_points_to_poller(recent_events, fake_kibana, no_credentials, capsys):
    server = FakeElasticsearch(licence="basic")
    server.start()
    try:
        code = run("deploy", "--url", server.url, "--kibana-url", fake_kibana.url, "--index", "logs-*")
        requests = [(r.method, r.path) for r in server.requests]
    finally:
        server.stop()

    out = capsys.readouterr().out
    assert code == 3
    assert requests == [("GET", "/_license")]
    assert "licence basic (active) does not include Watcher: no watch deployed" in out
    assert f"lsassdump elastic watch --url {server.url} --index 'logs-*'" in out
    assert len(fake_kibana.rules) == 4  # detection rules work on Basic


def test_server_sends_product_header(fake_es):
    # elasticsearch-py 8 and later reject any response without this header.
    with urllib.request.urlopen(fake_es.url + "/", timeout=10) as response:  # noqa: S310 - loopback
        assert response.headers["X-Elastic-Product"] == "Elasticsearch"


def test_put_watch_refused_on_basic_licence(no_credentials):
    # The test server answers as Elasticsearch does when Watcher is not licensed.
    server = FakeElasticsearch(licence="basic")
    server.start()
    try:
        from elasticsearch import AuthorizationException, Elasticsearch
        client = Elasticsearch(server.url)
        with pytest.raises(AuthorizationException, match="non-compliant for \\[watcher\\]"):
            client.watcher.put_watch(id="w", **search_watch(load(None)[0], WatchSettings()))
    finally:
        server.stop()


def test_eql_watch_needs_watch_user(secured_es, no_credentials, monkeypatch, capsys):
    monkeypatch.setenv("ES_API_KEY", API_KEY)

    assert run("deploy", "--url", secured_es.url) == 1
    assert "set ES_WATCH_USERNAME and ES_WATCH_PASSWORD" in capsys.readouterr().err

    monkeypatch.setenv("ES_WATCH_USERNAME", "watcher_reader")
    monkeypatch.setenv("ES_WATCH_PASSWORD", "reader-password")
    assert run("deploy", "--url", secured_es.url) == 0
    put = secured_es.recorded(path=r"-eql$")[-1].json()
    assert put["input"]["http"]["request"]["auth"] == {
        "basic": {"username": "watcher_reader", "password": "reader-password"}}
    assert "reader-password" not in "".join(capsys.readouterr())


def test_credentials_file(recent_events, no_credentials, tmp_path, caplog):
    server = FakeElasticsearch(require_auth="Basic " + base64.b64encode(b"deployer:s3cret").decode())
    server.start()
    secrets = tmp_path / "credentials"
    secrets.write_text("# deploy user\nES_USERNAME=deployer\nES_PASSWORD=s3cret\n")
    os.chmod(secrets, 0o644)
    try:
        code = run("deploy", "--url", server.url, "--credentials-file", str(secrets), "--no-eql")
    finally:
        server.stop()

    assert code == 0
    assert "is readable by other users" in caplog.text
    assert "s3cret" not in caplog.text


def test_url_with_password_rejected(no_credentials, capsys):
    assert run("deploy", "--url", "http://admin:changeme@127.0.0.1:9", "--no-eql") == 2
    err = capsys.readouterr().err
    assert "contains a user name or password" in err
    assert "changeme" not in err


def test_licence_check_retried(recent_events, no_credentials, capsys):
    server = FakeElasticsearch()
    server.start()
    server.faults.add("status", "GET", r"^/_license$", status=503)
    try:
        code = run("deploy", "--url", server.url, "--no-eql")
        licence_calls = len(server.recorded("GET", r"^/_license$"))
    finally:
        server.stop()

    assert code == 0
    assert licence_calls == 2


def test_gives_up_after_max_attempts(no_credentials, capsys):
    server = FakeElasticsearch()
    server.start()
    server.faults.add("drop", "GET", r"^/_license$", times=5)
    try:
        code = run("deploy", "--url", server.url, "--no-eql", "--max-attempts", "2")
    finally:
        server.stop()

    assert code == 1
    assert "deploy failed" in capsys.readouterr().err
