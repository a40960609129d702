"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Each test serves ``api.app.create_app`` with a fake Redis subscription (a `FakeSubscriber` the
test fills with ``(channel, encode(event))`` built from the real event structs), opens the page
and waits on what an energy manager would see: the connection badge, toasts, the anomaly
table, the training panel and the machine cards. Nothing here sleeps blindly: every check is
a Playwright ``expect`` with a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from aiohttp import web
from playwright.async_api import (
    Browser,
    Page,
    Route,
    WebSocket,
    WebSocketRoute,
    async_playwright,
    expect,
)

from api.app import create_app
from schemas.events import (
    AnomalyDetected,
    Event,
    MetricUpdated,
    Severity,
    SystemAlert,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgress,
    TrainingStarted,
    encode,
)
from schemas.machines import MACHINES
from streams.settings import Settings
from streams.topics import REDIS_CHANNELS
from tests.api.fakes import FakeSubscriber, no_kafka_deps

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Generous: chromium on a loaded CI machine can be slow to start and paint.
WAIT_MS = 15_000
#: A reconnect after the server comes back can take the backoff delay (up to ~3 s after two
#: failed attempts) on top of the usual wait.
RECONNECT_WAIT_MS = 30_000

COMPRESSOR = MACHINES[0]  # Compressor-1
BOILER = next(m for m in MACHINES if m.name == "Boiler-1")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _id() -> str:
    return str(uuid.uuid4())


class DashboardServer:
    """create_app on 127.0.0.1, fed by a fake subscriber instead of Redis; restartable on
    its port."""

    def __init__(self) -> None:
        self.subscriber = FakeSubscriber()
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.prefix = ""

    async def start(self, port: int = 0, prefix: str = "") -> None:
        self.subscriber = FakeSubscriber()
        self.prefix = prefix
        # No view of Kafka and nothing published: the views that need one answer 503.
        app = create_app(Settings(), no_kafka_deps(self.subscriber))
        if prefix:
            # What nginx does for `location /api/analytics/ { proxy_pass http://api/; }`:
            # the app sees paths without the prefix, the browser sees them with it.
            outer = web.Application()
            outer.add_subapp(prefix, app)
            app = outer
        # A short shutdown timeout: open WebSocket handlers must not hold up a stop for 60 s.
        runner = web.AppRunner(app, shutdown_timeout=3.0)
        await runner.setup()
        self.runner = runner
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()

    async def publish(self, *events: Event) -> None:
        for event in events:
            await self.subscriber.put(REDIS_CHANNELS[event.event_type], encode(event))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix.rstrip('/')}/"


@pytest.fixture
async def server() -> AsyncIterator[DashboardServer]:
    srv = DashboardServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(apt-get install chromium); these tests do not use Playwright's browsers")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    pg = await context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


OpenLive = Callable[[], Awaitable[Page]]


@pytest.fixture
def open_live(server: DashboardServer, page: Page) -> OpenLive:
    """Open the dashboard and wait until its WebSocket is live (events sent earlier are lost)."""

    async def go() -> Page:
        await page.goto(server.url)
        await expect(page.locator("#conn-badge")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS)
        return page

    return go


def anomaly(machine_name: str = COMPRESSOR.name, machine_id: str = COMPRESSOR.id,
            severity: Severity = "critical", value: float = 97.4,
            expected: float = 41.0) -> AnomalyDetected:
    return AnomalyDetected(
        event_id=_id(), occurred_at=T0, machine_id=machine_id, machine_name=machine_name,
        timestamp=T0, metric="power_kw", value=value, expected_value=expected,
        deviation_percent=(value - expected) / expected * 100, score=0.97, threshold=0.9,
        anomaly_score=6.3, severity=severity, anomaly_type="spike", detector="hst",
        explanation="power far above the usual level for this hour")


def metric(machine_id: str, power: float, minute: int = 0) -> MetricUpdated:
    end = T0 + timedelta(minutes=minute + 1)
    return MetricUpdated(
        event_id=_id(), occurred_at=end, machine_id=machine_id, timestamp=end,
        metric="power_kw", value=power, window_start=end - timedelta(minutes=1),
        window_end=end, readings=60, anomalies=0, energy_kwh=power / 60,
        mean_power_kw=power, max_power_kw=power * 1.1)


