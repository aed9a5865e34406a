"""Fixtures of the Elastic tests: the shared process-creation events as ECS documents, test servers."""

import sys
from pathlib import Path
from typing import Any, Iterator, List

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from elastic_corpus import Corpus, build_corpus, read_process_events, shared_data_dir  # noqa: E402
from es_test_server import FakeElasticsearch, FakeKibana, FakeWebhook  # noqa: E402


@pytest.fixture(scope="session")
def process_events() -> List[Any]:
    folder = shared_data_dir()
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}; set LSASSDUMP_SHARED_DATA")
    events = read_process_events(folder)
    assert events, f"no process-creation event read under {folder}"
    return events


@pytest.fixture(scope="session")
def corpus(process_events: List[Any]) -> Corpus:
    """The shared process-creation events, with the true positives among them."""
    return build_corpus(process_events, dense=False)


@pytest.fixture(scope="session")
def dense_corpus(process_events: List[Any]) -> Corpus:
    """The shared events with every 25th command line replaced by a ProcDump LSASS dump."""
    return build_corpus(process_events, dense=True)


@pytest.fixture
def fake_es() -> Iterator[FakeElasticsearch]:
    server = FakeElasticsearch()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_kibana() -> Iterator[FakeKibana]:
    server = FakeKibana()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_webhook() -> Iterator[FakeWebhook]:
    server = FakeWebhook()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear every credential variable, so a developer's environment cannot leak into a test."""
    for name in ("ES_API_KEY", "ES_USERNAME", "ES_PASSWORD", "KIBANA_API_KEY", "KIBANA_USERNAME",
                 "KIBANA_PASSWORD", "ES_WATCH_USERNAME", "ES_WATCH_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
