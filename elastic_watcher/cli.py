"""The ``lsassdump elastic`` command: ``build``, ``deploy`` and ``watch``.

Exit codes:

- 0: success.
- 1: a request or a delivery failed after its retries.
- 2: invalid arguments, credentials or rules.
- 3 (``deploy`` only): the licence does not include Watcher, so no watch was deployed. The poller
  is the way to run the rules there.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

from core import LsassdumpError

from elastic_watcher import retry
from elastic_watcher.checkpoint import CheckpointError
from elastic_watcher.connection import ConfigurationError, TlsSettings, elasticsearch_client, load_credentials
from elastic_watcher.rulepack import DeployedRule, load

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_WATCHER = 0, 1, 2, 3


def register(subparsers: Any) -> None:
    """Add the ``elastic`` command, with ``build``, ``deploy`` and ``watch``, to an argparse subparsers object."""
    elastic = subparsers.add_parser(
        "elastic", help="run rules on Elasticsearch: watches, Kibana rules or the poller",
        description="Build and deploy Watcher watches and Kibana detection rules, or poll an index "
                    "pattern and raise the alerts with lsassdump's exact evaluation.")
    commands = elastic.add_subparsers(dest="elastic_command", metavar="COMMAND")
    commands.required = True
    _add_build(commands)
    _add_deploy(commands)
    _add_watch(commands)


def _add_rule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", action="append", metavar="PATH",
                        help="rule file or folder (repeatable; default: the bundled rules)")


def _add_watch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", action="append", metavar="PATTERN",
                        help="index pattern to search (repeatable; default: logs-* and winlogbeat-*)")
    parser.add_argument("--alerts-index", default="lsassdump-alerts", metavar="NAME",
                        help="index the watches write alerts to (default: lsassdump-alerts)")
    parser.add_argument("--interval", default="5m", help="how often the watches run (default: 5m)")
    parser.add_argument("--lag", default="5m",
                        help="ingest lag to absorb: each run searches interval plus lag back (default: 5m)")
    parser.add_argument("--size", type=int, default=1000,
                        help="hits each watch run loads for its actions, at most 10000 (default: 1000)")
    parser.add_argument("--throttle", default="15m",
                        help="minimum time between two log or webhook notifications of a watch (default: 15m)")
    parser.add_argument("--webhook", metavar="URL", help="also POST each watch run's matches to this URL")
    parser.add_argument("--disabled", action="store_true", help="import the Kibana detection rules disabled")


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="Elasticsearch URL, such as https://es.example.org:9200")
    parser.add_argument("--credentials-file", metavar="PATH",
                        help="file of NAME=value lines (ES_API_KEY, or ES_USERNAME and ES_PASSWORD; KIBANA_... "
                             "likewise); default: the same names in the environment")
    parser.add_argument("--ca-certs", metavar="PATH", help="CA bundle to verify the servers' certificates with")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    parser.add_argument("--timeout", type=_positive_float, default=30.0,
                        help="timeout of one request in seconds (default: 30)")
    parser.add_argument("--max-attempts", type=int, default=8,
                        help="tries per request on connection errors, 429 and 5xx (default: 8)")


def _add_build(commands: Any) -> None:
    build = commands.add_parser(
        "build", help="write watches and Kibana detection rules to a folder",
        description="Write, for each rule, a watch for PUT _watcher/watch/<id> (Query DSL search input), "
                    "optionally its EQL variant, and a Kibana detection rule export (NDJSON) with an EQL "
                    "rule and a Lucene query rule per Sigma rule.")
    build.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    build.add_argument("--eql-url", metavar="URL",
                       help="cluster URL the EQL watch's http input calls; without it no EQL watch is written")
    _add_rule_options(build)
    _add_watch_options(build)
    build.set_defaults(func=run_build)


def _add_deploy(commands: Any) -> None:
    deploy = commands.add_parser(
        "deploy", help="deploy watches (and Kibana detection rules) to a cluster",
        description="Check the licence, put each watch and run it once with _execute in simulate mode. "
                    "On a licence without Watcher (Basic), deploy no watch and point to the poller. "
                    "Credentials come from the environment or --credentials-file, never from arguments.")
    _add_connection_options(deploy)
    deploy.add_argument("--kibana-url", metavar="URL", help="also import the detection rules into this Kibana")
    deploy.add_argument("--no-eql", action="store_true", help="do not deploy the EQL variant of each watch")
    _add_rule_options(deploy)
    _add_watch_options(deploy)
    deploy.set_defaults(func=run_deploy)


def _add_watch(commands: Any) -> None:
    watch = commands.add_parser(
        "watch", help="poll an index pattern and raise alerts (works on a Basic licence)",
        description="Scan new events with a point in time and search_after, evaluate each hit with "
                    "lsassdump's core, deliver alerts, and checkpoint after every page. Stops cleanly on "
                    "SIGTERM or SIGINT.")
    _add_connection_options(watch)
    watch.add_argument("--index", required=True, metavar="PATTERN", help="index pattern to scan, such as logs-*")
    watch.add_argument("--state", required=True, metavar="PATH",
                       help="checkpoint file (created if missing; its folder must exist)")
    watch.add_argument("--alerts-index", metavar="NAME", help="write alerts to this index (bulk, one id per alert)")
    watch.add_argument("--alerts-file", metavar="PATH", help="append alerts to this JSON Lines file")
    watch.add_argument("--webhook", metavar="URL", help="POST each page's alerts as JSON to this URL")
    watch.add_argument("--prefilter", choices=("logsource", "query"), default="logsource",
                       help="what the server filters on: the logsource only, so the core sees every process "
                            "event (exact), or the rules' Query DSL as well (fewer events; default: logsource)")
    watch.add_argument("--page-size", type=_positive_int, default=1000, help="hits per search page (default: 1000)")
    watch.add_argument("--interval", type=_positive_float, default=60.0, help="seconds between cycles (default: 60)")
    watch.add_argument("--overlap", type=float, default=300.0,
                       help="seconds each cycle rescans before the newest event seen, for late events (default: 300)")
    watch.add_argument("--since", default="now-1h",
                       help="where the first cycle starts: ISO 8601 time, epoch ms or date math (default: now-1h)")
    watch.add_argument("--keep-alive", default="5m", help="point in time keep_alive (default: 5m)")
    watch.add_argument("--once", action="store_true", help="run one cycle to the newest event, then exit")
    _add_rule_options(watch)
    watch.set_defaults(func=run_watch)


# Shared helpers ----------------------------------------------------------------------------------

def configure_logging() -> None:
    """Send log lines to standard error, unless the caller configured logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The client logs every request at INFO; the poller logs its own pages, retries and errors.
    transport = logging.getLogger("elastic_transport")
    if transport.level == logging.NOTSET:
        transport.setLevel(logging.WARNING)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"lsassdump elastic: {message}", file=sys.stderr)
    return code