async def test_page_loads_and_goes_live(open_live: OpenLive) -> None:
    page = await open_live()
    badge = page.locator("#conn-badge")
    await expect(badge).to_have_text("Live")
    await expect(badge).to_have_attribute("aria-label", "Connection status: Live")
    await expect(page.locator("h1")).to_have_text("EnMS Stream")
    await expect(page.locator("#toasts")).to_have_attribute("aria-live", "polite")
    # The machine list from GET api/v1/machines names the cards.
    await expect(page.locator(".machine-card")).to_have_count(len(MACHINES), timeout=WAIT_MS)
    card = page.locator(f'.machine-card[data-machine-id="{BOILER.id}"]')
    await expect(card).to_contain_text(BOILER.name)


async def test_critical_anomaly_shows_toast_and_row(
        open_live: OpenLive, server: DashboardServer) -> None:
    page = await open_live()
    await server.publish(anomaly())

    toast = page.locator("#toasts .toast").first
    await expect(toast).to_contain_text(COMPRESSOR.name, timeout=WAIT_MS)
    await expect(toast).to_have_class(re.compile(r"\btoast-critical\b"))
    await expect(toast).to_contain_text("power_kw")
    await expect(toast).to_contain_text("critical")

    rows = page.locator("#anomalies tbody tr")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row).to_contain_text(COMPRESSOR.name)
    await expect(row).to_contain_text("spike")
    await expect(row.locator(".pill")).to_have_text("critical")
    await expect(row).to_contain_text("97.4")
    await expect(row).to_contain_text("41.0")
    await expect(row).to_contain_text("0.97")
    await expect(page.locator("#anomaly-count-24h")).to_have_text("1")
    card = page.locator(f'.machine-card[data-machine-id="{COMPRESSOR.id}"]')
    await expect(card.locator(".anomaly-count")).to_have_text("1")

    # A warning goes on top, amber.
    await server.publish(anomaly(severity="warning", value=60.0))
    await expect(rows).to_have_count(2, timeout=WAIT_MS)
    await expect(rows.first.locator(".pill")).to_have_text("warning")
    await expect(page.locator("#toasts .toast").first).to_have_class(
        re.compile(r"\btoast-warning\b"))
    await expect(page.locator("#anomaly-count-24h")).to_have_text("2")


async def test_event_text_is_not_html(open_live: OpenLive, server: DashboardServer) -> None:
    page = await open_live()
    evil = '<img src=x onerror="window.pwned=1">Evil'
    await server.publish(anomaly(machine_name=evil, machine_id="not-in-catalogue"))
    toast = page.locator("#toasts .toast").first
    await expect(toast).to_contain_text(evil, timeout=WAIT_MS)
    await expect(page.locator("#anomalies tbody tr").first).to_contain_text(evil)
    assert await page.locator("#toasts img, #anomalies img, #machines img").count() == 0
    assert await page.evaluate("window.pwned === undefined")


async def test_training_job_progress_and_completion(
        open_live: OpenLive, server: DashboardServer) -> None:
    page = await open_live()
    job = _id()
    common: dict[str, Any] = {"machine_id": COMPRESSOR.id, "training_job_id": job,
                              "job_id": job, "model_type": "baseline"}
    await server.publish(TrainingStarted(event_id=_id(), occurred_at=T0, reason="weekly",
                                         trigger_type="scheduled", **common))
    row = page.locator(f'#training .training-job[data-job-id="{job}"]')
    await expect(row).to_have_attribute("data-status", "running", timeout=WAIT_MS)
    await expect(row).to_contain_text("baseline")
    await expect(row).to_contain_text(COMPRESSOR.name)

    await server.publish(TrainingProgress(event_id=_id(), occurred_at=T0, stage="loading",
                                          progress_pct=30.0, message="reading 7 days",
                                          **common))
    await expect(row.locator("progress")).to_have_attribute("value", "30", timeout=WAIT_MS)
    await expect(row).to_contain_text("reading 7 days")
    await expect(row).to_contain_text("30%")

    await server.publish(TrainingProgress(event_id=_id(), occurred_at=T0, stage="fitting",
                                          progress_pct=75.0, message="fitting regression",
                                          **common))
    await expect(row.locator("progress")).to_have_attribute("value", "75", timeout=WAIT_MS)
    await expect(row).to_contain_text("fitting regression")

    await server.publish(TrainingCompleted(event_id=_id(), occurred_at=T0, version=4,
                                           accepted=True, metrics={"r2": 0.91}, **common))
    await expect(row).to_have_attribute("data-status", "completed", timeout=WAIT_MS)
    await expect(row.locator("progress")).to_have_attribute("value", "100")
    await expect(row).to_contain_text("accepted")
    toast = page.locator("#toasts .toast-success")
    await expect(toast).to_have_count(1, timeout=WAIT_MS)
    await expect(toast).to_contain_text("Training completed")
    await expect(toast).to_contain_text("v4 accepted")

    # A second job fails: red row, red toast with the error.
    failed = _id()
    await server.publish(
        TrainingStarted(event_id=_id(), occurred_at=T0, machine_id=BOILER.id,
                        training_job_id=failed, job_id=failed, model_type="baseline"),
        TrainingFailed(event_id=_id(), occurred_at=T0, machine_id=BOILER.id,
                       training_job_id=failed, job_id=failed, model_type="baseline",
                       error="not enough data: 12 rows", error_message="not enough data"))
    frow = page.locator(f'#training .training-job[data-job-id="{failed}"]')
    await expect(frow).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
    await expect(frow).to_contain_text("not enough data: 12 rows")
    await expect(page.locator("#toasts .toast-error")).to_contain_text("not enough data")


