"""The shared process-creation events as ECS documents, with the alerts the core expects on them.

Each event becomes the document the ``ecs`` mapping describes (``MAPPINGS["ecs"].document_for``)
plus ``@timestamp`` from the event time, under a stable ``_id`` derived from its file and record.
The expected alerts are the (rule, event) pairs the core matches, evaluated directly on the
reader's Sigma fields. Used by the tests and by ``bench/bench_poller.py``.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import core
from core.mappings import MAPPINGS

REPO = Path(__file__).resolve().parent.parent.parent
EVENTS_INDEX = "logs-windows.sysmon-test"
# A command line the LSASS rule matches, written into the dense data set.
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


def document_id(event: Any) -> str:
    return hashlib.sha1(f"{event.source}#{event.record}".encode("utf-8")).hexdigest()[:24]


def read_process_events(folder: Path) -> List[Any]:
    """Read every process-creation event with a time under ``folder`` through the core's readers."""
    events = []
    for path in core.iter_event_files([str(folder)]):
        for event in core.read_events(path):
            if isinstance(event, core.ReadProblem):
                continue
            if "process_creation" in event.logsource.categories and event.time:
                events.append(event)
    return events


def build_corpus(events: List[Any], dense: bool) -> Corpus:
    """Build the documents; ``dense`` turns every 25th command line into a ProcDump LSASS dump."""
    rules = [core.compile_rule(rule) for rule in core.load_rules([str(REPO / "rules")])]
    mapping = MAPPINGS["ecs"]
    documents = []
    expected = set()
    seen = set()
    for number, event in enumerate(events):
        fields = dict(event.fields)
        if dense and number % 25 == 0:
            fields["CommandLine"] = DUMP_COMMAND
        doc_id = document_id(event)
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
