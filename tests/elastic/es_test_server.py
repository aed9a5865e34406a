"""Loopback test servers that speak the Elasticsearch, Kibana and webhook endpoints lsassdump uses.

``FakeElasticsearch`` keeps indices in memory, answers searches with the Query DSL emulator of
``core.emulators.dsl`` (Watcher-only pieces such as the time ``range`` are evaluated here),
records every request, and injects faults: dropped connections, error statuses, slow answers,
answers that hang until released, and bulk requests cut off after some items. Every answer
carries ``X-Elastic-Product: Elasticsearch``, without which elasticsearch-py 8 and later refuse
to talk to a server.

Response shapes follow the Elasticsearch reference pages of each API (get license, create
watch, execute watch, open and close point in time, search, bulk, EQL search).
"""

import base64
import email
import email.policy
import fnmatch
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from core.mappings import MAPPINGS

# --- time values ------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
                  r"(Z|[+-]\d{2}:?\d{2})?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(value: Any, now: Optional[float] = None) -> int:
    """Return epoch milliseconds for epoch ms, ISO 8601 text or date math (``now-1h``, ``T||-600s``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    anchor_text, _, math = text.partition("||") if "||" in text else (text, "", "")
    if anchor_text.startswith("now"):
        math = anchor_text[3:]
        base = int((time.time() if now is None else now) * 1000)
    elif anchor_text.isdigit():
        base = int(anchor_text)
    else:
        base = _iso_millis(anchor_text)
    for sign, number, unit in re.findall(r"([+-])(\d+)([smhd])", math):
        delta = int(number) * _UNITS[unit] * 1000
        base += delta if sign == "+" else -delta
    return base


def _iso_millis(text: str) -> int:
    found = _ISO.match(text)
    if not found:
        raise ValueError(f"failed to parse date field [{text}]")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                      tzinfo=timezone.utc)
    millis = int(moment.timestamp() * 1000) + int((fraction or "0")[:3].ljust(3, "0"))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        millis -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * 1000
    return millis


def iso(millis: int) -> str:
    """Return epoch milliseconds as ISO 8601 text in UTC with milliseconds."""
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=millis)).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def flatten(source: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in source.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- queries ----------------------------------------------------------------------------------

FIELD_TYPES = dict(MAPPINGS["ecs"].field_types)


def _dsl_compiler() -> Optional[Callable[..., Callable[[Dict[str, Any]], bool]]]:
    try:
        from core.emulators.dsl import compile_dsl
    except ImportError:
        return None
    return compile_dsl  # type: ignore[no-any-return]


class QueryCompiler:
    """Compiles search queries: ``bool``, ``range`` on ``@timestamp`` and ``match_all`` here,
    every other clause (the rules' queries and logsource filters) with the Query DSL emulator."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.emulator = _dsl_compiler()

    def compile(self, query: Optional[Dict[str, Any]]) -> Callable[[Dict[str, Any], int], bool]:
        """Return a test on (flat document, timestamp in ms)."""
        if not query or "match_all" in query:
            return lambda doc, ts: True
        if "range" not in json.dumps(query):
            return self._leaf(query)
        if "range" in query:
            return self._range(query["range"])
        if "bool" in query:
            return self._bool(query["bool"])
        raise ValueError(f"query clause not supported by the test server: {sorted(query)}")

    def _leaf(self, query: Dict[str, Any]) -> Callable[[Dict[str, Any], int], bool]:
        if self.emulator is None:
            raise RuntimeError("core.emulators.dsl is missing: the test server cannot evaluate Query DSL")
        test = self.emulator(query, FIELD_TYPES)
        return lambda doc, ts: bool(test(doc))

    def _range(self, spec: Dict[str, Any]) -> Callable[[Dict[str, Any], int], bool]:
        (name, bounds), = spec.items()
        if name != "@timestamp":
            raise ValueError(f"range on {name} not supported by the test server")
        now = self.now()
        low = parse_time(bounds["gte"], now) if "gte" in bounds else None
        high = parse_time(bounds["lte"], now) if "lte" in bounds else None
        return lambda doc, ts: (low is None or ts >= low) and (high is None or ts <= high)

    def _bool(self, spec: Dict[str, Any]) -> Callable[[Dict[str, Any], int], bool]:
        required = [self.compile(q) for key in ("must", "filter") for q in _as_list(spec.get(key))]
        optional = [self.compile(q) for q in _as_list(spec.get("should"))]
        excluded = [self.compile(q) for q in _as_list(spec.get("must_not"))]
        minimum = 0
        if optional:
            minimum = int(spec.get("minimum_should_match", 0 if required else 1))

        def test(doc: Dict[str, Any], ts: int) -> bool:
            if not all(t(doc, ts) for t in required) or any(t(doc, ts) for t in excluded):
                return False
            return sum(1 for t in optional if t(doc, ts)) >= minimum
        return test


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- state ------------------------------------------------------------------------------------

@dataclass
class Document:
    index: str
    id: str
    source: Dict[str, Any]
    flat: Dict[str, Any]
    timestamp: int
    sequence: int


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def ndjson(self) -> List[Any]:
        return [json.loads(line) for line in self.body.decode("utf-8").splitlines() if line.strip()]


@dataclass
class Fault:
    """A fault applied to matching requests: after ``skip`` of them, to the next ``times``."""

    method: Optional[str]
    path: Optional[str]
    action: str
    status: int = 500
    delay: float = 0.0
    skip: int = 0
    times: int = 1
    items: int = 0
    seen: int = 0
    applied: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or re.search(self.path, path) is not None)


