"""The sync panel on Oscar's dashboard order page, and its Push now / Fetch and compare buttons.

Orders are placed Oscar's way; staff open Oscar's own dashboard view
(``oscar.apps.dashboard.orders.views.OrderDetailView``) through the test project's urls,
which include what docs/oscar.md tells a shop to add.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission, User
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone
from oscar.core.loading import get_model

from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

Order = get_model("order", "Order")


def staff(username: str, *perms: str) -> User:
    """A dashboard clerk: staff with Oscar's ``order.view_order`` (what its dashboard asks
    for the order pages), and these of our permissions."""
    user = User.objects.create_user(username, f"{username}@example.com", "pw", is_staff=True)
    wanted = [("order", "view_order"), *(("voucherify_orders", perm) for perm in perms)]
    for app_label, codename in wanted:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def buttons(panel: str) -> list[str]:
    return re.findall(r'<button type="submit" class="[^"]* vo-(push|fetch)"', panel)


@pytest.fixture
def boss(transactional_db) -> User:
    return User.objects.create_superuser("boss", "boss@example.com", "pw")


def client_for(user: User, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def dashboard_page(client: Client, order) -> str:
    page = client.get(f"/dashboard/orders/{order.number}/")
    assert page.status_code == 200
    return page.content.decode()


def panel_of(html: str) -> str:
    """The panel: from its table to Oscar's "Order Details" header that follows it."""
    start = html.index('id="voucherify-sync"')
    return html[start : html.index("Order Details", start)]


def test_a_synced_order_s_panel(oscar_shop, emulator, boss):
    order = oscar_shop.place()
    calls = emulator.count()

    panel = panel_of(dashboard_page(client_for(boss), order))

    row = OrderSync.objects.get(pk=str(order.pk))
    assert 'data-state="synced"' in panel and ">Synced<" in panel
    assert row.voucherify_id and row.voucherify_id in panel
    assert "POST /v1/orders" in panel  # the attempt log
    assert "Last error" not in panel
    assert buttons(panel) == ["push", "fetch"]
    assert emulator.count() == calls  # rendering asks Voucherify nothing


def test_a_failed_order_s_panel(oscar_shop, emulator, boss):
    emulator.faults.script([400])
    order = oscar_shop.place()
    calls = emulator.count()

    panel = panel_of(dashboard_page(client_for(boss), order))

    assert 'data-state="failed"' in panel and ">Failed<" in panel
    assert "<code>bad_request</code> (HTTP 400)" in panel
    assert "Bad Request" in panel and "Injected fault" in panel
    assert re.search(r'class="vo-attempts">1\b', panel)
    assert emulator.count() == calls


def test_a_retrying_order_shows_its_next_attempt(oscar_shop, emulator, boss):
    order = oscar_shop.place()
    # What a worker leaves between two tries of a push that met a 503.
    next_at = timezone.now() + timedelta(minutes=5)
    OrderSync.objects.filter(pk=str(order.pk)).update(
        state=SyncState.PENDING, attempts=3, next_attempt_at=next_at,
        last_error_key="service_unavailable", last_error_message="Service Unavailable",
    )  # fmt: skip

    panel = panel_of(dashboard_page(client_for(boss), order))

    assert ">Pending<" in panel
    assert re.search(r'class="vo-attempts">3 · next at ', panel)
    assert "service_unavailable" in panel


def test_the_panel_costs_two_queries_whatever_the_attempt_log(
    oscar_shop, emulator, boss, django_assert_num_queries
):
    quiet = oscar_shop.place()
    emulator.faults.script([503] * 6)  # six failed tries, then the push goes through
    busy = oscar_shop.place()
    assert SyncAttempt.objects.filter(sync_id=str(busy.pk)).count() == 7
    request = RequestFactory().get("/")
    request.user = boss
    tag = Template("{% load voucherify_oscar %}{% voucherify_sync_panel order %}")
    calls = emulator.count()

    for order in (quiet, busy):
        with django_assert_num_queries(2):  # the OrderSync row, its latest attempts
            html = tag.render(Context({"order": order, "request": request}))
        assert html.count("<code>POST /v1/orders</code>") == (1 if order is quiet else 5)
    assert emulator.count() == calls
    # And on Oscar's page, a longer log costs no more queries.
    client = client_for(boss)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for order in (quiet, busy):
        with CaptureQueriesContext(connection) as queries:
            dashboard_page(client, order)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_an_untracked_order(oscar_shop, emulator, boss):
    order = oscar_shop.place()
    OrderSync.objects.filter(pk=str(order.pk)).delete()  # e.g. placed before the app

    panel = panel_of(dashboard_page(client_for(boss), order))

    assert "Not tracked yet" in panel
    assert buttons(panel) == ["push", "fetch"]


