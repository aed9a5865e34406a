"""Kibana detection rules (NDJSON export format) and their import through the detection engine API.

Rule fields follow Kibana's detection engine "Create rule" reference (``rule_id``, ``name``,
``description``, ``type``, ``language``, ``query``, ``index``, ``interval``, ``from``,
``risk_score``, ``severity``, ``threat``). The import is ``POST /api/detection_engine/rules/_import``
with a ``multipart/form-data`` body that carries the NDJSON as the ``file`` field. It needs the
``kbn-xsrf`` header, which Kibana requires on every write request.
"""

import json
import logging
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, List, Sequence, Tuple

from elastic_watcher.attack import kibana_threat
from elastic_watcher.connection import Credentials, TlsSettings, check_url
from elastic_watcher.documents import SEVERITY
from elastic_watcher.rulepack import DeployedRule
from elastic_watcher.watches import WatchSettings

log = logging.getLogger(__name__)

IMPORT_PATH = "/api/detection_engine/rules/_import"


def detection_rule(deployed: DeployedRule, settings: WatchSettings, variant: str, enabled: bool = True) -> Dict[str, Any]:
    """Return one Kibana detection rule: ``variant`` ``eql`` (type eql) or ``lucene`` (type query)."""
    rule = deployed.rule
    severity, risk = SEVERITY[rule.level]
    if variant == "eql":
        kind, language, query = "eql", "eql", deployed.eql()
    elif variant == "lucene":
        kind, language, query = "query", "lucene", deployed.lucene()
    else:
        raise ValueError(f"unknown detection rule variant {variant!r}; use eql or lucene")
    document = rule.document
    return {
        "rule_id": f"lsassdump-{rule.id}-{variant}",
        "name": f"{rule.title} ({variant.upper() if variant == 'eql' else 'Lucene'}, lsassdump)",
        "description": rule.description.strip() or rule.title,
        "type": kind,
        "language": language,
        "query": query,
        "index": list(settings.indices),
        "interval": settings.interval,
        # Each run looks back over the interval plus the ingest lag, as the watches do.
        "from": f"now-{settings.window()}",
        "to": "now",
        "enabled": enabled,
        "risk_score": risk,
        "severity": severity,
        "threat": kibana_threat(rule.tags, rule.attack_techniques),
        "tags": ["Sigma", "lsassdump"] + list(rule.tags),
        "author": _strings(document.get("author")),
        "references": _strings(document.get("references")),
        "false_positives": _strings(document.get("falsepositives")),
        "license": "DRL-1.1",
        "max_signals": 100,
        "version": 1,
    }


def _strings(value: Any) -> List[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


def ndjson(rules: Sequence[Dict[str, Any]]) -> str:
    """Return the rules as NDJSON, one JSON object per line."""
    return "".join(json.dumps(rule, ensure_ascii=False, sort_keys=True) + "\n" for rule in rules)


def multipart(filename: str, content: bytes, boundary: str) -> bytes:
    """Return a ``multipart/form-data`` body with one file field named ``file``."""
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/x-ndjson\r\n\r\n").encode("utf-8")
    return head + content + f"\r\n--{boundary}--\r\n".encode("utf-8")


def import_request(kibana_url: str, text: str, creds: Credentials, overwrite: bool = True) -> urllib.request.Request:
    """Build the import request (without sending it)."""
    base = check_url(kibana_url, "--kibana-url")
    query = urllib.parse.urlencode({"overwrite": "true" if overwrite else "false"})
    boundary = "lsassdump-" + uuid.uuid4().hex
    request = urllib.request.Request(f"{base}{IMPORT_PATH}?{query}", method="POST",
                                     data=multipart("lsassdump_rules.ndjson", text.encode("utf-8"), boundary))
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    request.add_header("kbn-xsrf", "true")
    authorization = creds.authorization()
    if authorization:
        request.add_header("Authorization", authorization)
    return request


def send(request: urllib.request.Request, tls: TlsSettings, timeout: float) -> Tuple[int, Dict[str, Any]]:
    """Send a request and return the status and the decoded JSON response; HTTP errors raise HTTPError."""
    context = tls.context() if request.full_url.startswith("https:") else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310 - URL checked
        body = response.read()
        return response.status, json.loads(body.decode("utf-8")) if body else {}
