"""Fixtures of the Elastic tests: the shared process-creation events as ECS documents, test servers.

The shared events are read once per session with the core's readers. Each becomes the document
the ``ecs`` mapping describes (``MAPPINGS["ecs"].document_for``) plus ``@timestamp`` from the
event time, under a stable ``_id`` derived from its file and record. The expected alerts are the
events the core itself matches, evaluated directly on the reader's Sigma fields.
"""

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import core  # noqa: E402
from core.mappings import MAPPINGS  # noqa: E402

from es_test_server import FakeElasticsearch, FakeKibana, FakeWebhook  # noqa: E402

REPO = HERE.parent.parent
EVENTS_INDEX = "logs-windows.sysmon-test"
# A command line the LSASS rule matches, written for the dense data set below.
DUMP_COMMAND = "C:\\Tools\\procdump64.exe -accepteula -ma lsass.exe C:\\Windows\\Temp\\out.dmp"


def shared_data_dir() -> Path:
    """Return the shared data folder: $LSASSDUMP_SHARED_DATA, or ``shared/data`` beside the checkout."""
    configured = os.environ.get("LSASSDUMP_SHARED_DATA")
    return Path(configured) if configured else REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Corpus:
    """ECS documents to index, and the (rule id, document id) pairs the core matches."""

    documents: List[Tuple[str, Dict[str, Any]]]
    expected: Set[Tuple[str, str]]

    @property
    def matched_documents(self) -> Set[str]:
        return {doc_id for _, doc_id in self.expected}


def _document_id(event: Any) -> str:
    return hashlib.sha1(f"{event.source}#{event.record}".encode("utf-8")).hexdigest()[:24]


def _read_process_events(folder: Path) -> List[Any]:
    events = []
    for path in core.iter_event_files([str(folder)]):
        for event in core.read_events(path):
            if isinstance(event, core.ReadProblem):
                continue
            if "process_creation" in event.logsource.categories and event.time:
                events.append(event)
    return events


def _corpus(events: List[Any], dense: bool) -> Corpus:
    rules = [core.compile_rule(rule) for rule in core.load_rules([str(REPO / "rules")])]
    mapping = MAPPINGS["ecs"]
    documents = []
    expected = set()
    seen = set()
    for number, event in enumerate(events):
        fields = dict(event.fields)
        if dense and number % 25 == 0:
            fields["CommandLine"] = DUMP_COMMAND
        doc_id = _document_id(event)
        if doc_id in seen:
            continue
        seen.add(doc_id)
        source = mapping.document_for(fields)
        source["@timestamp"] = event.time
        documents.append((doc_id, source))
        for rule in rules:
            if rule.admits(event.logsource) and rule.match(fields):
                expected.add((rule.rule.id, doc_id))
    return Corpus(documents, expected)


@pytest.fixture(scope="session")
def process_events() -> List[Any]:
    folder = shared_data_dir()
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}; set LSASSDUMP_SHARED_DATA")
    events = _read_process_events(folder)
    assert events, f"no process-creation event read under {folder}"
    return events


@pytest.fixture(scope="session")
def corpus(process_events: List[Any]) -> Corpus:
    """The shared process-creation events, with the true positives among them."""
    return _corpus(process_events, dense=False)


@pytest.fixture(scope="session")
def dense_corpus(process_events: List[Any]) -> Corpus:
    """The shared events with every 25th command line replaced by a ProcDump LSASS dump."""
    return _corpus(process_events, dense=True)


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
