"""Against a real Elasticsearch (and Kibana): deploy, ``_execute``, poll, alerts present.

Enabled only when ``ES_URL`` and credentials (``ES_API_KEY``, or ``ES_USERNAME`` and
``ES_PASSWORD``) are set. ``KIBANA_URL`` adds the detection rule import, ``ES_CA_CERTS`` names a
CA bundle, and ``ES_INSECURE=1`` turns certificate checks off. Every index, watch and rule the
tests create carries a random suffix and is deleted afterwards.
NOTE: these tests have not run in this project's CI, which has no Elasticsearch.
"""

import json
import os
import time
import urllib.error
import urllib.request
import uuid

import pytest

from elastic_harness import alert_pairs
from test_elastic_build import run

from core.mappings import MAPPINGS
from elastic_watcher.connection import TlsSettings, elasticsearch_client, load_credentials
from elastic_watcher.rulepack import load
from elastic_watcher.watches import watch_id

pytestmark = pytest.mark.live

ES_URL = os.environ.get("ES_URL")
HAS_CREDENTIALS = bool(os.environ.get("ES_API_KEY") or os.environ.get("ES_USERNAME"))
if not (ES_URL and HAS_CREDENTIALS):
    pytest.skip("set ES_URL and ES_API_KEY (or ES_USERNAME and ES_PASSWORD) to run the live tests",
                allow_module_level=True)

TLS = TlsSettings(verify=os.environ.get("ES_INSECURE") != "1", ca_certs=os.environ.get("ES_CA_CERTS"))
TLS_ARGS = (["--insecure"] if not TLS.verify else []) + (["--ca-certs", TLS.ca_certs] if TLS.ca_certs else [])


@pytest.fixture(scope="module")
def client():
    return elasticsearch_client(ES_URL, load_credentials(None)["ES"], TLS, 30.0)


@pytest.fixture(scope="module")
def live_index(client, corpus):
    """A fresh index with ECS field types, holding the true positives and 300 other events from now."""
    suffix = uuid.uuid4().hex[:8]
    name = f"lsassdump-live-events-{suffix}"
    properties = {"@timestamp": {"type": "date"}}
    for field, kind in MAPPINGS["ecs"].field_types.items():
        properties[field] = {"type": kind}
    client.indices.create(index=name, mappings={"properties": properties})
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    chosen = [d for d in corpus.documents if d[0] in corpus.matched_documents] + corpus.documents[:300]
    operations = []
    for doc_id, source in dict(chosen).items():
        operations += [{"index": {"_index": name, "_id": doc_id}}, dict(source, **{"@timestamp": now})]
    result = client.bulk(operations=operations, refresh="true")
    assert not result["errors"]
    yield name, suffix
    # Wildcards in index deletion are refused by default (action.destructive_requires_name).
    created = [name, f"lsassdump-live-alerts-{suffix}", f"lsassdump-live-poller-logsource-{suffix}",
               f"lsassdump-live-poller-query-{suffix}"]
    client.indices.delete(index=",".join(created), ignore_unavailable=True)


def test_live_deploy_and_execute(client, live_index, corpus):
    index, suffix = live_index
    alerts = f"lsassdump-live-alerts-{suffix}"
    kibana = ["--kibana-url", os.environ["KIBANA_URL"]] if os.environ.get("KIBANA_URL") else []
    eql = [] if os.environ.get("ES_WATCH_USERNAME") else ["--no-eql"]
    licence = client.license.get()["license"]["type"]

    code = run("deploy", "--url", ES_URL, "--index", index, "--alerts-index", alerts, *eql, *kibana, *TLS_ARGS)

    rules = load(None)
    try:
        if licence == "basic":
            assert code == 3
            return
        assert code == 0
        for deployed in rules:
            client.watcher.execute_watch(id=watch_id(deployed), action_modes={
                "index_alerts": "force_execute", "log": "skip"})
        client.indices.refresh(index=alerts)
        found = client.search(index=alerts, size=1000)["hits"]["hits"]
        pairs = {(hit["_source"]["rule"]["id"], hit["_source"]["lsassdump"]["event"]["id"]) for hit in found}
        assert pairs == corpus.expected
    finally:
        for deployed in rules:
            for name in (watch_id(deployed), watch_id(deployed, "eql")):
                client.options(ignore_status=404).watcher.delete_watch(id=name)
        if kibana:
            _delete_kibana_rules(rules)


@pytest.mark.parametrize("prefilter", ["logsource", "query"])
def test_live_poller(client, live_index, corpus, tmp_path, prefilter):
    index, suffix = live_index
    alerts = f"lsassdump-live-poller-{prefilter}-{suffix}"

    code = run("watch", "--url", ES_URL, "--index", index, "--state", str(tmp_path / "state.json"),
               "--alerts-index", alerts, "--alerts-file", str(tmp_path / "alerts.jsonl"),
               "--prefilter", prefilter, "--since", "now-1h", "--once", *TLS_ARGS)

    assert code == 0
    client.indices.refresh(index=alerts)
    found = [hit["_source"] for hit in client.search(index=alerts, size=1000)["hits"]["hits"]]
    assert set(alert_pairs(found)) == corpus.expected
    with open(tmp_path / "alerts.jsonl", encoding="utf-8") as handle:
        assert max(alert_pairs([json.loads(line) for line in handle]).values()) == 1


def _delete_kibana_rules(rules):
    creds = load_credentials(None)["KIBANA"]
    base = os.environ["KIBANA_URL"].rstrip("/")
    for deployed in rules:
        for variant in ("eql", "lucene"):
            request = urllib.request.Request(
                f"{base}/api/detection_engine/rules?rule_id=lsassdump-{deployed.id}-{variant}", method="DELETE")
            request.add_header("kbn-xsrf", "true")
            if creds.authorization():
                request.add_header("Authorization", creds.authorization())
            try:
                urllib.request.urlopen(request, timeout=30, context=TLS.context())  # noqa: S310
            except urllib.error.HTTPError as error:
                assert error.code == 404
