"""Splunk AppInspect over the built tarball: no failures, no future failures, warnings documented."""

import json
import shutil
import subprocess

import pytest

from splunk_support import REPO_ROOT

# splunk-appinspect's exit codes with --ci: 0 clean, 101 failures, 103 warnings only, 104 future failures.
CLEAN_EXIT_CODES = (0, 103)


@pytest.fixture(scope="module")
def appinspect_report(built_app, tmp_path_factory):
    executable = shutil.which("splunk-appinspect")
    if executable is None:
        pytest.fail("splunk-appinspect is not installed: pip install splunk-appinspect (and apt-get install libmagic1)")
    report = tmp_path_factory.mktemp("appinspect") / "report.json"
    result = subprocess.run(
        [executable, "inspect", str(built_app.tarball), "--mode", "precert", "--skip-trusted-libraries-update",
         "--ci", "--data-format", "json", "--output-file", str(report)],
        capture_output=True, text=True, timeout=600,
    )
    return result, json.loads(report.read_text(encoding="utf-8"))


def checks_with(report, result_name):
    return [check for group in report["reports"][0]["groups"] for check in group["checks"]
            if check["result"] == result_name]


def test_appinspect_exit_code(appinspect_report):
    result, _report = appinspect_report

    assert result.returncode in CLEAN_EXIT_CODES, result.stdout[-4000:] + result.stderr[-2000:]


def test_appinspect_no_failures(appinspect_report):
    _result, report = appinspect_report
    summary = report["reports"][0]["summary"]

    assert summary["failure"] == 0, [check["name"] for check in checks_with(report, "failure")]
    assert summary["future_failure"] == 0, [check["name"] for check in checks_with(report, "future_failure")]
    assert summary["error"] == 0, [check["name"] for check in checks_with(report, "error")]


def test_appinspect_warnings_documented(appinspect_report):
    _result, report = appinspect_report
    readme = (REPO_ROOT / "splunk_app" / "README.md").read_text(encoding="utf-8")

    for check in checks_with(report, "warning"):
        assert check["name"] in readme, f"AppInspect warning {check['name']} is not explained in splunk_app/README.md"
