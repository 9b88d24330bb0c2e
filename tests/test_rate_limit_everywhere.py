"""Every HTTP request the app makes to Voucherify takes a slot of the shared RATE_LIMIT:
live pushes (the POST after a PUT's 404 too), imports and their polling, exports, their
polling and downloads, reconcile, the admin's fetches and remote list pages. Otherwise a
big import could use up the quota and push live sync into 429s.

The limiter runs on a fake clock that starts on a bucket boundary: a refused call is told
to wait a whole bucket (a minute for "N/h"), never a few seconds slept for real.
"""

from __future__ import annotations

import functools
import io
import time

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from django_voucherify_orders import paused_sync
from django_voucherify_orders.conf import RateLimit, get_client
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import engine, limiter, push

REMOTE = "/admin/voucherify_orders/ordersync/remote/"
CHANGELIST = "/admin/voucherify_orders/ordersync/"


class FakeClock:
    def __init__(self) -> None:
        self.now = (time.time() // 60 + 1) * 60  # the start of an "N/h" bucket

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """Every limiter (the engine's, and the one conf.get_client() gives each client)."""
    fake = FakeClock()
    made = functools.partial(limiter.SharedRateLimiter, clock=fake, sleep=fake.sleep)
    monkeypatch.setattr(limiter, "SharedRateLimiter", made)
    monkeypatch.setattr(engine, "SharedRateLimiter", made)
    return fake


@pytest.fixture
def emulator(voucherify_emulator, clock):
    voucherify_emulator.clock = clock  # its rate-limit headers in the limiter's time
    return voucherify_emulator


def rate_limit(text: str):
    return override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "RATE_LIMIT": text})


def slots_taken(clock: FakeClock, text: str) -> int:
    return limiter.SharedRateLimiter(RateLimit.parse(text), clock=clock).used()


def run(command: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def seed(n: int) -> None:
    call_command("seed_shop", orders=n, items=1, stdout=io.StringIO())


# Live sync -----------------------------------------------------------------------------------


def test_a_put_that_finds_no_order_and_its_post_take_two_slots(shop, emulator, clock):
    with rate_limit("100/h"):
        order = shop.order(status="new")  # pushed: a POST
        assert slots_taken(clock, "100/h") == 1
        emulator.reset()  # Voucherify lost the order

        order.status = "paid"
        order.save()  # a PUT (404), then a POST

        assert [(r.method, r.status) for r in emulator.requests] == [("PUT", 404), ("POST", 200)]
        assert slots_taken(clock, "100/h") == 3
    assert emulator.get_order(str(order.pk))["status"] == "PAID"


def test_the_post_after_a_404_without_a_slot_is_throttled_not_sent(shop, emulator, clock):
    with rate_limit("2/h"):
        order = shop.order(status="new")  # slot 1
        emulator.reset()
        with paused_sync():
            order.status = "paid"
            order.save()

        result = push(str(order.pk))  # the PUT takes slot 2; no slot is left for the POST

    assert result.outcome == "throttled" and result.retry_in > engine.MAX_THROTTLE_WAIT
    assert [(r.method, r.status) for r in emulator.requests] == [("PUT", 404)]
    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.PENDING and row.lease_token == ""  # rescheduled, not failed
    assert row.last_error_message == ""


# Imports, exports, reconcile -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_import_of_three_batches_takes_a_slot_for_each_request_and_poll(emulator, clock):
    seed(25)
    with rate_limit("1000/h"):
        out = run("voucherify_import", "--batch-size", "10", "--no-progress")

    assert "25 imported" in out
    posts = emulator.count(method="POST", path_prefix="/v1/orders/import")
    polls = emulator.count(method="GET", path_prefix="/v1/async-actions/")
    assert (posts, polls >= 3) == (3, True)
    assert slots_taken(clock, "1000/h") == emulator.count() == posts + polls


def test_an_export_takes_a_slot_for_its_creation_each_poll_and_the_download(
    shop, emulator, clock, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    shop.order(status="paid")
    emulator.reset()
    with rate_limit("1000/h"):
        run("voucherify_export", "--poll-interval", "0")

    # POST /v1/orders/export, a GET /v1/exports/{id} a poll, then the download (the same
    # path on the download host, with its token).
    sent = [(r.method, r.path.rsplit("/", 1)[0]) for r in emulator.requests]
    assert sent[0] == ("POST", "/v1/orders") and len(sent) >= 3
    assert set(sent[1:]) == {("GET", "/v1/exports")}
    assert slots_taken(clock, "1000/h") == len(sent)


def test_reconcile_takes_a_slot_for_every_request(shop, emulator, clock, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    shop.order(status="paid")
    emulator.reset()  # Voucherify lost it: reconcile finds it missing
    with rate_limit("1000/h"), pytest.raises(CommandError, match="1 missing"):
        run("voucherify_reconcile", "--poll-interval", "0")

    assert emulator.count() >= 3  # the export's POST, its polls, the download
    assert slots_taken(clock, "1000/h") == emulator.count()


def test_a_command_with_no_slot_left_sends_nothing_and_says_why(shop, emulator, clock):
    with rate_limit("1/h"):
        shop.order(status="paid")  # the hour's one slot
        emulator.reset()
        with pytest.raises(Exception, match="shared rate limit is busy") as failure:
            get_client().list_orders()

    assert emulator.count() == 0
    assert "try again in" in str(failure.value)
    assert "test-secret-key" not in str(failure.value)


# The admin --------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def test_a_remote_list_page_and_a_fetch_take_a_slot_each(shop, emulator, clock, admin_client):
    orders = [shop.order(status="paid") for _ in range(2)]
    emulator.reset()
    with rate_limit("1000/h"):
        page = admin_client.get(REMOTE, {"page": 1, "limit": 10})
        fetched = admin_client.post(
            CHANGELIST,
            {"action": "fetch_from_voucherify", "_selected_action": [str(o.pk) for o in orders]},
        )

    assert page.status_code == fetched.status_code == 200
    assert [r.method for r in emulator.requests] == ["GET", "GET", "GET"]
    assert slots_taken(clock, "1000/h") == 3


def test_a_remote_list_page_without_a_slot_shows_why(shop, emulator, clock, admin_client):
    with rate_limit("1/h"):
        shop.order(status="paid")
        emulator.reset()
        page = admin_client.get(REMOTE, {"page": 1, "limit": 10})

    assert emulator.count() == 0
    assert "shared rate limit is busy" in page.content.decode()


def test_a_429_seen_by_an_admin_page_pauses_live_sync_too(shop, emulator, clock, admin_client):
    emulator.faults.retry_after = 40
    emulator.faults.script([429])
    with rate_limit("1000/h"):
        admin_client.get(REMOTE, {"page": 1, "limit": 10})
        with paused_sync():
            order = shop.order(status="paid")
        result = push(str(order.pk))

    assert result.outcome == "throttled" and 30 < result.retry_in <= 40
    assert emulator.get_order(str(order.pk)) is None


def test_with_the_cache_down_calls_still_go(emulator, clock, monkeypatch, caplog, db):
    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("cache is down")

            return fail

    monkeypatch.setattr(limiter, "default_cache", Down())
    with rate_limit("1/h"):
        client = get_client()
        client.list_orders()
        client.list_orders()  # a second call in the hour: the limiter cannot count, so it goes

    assert emulator.count() == 2
    assert "the cache is unavailable" in caplog.text
