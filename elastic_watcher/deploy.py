"""Deployment: check the licence, put each watch and run it once in simulate mode, import Kibana rules.

Requests, from the Elasticsearch and Kibana references: ``GET /_license`` ("Get license API":
``license.type`` and ``license.status``); ``PUT /_watcher/watch/<id>`` ("Create or update watch
API"); ``POST /_watcher/watch/<id>/_execute`` with ``action_modes`` set to ``simulate`` for every
action ("Execute watch API": the input and condition run for real, the actions only report what
they would do), which proves the watch parses and its search runs; and Kibana's
``POST /api/detection_engine/rules/_import``.
"""

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import elasticsearch

from elastic_watcher import kibana, retry
from elastic_watcher.connection import Credentials, TlsSettings
from elastic_watcher.rulepack import DeployedRule
from elastic_watcher.watches import WatchSettings, eql_watch, search_watch, simulate_modes, watch_id

log = logging.getLogger(__name__)

# Licence types that include Watcher: Standard on Elastic Cloud, Gold and above self-managed, and
# the trial. Basic does not.
WATCHER_LICENCES = ("standard", "gold", "platinum", "enterprise", "trial")
# Watch record states that mean the watch ran: its condition was met (executed, throttled) or not.
RAN_STATES = ("executed", "execution_not_needed", "throttled")


class DeployError(Exception):
    """A deployment step that failed; the message names the step and the server's reason."""


@dataclass(frozen=True)
class Licence:
    """The cluster's licence type and status, and whether they include Watcher."""

    type: str
    status: str

    @property
    def allows_watcher(self) -> bool:
        return self.status == "active" and self.type in WATCHER_LICENCES


@dataclass
class WatchOutcome:
    """One deployed watch and what its simulated run found."""

    watch_id: str
    state: str
    hits: Optional[int]


@dataclass
class DeployReport:
    """The outcome of a deployment: the licence, the watches deployed, the Kibana rules imported."""

    licence: Optional[Licence] = None
    watches: List[WatchOutcome] = field(default_factory=list)
    kibana_rules: Optional[int] = None
    skipped: List[str] = field(default_factory=list)


def get_licence(client: elasticsearch.Elasticsearch, policy: retry.RetryPolicy) -> Licence:
    """Return the cluster's licence (``GET /_license``)."""
    answer = retry.call("GET /_license", lambda: client.license.get(), policy)
    licence = answer["license"]
    return Licence(type=str(licence.get("type", "")).lower(), status=str(licence.get("status", "")).lower())


def put_and_simulate(client: elasticsearch.Elasticsearch, identifier: str, body: Dict[str, Any],
                     policy: retry.RetryPolicy) -> WatchOutcome:
    """Put one watch, run it once with every action simulated, and check that its input worked."""
    retry.call(f"PUT /_watcher/watch/{identifier}", lambda: client.watcher.put_watch(id=identifier, **body), policy)
    log.info("watch %s stored", identifier)
    executed = retry.call(f"POST /_watcher/watch/{identifier}/_execute", lambda: client.watcher.execute_watch(
        id=identifier, action_modes=simulate_modes(body), record_execution=False), policy)
    record = executed["watch_record"]
    state = str(record.get("state", ""))
    result = record.get("result") or {}
    watch_input = result.get("input") or {}
    if state not in RAN_STATES or watch_input.get("status") == "failure":
        reason = watch_input.get("reason") or "; ".join(record.get("messages") or []) or state
        raise DeployError(f"watch {identifier} was stored but its simulated run failed: {reason}")
    payload = watch_input.get("payload") or {}
    status_code = payload.get("_status_code")
    if status_code is not None and int(status_code) >= 400:
        raise DeployError(f"watch {identifier}: its http input got HTTP {status_code} from _eql/search; "
                          "set ES_WATCH_USERNAME and ES_WATCH_PASSWORD for a user that may read the indices")
    total = (payload.get("hits") or {}).get("total")
    hits = total.get("value") if isinstance(total, dict) else total
    log.info("watch %s simulated: state %s, %s hit(s) in the current window", identifier, state, hits)
    return WatchOutcome(identifier, state, int(hits) if hits is not None else None)


def deploy_watches(client: elasticsearch.Elasticsearch, rules: Sequence[DeployedRule], settings: WatchSettings,
                   policy: retry.RetryPolicy, eql_url: Optional[str] = None,
                   eql_auth: Optional[Tuple[str, str]] = None) -> DeployReport:
    """Check the licence, then deploy each rule's watches; on a licence without Watcher, deploy none."""
    report = DeployReport(licence=get_licence(client, policy))
    licence = report.licence
    log.info("licence: %s (%s)", licence.type, licence.status)
    if not licence.allows_watcher:
        report.skipped = [watch_id(deployed) for deployed in rules]
        return report
    for deployed in rules:
        report.watches.append(put_and_simulate(client, watch_id(deployed), search_watch(deployed, settings), policy))
        if eql_url:
            body = eql_watch(deployed, settings, eql_url, eql_auth)
            report.watches.append(put_and_simulate(client, watch_id(deployed, "eql"), body, policy))
    return report


def import_detection_rules(kibana_url: str, text: str, creds: Credentials, tls: TlsSettings, timeout: float,
                           policy: retry.RetryPolicy) -> int:
    """Import NDJSON detection rules into Kibana (overwriting rules with the same ``rule_id``)."""
    request = kibana.import_request(kibana_url, text, creds)
    status, answer = retry.call(f"POST {kibana.IMPORT_PATH}",
                                lambda: kibana.send(request, tls, timeout), policy, threading.Event())
    errors = answer.get("errors") or []
    if errors or not answer.get("success", status == 200):
        details = "; ".join(f"{e.get('rule_id', '?')}: {(e.get('error') or {}).get('message', e)}" for e in errors)
        raise DeployError(f"Kibana rejected detection rules: {details or answer}")
    count = int(answer.get("success_count", 0))
    log.info("Kibana imported %d detection rule(s)", count)
    return count