class Faults:
    """The fault rules of one server, applied in the order they were added."""

    ACTIONS = ("status", "drop", "delay", "hang", "expire_pits", "bulk_partial", "bulk_item_429")

    def __init__(self) -> None:
        self.rules: List[Fault] = []
        self.lock = threading.Lock()

    def add(self, action: str, method: Optional[str] = None, path: Optional[str] = None, **options: Any) -> Fault:
        if action not in self.ACTIONS:
            raise ValueError(f"unknown fault {action!r}")
        fault = Fault(method=method, path=path, action=action, **options)
        with self.lock:
            self.rules.append(fault)
        return fault

    def pick(self, method: str, path: str) -> Optional[Fault]:
        with self.lock:
            for fault in self.rules:
                if fault.applied >= fault.times or not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.applied += 1
                return fault
        return None

    def release_all(self) -> None:
        with self.lock:
            for fault in self.rules:
                fault.release.set()


class Dropped(Exception):
    """Raised to close the connection without a response."""


class FakeElasticsearch:
    """An in-memory Elasticsearch on 127.0.0.1 with a random port, run in a thread."""

    def __init__(self, licence: str = "platinum", require_auth: Optional[str] = None,
                 now: Callable[[], float] = time.time) -> None:
        self.licence = licence
        self.require_auth = require_auth
        self.now = now
        self.documents: Dict[str, Dict[str, Document]] = {}
        self.sequence = 0
        self.pits: Dict[str, List[Document]] = {}
        self.matches: Dict[Tuple[Optional[str], str], List[Document]] = {}
        self.watches: Dict[str, Dict[str, Any]] = {}
        self.requests: List[Request] = []
        self.faults = Faults()
        self.queries = QueryCompiler(now)
        self.lock = threading.RLock()
        self.server: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None

    # Lifecycle and data ---------------------------------------------------------------------

    def start(self) -> str:
        handler = _handler_for(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-es", daemon=True)
        self.thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.faults.release_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def index(self, index: str, doc_id: str, source: Dict[str, Any], create: bool = False) -> int:
        """Store a document; returns 201 (created), 200 (replaced) or 409 (exists, with ``create``)."""
        with self.lock:
            docs = self.documents.setdefault(index, {})
            existed = doc_id in docs
            if existed and create:
                return 409
            self.sequence += 1
            flat = flatten(source)
            stamp = flat.get("@timestamp")
            docs[doc_id] = Document(index, doc_id, source, flat, parse_time(stamp) if stamp is not None else 0,
                                    self.sequence)
            return 200 if existed else 201

    def load(self, index: str, documents: List[Tuple[str, Dict[str, Any]]]) -> None:
        for doc_id, source in documents:
            self.index(index, doc_id, source)

    def sources(self, index: str) -> Dict[str, Dict[str, Any]]:
        with self.lock:
            return {doc_id: doc.source for doc_id, doc in self.documents.get(index, {}).items()}

    def resolve(self, expression: str) -> List[str]:
        names: List[str] = []
        with self.lock:
            for part in unquote(expression).split(","):
                for name in sorted(self.documents):
                    if fnmatch.fnmatchcase(name, part) and name not in names:
                        names.append(name)
        return names

    def recorded(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Request]:
        return [r for r in list(self.requests)
                if (method is None or r.method == method) and (path is None or re.search(path, r.path))]

    # API handlers, each returning (status, body) ----------------------------------------------

    def handle(self, request: Request) -> Tuple[int, Any]:
        method, path = request.method, request.path
        if self.require_auth and request.headers.get("authorization") != self.require_auth:
            return 401, _error(401, "security_exception", "missing authentication credentials for REST request")
        if path == "/" and method in ("GET", "HEAD"):
            return 200, {"name": "fake", "cluster_name": "lsassdump-test",
                         "version": {"number": "9.1.0", "build_flavor": "default"}, "tagline": "You Know, for Search"}
        if path == "/_license" and method == "GET":
            return 200, self._licence()
        found = re.fullmatch(r"/_watcher/watch/([^/]+)", path)
        if found and method in ("PUT", "POST"):
            return self._put_watch(unquote(found.group(1)), request.json())
        found = re.fullmatch(r"/_watcher/watch/([^/]+)/_execute", path)
        if found and method in ("PUT", "POST"):
            return self._execute_watch(unquote(found.group(1)), request.json() or {})
        found = re.fullmatch(r"/([^/_][^/]*)/_pit", path)
        if found and method == "POST":
            return self._open_pit(found.group(1), request.query)
        if path == "/_pit" and method == "DELETE":
            return self._close_pit(request.json() or {})
        if path == "/_search" and method in ("GET", "POST"):
            return self._search(None, request.json() or {})
        found = re.fullmatch(r"/([^/_][^/]*)/_search", path)
        if found and method in ("GET", "POST"):
            return self._search(found.group(1), request.json() or {})
        found = re.fullmatch(r"/([^/_][^/]*)/_eql/search", path)
        if found and method in ("GET", "POST"):
            return self._eql_search(found.group(1), request.json() or {})
        if path == "/_bulk" and method in ("POST", "PUT"):
            return self._bulk(request.ndjson(), None)
        return 400, _error(400, "illegal_argument_exception", f"no handler for [{method} {path}] in the test server")

    def _licence(self) -> Dict[str, Any]:
        licence: Dict[str, Any] = {"status": "active", "uid": "00000000-0000-0000-0000-000000000000",
                                   "type": self.licence, "issue_date": "2026-01-01T00:00:00.000Z",
                                   "issue_date_in_millis": 1767225600000, "max_nodes": 1000,
                                   "max_resource_units": None, "issued_to": "lsassdump-test",
                                   "issuer": "elasticsearch", "start_date_in_millis": -1}
        if self.licence != "basic":
            licence.update(expiry_date="2027-01-01T00:00:00.000Z", expiry_date_in_millis=1798761600000)
        return {"license": licence}

    def _put_watch(self, watch_id: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        if self.licence == "basic":
            return 403, _error(403, "security_exception", "current license is non-compliant for [watcher]",
                               **{"license.expired.feature": "watcher"})
        for key in ("trigger", "input", "condition", "actions"):
            if key not in body:
                return 400, _error(400, "parse_exception", f"could not parse watch [{watch_id}]: missing [{key}]")
        with self.lock:
            created = watch_id not in self.watches
            self.watches[watch_id] = body
        return (201 if created else 200), {"_id": watch_id, "_version": 1, "_seq_no": len(self.watches) - 1,
                                           "_primary_term": 1, "created": created}

    def _execute_watch(self, watch_id: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        watch = body.get("watch") or self.watches.get(watch_id)
        if watch is None:
            return 404, _error(404, "resource_not_found_exception", f"Watch with id [{watch_id}] does not exist")
        scheduled = iso(int(self.now() * 1000))
        context = {"ctx.trigger.scheduled_time": scheduled, "ctx.trigger.triggered_time": scheduled,
                   "ctx.watch_id": watch_id}
        payload, input_result = self._run_input(watch["input"], context)
        met = _compare(watch["condition"], payload)
        modes = body.get("action_modes") or {}
        actions = []
        if met:
            for name, action in watch["actions"].items():
                kind = next(key for key in action if key not in ("transform", "throttle_period", "condition"))
                mode = modes.get(name, modes.get("_all", "execute"))
                actions.append({"id": name, "type": kind, "status": "simulated" if "simulate" in mode else "success"})
        if input_result["status"] == "failure":
            state = "failed"
        else:
            state = "executed" if met else "execution_not_needed"
        record = {
            "watch_id": watch_id, "node": "fake", "state": state, "user": "test",
            "trigger_event": {"type": "manual", "triggered_time": scheduled,
                              "manual": {"schedule": {"scheduled_time": scheduled}}},
            "input": watch["input"], "condition": watch["condition"], "metadata": watch.get("metadata"),
            "result": {"execution_time": scheduled, "execution_duration": 1, "input": input_result,
                       "condition": {"type": "compare", "status": "success", "met": met}, "actions": actions},
            "messages": [],
        }
        return 200, {"_id": f"{watch_id}_{uuid.uuid4()}-{scheduled}", "watch_record": record}

    def _run_input(self, watch_input: Dict[str, Any], context: Dict[str, str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        if "search" in watch_input:
            request = json.loads(_render(json.dumps(watch_input["search"]["request"]), context))
            status, answer = self._search(",".join(request["indices"]), request.get("body") or {},
                                          total_as_int=bool(request.get("rest_total_hits_as_int")))
            if status != 200:
                return {}, {"type": "search", "status": "failure", "reason": answer["error"]["reason"]}
            return answer, {"type": "search", "status": "success", "payload": answer}
        if "http" in watch_input:
            request = watch_input["http"]["request"]
            if self.require_auth and "auth" not in request:
                payload = {"_status_code": 401, "error": {"type": "security_exception"}}
                return payload, {"type": "http", "status": "success", "payload": payload}
            found = re.fullmatch(r"/([^/]+)/_eql/search", request["path"])
            if not found:
                return {}, {"type": "http", "status": "failure", "reason": f"test server cannot call {request['path']}"}
            status, answer = self._eql_search(found.group(1), json.loads(_render(request.get("body", "{}"), context)))
            payload = dict(answer, _status_code=status, _headers={})
            return payload, {"type": "http", "status": "success", "payload": payload}
        return {}, {"type": "none", "status": "success", "payload": {}}

    def _open_pit(self, expression: str, query: Dict[str, List[str]]) -> Tuple[int, Any]:
        if "keep_alive" not in query:
            return 400, _error(400, "action_request_validation_exception", "[keep_alive] is not specified")
        names = self.resolve(expression)
        if not names and "*" not in expression:
            return 404, _error(404, "index_not_found_exception", f"no such index [{expression}]")
        with self.lock:
            snapshot = [doc for name in names for doc in self.documents[name].values()]
            pit_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii")
            self.pits[pit_id] = snapshot
        return 200, {"id": pit_id, "_shards": {"total": len(names), "successful": len(names), "skipped": 0, "failed": 0}}

    def _close_pit(self, body: Dict[str, Any]) -> Tuple[int, Any]:
        with self.lock:
            found = self.pits.pop(body.get("id", ""), None)
        if found is None:
            return 404, {"succeeded": True, "num_freed": 0}
        return 200, {"succeeded": True, "num_freed": 1}

    def expire_pits(self) -> None:
        """Forget every point in time, as if their keep_alive had run out."""
        with self.lock:
            self.pits.clear()
            self.matches.clear()

    def _search(self, expression: Optional[str], body: Dict[str, Any], total_as_int: bool = False) -> Tuple[int, Any]:
        pit = body.get("pit")
        if pit is not None:
            if expression is not None:
                return 400, _error(400, "action_request_validation_exception",
                                   "[indices] cannot be used with point in time")
            with self.lock:
                docs = self.pits.get(pit.get("id", ""))
            if docs is None:
                return 404, _error(404, "search_context_missing_exception",
                                   f"No search context found for id [{pit.get('id')}]")
        else:
            with self.lock:
                docs = [doc for name in self.resolve(expression or "*") for doc in self.documents[name].values()]
        sort = body.get("sort") or []
        if sort and not _known_sort(sort):
            return 400, _error(400, "illegal_argument_exception", f"sort {sort} not supported by the test server")
        # The pages of one point in time share their matches, as a real search context does.
        key = (pit.get("id"), json.dumps(body.get("query"), sort_keys=True)) if pit is not None else None
        found = self.matches.get(key) if key is not None else None
        if found is None:
            try:
                test = self.queries.compile(body.get("query"))
            except (ValueError, KeyError) as error:
                return 400, _error(400, "parsing_exception", str(error))
            found = sorted((doc for doc in docs if test(doc.flat, doc.timestamp)),
                           key=lambda d: (d.timestamp, d.sequence))
            if key is not None:
                with self.lock:
                    self.matches[key] = found
        after = body.get("search_after")
        if after is not None:
            key = tuple(after[:2]) if len(after) > 1 else (after[0], -1)
            found = [doc for doc in found if (doc.timestamp, doc.sequence) > key]
        size = int(body.get("size", 10))
        hits = [{"_index": doc.index, "_id": doc.id, "_score": None, "_source": doc.source,
                 "sort": [doc.timestamp, doc.sequence] if len(sort) > 1 else [doc.timestamp]} for doc in found[:size]]
        answer: Dict[str, Any] = {"took": 1, "timed_out": False,
                                  "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                                  "hits": {"max_score": None, "hits": hits}}
        if body.get("track_total_hits") is not False:
            answer["hits"]["total"] = len(found) if total_as_int else {"value": len(found), "relation": "eq"}
        if pit is not None:
            answer["pit_id"] = pit["id"]
        return 200, answer

    def _eql_search(self, expression: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        try:
            from core.emulators import compile_query
            test = compile_query("eql", body["query"], "ecs")
        except Exception as error:  # noqa: BLE001 - reported as Elasticsearch reports a bad query
            return 400, _error(400, "verification_exception", f"test server cannot run EQL: {error}")
        window = self.queries.compile(body.get("filter"))
        with self.lock:
            docs = [doc for name in self.resolve(expression) for doc in self.documents[name].values()]
        found = sorted((d for d in docs if window(d.flat, d.timestamp) and test(d.flat)),
                       key=lambda d: (d.timestamp, d.sequence))
        events = [{"_index": d.index, "_id": d.id, "_source": d.source} for d in found[:int(body.get("size", 10))]]
        return 200, {"is_partial": False, "is_running": False, "took": 1, "timed_out": False,
                     "hits": {"total": {"value": len(found), "relation": "eq"}, "events": events}}

    def _bulk(self, lines: List[Any], fault: Optional[Fault]) -> Tuple[int, Any]:
        items = []
        pairs = list(zip(lines[0::2], lines[1::2]))
        for number, (action, source) in enumerate(pairs):
            if fault is not None and fault.action == "bulk_partial" and number >= fault.items:
                fault.release.wait(30)  # hold the connection, as a server that stalls mid-request
                raise Dropped()
            (op, meta), = action.items()
            if fault is not None and fault.action == "bulk_item_429" and number < fault.items:
                items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "status": 429,
                                   "error": {"type": "es_rejected_execution_exception",
                                             "reason": "rejected execution of coordinating operation"}}})
                continue
            status = self.index(meta["_index"], meta["_id"], source, create=op == "create")
            if status == 409:
                items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "status": 409,
                                   "error": {"type": "version_conflict_engine_exception",
                                             "reason": f"[{meta['_id']}]: version conflict, document already exists"}}})
            else:
                items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "_version": 1,
                                   "result": "created" if status == 201 else "updated", "status": status,
                                   "_shards": {"total": 1, "successful": 1, "failed": 0}}})
        return 200, {"took": 1, "errors": any(item[next(iter(item))]["status"] >= 300 for item in items),
                     "items": items}


