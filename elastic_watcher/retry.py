"""Retries with exponential backoff and full jitter, for Elasticsearch, Kibana and webhook calls.

A request is retried on a connection error, a timeout, HTTP 429 and HTTP 5xx (except 501, which
will not change), up to ``attempts`` tries in all. The wait before retry ``n`` (1-based) is drawn
uniformly from ``[0, min(cap, base * 2**(n-1))]`` ("full jitter"), so that many pollers that failed
together do not retry together. Every retry and every final failure is logged.
"""

import logging
import random
import socket
import threading
import urllib.error
from dataclasses import dataclass, field
from typing import Callable, Optional, TypeVar

import elasticsearch

log = logging.getLogger(__name__)

T = TypeVar("T")


class Stopped(Exception):
    """Raised inside a retry wait when shutdown was requested; the caller unwinds without a checkpoint."""


@dataclass
class RetryPolicy:
    """How often and how long to retry one request."""

    attempts: int = 8
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int) -> float:
        """Return the wait in seconds before retry number ``retry`` (1-based)."""
        return self.rng.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))


def status_of(error: BaseException) -> Optional[int]:
    """Return the HTTP status carried by an error, or None when the request got no response."""
    if isinstance(error, elasticsearch.ApiError):
        return int(error.meta.status)
    if isinstance(error, urllib.error.HTTPError):
        return int(error.code)
    return None


def is_retryable(error: BaseException) -> bool:
    """Tell whether a failed request may succeed when sent again."""
    status = status_of(error)
    if status is not None:
        return status == 429 or (status >= 500 and status != 501)
    if isinstance(error, elasticsearch.TransportError):  # connection refused or reset, timeouts, TLS
        return True
    if isinstance(error, urllib.error.URLError):
        return True
    return isinstance(error, (ConnectionError, socket.timeout, TimeoutError))


def describe(error: BaseException) -> str:
    """Return a one-line description of an error, with no request headers (so no credentials)."""
    status = status_of(error)
    if isinstance(error, elasticsearch.ApiError):
        return f"HTTP {status} {error.message}"
    if status is not None:
        return f"HTTP {status} {getattr(error, 'reason', '')}".strip()
    if isinstance(error, elasticsearch.TransportError):
        # str() of a transport error is only "Connection error"; the message names the cause.
        return f"{type(error).__name__}: {error.message}"
    return f"{type(error).__name__}: {error}"


def call(what: str, request: Callable[[], T], policy: RetryPolicy, stop: Optional[threading.Event] = None) -> T:
    """Run ``request``, retrying retryable failures; ``what`` names the request in log lines.

    Raises the last error when the attempts run out or the error is not retryable, and Stopped
    when ``stop`` is set during a wait.
    """
    retry = 0
    while True:
        try:
            return request()
        except Exception as error:  # noqa: BLE001 - classified below, re-raised unless retryable
            retry += 1
            if not is_retryable(error) or retry >= policy.attempts:
                log.error("%s failed after %d attempt(s): %s", what, retry, describe(error))
                raise
            wait = policy.delay(retry)
            log.warning("%s failed (%s); retry %d of %d in %.2f s", what, describe(error), retry,
                        policy.attempts - 1, wait)
            if stop is not None:
                if stop.wait(wait):
                    raise Stopped(what) from error
            else:
                threading.Event().wait(wait)
