"""The poller: scans new events with a point in time and ``search_after``, and alerts through the core.

One cycle opens a point in time (PIT) on the index pattern and pages through the events whose
``@timestamp`` is at or after the lower bound, sorted by ``@timestamp`` with the ``_shard_doc``
tiebreaker. Within a PIT, ``_shard_doc`` is unique per document, so paging with ``search_after``
neither skips nor repeats a document. The server selects events with a prefilter:

- ``logsource`` (default): only the ECS logsource filter, so every process-start event reaches the
  core, which alone decides. This is exact even where Elasticsearch matches differently from the
  core, for example where it folds only ASCII case;
- ``query``: the rules' own Query DSL as well, which sends fewer events; the core still checks
  each hit, so no false alert results, but an event Elasticsearch's matching misses is not seen.

After every page the alerts go to each sink and the checkpoint is saved. The lower bound of the
next cycle is the newest event time seen minus the overlap window, so events indexed late (up to
the overlap) are still scanned; the checkpoint keeps the ids of the alerts delivered within the
window, so the rescanned ones are not delivered twice.
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

import elasticsearch

from elastic_watcher import checkpoint as checkpoints
from elastic_watcher import retry
from elastic_watcher.documents import alert_document, alert_id, matches
from elastic_watcher.rulepack import DeployedRule, logsource_filter
from elastic_watcher.sinks import Alert, DeliveryError, Sink

log = logging.getLogger(__name__)

PREFILTERS = ("logsource", "query")


@dataclass(frozen=True)
class PollerSettings:
    """The poller's configuration: the index pattern, the prefilter, paging, timing and the checkpoint path."""

    index: str
    state_path: str
    prefilter: str = "logsource"
    page_size: int = 1000
    interval: float = 60.0
    overlap_ms: int = 300_000
    # Lower bound of the first cycle: an ISO 8601 time, epoch milliseconds or date math ("now-1h").
    since: str = "now-1h"
    keep_alive: str = "5m"
    once: bool = False


@dataclass
class CycleResult:
    """The counts of one cycle, and whether it reached the newest event."""

    events: int = 0
    pages: int = 0
    alerts: int = 0
    completed: bool = False