def _known_sort(sort: List[Any]) -> bool:
    names = [next(iter(entry)) if isinstance(entry, dict) else entry for entry in sort]
    return names in (["@timestamp"], ["@timestamp", "_shard_doc"])


def _render(template: str, context: Dict[str, str]) -> str:
    for name, value in context.items():
        template = template.replace("{{" + name + "}}", value)
    return template


def _compare(condition: Dict[str, Any], payload: Dict[str, Any]) -> bool:
    if "always" in condition:
        return True
    (path, spec), = condition["compare"].items()
    value: Any = payload
    for part in path.split(".")[2:]:  # skip "ctx.payload"
        value = value.get(part) if isinstance(value, dict) else None
    (op, limit), = spec.items()
    if not isinstance(value, (int, float)):
        return False
    return {"gt": value > limit, "gte": value >= limit, "lt": value < limit, "lte": value <= limit,
            "eq": value == limit}[op]


def _error(status: int, kind: str, reason: str, **extra: Any) -> Dict[str, Any]:
    cause = dict({"type": kind, "reason": reason}, **extra)
    return {"error": dict(cause, root_cause=[cause]), "status": status}


def _handler_for(server: FakeElasticsearch) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            pass

        def _serve(self) -> None:
            request = _read_request(self)
            server.requests.append(request)
            fault = server.faults.pick(request.method, request.path)
            try:
                if fault is not None:
                    answer = self._apply(fault, request)
                    if answer is None:
                        return
                    status, body = answer
                else:
                    status, body = server.handle(request)
            except Dropped:
                self.close_connection = True
                return
            _reply(self, status, body, {"X-Elastic-Product": "Elasticsearch"})

        def _apply(self, fault: Fault, request: Request) -> Optional[Tuple[int, Any]]:
            fault.reached.set()
            if fault.action == "drop":
                self.close_connection = True
                return None
            if fault.action == "status":
                kind = {429: "es_rejected_execution_exception", 503: "unavailable_shards_exception"}.get(
                    fault.status, "internal_server_error")
                return fault.status, _error(fault.status, kind, f"injected by the test server ({fault.status})")
            if fault.action == "delay":
                time.sleep(fault.delay)
                return server.handle(request)
            if fault.action == "expire_pits":
                server.expire_pits()
                return server.handle(request)
            if fault.action == "hang":
                fault.release.wait(30)
                self.close_connection = True
                return None
            if fault.action in ("bulk_partial", "bulk_item_429"):
                return server._bulk(request.ndjson(), fault)
            raise AssertionError(fault.action)

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    return Handler