async def test_metric_updates_machine_card(open_live: OpenLive, server: DashboardServer) -> None:
    page = await open_live()
    card = page.locator(f'.machine-card[data-machine-id="{COMPRESSOR.id}"]')
    await expect(card).to_be_visible(timeout=WAIT_MS)
    await server.publish(metric(COMPRESSOR.id, 42.5))
    await expect(card.locator(".power")).to_have_text("42.5", timeout=WAIT_MS)
    await expect(card.locator(".energy")).to_contain_text("0.71 kWh")
    await server.publish(metric(COMPRESSOR.id, 47.25, minute=1))
    await expect(card.locator(".power")).to_have_text("47.3", timeout=WAIT_MS)
    # Two points make a line in the sparkline.
    points = card.locator("svg.sparkline polyline")
    await expect(points).to_have_attribute(
        "points", re.compile(r"^\S+,\S+ \S+,\S+$"), timeout=WAIT_MS)


async def test_an_episode_toasts_once_for_many_anomalies(
        open_live: OpenLive, server: DashboardServer) -> None:
    from schemas.events import AnomalyEpisode

    page = await open_live()
    first = anomaly()
    episode = AnomalyEpisode(
        event_id=_id(), occurred_at=first.occurred_at, machine_id=COMPRESSOR.id,
        machine_name=COMPRESSOR.name, episode_id=first.event_id, status="opened",
        anomaly_type="spike", severity="critical", first_at=first.timestamp,
        last_at=first.timestamp, count=1, peak_value=first.value)
    await server.publish(msgspec.structs.replace(first, episode_id=first.event_id))
    await server.publish(episode)
    for _ in range(4):
        await server.publish(msgspec.structs.replace(anomaly(), episode_id=first.event_id))
    rows = page.locator("#anomalies tbody tr")
    await expect(rows).to_have_count(5, timeout=WAIT_MS)  # the log shows every anomaly
    await expect(page.locator("#toasts .toast")).to_have_count(1)  # one toast: the episode
    await expect(page.locator("#toasts .toast-critical")).to_contain_text(COMPRESSOR.name)
    # A routine update (same severity) is not announced; a marker event proves it was seen.
    await server.publish(msgspec.structs.replace(episode, event_id=_id(), status="updated",
                                                 count=10))
    await server.publish(metric(COMPRESSOR.id, 42.5))
    card = page.locator(f'.machine-card[data-machine-id="{COMPRESSOR.id}"]')
    await expect(card.locator(".power")).to_have_text("42.5", timeout=WAIT_MS)
    await expect(page.locator("#toasts .toast")).to_have_count(1)


async def test_enpi_and_retrain_button(open_live: OpenLive, server: DashboardServer) -> None:
    page = await open_live()
    card = page.locator(f'.machine-card[data-machine-id="{COMPRESSOR.id}"]')
    await expect(card).to_be_visible(timeout=WAIT_MS)
    m = msgspec.structs.replace(metric(COMPRESSOR.id, 42.5), expected_energy_kwh=0.6,
                                enpi=1.181, cusum_kwh=3.25)
    await server.publish(m)
    await expect(card.locator(".enpi")).to_have_text("1.181 · CUSUM 3.3 kWh", timeout=WAIT_MS)
    await expect(card.locator(".enpi")).to_have_class(re.compile("enpi-high"))
    # This server has no Kafka: the trigger is refused (503), and the page says so.
    await card.locator("button.mc-retrain").click()
    toast = page.locator("#toasts .toast-error")
    await expect(toast).to_contain_text("Retrain refused", timeout=WAIT_MS)
    await expect(toast).to_contain_text("not available")


