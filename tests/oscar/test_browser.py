"""The dashboard panel in a real browser: Debian's Chromium driven by Playwright against
Oscar's own dashboard, served by pytest-django's ``live_server``, with Voucherify played by
the emulator's HTTP door. Screenshots go to ``artifacts/screenshots/oscar/``.

Marked and skipped like tests/admin/test_browser.py (only when /usr/bin/chromium is missing).
docs/images/oscar-dashboard-panel.png is 02-pushed.png of a run, copied by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from oscar.core.loading import get_model

from django_voucherify_orders.models import OrderSync, SyncState
from tests.admin.test_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning"),
]

# A folder of its own: the admin's browser test checks that its folder holds its files only.
OSCAR_SCREENSHOTS = SCREENSHOTS / "oscar"

Order = get_model("order", "Order")


@pytest.fixture
def shop_in_voucherify(settings, voucherify_emulator_server, transactional_db):
    from tests.oscar.conftest import OscarShop

    emulator = voucherify_emulator_server
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "API_URL": emulator.url}
    shop = OscarShop()
    clerk = User.objects.create_user("clerk", "clerk@example.com", "correct horse", is_staff=True)
    for app_label, codename in [
        ("order", "view_order"),  # what Oscar's dashboard asks for its order pages
        ("voucherify_orders", "push_ordersync"),
        ("voucherify_orders", "view_remote_orders"),
    ]:
        clerk.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    tea = shop.product("4.50", title="Earl Grey, 100 g", upc="TEA-100")
    mug = shop.product("12.00", title="Mug", upc="MUG-1")
    emulator.faults.script([400])  # the first push fails for good
    order = shop.place(
        [(tea, 2), (mug, 1)], guest_email="ada@example.com", shipping=("3.95", "3.95")
    )
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.FAILED
    return {"emulator": emulator, "order": order}


def test_the_dashboard_panel_in_a_browser(live_server, shop_in_voucherify, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # as in the admin's browser test
    OSCAR_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in OSCAR_SCREENSHOTS.glob("*.png"):
        stale.unlink()
    emulator = shop_in_voucherify["emulator"]
    order = shop_in_voucherify["order"]
    page_url = f"{live_server.url}/dashboard/orders/{order.number}/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(20_000)

            # Oscar's dashboard login, then the order's dashboard page.
            page.goto(f"{live_server.url}/dashboard/login/?next=/dashboard/orders/{order.number}/")
            page.fill("#id_username", "clerk")
            page.fill("#id_password", "correct horse")
            page.click("#dashboard_login_form input[type=submit]")
            expect(page).to_have_url(page_url)
            panel = page.locator("#voucherify-sync")
            expect(panel.locator(".vo-state")).to_have_text("Failed")
            expect(panel.locator(".vo-last-error")).to_contain_text("bad_request")
            calls = emulator.count()
            page.reload()
            assert emulator.count() == calls  # the page asks Voucherify nothing
            panel.screenshot(path=str(OSCAR_SCREENSHOTS / "01-failed-panel.png"))

            # Push now: back on the order page, with Oscar's message and the new state.
            page.click("#voucherify-sync button.vo-push")
            message = f"Order {order.number} is in Voucherify."
            expect(page.locator(".alert-success", has_text=message)).to_be_visible()
            assert page.url == page_url
            expect(panel.locator(".vo-state")).to_have_text("Synced")
            expect(panel.locator(".vo-voucherify-id")).to_have_text(re.compile(r"^ord_"))
            held = emulator.get_order(order.number)
            assert held is not None and held["status"] == "CREATED"
            page.screenshot(path=str(OSCAR_SCREENSHOTS / "02-pushed.png"))

            # Fetch and compare, after a change made behind the app's back.
            Order.objects.filter(pk=order.pk).update(status="Being processed")
            page.click("#voucherify-sync button.vo-fetch")
            expect(page.locator("#voucherify-compare .vo-summary")).to_have_text("2 differences")
            expect(page.locator("#voucherify-compare tr.vo-differs").first).to_contain_text("PAID")
            page.screenshot(
                path=str(OSCAR_SCREENSHOTS / "03-fetch-and-compare.png"), full_page=True
            )
        finally:
            browser.close()

    names = sorted(p.name for p in OSCAR_SCREENSHOTS.glob("*.png"))
    assert names == ["01-failed-panel.png", "02-pushed.png", "03-fetch-and-compare.png"]