def _load_rules(args: argparse.Namespace) -> List[DeployedRule]:
    rules = load(args.rules)
    if not rules:
        raise ValueError("no rule found; pass --rules PATH")
    return rules


def _watch_settings(args: argparse.Namespace) -> Any:
    from elastic_watcher.watches import DEFAULT_INDICES, WatchSettings, check_settings

    settings = WatchSettings(indices=tuple(args.index or DEFAULT_INDICES), alerts_index=args.alerts_index,
                             interval=args.interval, lag=args.lag, size=args.size, throttle=args.throttle,
                             webhook=args.webhook)
    check_settings(settings)
    return settings


def _policy(args: argparse.Namespace) -> retry.RetryPolicy:
    if args.max_attempts < 1:
        raise ValueError("--max-attempts must be at least 1")
    return retry.RetryPolicy(attempts=args.max_attempts)


# build -------------------------------------------------------------------------------------------

def run_build(args: argparse.Namespace) -> int:
    """Write the watches and the Kibana NDJSON for every rule; returns an exit code."""
    from elastic_watcher.kibana import detection_rule, ndjson
    from elastic_watcher.watches import eql_watch, search_watch, watch_id

    configure_logging()
    try:
        rules = _load_rules(args)
        settings = _watch_settings(args)
    except (LsassdumpError, ValueError) as error:
        return _fail(str(error))

    watch_dir = os.path.join(args.out, "watches")
    kibana_dir = os.path.join(args.out, "kibana")
    os.makedirs(watch_dir, exist_ok=True)
    os.makedirs(kibana_dir, exist_ok=True)
    failures: List[str] = []
    detection_rules: List[Dict[str, Any]] = []
    for deployed in rules:
        artifacts: List[Tuple[str, Any]] = [(f"watch {watch_id(deployed)}", lambda d=deployed: _write_json(
            os.path.join(watch_dir, watch_id(d) + ".json"), search_watch(d, settings)))]
        if args.eql_url:
            artifacts.append((f"watch {watch_id(deployed, 'eql')}", lambda d=deployed: _write_json(
                os.path.join(watch_dir, watch_id(d, "eql") + ".json"), eql_watch(d, settings, args.eql_url))))
        for variant in ("eql", "lucene"):
            artifacts.append((f"Kibana {variant} rule", lambda d=deployed, v=variant: detection_rules.append(
                detection_rule(d, settings, v, enabled=not args.disabled))))
        for name, make in artifacts:
            try:
                make()
            except (LsassdumpError, ValueError) as error:
                failures.append(f"{deployed.rule.source}: {name} not written: {error}")
    if detection_rules:
        with open(os.path.join(kibana_dir, "lsassdump_detection_rules.ndjson"), "w", encoding="utf-8") as out:
            out.write(ndjson(detection_rules))
    for line in failures:
        print(f"lsassdump elastic: {line}", file=sys.stderr)
    print(f"wrote {len(rules)} rule(s) to {args.out}: watches/ and kibana/lsassdump_detection_rules.ndjson "
          f"({len(detection_rules)} detection rules)")
    if not args.eql_url:
        print("no EQL watches written: pass --eql-url URL to name the cluster their http input calls")
    return EXIT_FAILED if failures else EXIT_OK


