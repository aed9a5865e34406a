"""``lsassdump elastic build``: the watch bodies, the EQL variant and the Kibana NDJSON."""

import argparse
import hashlib
import json

import pytest

import core
from elastic_watcher.cli import register
from elastic_watcher.documents import alert_id
from elastic_watcher.rulepack import load

LSASS_RULE_ID = "5afee48e-67dd-4e03-a783-f74259dcf998"


def run(*argv):
    parser = argparse.ArgumentParser(prog="lsassdump")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["elastic", *argv])
    return args.func(args)


@pytest.fixture
def built(tmp_path):
    code = run("build", "--out", str(tmp_path), "--eql-url", "https://es.example.org:9243",
               "--webhook", "https://hooks.example.org/sigma?team=soc")
    assert code == 0
    return tmp_path


def read_watch(folder, name):
    return json.loads((folder / "watches" / f"{name}.json").read_text(encoding="utf-8"))


def lsass_rule():
    return next(deployed for deployed in load(None) if deployed.id == LSASS_RULE_ID)


def test_watch_search_input(built):
    watch = read_watch(built, f"lsassdump-{LSASS_RULE_ID}")
    request = watch["input"]["search"]["request"]

    assert watch["trigger"] == {"schedule": {"interval": "5m"}}
    assert request["indices"] == ["logs-*", "winlogbeat-*"]
    assert request["rest_total_hits_as_int"] is True
    body = request["body"]
    assert body["size"] == 1000
    exact, window = body["query"]["bool"]["filter"]
    assert exact == json.loads(core.convert(lsass_rule().rule, "dsl", "ecs"))
    assert window == {"range": {"@timestamp": {"gte": "{{ctx.trigger.scheduled_time}}||-600s",
                                               "lte": "{{ctx.trigger.scheduled_time}}"}}}
    assert watch["condition"] == {"compare": {"ctx.payload.hits.total": {"gt": 0}}}


def test_watch_actions_and_metadata(built):
    watch = read_watch(built, f"lsassdump-{LSASS_RULE_ID}")
    actions = watch["actions"]

    assert sorted(actions) == ["index_alerts", "log", "webhook"]
    assert actions["log"]["throttle_period"] == "15m"
    assert actions["log"]["logging"]["level"] == "warn"
    assert "throttle_period" not in actions["index_alerts"]
    assert actions["index_alerts"]["index"] == {"index": "lsassdump-alerts"}
    script = actions["index_alerts"]["transform"]["script"]
    assert "for (def hit : ctx.payload.hits.hits)" in script["source"]
    assert "(ctx.metadata.rule_id + '/' + hit._index + '/' + hit._id).sha256()" in script["source"]
    assert "return ['_doc': alerts];" in script["source"]
    assert script["params"] == {"severity": "high", "risk_score": 73}
    hook = actions["webhook"]["webhook"]
    assert (hook["scheme"], hook["host"], hook["port"], hook["path"]) == ("https", "hooks.example.org", 443, "/sigma")
    assert hook["params"] == {"team": "soc"}
    assert hook["method"] == "post"
    assert watch["metadata"]["rule_id"] == LSASS_RULE_ID
    assert watch["metadata"]["title"] == "Potential LSASS Process Dump Via Procdump"
    assert watch["metadata"]["level"] == "high"
    assert watch["metadata"]["attack_techniques"] == ["T1036", "T1003.001"]


def test_alert_id_matches_painless_formula():
    expected = hashlib.sha256(f"{LSASS_RULE_ID}/logs-x/abc".encode("utf-8")).hexdigest()
    assert alert_id(LSASS_RULE_ID, "logs-x", "abc") == expected


def test_eql_watch_http_input(built):
    watch = read_watch(built, f"lsassdump-{LSASS_RULE_ID}-eql")
    request = watch["input"]["http"]["request"]

    assert (request["scheme"], request["host"], request["port"]) == ("https", "es.example.org", 9243)
    assert request["method"] == "post"
    assert request["path"] == "/logs-*,winlogbeat-*/_eql/search"
    assert request["headers"] == {"Content-Type": "application/json"}
    assert "auth" not in request
    body = json.loads(request["body"])
    assert body["query"] == core.convert(lsass_rule().rule, "eql", "ecs")
    assert body["size"] == 1000
    assert body["filter"]["range"]["@timestamp"]["lte"] == "{{ctx.trigger.scheduled_time}}"
    # The EQL search API returns hits.total as an object.
    assert watch["condition"] == {"compare": {"ctx.payload.hits.total.value": {"gt": 0}}}
    assert "ctx.payload.hits.events" in watch["actions"]["index_alerts"]["transform"]["script"]["source"]


