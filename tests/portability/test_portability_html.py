"""The HTML report: self-contained, and its chart visible in a headless Chromium screenshot."""

import os
import shutil
import subprocess

import pytest

from core.portability.html import COLOURS, to_html
from core.portability.report import Backend, Pair, build_report
from pngpixels import read_png
from portability_helpers import LSASS_RULE, run_command

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def html_report(lsass_rule):
    backend = Backend()
    pairs = [Pair("dsl", "ecs"), Pair("lucene-as-written", "ecs"), Pair("esql-as-written", "ecs"),
             Pair("kql", "sentinel-asim"), Pair("spl", "splunk-sysmon")]
    return to_html(build_report([lsass_rule], [], pairs, backend))


def _hex(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_html_is_self_contained(html_report):
    assert html_report.startswith("<!DOCTYPE html>")
    assert "<svg" in html_report
    assert "<script" not in html_report
    assert "http://" not in html_report.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html_report
    assert "lucene-as-written/ecs" in html_report
    assert "corpus:selection_flags.CommandLine#0.upper" in html_report


def test_html_command_writes_file(tmp_path):
    out = tmp_path / "report.html"
    code = run_command(["portability", str(LSASS_RULE), "--targets", "lucene-as-written", "--mappings", "ecs",
                        "--format", "html", "--output", str(out)])

    assert code == 1
    assert "<svg" in out.read_text(encoding="utf-8")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (apt-get install -y chromium)")
def test_html_chart_visible_in_chromium(html_report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(html_report, encoding="utf-8")
    screenshot = tmp_path / "shot.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--window-size=1200,900",
        page.as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert screenshot.exists(), completed.stderr.decode(errors="replace")[-2000:]

    width, height, rows = read_png(screenshot.read_bytes())
    counts = {name: 0 for name in ("agree", "false negative")}
    targets = {name: _hex(COLOURS[name]) for name in counts}
    for row in rows:
        for pixel in row:
            for name, colour in targets.items():
                if all(abs(a - b) <= 8 for a, b in zip(pixel, colour)):
                    counts[name] += 1

    assert (width, height) == (1200, 900)
    # Five rows of bars, 18 px high: the agreement share fills most of each, the divergences of
    # the two case-sensitive variants draw red bars on the right.
    assert counts["agree"] > 5 * 18 * 150
    assert counts["false negative"] > 2 * 18 * 100
