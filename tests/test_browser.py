"""The running app in headless Chromium, as a user sees it."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(demo_store: Path, tmp_path_factory):
    # The browser saves a segment, which writes a sidecar file next to the store: it gets its own
    # copy, so the session's store stays read-only for every other test.
    store = tmp_path_factory.mktemp("browser") / "demo.duckdb"
    shutil.copyfile(demo_store, store)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "journeylens", "serve", "--db", str(store), "--port", str(port)],
        env={**os.environ, "JOURNEYLENS_STORE_PATH": str(store)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the app did not start within 60 s")
            time.sleep(0.3)
    yield url
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


def test_overview_shows_kpi_cards_and_charts(app_url, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 1800})
    page.goto(app_url)
    page.wait_for_selector("h1:has-text('Overview')", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    for label in ("Revenue", "Active customers", "Historical CLTV", "Retention", "CSAT", "Omnichannel share"):
        assert any(label in text for text in labels), labels
    values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert values[0].startswith("$") and values[0] != "$0"
    assert page.locator(".js-plotly-plot").count() >= 3
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    page.close()


def test_filters_live_in_the_url(app_url, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{app_url}/?channel=store")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    store_only = page.locator('[data-testid="stMetricValue"]').all_inner_texts()[0]
    page.goto(app_url)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    everything = page.locator('[data-testid="stMetricValue"]').all_inner_texts()[0]
    assert store_only != everything
    # A hand-edited link whose range runs backwards: a notice and the default range, no traceback.
    page.goto(f"{app_url}/?dates=2026-10-31&dates=2026-01-01")
    page.wait_for_selector("text=The link's date range runs backwards", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    assert page.locator('[data-testid="stMetricValue"]').all_inner_texts()[0] == everything
    assert page.locator('[data-testid="stException"]').count() == 0
    # Text where a page option wants a number: a toast says so and the page uses its default.
    fresh = browser.new_page(viewport={"width": 1440, "height": 1000})
    fresh.goto(f"{app_url}/journey_map?steps=xyz&direction=Backward")
    fresh.wait_for_selector("[data-testid=stToast]:has-text(\"The link's steps did not fit this page\")",
                            timeout=120_000)
    assert "direction=Backward" in fresh.url and "steps" not in fresh.url
    assert fresh.locator('[data-testid="stException"]').count() == 0
    fresh.close()
    page.close()


def test_retention_heatmap_and_csat_trend(app_url, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 2400})
    # Open the app first, as a user does, so the navigation is set up before the shared links.
    page.goto(app_url)
    page.wait_for_selector("h1:has-text('Overview')", timeout=120_000)
    # A shared link: the page options travel in the URL as the labels the widgets show.
    page.goto(f"{app_url}/retention?period=Month&dates=2025-05-01&dates=2026-10-31")
    page.wait_for_selector("h1:has-text('Retention')", timeout=120_000)
    page.wait_for_selector("text=Retention by month cohort", timeout=120_000)
    heatmap = page.locator(".js-plotly-plot", has_text="Retention by month cohort")
    assert heatmap.locator(".hm image").count() == 1  # the drawn heatmap
    assert heatmap.locator("text=% of cohort").count() == 1  # its colour scale, in %
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "retention.png"), full_page=True)
    page.goto(f"{app_url}/satisfaction?dates=2024-11-01&dates=2026-10-31")
    page.wait_for_selector("h1:has-text('Customer satisfaction')", timeout=120_000)
    page.wait_for_selector("text=CSAT per month by channel of the contact", timeout=120_000)
    trend = page.locator(".js-plotly-plot", has_text="CSAT per month by channel of the contact")
    assert trend.locator(".scatterlayer .trace").count() >= 1  # the CSAT line
    assert trend.locator(".barlayer .point").count() >= 6  # the answers per month
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "satisfaction.png"), full_page=True)
    page.close()


def test_journey_map_sankey(app_url, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 1600})
    page.goto(f"{app_url}/journey_map")
    # The first journey queries of a fresh server take a while on a busy machine.
    page.wait_for_selector("text=The first 4 steps of each journey", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .sankey-node", timeout=60_000)
    labels = page.locator(".js-plotly-plot .sankey-node .node-label").all_text_contents()
    assert any(label.startswith("1 · web · ") for label in labels), labels
    assert any(label.startswith("purchase (store) · ") for label in labels), labels
    assert any(label.startswith("drop-off · ") for label in labels), labels
    assert page.locator(".js-plotly-plot .sankey-link").count() >= 10
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "journey_map.png"), full_page=True)
    # A shared link: the options travel in the URL as the labels the widgets show.
    page.goto(f"{app_url}/journey_map?direction=Backward&steps=3&buy_in=store")
    page.wait_for_selector("text=The last 3 steps before a purchase", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .sankey-node", timeout=60_000)
    labels = page.locator(".js-plotly-plot .sankey-node .node-label").all_text_contents()
    assert any(label.startswith("−1 · store · ") for label in labels), labels
    assert [label for label in labels if label.startswith("purchase")] == [
        next(label for label in labels if label.startswith("purchase (store)"))]
    page.close()


def test_customer_value_page(app_url, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 1800})
    # In through the sidebar link, as a user comes; the first visit fits both models.
    page.goto(app_url)
    link = page.get_by_role("link", name="Customer value")
    link.wait_for(timeout=60_000)
    link.click()
    page.wait_for_selector("h1:has-text('Customer value')", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .gtitle:has-text('Predicted CLTV over the next 12 months')",
                           timeout=180_000)
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    assert any("Predicted CLTV" in label for label in labels), labels
    assert page.locator('[data-testid="stMetricValue"]').nth(3).inner_text().startswith("$")
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "customer_value.png"), full_page=True)
    page.get_by_role("tab", name="Model check").click()
    page.wait_for_selector(".js-plotly-plot .gtitle:has-text('Holdout check')", timeout=120_000)
    assert "clv_tab=Model+check" in page.url  # the open tab is part of the shareable link
    _settled(page)  # the other tab's charts leave the page only when the rerun ends
    holdout = page.locator(".js-plotly-plot", has_text="Holdout check")
    assert holdout.locator(".barlayer .point").count() == 16  # actual and predicted, 8 buckets
    page.close()


def test_chart_downloads_are_real_files(app_url, browser, tmp_path):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1440, "height": 1400})
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    files = {}
    for label in ("CSV", "PNG"):
        # Our download row, not plotly's own "download as png" in the chart's mode bar.
        button = page.locator(f"[data-testid=stDownloadButton] button:has-text('{label}')").first
        with page.expect_download(timeout=120_000) as download:  # the PNG is rendered on click
            button.click()
        files[label] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[label])
    assert files["CSV"].name == "revenue-by-channel.csv" and files["PNG"].name == "revenue-by-channel.png"
    data = pl.read_csv(files["CSV"])
    assert data.columns == ["period", "channel", "revenue", "orders"] and data.height > 0
    png = files["PNG"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (2800, 900)  # 1400 × 450 at scale 2: sharp enough for a slide
    context.close()


def _select(page, key: str, option: str) -> None:
    """Pick ``option`` in the selectbox or multiselect whose widget key is ``key``."""
    page.locator(f".st-key-{key} [role=combobox]").click()
    page.get_by_role("option", name=option, exact=True).click()
    if page.get_by_role("listbox").count():  # a multiselect stays open for more choices
        page.keyboard.press("Escape")


def _settled(page) -> None:
    """Wait until the app has finished its run (no running indicator, no stale element)."""
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid=stStatusWidget]", state="detached", timeout=120_000)
    page.wait_for_selector("[data-stale=true]", state="detached", timeout=120_000)


def _metric(page, label: str):
    return page.locator("[data-testid=stMetric]", has_text=label).locator("[data-testid=stMetricValue]").first


def _overview_numbers(page) -> list[str]:
    page.wait_for_selector("h1:has-text('Overview')", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
    _settled(page)
    return page.locator('[data-testid="stMetricValue"]').all_inner_texts()


def test_built_segment_travels_in_a_shared_link(app_url, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 1600})
    page.set_default_timeout(120_000)  # a fresh server computes every fact once, slowly on a busy machine
    page.goto(f"{app_url}/segments")
    members = _metric(page, "Members")
    members.wait_for()
    _settled(page)
    assert members.inner_text() == "2,000"  # no condition yet: every customer of the demo store
    _select(page, "cond_0_field", "Region")
    _select(page, "cond_0_list", "North")
    expect(members).not_to_have_text("2,000")
    name = f"North browser {time.time_ns()}"
    page.locator(".st-key-segment_new_name input").fill(name)
    page.get_by_role("button", name="Save as new segment").click()
    page.wait_for_selector(f"text=Saved “{name}”")

    page.get_by_role("link", name="Overview").click()
    all_customers = _overview_numbers(page)
    _select(page, "saved_segment", name)
    expect(_metric(page, "Revenue")).not_to_have_text(all_customers[0])
    in_segment = _overview_numbers(page)
    assert in_segment != all_customers
    page.get_by_role("button", name="Share this view").click()
    link = page.locator("[data-testid=stPopoverBody] code").inner_text()
    assert "saved_segment=" in link
    page.close()

    fresh = browser.new_context(viewport={"width": 1440, "height": 1600})  # no cookies, no session
    shared = fresh.new_page()
    shared.set_default_timeout(120_000)
    shared.goto(link)
    assert _overview_numbers(shared) == in_segment
    assert shared.locator(".st-key-saved_segment [role=combobox]").input_value() == name
    fresh.close()
