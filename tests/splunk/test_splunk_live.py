"""The app installed into a real Splunk: ``| lsassdump``, its error messages, the alerts and macros.

Runs only when these are set, and is skipped otherwise:

- ``SPLUNK_URL``: the management endpoint, for example ``https://127.0.0.1:8089``;
- ``SPLUNK_TOKEN``, or ``SPLUNK_USERNAME`` and ``SPLUNK_PASSWORD``: an account that may install apps;
- ``SPLUNK_APP_DIR``: a folder on this machine that the Splunk server can read (a shared volume);
  the test copies the tarball there. ``SPLUNK_APP_DIR_ON_SERVER`` is the path of that folder on
  the server (default: the same path).

Optional: ``SPLUNK_RESTART=1`` restarts Splunk after the install, ``SPLUNK_VERIFY_TLS=1`` checks the
server's certificate (splunklib does not by default).
"""

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest


def live_configured():
    has_credentials = os.environ.get("SPLUNK_TOKEN") or (os.environ.get("SPLUNK_USERNAME")
                                                         and os.environ.get("SPLUNK_PASSWORD"))
    return bool(os.environ.get("SPLUNK_URL") and has_credentials and os.environ.get("SPLUNK_APP_DIR"))


pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not live_configured(), reason="set SPLUNK_URL, SPLUNK_TOKEN (or SPLUNK_USERNAME and "
                       "SPLUNK_PASSWORD) and SPLUNK_APP_DIR to test against a real Splunk"),
]

RULE_ID = "5afee48e-67dd-4e03-a783-f74259dcf998"
ALERT = "lsassdump - Potential LSASS Process Dump Via Procdump"
SAMPLE = (
    '| makeresults count=3 | streamstats count as n '
    '| eval CommandLine=case(n=1, "procdump.exe -ma lsass.exe", n=2, "notepad.exe notes.txt", '
    'n=3, "procdump.exe \u2014ma lsass.exe"), EventCode=1'
)


def live_settings():
    return (os.environ["SPLUNK_URL"], os.environ.get("SPLUNK_TOKEN"), os.environ.get("SPLUNK_USERNAME"),
            os.environ.get("SPLUNK_PASSWORD"), os.environ["SPLUNK_APP_DIR"])


@pytest.fixture(scope="module")
def service(built_app):
    from splunklib import client

    url, token, username, password, app_dir = live_settings()
    parts = urlsplit(url)
    options = {"scheme": parts.scheme or "https", "host": parts.hostname, "port": parts.port or 8089,
               "verify": os.environ.get("SPLUNK_VERIFY_TLS") == "1"}
    if token:
        options["splunkToken"] = token
    else:
        options.update(username=username, password=password)
    splunk = client.connect(**options)

    shutil.copy(built_app.tarball, Path(app_dir) / built_app.tarball.name)
    server_dir = os.environ.get("SPLUNK_APP_DIR_ON_SERVER", app_dir)
    splunk.post("apps/local", name=f"{server_dir.rstrip('/')}/{built_app.tarball.name}", filename=True, update=True)
    if os.environ.get("SPLUNK_RESTART") == "1":
        splunk.restart(timeout=600)
    return splunk


def search(service, query):
    from splunklib import results

    stream = service.jobs.oneshot(query, output_mode="json", count=0)
    rows = [row for row in results.JSONResultsReader(stream) if isinstance(row, dict)]
    return sorted(rows, key=lambda row: int(row.get("n", 0)))


def test_live_annotate_marks_matches(service):
    rows = search(service, f"{SAMPLE} | lsassdump rule={RULE_ID} mode=annotate | table n CommandLine sigma_*")

    assert [row["n"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["sigma_rule_id"] == RULE_ID
    assert "sigma_rule_id" not in rows[1]
    assert rows[2]["sigma_rule_id"] == RULE_ID
    assert rows[0]["sigma_matched"] == ["selection_flags", "selection_process"]


def test_live_filter_keeps_matches(service):
    rows = search(service, f"{SAMPLE} | lsassdump rule={RULE_ID} | table n")

    assert [row["n"] for row in rows] == ["1", "3"]


def test_live_bad_option_error(service):
    from splunklib.binding import HTTPError

    with pytest.raises(HTTPError) as raised:
        search(service, "| makeresults | lsassdump mode=fast")

    assert 'mode="fast" is not valid' in str(raised.value)


def test_live_alert_installed_disabled(service):
    alert = service.saved_searches[ALERT]

    assert alert["disabled"] == "1"
    assert alert["cron_schedule"] == "*/15 * * * *"
    assert alert["dispatch.earliest_time"] == "-20m@m"


def test_live_alert_spl_on_4688_text(service):
    alert_search = service.saved_searches[ALERT]["search"]
    detection = alert_search.split("`lsassdump_sigma_fields` | ", 1)[1].split(" | eval sigma_rule_id=", 1)[0]
    query = ('| makeresults | eval Process_Command_Line="procdump.exe -ma lsass.exe", EventCode=4688 '
             f"| `lsassdump_sigma_fields` | {detection}")

    assert len(search(service, query)) == 1