def _write_json(path: str, document: Dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2, ensure_ascii=False)
        out.write("\n")


# deploy ------------------------------------------------------------------------------------------

def run_deploy(args: argparse.Namespace) -> int:
    """Deploy the watches (where licensed) and the Kibana rules; returns an exit code."""
    from elastic_watcher.deploy import DeployError, deploy_watches, import_detection_rules
    from elastic_watcher.kibana import detection_rule, ndjson

    configure_logging()
    try:
        rules = _load_rules(args)
        settings = _watch_settings(args)
        policy = _policy(args)
        creds = load_credentials(args.credentials_file)
        watch_user = _watch_user(args.credentials_file)
        tls = TlsSettings(verify=not args.insecure, ca_certs=args.ca_certs)
        client = elasticsearch_client(args.url, creds["ES"], tls, args.timeout)
    except (LsassdumpError, ValueError, ConfigurationError) as error:
        return _fail(str(error))

    try:
        report = deploy_watches(client, rules, settings, policy, None if args.no_eql else args.url, watch_user)
        for outcome in report.watches:
            print(f"watch {outcome.watch_id}: stored, simulated run {outcome.state}"
                  + (f" ({outcome.hits} hit(s) now)" if outcome.hits is not None else ""))
        if args.kibana_url:
            text = ndjson([detection_rule(d, settings, v, enabled=not args.disabled)
                           for d in rules for v in ("eql", "lucene")])
            count = import_detection_rules(args.kibana_url, text, creds["KIBANA"], tls, args.timeout, policy)
            print(f"Kibana: {count} detection rule(s) imported")
    except (DeployError, LsassdumpError) as error:
        return _fail(str(error), EXIT_FAILED)
    except Exception as error:  # noqa: BLE001 - transport and HTTP errors, already retried and logged
        return _fail(f"deploy failed: {retry.describe(error)}", EXIT_FAILED)

    licence = report.licence
    if licence is not None and not licence.allows_watcher:
        print(f"licence {licence.type} ({licence.status}) does not include Watcher: no watch deployed. "
              f"Run the rules with the poller instead:\n  lsassdump elastic watch --url {args.url} "
              f"--index '{','.join(settings.indices)}' --alerts-index {settings.alerts_index} --state PATH")
        return EXIT_NO_WATCHER
    return EXIT_OK


