"""The running app in headless Chromium, as a user sees it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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
def app_url(demo_store: Path):
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "journeylens", "serve", "--db", str(demo_store), "--port", str(port)],
        env={**os.environ, "JOURNEYLENS_STORE_PATH": str(demo_store)},
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
    for label in ("Revenue", "Active customers", "Omnichannel share", "CSAT", "NPS"):
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
    assert page.locator(".js-plotly-plot .barlayer .point").count() == 16  # actual and predicted, 8 buckets
    page.close()
