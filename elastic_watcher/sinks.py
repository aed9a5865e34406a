"""The poller's alert outputs ("sinks"): an Elasticsearch index, a JSON Lines file, a webhook.

The poller saves its checkpoint after every page that all sinks accepted. A crash between a
delivery and that checkpoint makes the restarted poller deliver the page again, so each sink
makes a repeated page harmless as far as it can:

- the index sink sends ``create`` operations with the alert id as ``_id``; a 409 conflict means
  the alert is already there;
- the file sink records its size in the checkpoint, and on restart reads the lines written after
  it, so that it skips those alerts when they come again (and cuts a last line that a crash left
  incomplete). Until they come again, their ids are kept in the checkpoint;
- the webhook sink cannot know what the receiver kept: a page re-sent after a crash reaches it
  again, with the same alert ids for the receiver to de-duplicate (at-least-once delivery).
"""

import json
import logging
import os
import threading
import urllib.request
from typing import Any, Dict, List, Optional, Sequence, Set

import elasticsearch

from elastic_watcher import retry
from elastic_watcher.connection import TlsSettings

log = logging.getLogger(__name__)

Alert = Dict[str, Any]


class DeliveryError(Exception):
    """A sink rejected alerts for a reason that retrying will not fix."""


def alert_key(alert: Alert) -> str:
    """Return the alert id stored in an alert document."""
    return str(alert["lsassdump"]["alert_id"])


class Sink:
    """One delivery target; ``state`` and ``recover`` carry what it needs across a restart."""

    name = "sink"

    def recover(self, state: Dict[str, Any]) -> None:
        """Resume from the state saved with the last checkpoint."""

    def deliver(self, alerts: Sequence[Alert]) -> None:
        """Deliver alerts, retrying transient failures; raises when they cannot be delivered."""
        raise NotImplementedError

    def state(self) -> Dict[str, Any]:
        """Return the state to save with the next checkpoint."""
        return {}

    def close(self) -> None:
        """Release files and connections."""


class IndexSink(Sink):
    """Bulk ``create`` requests into an Elasticsearch index, one document per alert."""

    name = "index"

    def __init__(self, client: elasticsearch.Elasticsearch, index: str, policy: retry.RetryPolicy,
                 stop: threading.Event) -> None:
        self.client = client
        self.index = index
        self.policy = policy
        self.stop = stop

    def deliver(self, alerts: Sequence[Alert]) -> None:
        pending = list(alerts)
        attempt = 0
        while pending:
            attempt += 1
            operations: List[Dict[str, Any]] = []
            for alert in pending:
                operations.append({"create": {"_index": self.index, "_id": alert_key(alert)}})
                operations.append(alert)
            response = retry.call(f"POST /_bulk ({len(pending)} alerts to {self.index})",
                                  lambda: self.client.bulk(operations=operations), self.policy, self.stop)
            pending = self._failed_items(pending, response["items"])
            if pending:
                if attempt >= self.policy.attempts:
                    raise DeliveryError(f"{len(pending)} alerts still rejected by {self.index} after "
                                        f"{attempt} bulk requests")
                wait = self.policy.delay(attempt)
                log.warning("bulk request: %d alerts rejected with a retryable status; retry %d of %d in %.2f s",
                            len(pending), attempt, self.policy.attempts - 1, wait)
                if self.stop.wait(wait):
                    raise retry.Stopped("bulk retry")

    def _failed_items(self, sent: Sequence[Alert], items: Sequence[Dict[str, Any]]) -> List[Alert]:
        """Return the alerts to send again; raises DeliveryError on a permanent item error."""
        again = []
        for alert, item in zip(sent, items):
            result = item.get("create") or next(iter(item.values()))
            status = int(result.get("status", 0))
            if 200 <= status < 300:
                continue
            if status == 409:  # the alert was delivered before a restart
                log.debug("alert %s already in %s", alert_key(alert), self.index)
                continue
            if status == 429 or status >= 500:
                again.append(alert)
                continue
            error = result.get("error") or {}
            raise DeliveryError(f"{self.index} rejected alert {alert_key(alert)}: HTTP {status} "
                                f"{error.get('type', '')} {error.get('reason', '')}".rstrip())
        return again


class FileSink(Sink):
    """One JSON object per line, appended, flushed and fsynced before the checkpoint."""

    name = "file"

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.recovered: Set[str] = set()
        self.handle: Optional[Any] = None

    def recover(self, state: Dict[str, Any]) -> None:
        self.offset = int(state.get("offset", 0))
        # Alerts written after an earlier checkpoint whose page has not been delivered again yet.
        self.recovered = set(state.get("pending", []))
        self.handle = open(self.path, "a+b")
        size = os.fstat(self.handle.fileno()).st_size
        if size < self.offset:
            raise DeliveryError(f"{self.path} is shorter ({size} bytes) than at the last checkpoint "
                                f"({self.offset} bytes); it was truncated or replaced")
        self.handle.seek(self.offset)
        tail = self.handle.read()
        complete, _, partial = tail.rpartition(b"\n")
        if partial:
            cut = self.offset + len(complete) + (1 if complete else 0)
            log.warning("%s: removing an incomplete last line (%d bytes) left by a crash", self.path, len(partial))
            self.handle.truncate(cut)
        for line in complete.splitlines():
            if line.strip():
                self.recovered.add(alert_key(json.loads(line)))
        if self.recovered:
            log.info("%s: %d alerts were written after the last checkpoint; they will not be written again",
                     self.path, len(self.recovered))

    def deliver(self, alerts: Sequence[Alert]) -> None:
        if self.handle is None:
            self.recover({})
        assert self.handle is not None
        fresh = [alert for alert in alerts if alert_key(alert) not in self.recovered]
        # Once seen again, these alerts enter the poller's own de-duplication with this page.
        self.recovered.difference_update(alert_key(alert) for alert in alerts)
        if fresh:
            self.handle.seek(0, os.SEEK_END)
            text = "".join(json.dumps(alert, ensure_ascii=False, sort_keys=True) + "\n" for alert in fresh)
            self.handle.write(text.encode("utf-8"))
            self.handle.flush()
            os.fsync(self.handle.fileno())

    def state(self) -> Dict[str, Any]:
        if self.handle is not None:
            self.handle.seek(0, os.SEEK_END)
            self.offset = self.handle.tell()
        return {"offset": self.offset, "pending": sorted(self.recovered)}

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class WebhookSink(Sink):
    """One JSON ``POST`` per page: ``{"alerts": [...]}``; at-least-once across a crash."""

    name = "webhook"

    def __init__(self, url: str, tls: TlsSettings, timeout: float, policy: retry.RetryPolicy,
                 stop: threading.Event) -> None:
        self.url = url
        self.tls = tls
        self.timeout = timeout
        self.policy = policy
        self.stop = stop

    def deliver(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        body = json.dumps({"alerts": list(alerts)}, ensure_ascii=False).encode("utf-8")

        def post() -> int:
            request = urllib.request.Request(self.url, data=body, method="POST")
            request.add_header("Content-Type", "application/json")
            context = self.tls.context() if self.url.startswith("https:") else None
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:  # noqa: S310
                response.read()
                return int(response.status)

        retry.call(f"POST webhook ({len(alerts)} alerts)", post, self.policy, self.stop)