async def test_reconnects_after_server_restart(
        open_live: OpenLive, server: DashboardServer) -> None:
    page = await open_live()
    badge = page.locator("#conn-badge")
    port = server.port

    await server.stop()
    await expect(badge).not_to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await expect(badge).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
    await expect(badge).to_have_text("Reconnecting")

    await server.start(port)
    assert server.port == port
    await expect(badge).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)
    await expect(badge).to_have_text("Live")

    # And the new connection delivers events.
    await server.publish(anomaly())
    await expect(page.locator("#anomalies tbody tr")).to_have_count(1, timeout=WAIT_MS)


async def test_screenshot_with_events(open_live: OpenLive, server: DashboardServer) -> None:
    """A populated page, saved to /tmp/dashboard.png for a human to look at."""
    page = await open_live()
    await expect(page.locator(".machine-card")).to_have_count(len(MACHINES), timeout=WAIT_MS)
    for i, m in enumerate(MACHINES):
        for k in range(30):
            wave = 0.55 + 0.25 * ((k * (i + 3)) % 11) / 10
            await server.publish(metric(m.id, round(m.rated_power_kw * wave, 2), minute=k))
    await server.publish(
        anomaly(),
        anomaly(machine_name=BOILER.name, machine_id=BOILER.id, severity="warning",
                value=171.0, expected=140.0),
        SystemAlert(event_id=_id(), occurred_at=T0, alert_type="drift", severity="warning",
                    message="baseline drift on HVAC-Main", machine_id=MACHINES[1].id),
    )
    job = _id()
    common: dict[str, Any] = {"machine_id": MACHINES[1].id, "training_job_id": job,
                              "job_id": job, "model_type": "baseline"}
    await server.publish(
        TrainingStarted(event_id=_id(), occurred_at=T0, **common),
        TrainingProgress(event_id=_id(), occurred_at=T0, stage="fitting", progress_pct=60,
                         message="fitting regression", **common))
    await expect(page.locator("#anomalies tbody tr")).to_have_count(2, timeout=WAIT_MS)
    await expect(page.locator("#toasts .toast")).to_have_count(3, timeout=WAIT_MS)
    await expect(page.locator(f'#training [data-job-id="{job}"] progress')).to_have_attribute(
        "value", "60", timeout=WAIT_MS)
    last = MACHINES[-1]
    await expect(page.locator(f'.machine-card[data-machine-id="{last.id}"] .power')
                 ).not_to_have_text("\u2014", timeout=WAIT_MS)
    await page.screenshot(path="/tmp/dashboard.png", full_page=True, animations="disabled")


async def test_heartbeat_ping_gets_pong_and_stays_live(
        page: Page, server: DashboardServer) -> None:
    """Every 30 s the page pings; the server's pong keeps the connection (fake page clock)."""
    pong = asyncio.Event()
    sockets: list[str] = []

    def on_frame(payload: str | bytes) -> None:
        if '"pong"' in str(payload):
            pong.set()

    def on_websocket(ws: WebSocket) -> None:
        sockets.append(ws.url)
        ws.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
    await page.clock.install()
    await page.goto(server.url)
    badge = page.locator("#conn-badge")
    await expect(badge).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await page.clock.run_for(30_500)  # one ping
    await asyncio.wait_for(pong.wait(), WAIT_MS / 1000)
    await page.clock.run_for(11_000)  # past the 10 s pong deadline
    await expect(badge).to_have_attribute("data-state", "live")
    assert len(sockets) == 1, sockets
    assert await page.evaluate("window.enmsDashboard.failures()") == 0


async def test_missing_pong_forces_a_reconnect(page: Page, server: DashboardServer) -> None:
    """A server that never answers the ping is dropped 10 s later and a new socket opens."""
    opened: list[WebSocketRoute] = []
    pinged = asyncio.Event()

    def on_message(message: str | bytes) -> None:
        if "ping" in str(message):
            pinged.set()

    def handler(route: WebSocketRoute) -> None:  # a mock server that ignores pings
        opened.append(route)
        route.send(json.dumps({
            "type": "connection", "status": "connected", "client_id": "mock",
            "connection_type": "dashboard", "timestamp": T0.isoformat()}))
        route.on_message(on_message)

    await page.route_web_socket(re.compile(r"/api/v1/ws/dashboard"), handler)
    await page.clock.install()
    await page.goto(server.url)
    badge = page.locator("#conn-badge")
    await expect(badge).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await page.clock.run_for(30_500)
    await asyncio.wait_for(pinged.wait(), WAIT_MS / 1000)
    await page.clock.run_for(10_000)  # no pong: give up on this socket
    await expect(badge).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
    await page.clock.run_for(2_500)  # first backoff step is 1-2 s
    await expect(badge).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert len(opened) == 2


