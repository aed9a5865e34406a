"""Small units of elastic_watcher: file recovery, retry waits, credentials, ECS mapping back to Sigma."""

import json
import random

import pytest

from elastic_watcher import retry
from elastic_watcher.connection import ConfigurationError, Credentials, load_credentials
from elastic_watcher.documents import logsource_of, sigma_fields
from elastic_watcher.sinks import DeliveryError, FileSink


def alert(key):
    return {"lsassdump": {"alert_id": key}}


def test_file_sink_cuts_partial_line(tmp_path):
    path = tmp_path / "alerts.jsonl"
    committed = json.dumps(alert("a")) + "\n"
    path.write_text(committed + json.dumps(alert("b")) + "\n" + '{"lsassdump": {"al')
    sink = FileSink(str(path))

    sink.recover({"offset": len(committed)})
    sink.deliver([alert("b"), alert("c")])
    sink.close()

    lines = [json.loads(line)["lsassdump"]["alert_id"] for line in path.read_text().splitlines()]
    assert lines == ["a", "b", "c"]


def test_file_sink_rejects_truncated_file(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text("")

    with pytest.raises(DeliveryError, match="shorter"):
        FileSink(str(path)).recover({"offset": 100})


def test_retry_wait_within_backoff_cap():
    policy = retry.RetryPolicy(attempts=10, base=0.5, cap=4.0, rng=random.Random(7))
    for attempt in range(1, 10):
        for _ in range(50):
            assert 0.0 <= policy.delay(attempt) <= min(4.0, 0.5 * 2 ** (attempt - 1))


def test_retry_classification():
    import urllib.error

    assert retry.is_retryable(urllib.error.HTTPError("http://x", 429, "Too Many Requests", {}, None))
    assert retry.is_retryable(urllib.error.HTTPError("http://x", 503, "Unavailable", {}, None))
    assert not retry.is_retryable(urllib.error.HTTPError("http://x", 501, "Not Implemented", {}, None))
    assert not retry.is_retryable(urllib.error.HTTPError("http://x", 400, "Bad Request", {}, None))
    assert retry.is_retryable(ConnectionResetError())
    assert not retry.is_retryable(ValueError("bad"))


def test_retry_gives_up_and_reraises():
    calls = []

    def failing():
        calls.append(1)
        raise ConnectionResetError("reset by peer")

    with pytest.raises(ConnectionResetError):
        retry.call("test request", failing, retry.RetryPolicy(attempts=3, base=0.001, cap=0.001))
    assert len(calls) == 3


def test_credentials_from_environment():
    found = load_credentials(None, {"ES_USERNAME": "deployer", "ES_PASSWORD": "pw"})
    assert found["ES"] == Credentials(username="deployer", password="pw")
    assert found["KIBANA"] == found["ES"]
    assert "pw" not in repr(found["ES"])


def test_credentials_conflicts_rejected():
    with pytest.raises(ConfigurationError, match="keep one of them"):
        load_credentials(None, {"ES_API_KEY": "k", "ES_USERNAME": "u", "ES_PASSWORD": "p"})
    with pytest.raises(ConfigurationError, match="ES_PASSWORD is not"):
        load_credentials(None, {"ES_USERNAME": "u"})


def test_credentials_file_unknown_name(tmp_path):
    path = tmp_path / "credentials"
    path.write_text("PASSWORD=x\n")
    path.chmod(0o600)

    with pytest.raises(ConfigurationError, match="credentials:1: expected NAME=value"):
        load_credentials(str(path), {})


def test_nested_ecs_source_maps_to_sigma():
    source = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": ["process"], "type": ["start"]},
              "process": {"command_line": "a -ma lsass", "executable": "C:\\p.exe", "parent": {"executable": "x"}},
              "host": {"name": "pc1", "os": {"type": "windows"}}}

    fields = sigma_fields(source)

    assert fields == {"CommandLine": "a -ma lsass", "Image": "C:\\p.exe", "ParentImage": "x", "Computer": "pc1"}
    assert logsource_of({"host.os.type": "Windows"}).product == "windows"
    assert logsource_of({}).product is None


def test_credentials_file_names_the_watch_user(tmp_path):
    from elastic_watcher.connection import read_credentials_file

    path = tmp_path / "credentials"
    path.write_text("ES_USERNAME=elastic\nES_PASSWORD=x\nES_WATCH_USERNAME=watcher\nES_WATCH_PASSWORD=y\n",
                    encoding="utf-8")
    path.chmod(0o600)
    values = read_credentials_file(str(path))
    assert values["ES_WATCH_USERNAME"] == "watcher"
    assert values["ES_WATCH_PASSWORD"] == "y"


def test_binary_credentials_file_is_a_clean_error(tmp_path):
    from elastic_watcher.connection import ConfigurationError, read_credentials_file

    path = tmp_path / "credentials"
    path.write_bytes(b"\xff\xfe\x00binary")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError) as caught:
        read_credentials_file(str(path))
    assert f"credentials file {path} is not UTF-8 text" in str(caught.value)
