"""End to end in a real browser: Debian's Chromium driven by Playwright against the test
settings served by pytest-django's ``live_server``, with Voucherify played by the
emulator's HTTP door. Screenshots go to ``artifacts/screenshots/`` (CI keeps them).

Skipped only when /usr/bin/chromium is missing (``.ci/run`` installs it:
``apt-get install -y chromium``); Playwright itself is a test dependency.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from django_voucherify_orders import paused_sync
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def shop_in_voucherify(settings, tmp_path, voucherify_emulator_server, make_order):
    """The test settings pointed at the emulator's HTTP door, and a shop with history:
    orders pushed live, orders still pending, one that fails, and orders Voucherify holds
    that the shop never sent."""
    emulator = voucherify_emulator_server
    emulator.rate_limit_per_minute = 300
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "API_URL": emulator.url}
    settings.MEDIA_ROOT = str(tmp_path)
    User.objects.create_superuser("admin", "admin@example.com", "correct horse")

    pushed = [make_order(status="paid") for _ in range(6)]  # pushed at each commit
    with paused_sync():
        pending = [make_order(status="new") for _ in range(8)]
    broken = make_order(status="paid")
    from shop.models import Order

    # Changed without a signal: Voucherify still has the old status (fetch shows it).
    Order.objects.filter(pk=pushed[0].pk).update(status="shipped")
    # A status the mapper does not know: its push fails for good.
    Order.objects.filter(pk=broken.pk).update(status="lost")
    from django_voucherify_orders.sync import enqueue_sync

    enqueue_sync(Order.objects.filter(pk=broken.pk))

    from django_voucherify_orders.conf import get_client

    for n in range(12):
        get_client().create_order({"source_id": f"pos-{n:03d}", "status": "PAID", "amount": 990})
    # Yesterday's pushes, for the hourly chart (today's are the real ones above).
    row = OrderSync.objects.get(pk=str(pushed[1].pk))
    now = timezone.now()
    SyncAttempt.objects.bulk_create(
        SyncAttempt(
            sync=row,
            started_at=now - timedelta(hours=hour, minutes=5),
            method="PUT",
            path=f"/v1/orders/{row.source_id}",
            status_code=500 if hour % 7 == 3 and n == 0 else 200,
            duration_ms=80,
        )
        for hour in range(1, 23)
        for n in range((hour * 7) % 11 + 1)
    )
    assert OrderSync.objects.get(pk=str(broken.pk)).state == SyncState.FAILED
    return {"emulator": emulator, "pushed": pushed, "pending": pending, "broken": broken}


def test_the_admin_in_a_browser(live_server, shop_in_voucherify, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own database
    # reads below are plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SCREENSHOTS.glob("*.png"):  # the checks below must see this run's files
        stale.unlink()
    taken: list[str] = []
    emulator = shop_in_voucherify["emulator"]
    pending = shop_in_voucherify["pending"]
    changed = shop_in_voucherify["pushed"][0]
    base = live_server.url

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(20_000)

            def shot(name: str, *, full: bool = True) -> None:
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full)
                taken.append(f"{name}.png")

            # Log in.
            page.goto(f"{base}/admin/login/?next=/admin/voucherify_orders/ordersync/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", "correct horse")
            page.click("input[type=submit]")
            expect(page.locator("#changelist")).to_be_visible()
            calls = emulator.count()
            page.reload()
            assert emulator.count() == calls  # the list makes no call to Voucherify
            shot("01-sync-state-list")

            # Push the pending orders now.
            page.click("#changelist-filter a:text-is('Pending')")
            expect(page.locator("input.action-select")).to_have_count(len(pending))
            page.check("#action-toggle")
            page.select_option("select[name=action]", "push_now")
            page.click("button[name=index]")
            expect(page.locator("ul.messagelist")).to_contain_text(
                f"{len(pending)} orders sent to the push queue: {len(pending)} in Voucherify now"
            )
            shot("02-push-now")
            for order in pending:
                assert emulator.get_order(str(order.pk)) is not None

            # Fetch two orders from Voucherify and compare.
            page.goto(f"{base}/admin/voucherify_orders/ordersync/")
            page.check(f"input.action-select[value='{changed.pk}']")
            page.check(f"input.action-select[value='{pending[0].pk}']")
            page.select_option("select[name=action]", "fetch_from_voucherify")
            page.click("button[name=index]")
            expect(page.locator(f"#vo-order-{changed.pk} h2")).to_contain_text("1 difference")
            expect(page.locator(f"#vo-order-{pending[0].pk} h2")).to_contain_text("in step")
            expect(page.locator(f"#vo-order-{changed.pk} tr.vo-differs")).to_contain_text(
                "FULFILLED"
            )
            shot("03-fetch-and-compare")

            # Page through the orders Voucherify holds.
            page.goto(f"{base}/admin/voucherify_orders/ordersync/remote/")
            calls = emulator.count()
            page.select_option("#id_limit", "10")
            page.select_option("#id_order", "created_at")
            page.click("input[type=submit][value='Load from Voucherify']")
            total = 6 + len(pending) + 1 + 12
            expect(page.locator("#result_list caption")).to_contain_text(
                f"Orders 1\N{EN DASH}10 of {total} held by Voucherify (page 1 of 3)."
            )
            assert emulator.count() == calls + 1
            local_link = page.locator(f"#result_list a[href$='/shop/order/{changed.pk}/change/']")
            expect(local_link).to_have_count(1)
            shot("04-remote-orders-page-1")
            page.click("a[rel=next]")
            expect(page.locator("#result_list caption")).to_contain_text("(page 2 of 3)")
            page.click("a[rel=next]")
            expect(page.locator("#result_list caption")).to_contain_text(
                f"Orders 21\N{EN DASH}{total} of {total} held by Voucherify (page 3 of 3)."
            )
            expect(page.locator("#result_list")).to_contain_text("pos-011")
            shot("05-remote-orders-page-3")

            # The health page.
            page.goto(f"{base}/admin/voucherify_orders/ordersync/health/")
            expect(page.locator("#vo-failures")).to_contain_text("invalid_local_data")
            expect(page.locator("svg.vo-chart g.vo-bar")).to_have_count(24)
            expect(page.locator("#vo-rate-limit")).to_contain_text("/ 300")
            shot("06-health")

            # The shop's own order admin, with the mixin.
            page.goto(f"{base}/admin/shop/order/")
            expect(page.locator("th.column-voucherify_sync_state")).to_be_visible()
            shot("07-shop-orders")
            page.goto(f"{base}/admin/shop/order/{changed.pk}/change/")
            panel = page.locator(".vo-sync-panel")
            expect(panel).to_contain_text("Synced")
            page.click(".vo-sync-panel button[value=push_now]")
            expect(page.locator("ul.messagelist")).to_contain_text(
                f"Order {changed.pk} is in Voucherify."
            )
            assert page.url.endswith(f"/admin/shop/order/{changed.pk}/change/")
            assert emulator.get_order(str(changed.pk))["status"] == "FULFILLED"
            page.locator("fieldset.vo-panel").scroll_into_view_if_needed()
            shot("08-shop-order-panel", full=False)

            # Starting an import (queued; the eager test worker runs it after commit).
            page.goto(f"{base}/admin/voucherify_orders/importjob/start/")
            page.check("#id_dry_run")
            shot("09-start-import", full=False)
            page.click("input[type=submit][value='Queue it']")
            expect(page.locator("ul.messagelist")).to_contain_text("queued")
            shot("10-import-job")
        finally:
            browser.close()

    names = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    assert names == sorted(taken) and len(names) == 10
    assert os.path.getsize(SCREENSHOTS / "06-health.png") > 10_000