def test_push_now_pushes_and_says_so_on_the_order_page(oscar_shop, emulator, boss):
    emulator.faults.script([400])
    order = oscar_shop.place()
    assert emulator.get_order(order.number) is None

    response = client_for(boss).post(f"/voucherify/orders/{order.number}/push/", follow=True)

    assert response.redirect_chain == [(f"/dashboard/orders/{order.number}/", 302)]
    html = response.content.decode()
    assert f"Order {order.number} is in Voucherify." in html  # Oscar's alert messages
    assert 'data-state="synced"' in panel_of(html)
    assert emulator.get_order(order.number)["status"] == "CREATED"
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED


def test_push_now_sends_a_change_made_behind_the_app_s_back(oscar_shop, emulator, boss):
    order = oscar_shop.place()
    Order.objects.filter(pk=order.pk).update(status="Complete")  # no signal: not pushed
    assert emulator.get_order(order.number)["status"] == "CREATED"

    client_for(boss).post(f"/voucherify/orders/{order.number}/push/")

    assert emulator.get_order(order.number)["status"] == "FULFILLED"


def test_fetch_and_compare_shows_the_differences(oscar_shop, emulator, boss):
    order = oscar_shop.place()
    Order.objects.filter(pk=order.pk).update(status="Complete")
    gets = emulator.count(method="GET")

    response = client_for(boss).post(f"/voucherify/orders/{order.number}/fetch/")

    assert response.status_code == 200
    assert emulator.count(method="GET") == gets + 1  # one call
    html = response.content.decode()
    assert "2 differences" in html  # the status, and Oscar's own in the metadata
    differs = re.findall(r'<tr class="vo-differs table-danger".*?</tr>', html, re.S)
    assert [re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", row)).strip() for row in differs] == [
        "status FULFILLED CREATED",
        "metadata.oscar_status Complete Pending",
    ]
    assert f'href="/dashboard/orders/{order.number}/"' in html  # back to the order
    snapshot = OrderSync.objects.get(pk=str(order.pk)).remote_snapshot
    assert snapshot["status"] == "CREATED"  # what Voucherify holds, kept on the row


def test_fetch_of_an_order_voucherify_lacks(oscar_shop, emulator, boss):
    emulator.faults.script([400])
    order = oscar_shop.place()

    response = client_for(boss).post(f"/voucherify/orders/{order.number}/fetch/")

    assert response.status_code == 200
    assert f"Voucherify has no order {order.number}." in response.content.decode()


def test_fetch_when_voucherify_fails_goes_back_with_the_error(oscar_shop, emulator, boss):
    order = oscar_shop.place()
    emulator.faults.script([500] * 10)

    response = client_for(boss).post(f"/voucherify/orders/{order.number}/fetch/", follow=True)

    assert response.redirect_chain == [(f"/dashboard/orders/{order.number}/", 302)]
    assert "Voucherify answered with an error" in response.content.decode()


def test_staff_without_the_permissions_see_no_buttons_and_cannot_post(oscar_shop, emulator):
    order = oscar_shop.place()
    clerk = client_for(staff("clerk"))
    calls = emulator.count()

    panel = panel_of(dashboard_page(clerk, order))

    assert ">Synced<" in panel  # the state is for every dashboard user
    assert buttons(panel) == []
    assert clerk.post(f"/voucherify/orders/{order.number}/push/").status_code == 403
    assert clerk.post(f"/voucherify/orders/{order.number}/fetch/").status_code == 403
    assert emulator.count() == calls


