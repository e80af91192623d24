"""The console in a real browser (Debian's chromium driven by Playwright) against real
ingest, monitor, notifier and console processes on the real broker and PostgreSQL.

The live board shows a ticket's warning and then its breach without a reload; the ticket
page shows the timeline and the notification; an acknowledgement made in the browser stops
the breach's reminders; a silence made in the browser suppresses the next notification;
the reports' CSV equals the table; zh-CN pages are in Chinese; a viewer cannot silence
(403); no session means the login page. Screenshots go to .build/test-artefacts/console/
(and, with SLAWATCH_UPDATE_DOCS_SCREENSHOTS=1, to docs/images/console/).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.console.stack import ARTEFACTS, TOKENS, created, eventually

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ARTEFACTS / "screenshots"
DOC_SHOTS = ROOT / "docs" / "images" / "console"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):  # as .ci/promtool.sh does for promtool
        subprocess.run(["bash", str(ROOT / ".ci" / "chromium.sh")], check=True)
    assert os.access(CHROMIUM, os.X_OK), "Debian's chromium is needed: bash .ci/chromium.sh"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def context(browser: Browser, locale: str = "en-GB") -> BrowserContext:
    ctx = await browser.new_context(
        locale=locale,
        timezone_id="Asia/Shanghai",
        viewport={"width": 1360, "height": 900},
        accept_downloads=True,
    )
    ctx.set_default_timeout(15_000)
    return ctx


async def login(page: Page, base: str, role: str, then: str = "/") -> None:
    await page.goto(base + then)
    await expect(page.locator('input[name="key"]')).to_be_visible()
    await page.fill('input[name="key"]', TOKENS[role])
    await page.click("form[action='/login'] button")
    await page.wait_for_url(re.compile(re.escape(base + then.split("?")[0]) + r"(\?.*)?$"))


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if os.environ.get("SLAWATCH_UPDATE_DOCS_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOC_SHOTS / path.name)


def webhook_events(sink, path: str, ticket: str) -> list[tuple[str, int]]:
    """(kind, reminder number) of each event the notifier posted for a ticket."""
    out = []
    for request in sink.at(path):
        for event in request.json()["events"]:
            if event["ticket_id"] == ticket:
                out.append((event["kind"], request.json().get("repeat", 0)))
    return out


async def test_no_key_gets_the_login_page_and_a_viewer_cannot_silence(stack, browser) -> None:
    ctx = await context(browser)
    page = await ctx.new_page()
    await page.goto(stack.console + "/silences")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fsilences"))
    await expect(page.locator("h1")).to_contain_text("slawatch")
    await shot(page, "login-en")
    await page.fill('input[name="key"]', "not-a-key")
    await page.click("form[action='/login'] button")
    await expect(page.locator(".error")).to_contain_text("Unknown key")
    await login(page, stack.console, "viewer", "/silences")
    await expect(page.locator("h1")).to_have_text("Silences")
    assert await page.locator("#new-silence").count() == 0  # no form for a viewer
    csrf = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert csrf is not None
    refused = await page.request.post(
        stack.console + "/silences",
        form={"field0": "ticket_id", "value0": "CV-1", "duration": "1h", "csrf_token": csrf},
        max_redirects=0,
    )
    assert refused.status == 403
    cookies = {c["name"]: c for c in await ctx.cookies()}
    session = cookies["slawatch_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    await page.click("form[action='/logout'] button")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto(stack.console + "/")
    await expect(page).to_have_url(re.compile(r"/login"))
    await ctx.close()


async def test_live_board_ticket_acknowledgement_and_silence(stack, browser, webhook) -> None:
    sink, _ = webhook
    path = stack.webhook_path
    ctx = await context(browser)
    board = await ctx.new_page()
    await login(board, stack.console, "operator")
    await expect(board.locator("#live-status")).to_have_text("live")
    await board.evaluate("window.__sameDocument = 'yes'")

    # 1. The board shows the warning (6 s) and then the breach (12 s), without a reload.
    await stack.post(created("CB-1", customer_tier="gold", group="billing", assignee="li.na"))
    row = board.locator('tr.row[data-ticket="CB-1"][data-target="first_response"]')
    await expect(row.locator(".badge.warning")).to_be_visible(timeout=20_000)
    await expect(board.locator("#recent-events")).to_contain_text("CB-1")
    await expect(row).to_have_class(re.compile(r"\bat_risk\b"))
    warned_at = time.monotonic()
    await expect(row).to_have_class(re.compile(r"\bbreached\b"), timeout=20_000)
    assert time.monotonic() - warned_at > 2  # the warning was on screen before the breach
    await expect(row.locator(".overdue")).to_be_visible()
    before = await row.locator(".overdue").inner_text()
    await asyncio.sleep(2.2)  # the overdue time counts up between refreshes
    assert await row.locator(".overdue").inner_text() != before
    assert await board.evaluate("window.__sameDocument") == "yes"  # never reloaded
    await shot(board, "board-en")
    await board.goto(stack.console + "/?assignee=li.na")  # filters are in the URL
    await expect(board.locator('[data-count="breached"]')).to_have_text("1")
    await expect(board.locator("input[name='assignee']")).to_have_value("li.na")

    # 2. A second ticket, silenced from its page before it breaches.
    await stack.post(created("CB-2", customer_tier="gold", group="billing"))
    ticket2 = await ctx.new_page()

    async def known() -> bool:
        response = await ticket2.goto(stack.console + "/tickets/CB-2")
        return response is not None and response.status == 200

    await eventually(known, timeout=10)
    await ticket2.fill("#silence-form input[name='comment']", "customer called: known outage")
    await ticket2.click("#silence-form button")
    await expect(ticket2.locator(".notice")).to_contain_text("Silence created")
    await expect(ticket2.locator(".actions")).to_contain_text("otto")

    # 3. The ticket page: timeline, notification, then acknowledge; reminders stop.
    page = await ctx.new_page()
    await eventually(lambda: _reminded(sink, path), timeout=20)
    await page.goto(stack.console + "/tickets/CB-1")
    await expect(page.locator(".timeline")).to_contain_text("breached")
    await expect(page.locator(".timeline li.started")).to_have_count(2)
    await expect(page.locator("table.log")).to_contain_text("sent")
    await expect(page.locator("table.log")).to_contain_text("supervisors")
    await shot(page, "ticket-en")
    ack = page.locator("tr[data-target='first_response'] form.ack-form")
    await ack.locator("input[name='comment']").fill("calling the customer now")
    await ack.locator("button").click()
    await expect(page.locator(".notice")).to_contain_text("Breach acknowledged")
    await expect(page.locator("tr[data-target='first_response']")).to_contain_text(
        "acknowledged by otto"
    )
    acked = len(webhook_events(sink, path, "CB-1"))
    await asyncio.sleep(1.5)  # a reminder already being sent as we clicked may still land
    settled = len(webhook_events(sink, path, "CB-1"))
    assert settled <= acked + 1
    await asyncio.sleep(7)  # two more repeat intervals (3 s): no reminder
    assert len(webhook_events(sink, path, "CB-1")) == settled
    await page.goto(stack.console + "/notifications?ticket_id=CB-1&status=acknowledged")
    await expect(page.locator("table.log")).to_contain_text("acknowledged by otto")
    await page.goto(stack.console + "/tickets/CB-1")
    await expect(page.locator("tr[data-target='first_response'] .badge.breached")).to_be_visible()

    # 4. CB-2 breached while silenced: logged `silenced`, never posted.
    async def silenced() -> bool:
        await page.goto(stack.console + "/notifications?ticket_id=CB-2")
        return "silenced" in await page.locator("main").inner_text()

    await eventually(silenced, timeout=25, interval=1)
    assert webhook_events(sink, path, "CB-2") == []
    await page.goto(stack.console + "/notifications")
    await shot(page, "notifications-en")
    await page.goto(stack.console + "/silences")
    await expect(page.locator("tr.silence.active")).to_contain_text("CB-2")
    await shot(page, "silences-en")
    await ctx.close()


async def _reminded(sink, path: str) -> bool:
    """The breach and at least one reminder of CB-1 were posted."""
    return len(webhook_events(sink, path, "CB-1")) >= 2


async def test_reports_csv_is_the_table_and_zh_cn(stack, browser) -> None:
    await stack.post(created("CR-1", customer_tier="silver"), created("CR-2"))
    ctx = await context(browser)
    page = await ctx.new_page()
    await login(page, stack.console, "viewer", "/reports")

    async def has_rows() -> bool:
        await page.goto(stack.console + "/reports?group_by=customer_tier")
        return await page.locator("#compliance tbody tr").count() >= 2

    await eventually(has_rows, timeout=20, interval=1)
    # The tickets' clocks keep running (a target may breach between the page and the
    # download): compare a page with the CSV fetched right after it, reloading while the
    # figures still move; a CSV that never matches its page fails.
    for _attempt in range(5):
        await expect(page.locator("body")).to_have_attribute("data-charts-ready", "1")
        await expect(page.locator("#chart-met svg")).to_have_count(1)
        table = [
            [await cell.inner_text() for cell in await row.locator("th, td").all()]
            for row in await page.locator("#compliance tr").all()
        ]
        async with page.expect_download() as info:
            await page.click("#csv-link")
        download = await info.value
        text = Path(await download.path()).read_text(encoding="utf-8-sig")
        if list(csv.reader(io.StringIO(text))) == table:
            break
        await page.goto(stack.console + "/reports?group_by=customer_tier")
    assert list(csv.reader(io.StringIO(text))) == table
    await shot(page, "reports-en")
    await ctx.close()

    zh = await context(browser, locale="zh-CN")
    page = await zh.new_page()
    await page.goto(stack.console + "/")
    await expect(page.locator("form[action='/login'] button")).to_have_text("登录")
    await shot(page, "login-zh-CN")
    await login(page, stack.console, "operator")
    await expect(page.locator("h1")).to_contain_text("SLA 看板")
    await expect(page.locator(".count.breached")).to_contain_text("已违约")
    await expect(page.locator("header nav")).to_contain_text("报表")
    await shot(page, "board-zh-CN")
    await page.goto(stack.console + "/tickets/CR-1")
    await expect(page.locator("h2").first).to_contain_text("策略")
    await expect(page.locator(".timeline")).to_contain_text("开始计时")
    await expect(page.locator("tr[data-target='first_response']")).to_contain_text("首次响应")
    await shot(page, "ticket-zh-CN")
    await page.goto(stack.console + "/reports?group_by=customer_tier")
    await expect(page.locator("#compliance th").nth(1)).to_have_text("工单数")
    await expect(page.locator("body")).to_have_attribute("data-charts-ready", "1")
    await shot(page, "reports-zh-CN")
    await page.select_option("select[name='lang']", "en")  # the switcher
    await expect(page.locator("#compliance th").nth(1)).to_have_text("Tickets")
    await zh.close()


async def test_reports_highlight_an_abnormal_bucket(stack, browser) -> None:
    """Six days of one team's AHT near 100 s, then a day at 5,000 s: the Reports page marks
    that day's AHT cell abnormal (#14) and offers the new groups and buckets."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC) - timedelta(seconds=10)
    events = []
    for days, handle in [(6, 100), (5, 110), (4, 90), (3, 100), (2, 105), (1, 95), (0, 5000)]:
        at = now - timedelta(days=days)
        tid = f"AB-{days}"
        events += [
            created(tid, at, group="abn-team", assignee="abn.agent"),
            {"event_id": f"{tid}-r", "type": "message.created", "ticket_id": tid,
             "occurred_at": (at + timedelta(seconds=1)).isoformat(),
             "data": {"author_role": "agent", "handle_seconds": handle}},
            {"event_id": f"{tid}-s", "type": "ticket.status_changed", "ticket_id": tid,
             "occurred_at": (at + timedelta(seconds=2)).isoformat(), "data": {"status": "solved"}},
        ]  # fmt: skip
    await stack.post(*events)
    ctx = await context(browser)
    page = await ctx.new_page()
    await login(page, stack.console, "viewer", "/reports")
    url = stack.console + "/reports?group_by=group&bucket=day&tz=UTC"
    today = now.date().isoformat()
    row = page.locator("#trend tbody tr", has_text="abn-team").filter(has_text=today)

    async def flagged() -> bool:
        await page.goto(url)
        return await row.locator("td.abnormal").count() >= 1

    await eventually(flagged, timeout=30, interval=1)
    heads = [await h.inner_text() for h in await page.locator("#trend thead th").all()]
    aht = heads.index("AHT")
    cells = row.locator("td")
    assert "abnormal" in (await cells.nth(aht).get_attribute("class") or "")
    await expect(cells.nth(aht)).to_have_attribute("title", re.compile("mean"))
    # The day before is not flagged (its AHT is in its band), and the page offers the new groups and the month.
    earlier = page.locator("#trend tbody tr", has_text="abn-team").filter(
        has_text=(now - timedelta(days=1)).date().isoformat()
    )
    assert "abnormal" not in (await earlier.locator("td").nth(aht).get_attribute("class") or "")
    options = await page.locator("select[name='group_by'] option").all_inner_texts()
    assert {"assignee", "group", "customer"} <= set(options)
    assert "month" in await page.locator("select[name='bucket'] option").all_inner_texts()
    await shot(page, "reports-abnormal-en")
    await ctx.close()
