"""Watcher watch bodies for ``PUT _watcher/watch/<id>``: a Query DSL variant and an EQL variant.

Shapes follow the Elasticsearch Watcher reference: "Create or update watch API" (trigger, input,
condition, actions, metadata), "Search input" (``request.indices``, ``request.body``,
``rest_total_hits_as_int``), "HTTP input" (``request.scheme/host/port/method/path/body``),
"Index action" (a ``_doc`` array in the payload indexes one document per element, each with its
own ``_id``), "Logging action" and "Webhook action".
"""

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import core

from elastic_watcher.documents import SEVERITY, rule_metadata
from elastic_watcher.rulepack import DeployedRule

DEFAULT_INDICES = ("logs-*", "winlogbeat-*")
DEFAULT_ALERTS_INDEX = "lsassdump-alerts"

# Watcher renders the search input's body as a Mustache template. The trigger's scheduled time
# anchors the window, so a watch that runs late still searches the window it was due for.
SCHEDULED = "{{ctx.trigger.scheduled_time}}"

# Build one alert document per hit, with the same _id as the poller's (documents.alert_id).
# ``hits`` is the list of hits: ``ctx.payload.hits.hits`` (search) or ``ctx.payload.hits.events`` (EQL).
ALERTS_SCRIPT = """
def alerts = [];
for (def hit : HITS) {
  def src = hit._source;
  def id = (ctx.metadata.rule_id + '/' + hit._index + '/' + hit._id).sha256();
  alerts.add([
    '_id': id,
    '@timestamp': src['@timestamp'],
    'event': ['kind': 'alert', 'created': ctx.execution_time.toString(), 'severity': params.risk_score],
    'rule': ['id': ctx.metadata.rule_id, 'name': ctx.metadata.title, 'level': ctx.metadata.level,
             'severity': params.severity],
    'threat': ['framework': 'MITRE ATT&CK', 'technique': ['id': ctx.metadata.attack_techniques]],
    'host': ['name': src.host?.name],
    'process': ['command_line': src.process?.command_line, 'executable': src.process?.executable],
    'lsassdump': ['alert_id': id, 'event': ['index': hit._index, 'id': hit._id], 'source': ctx.watch_id]
  ]);
}
return ['_doc': alerts];
""".strip()

WEBHOOK_SCRIPT = """
def ids = [];
for (def hit : HITS) { ids.add(['index': hit._index, 'id': hit._id]); }
return ['watch_id': ctx.watch_id, 'rule': ctx.metadata, 'total': TOTAL, 'events': ids];
""".strip()


@dataclass(frozen=True)
class WatchSettings:
    """The settings every generated watch shares: indices, schedule, window, size and alert outputs."""

    indices: Tuple[str, ...] = DEFAULT_INDICES
    alerts_index: str = DEFAULT_ALERTS_INDEX
    interval: str = "5m"
    # The search window is the interval plus this lag, so consecutive windows overlap and events
    # indexed up to ``lag`` late are still seen. The alert ids make the overlap harmless.
    lag: str = "5m"
    size: int = 1000
    throttle: str = "15m"
    webhook: Optional[str] = None
    generator: str = field(default_factory=lambda: f"lsassdump {core.__version__}")

    def window(self) -> str:
        """Return the search window (interval plus lag) in Elasticsearch time units."""
        return f"{_seconds(self.interval) + _seconds(self.lag)}s"


