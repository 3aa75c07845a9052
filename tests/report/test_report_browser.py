"""Open the rendered report in headless Chromium: no network request, every section and drawing.

Driven through the Chrome DevTools Protocol (cdp_client.py, standard library only): every
`Network.requestWillBeSent` of the page is recorded from navigation to well after the load
event; only the file:// document itself may appear. A canary page with one remote image is
loaded in the same session first, so the test would fail if the capture saw nothing at all.
Install Chromium with scripts/install_test_tools.sh (called by .ci/run); without it the test
is skipped.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from pipeline.central.report.facts import SECTION_IDS
from pipeline.central.report.render import render_report

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")


def _requests(page, url: str, settle: float = 1.0) -> list[str]:
    page.events.clear()
    page.call("Page.navigate", {"url": url})
    page.wait_event("Page.loadEventFired")
    page.drain(settle)
    return [e["params"]["request"]["url"] for e in page.events
            if e["method"] == "Network.requestWillBeSent"]


NO_CHROMIUM = "Chromium absent (/usr/bin/chromium) : lancer scripts/install_test_tools.sh"


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=NO_CHROMIUM)
def test_report_opens_offline_with_no_request(tmp_path: Path) -> None:
    from cdp_client import chromium_page
    from report_fixtures import complete_facts

    run_dir = tmp_path / "run"
    html_path, _ = render_report(run_dir, complete_facts())
    report_url = html_path.resolve().as_uri()
    canary = tmp_path / "canary.html"
    canary.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                      "</body></html>", encoding="utf-8")

    t0 = time.perf_counter()
    with chromium_page(tmp_path / "profile") as page:
        page.call("Network.enable")
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})

        # The capture works: a page with a remote image is caught attempting it.
        seen = _requests(page, canary.resolve().as_uri())
        assert "http://127.0.0.1:9/x.png" in seen, seen

        seen = _requests(page, report_url)
        assert seen == [report_url], f"requêtes inattendues : {seen}"

        ids = json.dumps(list(SECTION_IDS))
        probe = (f"JSON.stringify({{ids: {ids}.filter(i => !document.getElementById(i)), "
                 "lang: document.documentElement.lang, title: document.title, "
                 "h: document.documentElement.scrollHeight, "
                 # every in-page link leads somewhere
                 "dangling: [...document.querySelectorAll('a[href^=\"#\"]')]"
                 "  .map(a => a.getAttribute('href').slice(1))"
                 "  .filter(i => !document.getElementById(i)), "
                 # the waterfalls are drawn: one per sampled link and clerical pair, with a
                 # bar per step and a visible size once their <details> is opened
                 "waterfalls: [...document.querySelectorAll('svg.waterfall')].map(w => "
                 "  {w.closest('details').open = true; const r = w.getBoundingClientRect(); "
                 "   return {bars: w.querySelectorAll('rect').length, w: r.width, h: r.height,"
                 "           section: w.closest('section').id};}), "
                 "checks: document.querySelectorAll('#attentes tr.fail').length, "
                 "rules: [...document.querySelectorAll('#regles tr[id^=\"regle-\"]')].length, "
                 "quartier: document.getElementById('detection').innerText.includes('Saint-Michel')"
                 "})")
        res = page.call("Runtime.evaluate", {"expression": probe, "returnByValue": True})
        dom = json.loads(res["result"]["value"])
        assert dom["ids"] == [], f"sections absentes du DOM : {dom['ids']}"
        assert dom["dangling"] == [], f"liens internes sans cible : {dom['dangling']}"
        assert dom["lang"] == "fr" and "Rapport de validation" in dom["title"]
        facts = complete_facts()
        sections = [w["section"] for w in dom["waterfalls"]]
        assert sections.count("liens") == len(facts["linkage"]["sample"])
        assert sections.count("revue") == len(facts["linkage"]["clerical"])
        for w in dom["waterfalls"]:  # prior + steps + final bar, drawn at a readable size
            assert w["bars"] >= 3 and w["w"] > 300 and w["h"] > 60, w
        assert dom["checks"] == 1 and dom["rules"] == len(facts["rules"]) and dom["quartier"]
        dom["h"] = page.call("Runtime.evaluate", {
            "expression": "document.documentElement.scrollHeight",
            "returnByValue": True})["result"]["value"]  # taller with every <details> open

        shot = page.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": dom["h"], "scale": 1},
        })
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    (run_dir / "report.png").write_bytes(png)
    if os.environ.get("REPORT_SCREENSHOT"):  # keep a copy to look at (e.g. in CI artefacts)
        Path(os.environ["REPORT_SCREENSHOT"]).write_bytes(png)
    print(f"navigateur : {time.perf_counter() - t0:.1f} s, capture {run_dir / 'report.png'}")