class Poller:
    """Runs cycles until stopped (or once), delivering each new alert to every sink."""

    def __init__(self, client: elasticsearch.Elasticsearch, rules: Sequence[DeployedRule], sinks: Sequence[Sink],
                 settings: PollerSettings, policy: retry.RetryPolicy, stop: threading.Event,
                 clock: Callable[[], float] = time.time) -> None:
        if settings.prefilter not in PREFILTERS:
            raise ValueError(f"unknown prefilter {settings.prefilter!r}; use one of {', '.join(PREFILTERS)}")
        self.client = client
        self.rules = list(rules)
        self.sinks = list(sinks)
        self.settings = settings
        self.policy = policy
        self.stop = stop
        self.clock = clock
        self.fingerprint = checkpoints.fingerprint(settings.index, [r.id for r in self.rules], settings.prefilter)
        self.checkpoint = checkpoints.load(settings.state_path, self.fingerprint)
        self.prefilter = self._prefilter_query()

    def _prefilter_query(self) -> Dict[str, Any]:
        if self.settings.prefilter == "logsource":
            return logsource_filter()
        queries = [deployed.query_dsl() for deployed in self.rules]
        return queries[0] if len(queries) == 1 else {"bool": {"should": queries, "minimum_should_match": 1}}

    # The cycle loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Poll until stopped; with ``once``, until one cycle has scanned everything. Returns an exit code."""
        settings = self.settings
        log.info("poller started: index %s, %d rule(s), prefilter %s, state %s, sinks %s, checkpoint cursor %s",
                 settings.index, len(self.rules), settings.prefilter, settings.state_path,
                 ", ".join(sink.name for sink in self.sinks), _show_time(self.checkpoint.cursor))
        for sink in self.sinks:
            try:
                sink.recover(self.checkpoint.sinks.get(sink.name, {}))
            except (OSError, ValueError, DeliveryError) as error:
                log.error("cannot resume the %s output: %s", sink.name, error)
                log.info("poller stopped: exit code 1")
                return 1
        code = 0
        try:
            while not self.stop.is_set():
                try:
                    result = self.cycle()
                except retry.Stopped:
                    break
                except Exception as error:  # noqa: BLE001 - logged; the next cycle starts from the checkpoint
                    log.error("cycle failed: %s", retry.describe(error))
                    if settings.once:
                        code = 1
                        break
                else:
                    if result.completed:
                        log.info("cycle done: %d events scanned in %d pages, %d new alerts, cursor %s",
                                 result.events, result.pages, result.alerts, _show_time(self.checkpoint.cursor))
                        if settings.once:
                            break
                if self.stop.wait(settings.interval):
                    break
        finally:
            for sink in self.sinks:
                sink.close()
        log.info("poller stopped: %d events scanned and %d alerts delivered in total, exit code %d",
                 self.checkpoint.events_scanned, self.checkpoint.alerts_delivered, code)
        return code

    def cycle(self) -> CycleResult:
        """Scan from the checkpoint to the newest event; raises after the retries run out."""
        result = CycleResult()
        position = self.checkpoint.scan
        if position is not None:
            log.info("resuming the scan of point in time %s… after sort values %s",
                     position.pit_id[:12], position.search_after)
        else:
            position = self._open_scan()
        restarts = 0
        while True:
            try:
                page = self._search(position)
            except elasticsearch.NotFoundError as error:
                restarts += 1
                if "search_context_missing" not in str(error) or restarts >= self.policy.attempts:
                    raise
                log.warning("point in time expired or lost; restarting the scan from cursor %s",
                            _show_time(self.checkpoint.cursor))
                position = self._open_scan()
                continue
            position.pit_id = page.get("pit_id") or position.pit_id
            hits = page["hits"]["hits"]
            if hits:
                result.alerts += self._deliver_page(position, hits)
                result.events += len(hits)
                result.pages += 1
            if len(hits) < self.settings.page_size:
                break
            if self.stop.is_set():
                log.info("stopping after page %d; the scan will resume from the checkpoint", result.pages)
                return result
        self._close_scan(position)
        result.completed = True
        return result

    # Point in time and search ---------------------------------------------------------------

    def _open_scan(self) -> checkpoints.ScanPosition:
        cursor = self.checkpoint.cursor
        lower: Any = self.settings.since if cursor is None else max(0, cursor - self.settings.overlap_ms)
        index = self.settings.index
        opened = retry.call(f"POST /{index}/_pit", lambda: self.client.open_point_in_time(
            index=index, keep_alive=self.settings.keep_alive), self.policy, self.stop)
        log.debug("opened point in time %s… on %s from %s", opened["id"][:12], index, lower)
        return checkpoints.ScanPosition(pit_id=opened["id"], search_after=None, lower=lower)

    def _close_scan(self, position: checkpoints.ScanPosition) -> None:
        self.checkpoint.scan = None
        self._save()
        try:
            self.client.close_point_in_time(id=position.pit_id)
        except Exception as error:  # noqa: BLE001 - the point in time expires after keep_alive anyway
            log.warning("closing point in time failed (%s); it expires after %s",
                        retry.describe(error), self.settings.keep_alive)

    def _search(self, position: checkpoints.ScanPosition) -> Any:
        body: Dict[str, Any] = {
            "size": self.settings.page_size,
            "query": {"bool": {"filter": [self.prefilter, {"range": {"@timestamp": {
                "gte": position.lower, "format": "strict_date_optional_time||epoch_millis"}}}]}},
            "pit": {"id": position.pit_id, "keep_alive": self.settings.keep_alive},
            "sort": [{"@timestamp": {"order": "asc"}}, {"_shard_doc": "asc"}],
            "track_total_hits": False,
        }
        if position.search_after is not None:
            body["search_after"] = position.search_after
        return retry.call("POST /_search (point in time)", lambda: self.client.search(**body), self.policy, self.stop)

    # Evaluation, delivery, checkpoint -------------------------------------------------------

    def _deliver_page(self, position: checkpoints.ScanPosition, hits: List[Dict[str, Any]]) -> int:
        """Evaluate a page, deliver its new alerts to every sink, then save the checkpoint."""
        state = self.checkpoint
        created = datetime.fromtimestamp(self.clock(), timezone.utc).isoformat().replace("+00:00", "Z")
        alerts: List[Alert] = []
        times: Dict[str, int] = {}
        seen: Set[str] = set()
        for hit in hits:
            for deployed, match in matches(self.rules, hit):
                key = alert_id(deployed.id, str(hit["_index"]), str(hit["_id"]))
                if key in state.delivered or key in seen:
                    continue
                seen.add(key)
                times[key] = int(hit["sort"][0])
                alerts.append(alert_document(deployed, hit, match, created))
        for sink in self.sinks:
            sink.deliver(alerts)

        now_ms = int(self.clock() * 1000)
        newest = int(hits[-1]["sort"][0])
        # A clock-skewed event from the future must not move the cursor past the present, or the
        # events of the next minutes would fall outside the overlap window.
        state.cursor = max(state.cursor or 0, min(newest, now_ms))
        state.delivered.update(times)
        state.prune(state.cursor - self.settings.overlap_ms)
        state.scan = checkpoints.ScanPosition(pit_id=position.pit_id, search_after=list(hits[-1]["sort"]),
                                              lower=position.lower)
        position.search_after = list(hits[-1]["sort"])
        state.events_scanned += len(hits)
        state.alerts_delivered += len(alerts)
        state.sinks = {sink.name: sink.state() for sink in self.sinks}
        self._save()
        for alert in alerts:
            log.info("alert %s: rule %s matched event %s/%s", alert["lsassdump"]["alert_id"][:16],
                     alert["rule"]["id"], alert["lsassdump"]["event"]["index"], alert["lsassdump"]["event"]["id"])
        return len(alerts)

    def _save(self) -> None:
        checkpoints.save(self.settings.state_path, self.checkpoint)


def _show_time(millis: Optional[int]) -> str:
    if millis is None:
        return "none"
    return datetime.fromtimestamp(millis / 1000, timezone.utc).isoformat().replace("+00:00", "Z")
