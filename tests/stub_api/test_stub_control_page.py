"""The control page at /__admin/ in a real headless Chromium: live stats, one-click outages, forms, screenshot."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from tests.stub_api.helpers import StubClient

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ERROR_RED = (0xCF, 0x22, 0x2E)

pytestmark = pytest.mark.browser
# Generous waits for the page to show a state (it polls the stub): a deadline, not a speed requirement.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is not installed: run `make tools` (apt-get install chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=2 * WAIT_MS
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any, stub: StubClient) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{stub.url}/__admin/")
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the control page: {errors}"


def _red_share(png: bytes) -> float:
    """The share of pixels close to the page's 'error' red."""
    with Image.open(io.BytesIO(png)) as image:
        data = image.convert("RGB").tobytes()
    red, green, blue = ERROR_RED
    close = sum(
        1
        for i in range(0, len(data), 3)
        if abs(data[i] - red) < 40 and abs(data[i + 1] - green) < 40 and abs(data[i + 2] - blue) < 40
    )
    return close / (len(data) // 3)


def test_live_stats_and_one_click_outage(page: Page, stub: StubClient, tmp_path: Path) -> None:
    badge = page.locator("#mode-badge")
    expect(badge).to_have_text("up")
    expect(page.locator("#stat-requests")).to_have_text("0")

    for i in range(1, 6):
        assert stub.get(f"/items/{i}").status == 200
    expect(page.locator("#stat-requests")).to_have_text("5")
    expect(page.locator("#by-path")).to_contain_text("/items/3")
    assert _red_share(badge.screenshot()) < 0.05, "the badge is not red while the service is up"

    page.click("#btn-error")
    expect(badge).to_have_text("error")
    expect(page.locator("#btn-error")).to_have_class("active")
    assert stub.admin("GET", "faults")["mode"] == "error"
    assert stub.get("/items/1").status == 503
    expect(page.locator("#by-status")).to_contain_text("503")
    expect(page.locator("#stat-requests")).to_have_text("6")

    shot = tmp_path / "control-page-error.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.width == 1280
        assert image.height >= 600
    assert _red_share(badge.screenshot()) > 0.3, "the mode badge turns red on an outage"
    assert _red_share(shot.read_bytes()) > 0.0005, "red is visible on the full-page screenshot"

    page.click("#btn-timeout")
    expect(badge).to_have_text("timeout")
    assert stub.admin("GET", "faults")["mode"] == "timeout"
    page.click("#btn-reset")
    expect(badge).to_have_text("reset")
    assert stub.admin("GET", "faults")["mode"] == "reset"
    page.click("#btn-up")
    expect(badge).to_have_text("up")
    assert stub.get("/items/1").status == 200


def test_faults_form_and_its_errors(page: Page, stub: StubClient) -> None:
    expect(page.locator("#f-latency-ms")).to_have_value("0")
    page.fill("#f-latency-ms", "100")
    page.fill("#f-latency-p99-ms", "50")
    page.click("#btn-apply")
    expect(page.locator("#message")).to_contain_text("latency_p99_ms (50) must be >= latency_ms (100)")
    expect(page.locator("#message")).to_have_class("error")
    assert stub.admin("GET", "faults")["latency_ms"] == 0.0, "nothing changed"

    page.fill("#f-latency-p99-ms", "400")
    page.select_option("#f-latency-model", "lognormal")
    page.fill("#f-error-rate", "0.25")
    page.select_option("#f-error-status", "429")
    page.fill("#f-cache-control", "max-age=60")
    page.click("#btn-apply")
    expect(page.locator("#message")).to_have_text("faults applied")
    faults = stub.admin("GET", "faults")
    assert (faults["latency_ms"], faults["latency_p99_ms"], faults["latency_model"]) == (100.0, 400.0, "lognormal")
    assert (faults["error_rate"], faults["error_status"], faults["cache_control"]) == (0.25, 429, "max-age=60")
    expect(page.locator("#faults-json")).to_contain_text('"error_status": 429')


def test_schedule_an_outage_and_reset_everything(page: Page, stub: StubClient) -> None:
    page.select_option("#outage-mode", "error")
    page.fill("#outage-start", "0")
    page.fill("#outage-duration", "60")
    page.click("#btn-outage")
    expect(page.locator("#mode-badge")).to_have_text("error")
    expect(page.locator("#mode-detail")).to_contain_text("outage window active")
    assert stub.get("/?name=x").status == 503
    assert stub.admin("GET", "faults")["mode"] == "up", "a window, not the global mode"

    page.click("#btn-clear-outage")
    expect(page.locator("#mode-badge")).to_have_text("up")
    assert stub.get("/?name=x").status == 200

    expect(page.locator("#stat-requests")).to_have_text("2")
    page.click("#btn-reset-all")
    expect(page.locator("#message")).to_have_text("stats and faults reset")
    expect(page.locator("#stat-requests")).to_have_text("0")
    assert stub.stats()["requests"] == 0
