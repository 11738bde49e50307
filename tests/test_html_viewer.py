"""trace html: the self-contained viewer, opened from disk in a real headless chromium (selenium).

Set-up needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Screenshots are
kept in test-artifacts/ (gitignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, descendants, proc_stat
from test_trace_fixtures import make_run

from llemma_prover.cli.main import main
from llemma_prover.traces.html import build_payload, render_html
from llemma_prover.traces.run import load_run

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)


def _chromium() -> tuple[str, str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        )
    pytest.importorskip("selenium", reason="needs selenium (pip install selenium)")
    return binary, driver


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """A headless chromium with a fresh profile; on exit every process it started is gone."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium()
    profile = tempfile.mkdtemp(prefix="llemma-chromium-")
    opts = Options()
    opts.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    service = Service(driver_path)
    drv = webdriver.Chrome(service=service, options=opts)
    driver_pid = service.process.pid
    started = {p: proc_stat(p) for p in descendants(driver_pid) | {driver_pid}}
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
        import time

        deadline = time.monotonic() + 15
        while True:
            alive = [
                p for p, st in started.items() if st is not None and (proc_stat(p) or (0, ""))[1] == st[1]
            ]
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not alive, f"browser processes left behind: {alive}"


def open_viewer(drv: Any, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    drv.get(path.resolve().as_uri())
    WebDriverWait(drv, 20).until(
        lambda d: d.find_element("css selector", "body").get_attribute("data-ready") == "1"
    )


def click_theorem(drv: Any, name: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    drv.find_element("css selector", f'tr[data-theorem="{name}"]').click()
    WebDriverWait(drv, 10).until(lambda d: name in d.find_element("id", "tree-header").text)


def proof_edge_tactics(drv: Any) -> list[str]:
    return [e.get_attribute("textContent") for e in drv.find_elements("css selector", ".edge.proof text.tac")]


def error_edges(drv: Any) -> list[Any]:
    return drv.find_elements("css selector", ".edge.edge-error")


def console_errors(drv: Any) -> list[str]:
    try:
        logs = drv.get_log("browser")
    except Exception:  # the log API is optional in webdriver
        return []
    return [x["message"] for x in logs if x.get("level") == "SEVERE"]


def screenshot(drv: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    drv.execute_script("document.getElementById('graph-wrap').scrollLeft = 0;")
    p = ARTIFACTS / name
    drv.save_screenshot(str(p))
    assert p.stat().st_size > 10_000
    return p


# ------------------------------------------------------------------------------- no browser needed
def test_page_is_self_contained_and_escapes_script_breakers(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    # a model can propose any text: a tactic that tries to close the <script> element
    tr_path = run / "traces" / "imo_1959_p1.json"
    data = json.loads(tr_path.read_text())
    data["edges"][1]["tactic"] = "</script><script>alert(1)</script>"
    tr_path.write_text(json.dumps(data))
    page = render_html(load_run(run))
    assert "</script><script>alert(1)" not in page
    assert page.count("<script") == 2  # the JSON data block and the viewer code, nothing injected
    # no network: no external URL is referenced by src/href, no CDN
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "%%" not in page  # every template slot was filled
    payload = json.loads(
        page.split('<script id="run-data" type="application/json">')[1].split("</script>")[0]
    )
    assert payload["strings"][payload["traces"][1]["edges"][1][2]] == "</script><script>alert(1)</script>"


def test_payload_interns_strings_and_clips_errors(tmp_path: Path) -> None:
    from llemma_prover.traces.html import HtmlOptions

    run = load_run(make_run(tmp_path))
    p = build_payload(run, HtmlOptions(max_error_chars=10))
    assert [t["name"] for t in p["theorems"]] == sorted(t["name"] for t in p["theorems"])
    assert len(p["strings"]) == len(set(p["strings"]))
    errs = [p["strings"][e[7]] for tr in p["traces"] for e in tr["edges"] if e[7] >= 0]
    assert errs and all("more characters]" in e or len(e) <= 10 for e in errs)


def test_cli_html_writes_into_the_run_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path)
    assert main(["trace", "html", str(run)]) == 0
    assert (run / "trace.html").stat().st_size > 5000
    assert "trace.html" in capsys.readouterr().out


# ------------------------------------------------------------------------------- real browser
@pytest.mark.browser
def test_viewer_in_headless_chromium(tmp_path: Path) -> None:
    run = make_run(tmp_path, errored=("aime_1983_p1",))
    page = tmp_path / "viewer.html"
    assert main(["trace", "html", str(run), "-o", str(page)]) == 0
    with browser() as drv:
        open_viewer(drv, page)
        assert drv.find_element("id", "count").text == "5 / 5"
        # sortable: clicking "time s" twice sorts ascending by time
        th = drv.find_element("css selector", 'th[data-key="time"]')
        th.click()
        names = [
            r.get_attribute("data-theorem") for r in drv.find_elements("css selector", "#theorems tbody tr")
        ]
        assert names[0] in ("imo_1959_p1", "mathd_numbertheory_3") and names[-1] == "aime_1983_p1"
        th.click()
        names = [
            r.get_attribute("data-theorem") for r in drv.find_elements("css selector", "#theorems tbody tr")
        ]
        assert names[0] == "aime_1983_p1"

        # a solved theorem: its proof path is highlighted, edge labels show the tactics
        click_theorem(drv, "mathd_algebra_10")
        assert proof_edge_tactics(drv) == ["split.", "lia."]
        assert "proof: split." in drv.find_element("id", "proof-line").text
        assert len(drv.find_elements("css selector", ".node.on-proof")) == 3
        # collapse the root: its subtree disappears; expand it again
        drv.find_element("css selector", '[data-toggle="n0"]').click()
        assert proof_edge_tactics(drv) == []
        drv.find_element("css selector", '[data-toggle="n0"]').click()
        assert proof_edge_tactics(drv) == ["split.", "lia."]
        # clicking an edge shows its details
        drv.find_element("css selector", '.edge.proof[data-edge="1-2"] text.tac').click()
        det = drv.find_element("id", "details").text
        assert "lia." in det and "proved" in det
        screenshot(drv, "html_viewer_proved.png")

        # a failed theorem: 7 failed attempts at the root are folded; unfolding shows the error edges
        click_theorem(drv, "imo_1959_p1")
        assert proof_edge_tactics(drv) == []
        assert len(error_edges(drv)) == 1  # node 1's single failed attempt is shown
        drv.find_element("css selector", '.node.group[data-node="0"]').click()
        errs = error_edges(drv)
        assert len(errs) == 8
        assert any(
            "lia failed" in (e.find_element("css selector", "title").get_attribute("textContent") or "")
            for e in errs
        )
        drv.find_element("css selector", ".node.errleaf").click()
        assert "error:" in drv.find_element("id", "details").text
        screenshot(drv, "html_viewer_failed.png")

        # a theorem without a trace, and the filter box
        click_theorem(drv, "aime_1983_p1")
        assert "No search trace" in drv.find_element("id", "details").text
        drv.find_element("id", "filter").send_keys("mathd")
        assert drv.find_element("id", "count").text == "2 / 5"
        assert console_errors(drv) == []


@pytest.mark.browser
def test_viewer_with_gzipped_data(tmp_path: Path) -> None:
    """Large runs embed gzipped base64 data, unpacked by the browser's DecompressionStream."""
    run = make_run(tmp_path)
    page = tmp_path / "gz.html"
    assert main(["trace", "html", str(run), "-o", str(page), "--compress", "always"]) == 0
    text = page.read_text()
    assert 'id="run-data-gz"' in text and 'id="run-data"' not in text and "mathd_algebra_10" not in text
    with browser() as drv:
        open_viewer(drv, page)
        assert drv.find_element("id", "count").text == "4 / 4"
        click_theorem(drv, "mathd_algebra_10")
        assert proof_edge_tactics(drv) == ["split.", "lia."]
        assert console_errors(drv) == []


def test_no_chromium_left_running() -> None:
    """After the browser tests, no chromium started by this process is alive."""
    left = [p for p in descendants(os.getpid()) if "chrom" in ((proc_stat(p) or (0, "", ""))[2]).lower()]
    assert left == []