def test_each_button_needs_the_admin_action_s_permission(oscar_shop, emulator):
    order = oscar_shop.place()
    Order.objects.filter(pk=order.pk).update(status="Complete")
    pusher = client_for(staff("pusher", "push_ordersync"))
    fetcher = client_for(staff("fetcher", "view_remote_orders"))

    pusher_panel = panel_of(dashboard_page(pusher, order))
    fetcher_panel = panel_of(dashboard_page(fetcher, order))

    assert buttons(pusher_panel) == ["push"]
    assert buttons(fetcher_panel) == ["fetch"]
    assert pusher.post(f"/voucherify/orders/{order.number}/fetch/").status_code == 403
    assert fetcher.post(f"/voucherify/orders/{order.number}/push/").status_code == 403
    assert emulator.get_order(order.number)["status"] == "CREATED"
    assert pusher.post(f"/voucherify/orders/{order.number}/push/").status_code == 302
    assert emulator.get_order(order.number)["status"] == "FULFILLED"
    assert fetcher.post(f"/voucherify/orders/{order.number}/fetch/").status_code == 200


def test_anonymous_posts_are_refused(oscar_shop, emulator):
    order = oscar_shop.place()

    assert Client().post(f"/voucherify/orders/{order.number}/push/").status_code == 403


@pytest.mark.parametrize("middleware", ["with", "without"])
def test_the_posts_are_csrf_protected(oscar_shop, emulator, boss, settings, middleware):
    # A shop that left CsrfViewMiddleware out: a forged POST is still refused.
    if middleware == "without":
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "csrf" not in m.lower()]
    order = oscar_shop.place()
    Order.objects.filter(pk=order.pk).update(status="Complete")
    client = client_for(boss, enforce_csrf_checks=True)

    assert client.post(f"/voucherify/orders/{order.number}/push/").status_code == 403
    assert client.post(f"/voucherify/orders/{order.number}/fetch/").status_code == 403
    assert emulator.get_order(order.number)["status"] == "CREATED"
    if middleware == "without":
        return  # (and with no middleware to set the cookie, no page can hand out a token)

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', dashboard_page(client, order))
    push = f"/voucherify/orders/{order.number}/push/"
    assert client.post(push, {"csrfmiddlewaretoken": token.group(1)}).status_code == 302
    assert emulator.get_order(order.number)["status"] == "FULFILLED"


def test_the_buttons_are_posts_only(oscar_shop, emulator, boss):
    order = oscar_shop.place()

    assert client_for(boss).get(f"/voucherify/orders/{order.number}/push/").status_code == 405


def test_an_unknown_order_number_is_a_404(oscar_shop, emulator, boss):
    assert client_for(boss).post("/voucherify/orders/999999/push/").status_code == 404


@override_settings(ROOT_URLCONF="tests.oscar.urls_without_voucherify")
def test_without_the_app_s_urls_the_panel_says_what_to_add(oscar_shop, emulator, boss):
    order = oscar_shop.place()

    panel = panel_of(dashboard_page(client_for(boss), order))

    assert ">Synced<" in panel and buttons(panel) == []
    assert "django_voucherify_orders.contrib.oscar.urls" in panel


def test_a_partner_s_staff_push_only_their_partner_s_orders(oscar_shop, emulator):
    f = oscar_shop.factories
    other = f.create_product()
    f.create_stockrecord(other, price=D("5.00"), num_in_stock=10, partner_name="Other partner")
    ours, theirs = oscar_shop.place(), oscar_shop.place([(other, 1)])
    partner = ours.lines.get().partner
    assert theirs.lines.get().partner != partner
    user = User.objects.create_user("seller", "seller@example.com", "pw")  # not staff
    for app_label, codename in [
        ("partner", "dashboard_access"),
        ("voucherify_orders", "push_ordersync"),
    ]:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    partner.users.add(user)
    seller = client_for(user)
    Order.objects.filter(pk__in=[ours.pk, theirs.pk]).update(status="Complete")

    assert buttons(panel_of(dashboard_page(seller, ours))) == ["push"]
    assert seller.post(f"/voucherify/orders/{theirs.number}/push/").status_code == 404
    assert seller.post(f"/voucherify/orders/{ours.number}/push/").status_code == 302
    assert emulator.get_order(ours.number)["status"] == "FULFILLED"
    assert emulator.get_order(theirs.number)["status"] == "CREATED"
