"""Credentials and connections to Elasticsearch and Kibana.

Credentials come from the environment or from a file, never from the command line, so that they
stay out of shell history and process listings:

- ``ES_API_KEY`` (the base64 ``id:api_key`` form Elasticsearch returns as ``encoded``), or
  ``ES_USERNAME`` and ``ES_PASSWORD``, for Elasticsearch;
- ``KIBANA_API_KEY``, or ``KIBANA_USERNAME`` and ``KIBANA_PASSWORD``, for Kibana; when none is set,
  Kibana gets the Elasticsearch credentials, which Kibana accepts;
- ``ES_WATCH_USERNAME`` and ``ES_WATCH_PASSWORD``, the user the EQL watch's http input signs in as.

A credentials file contains the same names as ``NAME=value`` lines, and ``#`` starts a comment.
Values in the file take precedence over the environment. TLS certificates are verified unless
``--insecure`` is given.
"""

import base64
import logging
import os
import ssl
import stat
import urllib.parse
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

import elasticsearch

log = logging.getLogger(__name__)

CREDENTIAL_NAMES = ("ES_API_KEY", "ES_USERNAME", "ES_PASSWORD",
                    "KIBANA_API_KEY", "KIBANA_USERNAME", "KIBANA_PASSWORD",
                    "ES_WATCH_USERNAME", "ES_WATCH_PASSWORD")


class ConfigurationError(Exception):
    """A URL, credential or TLS setting that cannot be used; the message names what to change."""


@dataclass(frozen=True)
class Credentials:
    """An API key, or a user name and password; ``repr`` never shows the secret."""

    api_key: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None

    def __repr__(self) -> str:
        if self.api_key:
            return "Credentials(api key)"
        if self.username:
            return f"Credentials(user {self.username})"
        return "Credentials(none)"

    def authorization(self) -> Optional[str]:
        """Return the HTTP ``Authorization`` header value, or None without credentials."""
        if self.api_key:
            return f"ApiKey {self.api_key}"
        if self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode("utf-8")).decode("ascii")
            return f"Basic {token}"
        return None


@dataclass(frozen=True)
class TlsSettings:
    """Whether to verify server certificates, and with which CA bundle."""

    verify: bool = True
    ca_certs: Optional[str] = None

    def context(self) -> ssl.SSLContext:
        """Return an SSL context for the standard library's HTTP client."""
        context = ssl.create_default_context(cafile=self.ca_certs)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def read_credentials_file(path: str) -> Dict[str, str]:
    """Read ``NAME=value`` lines; warns when the file is readable by other users."""
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise ConfigurationError(f"cannot read credentials file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigurationError(f"credentials file {path} is not UTF-8 text (byte {error.start}); "
                                 "write it as NAME=value lines") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("credentials file %s is readable by other users; run chmod 600 on it", path)
    values: Dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or name not in CREDENTIAL_NAMES:
            raise ConfigurationError(f"{path}:{number}: expected NAME=value with NAME one of {', '.join(CREDENTIAL_NAMES)}")
        values[name] = value.strip()
    return values


def credentials(kind: str, environ: Mapping[str, str], file_values: Mapping[str, str]) -> Credentials:
    """Return the credentials for ``kind`` (``ES`` or ``KIBANA``) from a file's values or the environment."""
    def get(name: str) -> Optional[str]:
        return file_values.get(name) or environ.get(name) or None

    api_key, username = get(f"{kind}_API_KEY"), get(f"{kind}_USERNAME")
    if api_key and username:
        raise ConfigurationError(f"both {kind}_API_KEY and {kind}_USERNAME are set; keep one of them")
    if username and get(f"{kind}_PASSWORD") is None:
        raise ConfigurationError(f"{kind}_USERNAME is set but {kind}_PASSWORD is not")
    return Credentials(api_key=api_key, username=username, password=get(f"{kind}_PASSWORD"))


def load_credentials(path: Optional[str], environ: Optional[Mapping[str, str]] = None) -> Dict[str, Credentials]:
    """Return ``{"ES": ..., "KIBANA": ...}``; Kibana falls back to the Elasticsearch credentials."""
    environ = os.environ if environ is None else environ
    file_values = read_credentials_file(path) if path else {}
    es = credentials("ES", environ, file_values)
    kibana = credentials("KIBANA", environ, file_values)
    if kibana.api_key is None and kibana.username is None:
        kibana = es
    return {"ES": es, "KIBANA": kibana}


def check_url(url: str, what: str) -> str:
    """Return ``url`` without a trailing slash; rejects URLs that are not http(s) or hold credentials."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(f"{what} {url!r} is not an http:// or https:// URL with a host")
    if parsed.username is not None or parsed.password is not None:
        raise ConfigurationError(f"{what} contains a user name or password; remove it and set ES_USERNAME and "
                                 "ES_PASSWORD (or ES_API_KEY) in the environment or a credentials file")
    return url.rstrip("/")


def elasticsearch_client(url: str, creds: Credentials, tls: TlsSettings, timeout: float) -> elasticsearch.Elasticsearch:
    """Return a client that does not retry by itself; ``retry.call`` retries with backoff and logs."""
    url = check_url(url, "--url")
    if not tls.verify:
        log.warning("TLS certificate verification is off for %s", url)
    options: Dict[str, object] = {
        "request_timeout": timeout, "max_retries": 0, "retry_on_timeout": False,
        "verify_certs": tls.verify, "ssl_show_warn": tls.verify,
    }
    if tls.ca_certs:
        options["ca_certs"] = tls.ca_certs
    if creds.api_key:
        options["api_key"] = creds.api_key
    elif creds.username is not None:
        options["basic_auth"] = (creds.username, creds.password or "")
    return elasticsearch.Elasticsearch(url, **options)  # type: ignore[arg-type]