def _seconds(value: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = value[:-1], value[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(f"invalid time value {value!r}; use a whole number with s, m, h or d, such as 5m")
    return int(number) * units[unit]


def check_settings(settings: WatchSettings) -> None:
    """Raise ValueError naming the first setting that Watcher would reject."""
    _seconds(settings.interval)
    _seconds(settings.lag)
    _seconds(settings.throttle)
    if not 1 <= settings.size <= 10000:
        raise ValueError(f"--size {settings.size} is out of range; use 1 to 10000 (index.max_result_window)")
    if settings.webhook:
        _http_target(settings.webhook, "--webhook")


def watch_id(deployed: DeployedRule, variant: str = "") -> str:
    """Return the watch id: ``lsassdump-<rule id>``, with ``-eql`` for the EQL variant."""
    return f"lsassdump-{deployed.id}" + (f"-{variant}" if variant else "")


def time_range(settings: WatchSettings) -> Dict[str, Any]:
    """Return the range clause on ``@timestamp`` for the window that ends at the scheduled time."""
    return {"range": {"@timestamp": {"gte": f"{SCHEDULED}||-{settings.window()}", "lte": SCHEDULED}}}


def _metadata(deployed: DeployedRule, settings: WatchSettings, variant: str) -> Dict[str, Any]:
    return dict(rule_metadata(deployed), query_language=variant, generator=settings.generator)


def _actions(deployed: DeployedRule, settings: WatchSettings, hits: str, total: str) -> Dict[str, Any]:
    severity, risk = SEVERITY[deployed.rule.level]
    params = {"severity": severity, "risk_score": risk}
    actions: Dict[str, Any] = {
        "log": {
            "throttle_period": settings.throttle,
            "logging": {
                "level": "warn",
                "text": "lsassdump: rule '{{ctx.metadata.title}}' ({{ctx.metadata.rule_id}}, level "
                        "{{ctx.metadata.level}}) matched {{" + total + "}} event(s); alerts go to "
                        + settings.alerts_index,
            },
        },
        # Not throttled: every hit must reach the alerts index, and the fixed _id per alert
        # makes the overlapping windows rewrite the same documents instead of adding copies.
        "index_alerts": {
            "transform": {"script": {"source": ALERTS_SCRIPT.replace("HITS", hits), "params": params}},
            "index": {"index": settings.alerts_index},
        },
    }
    if settings.webhook:
        target = _http_target(settings.webhook, "--webhook")
        actions["webhook"] = {
            "throttle_period": settings.throttle,
            "transform": {"script": {"source": WEBHOOK_SCRIPT.replace("HITS", hits).replace("TOTAL", total)}},
            "webhook": dict(target, method="post", headers={"Content-Type": "application/json"},
                            body="{{#toJson}}ctx.payload{{/toJson}}"),
        }
    return actions


def _no_mustache(deployed: DeployedRule, query_text: str) -> None:
    """Raise ValueError when a query contains ``{{``, which Watcher would render as a Mustache tag."""
    if "{{" in query_text:
        raise ValueError(f"rule {deployed.id}: its query contains '{{{{', which Watcher would read as a "
                         "Mustache tag; use the poller for this rule")


def search_watch(deployed: DeployedRule, settings: WatchSettings) -> Dict[str, Any]:
    """Return the watch that searches with the rule's exact Query DSL."""
    query = deployed.query_dsl()
    _no_mustache(deployed, json.dumps(query, ensure_ascii=False))
    body = {
        "size": settings.size,
        "query": {"bool": {"filter": [query, time_range(settings)]}},
        "sort": [{"@timestamp": {"order": "asc"}}],
    }
    hits = "ctx.payload.hits.hits"
    return {
        "trigger": {"schedule": {"interval": settings.interval}},
        "input": {"search": {"request": {
            "indices": list(settings.indices),
            # A plain number in hits.total, which the compare condition needs.
            "rest_total_hits_as_int": True,
            "body": body,
        }}},
        "condition": {"compare": {"ctx.payload.hits.total": {"gt": 0}}},
        "actions": _actions(deployed, settings, hits, "ctx.payload.hits.total"),
        "metadata": _metadata(deployed, settings, "dsl"),
    }


def eql_watch(deployed: DeployedRule, settings: WatchSettings, cluster_url: str,
              auth: Optional[Tuple[str, str]] = None) -> Dict[str, Any]:
    """Return the watch whose http input posts the rule's EQL to ``_eql/search`` on ``cluster_url``.

    The EQL search API returns ``hits.total`` as an object, hence the condition on
    ``hits.total.value``, and its hits under ``hits.events``. ``auth`` (user, password) goes into
    the input's ``auth.basic`` only when given; ``build`` never writes credentials to files.
    """
    target = _http_target(cluster_url, "--eql-url")
    query = deployed.eql()
    _no_mustache(deployed, query)
    body = {"query": query, "size": settings.size, "filter": time_range(settings)}
    request: Dict[str, Any] = dict(
        target, method="post",
        path=target["path"].rstrip("/") + "/" + ",".join(urllib.parse.quote(i, safe="*-_.") for i in settings.indices)
        + "/_eql/search",
        headers={"Content-Type": "application/json"},
        body=json.dumps(body, ensure_ascii=False))
    if auth is not None:
        request["auth"] = {"basic": {"username": auth[0], "password": auth[1]}}
    return {
        "trigger": {"schedule": {"interval": settings.interval}},
        "input": {"http": {"request": request}},
        "condition": {"compare": {"ctx.payload.hits.total.value": {"gt": 0}}},
        "actions": _actions(deployed, settings, "ctx.payload.hits.events", "ctx.payload.hits.total.value"),
        "metadata": _metadata(deployed, settings, "eql"),
    }


def _http_target(url: str, option: str) -> Dict[str, Any]:
    """Split a URL into the scheme, host, port, path and params fields Watcher's HTTP requests take."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{option} {url!r} is not an http:// or https:// URL with a host")
    if parsed.username is not None:
        raise ValueError(f"{option} must not hold a user name or password")
    target: Dict[str, Any] = {
        "scheme": parsed.scheme, "host": parsed.hostname,
        "port": parsed.port or (443 if parsed.scheme == "https" else 80),
        "path": parsed.path or "/",
    }
    params = dict(urllib.parse.parse_qsl(parsed.query))
    if params:
        target["params"] = params
    return target


def simulate_modes(watch: Dict[str, Any]) -> Dict[str, str]:
    """Return ``action_modes`` that simulate every action of a watch, for ``_execute``."""
    return {name: "simulate" for name in watch["actions"]}


def action_names(watch: Dict[str, Any]) -> List[str]:
    """Return the action ids of a watch."""
    return list(watch["actions"])