def test_kibana_ndjson(built):
    lines = (built / "kibana" / "lsassdump_detection_rules.ndjson").read_text(encoding="utf-8").splitlines()
    rules = {rule["rule_id"]: rule for rule in map(json.loads, lines)}

    assert len(rules) == 2 * len(load(None))
    eql = rules[f"lsassdump-{LSASS_RULE_ID}-eql"]
    lucene = rules[f"lsassdump-{LSASS_RULE_ID}-lucene"]
    assert (eql["type"], eql["language"]) == ("eql", "eql")
    assert (lucene["type"], lucene["language"]) == ("query", "lucene")
    assert eql["query"] == core.convert(lsass_rule().rule, "eql", "ecs")
    assert lucene["query"] == core.convert(lsass_rule().rule, "lucene", "ecs")
    assert (eql["severity"], eql["risk_score"]) == ("high", 73)
    assert (eql["interval"], eql["from"], eql["to"]) == ("5m", "now-600s", "now")
    assert eql["index"] == ["logs-*", "winlogbeat-*"]
    assert eql["author"] == ["Florian Roth (Nextron Systems)"]
    assert eql["license"] == "DRL-1.1"


def test_kibana_mitre_mapping(built):
    line = (built / "kibana" / "lsassdump_detection_rules.ndjson").read_text(encoding="utf-8").splitlines()[0]
    threat = {entry["tactic"]["id"]: entry for entry in json.loads(line)["threat"]}

    assert sorted(threat) == ["TA0005", "TA0006"]
    assert threat["TA0006"]["framework"] == "MITRE ATT&CK"
    assert threat["TA0006"]["tactic"]["name"] == "Credential Access"
    (dumping,) = threat["TA0006"]["technique"]
    assert (dumping["id"], dumping["name"]) == ("T1003", "OS Credential Dumping")
    assert dumping["subtechnique"] == [{"id": "T1003.001", "name": "LSASS Memory",
                                        "reference": "https://attack.mitre.org/techniques/T1003/001/"}]
    assert threat["TA0005"]["technique"][0]["id"] == "T1036"


def test_build_without_eql_url(tmp_path, capsys):
    assert run("build", "--out", str(tmp_path)) == 0

    names = sorted(path.name for path in (tmp_path / "watches").iterdir())
    assert names == sorted(f"lsassdump-{deployed.id}.json" for deployed in load(None))
    assert "pass --eql-url URL" in capsys.readouterr().out


def test_build_rejects_bad_settings(tmp_path, capsys):
    assert run("build", "--out", str(tmp_path), "--interval", "5 minutes") == 2
    assert "invalid time value '5 minutes'" in capsys.readouterr().err
    assert run("build", "--out", str(tmp_path), "--size", "20000") == 2
    assert "--size 20000 is out of range" in capsys.readouterr().err


def test_mustache_in_rule_value_rejected(tmp_path, capsys):
    rule = tmp_path / "mustache.yml"
    rule.write_text(
        "title: Template injection marker\n"
        "id: 0f0e0d0c-0b0a-4909-8807-060504030201\n"
        "logsource: {category: process_creation, product: windows}\n"
        "detection:\n"
        "  selection: {CommandLine|contains: '{{7*7}}'}\n"
        "  condition: selection\n"
        "level: low\n", encoding="utf-8")

    code = run("build", "--out", str(tmp_path / "out"), "--rules", str(rule), "--eql-url", "http://es.example.org:9200")

    err = capsys.readouterr().err
    assert code == 1
    assert "watch lsassdump-0f0e0d0c-0b0a-4909-8807-060504030201 not written" in err
    assert "Watcher would read as a Mustache tag" in err
    assert not (tmp_path / "out" / "watches" / "lsassdump-0f0e0d0c-0b0a-4909-8807-060504030201.json").exists()
    assert (tmp_path / "out" / "kibana" / "lsassdump_detection_rules.ndjson").exists()