def _read_request(handler: BaseHTTPRequestHandler) -> Request:
    parts = urlsplit(handler.path)
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    return Request(method=handler.command, path=parts.path, query=parse_qs(parts.query),
                   headers={key.lower(): value for key, value in handler.headers.items()}, body=body)


def _reply(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: Dict[str, str]) -> None:
    data = json.dumps(body).encode("utf-8")
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        handler.close_connection = True


# --- Kibana and webhook receivers --------------------------------------------------------------

class FakeKibana:
    """Kibana's detection rule import endpoint; records requests and the rules it imported."""

    REQUIRED = ("rule_id", "name", "description", "type", "risk_score", "severity")

    def __init__(self) -> None:
        self.requests: List[Request] = []
        self.rules: Dict[str, Dict[str, Any]] = {}
        self.server: Optional[ThreadingHTTPServer] = None
        self.url = ""

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                request = _read_request(self)
                owner.requests.append(request)
                status, body = owner.handle(request)
                _reply(self, status, body, {})

            do_GET = do_PUT = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="fake-kibana", daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, request: Request) -> Tuple[int, Any]:
        if request.path != "/api/detection_engine/rules/_import" or request.method != "POST":
            return 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}
        if "kbn-xsrf" not in request.headers:
            return 400, {"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."}
        text = multipart_file(request.headers.get("content-type", ""), request.body)
        if text is None:
            return 415, {"statusCode": 415, "error": "Unsupported Media Type", "message": "expected a file field"}
        errors = []
        count = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            rule = json.loads(line)
            missing = [key for key in self.REQUIRED if key not in rule]
            if missing:
                errors.append({"rule_id": rule.get("rule_id", "(unknown id)"),
                               "error": {"status_code": 400, "message": f"missing fields {missing}"}})
                continue
            self.rules[rule["rule_id"]] = rule
            count += 1
        return 200, {"success": not errors, "success_count": count, "rules_count": count + len(errors),
                     "errors": errors, "exceptions_success": True, "exceptions_success_count": 0,
                     "exceptions_errors": [], "action_connectors_success": True,
                     "action_connectors_success_count": 0, "action_connectors_errors": [],
                     "action_connectors_warnings": []}


def multipart_file(content_type: str, body: bytes) -> Optional[str]:
    """Return the text of the ``file`` field of a multipart/form-data body, or None."""
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body,
                                       policy=email.policy.HTTP)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():  # type: ignore[attr-defined]
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True).decode("utf-8")  # type: ignore[no-any-return]
    return None


class FakeWebhook:
    """Records JSON POSTs; responds 200, or with the statuses queued in ``failures``."""

    def __init__(self) -> None:
        self.posts: List[Any] = []
        self.failures: List[int] = []
        self.server: Optional[ThreadingHTTPServer] = None
        self.url = ""

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                request = _read_request(self)
                if owner.failures:
                    status = owner.failures.pop(0)
                    _reply(self, status, {"error": "injected"}, {})
                    return
                owner.posts.append(request.json())
                _reply(self, 200, {"ok": True}, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="fake-webhook", daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