async def test_offline_after_ten_failures_but_keeps_retrying(
        open_live: OpenLive, page: Page, server: DashboardServer) -> None:
    await page.clock.install()
    page = await open_live()
    badge = page.locator("#conn-badge")
    port = server.port
    await server.stop()
    await expect(badge).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
    for n in range(2, 11):
        await page.clock.run_for(30_000)  # longer than any backoff delay
        await page.wait_for_function(f"window.enmsDashboard.failures() >= {n}",
                                     timeout=WAIT_MS)
        if n < 10:
            await expect(badge).to_have_attribute("data-state", "reconnecting")
    await expect(badge).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    await expect(badge).to_have_text("Offline")
    await expect(badge).to_have_attribute("aria-label", "Connection status: Offline")

    await server.start(port)
    await page.clock.run_for(30_000)  # the next try, 30 s later, finds the server
    await expect(badge).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert await page.evaluate("window.enmsDashboard.failures()") == 0


async def test_browser_offline_shows_offline_then_recovers(open_live: OpenLive) -> None:
    page = await open_live()
    badge = page.locator("#conn-badge")
    await page.context.set_offline(True)
    await expect(badge).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
    await page.context.set_offline(False)
    await expect(badge).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)


async def test_works_behind_a_path_prefix(page: Page) -> None:
    """Behind nginx at /api/analytics/ every URL the page uses keeps the prefix."""
    srv = DashboardServer()
    await srv.start(prefix="/api/analytics/")
    try:
        urls: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        page.on("websocket", lambda ws: urls.append(ws.url))
        await page.goto(srv.url)
        await expect(page.locator("#conn-badge")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS)
        await expect(page.locator(".machine-card")).to_have_count(len(MACHINES),
                                                                  timeout=WAIT_MS)
        await srv.publish(metric(COMPRESSOR.id, 12.0))
        card = page.locator(f'.machine-card[data-machine-id="{COMPRESSOR.id}"]')
        await expect(card.locator(".power")).to_have_text("12.0", timeout=WAIT_MS)
        base = f"127.0.0.1:{srv.port}/api/analytics/"
        for want in ("static/app.js", "static/style.css", "api/v1/machines",
                     "api/v1/ws/dashboard"):
            assert any(base + want in u for u in urls), (want, urls)
        assert any(u.startswith("ws://") for u in urls), urls
        assert all(base in u for u in urls if "favicon" not in u), urls
    finally:
        await srv.stop()


async def test_table_starts_with_the_latest_anomalies_from_the_log(
        server: DashboardServer, page: Page) -> None:
    """On open the table is filled from GET api/v1/anomaly/recent (newest first); a live
    event already shown is not added twice; the live counters count live events only."""
    loaded = [anomaly(severity="warning", value=61.0), anomaly(value=88.0)]
    rows_json = [{
        "id": a.event_id, "machine_id": a.machine_id, "machine_name": a.machine_name,
        "detected_at": (T0 - timedelta(minutes=i)).isoformat(), "anomaly_type": "drift",
        "severity": a.severity, "metric_name": a.metric, "metric_value": a.value,
        "expected_value": a.expected_value, "confidence_score": a.score,
        "deviation_std_dev": a.anomaly_score, "explanation": a.explanation,
    } for i, a in enumerate(loaded)]

    async def recent(route: Route) -> None:
        await route.fulfill(status=200, content_type="application/json",
                            body=json.dumps({"total_count": 2, "anomalies": rows_json}))

    await page.route("**/api/v1/anomaly/recent*", recent)
    await page.goto(server.url)
    await expect(page.locator("#conn-badge")).to_have_attribute("data-state", "live",
                                                                timeout=WAIT_MS)
    rows = page.locator("#anomalies tbody tr")
    await expect(rows).to_have_count(2, timeout=WAIT_MS)
    await expect(rows.first).to_contain_text("61.0")  # the log's order: newest first
    await expect(rows.first).to_contain_text("drift")
    await expect(rows.nth(1).locator(".pill")).to_have_text("critical")
    await expect(page.locator("#anomaly-count-24h")).to_have_text("0")

    await server.publish(loaded[1])  # the same anomaly, live: not a second row
    fresh = anomaly(value=99.5)
    await server.publish(fresh)
    # Events arrive in order: once the fresh one is on top, the repeat has been handled.
    await expect(rows.first).to_contain_text("99.5", timeout=WAIT_MS)
    await expect(rows).to_have_count(3)
    await expect(page.locator("#anomaly-count-24h")).to_have_text("1")