def _watch_user(path: Optional[str]) -> Optional[Tuple[str, str]]:
    """Return the user the EQL watch's http input authenticates as (ES_WATCH_USERNAME/PASSWORD), if set."""
    from elastic_watcher.connection import read_credentials_file

    values = read_credentials_file(path) if path else {}
    user = values.get("ES_WATCH_USERNAME") or os.environ.get("ES_WATCH_USERNAME")
    if not user:
        return None
    password = values.get("ES_WATCH_PASSWORD") or os.environ.get("ES_WATCH_PASSWORD")
    if password is None:
        raise ConfigurationError("ES_WATCH_USERNAME is set but ES_WATCH_PASSWORD is not")
    return user, password


# watch (the poller) ------------------------------------------------------------------------------

def run_watch(args: argparse.Namespace) -> int:
    """Run the poller until SIGTERM or SIGINT (or one cycle with --once); returns an exit code."""
    from elastic_watcher.poller import Poller, PollerSettings
    from elastic_watcher.sinks import FileSink, IndexSink, Sink, WebhookSink

    configure_logging()
    if not (args.alerts_index or args.alerts_file or args.webhook):
        return _fail("no alert output: pass --alerts-index NAME, --alerts-file PATH or --webhook URL")
    for option, path in (("--state", args.state), ("--alerts-file", args.alerts_file)):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder is not None and not os.path.isdir(folder):
            return _fail(f"{option} {path}: folder {folder} does not exist; create it first")
    stop = threading.Event()
    try:
        rules = _load_rules(args)
        policy = _policy(args)
        creds = load_credentials(args.credentials_file)
        tls = TlsSettings(verify=not args.insecure, ca_certs=args.ca_certs)
        client = elasticsearch_client(args.url, creds["ES"], tls, args.timeout)
        sinks: List[Sink] = []
        if args.alerts_file:
            sinks.append(FileSink(args.alerts_file))
        if args.alerts_index:
            sinks.append(IndexSink(client, args.alerts_index, policy, stop))
        if args.webhook:
            from elastic_watcher.connection import check_url

            sinks.append(WebhookSink(check_url(args.webhook, "--webhook"), tls, args.timeout, policy, stop))
        settings = PollerSettings(index=args.index, state_path=args.state, prefilter=args.prefilter,
                                  page_size=args.page_size, interval=args.interval,
                                  overlap_ms=int(args.overlap * 1000), since=args.since,
                                  keep_alive=args.keep_alive, once=args.once)
        if not 1 <= settings.page_size <= 10000:
            raise ValueError("--page-size must be between 1 and 10000")
        poller = Poller(client, rules, sinks, settings, policy, stop)
    except (LsassdumpError, ValueError, ConfigurationError, CheckpointError) as error:
        return _fail(str(error))
    _install_signal_handlers(stop)
    return poller.run()


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if stop.is_set():
            log.warning("received %s again; exiting now", name)
            raise SystemExit(EXIT_FAILED)
        log.info("received %s; stopping after the current page", name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``elastic`` sub-commands on their own: ``python -m elastic_watcher watch ...``."""
    parser = argparse.ArgumentParser(prog="python -m elastic_watcher")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    register(commands)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(["elastic"] + argv)
    return int(args.func(args))


def _positive_float(text: str) -> float:
    """Parse a number greater than zero, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    """Parse a whole number greater than zero, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid whole number {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value
