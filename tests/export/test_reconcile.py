"""manage.py voucherify_reconcile: one export, every kind of drift, --fix."""

from __future__ import annotations

import pytest
from django.core.management import CommandError
from shop.models import Order, OrderItem

from django_voucherify_orders import paused_sync
from django_voucherify_orders.client.schemas import OrderCreate
from django_voucherify_orders.conf import get_client
from django_voucherify_orders.models import ExportJob, JobStatus, OrderSync
from django_voucherify_orders.reconcile import (
    DELETED,
    DIFFERENT,
    MISSING,
    REMOTE_ONLY,
    UNMAPPABLE,
    expected_state,
    reconcile,
)

pytestmark = pytest.mark.django_db(transaction=True)


def drift_error(reconcile_cmd, *args: str) -> tuple[str, str]:
    """Run the command expecting drift: (its output, the CommandError message)."""
    import io

    from django.core.management import call_command

    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "voucherify_reconcile", *args, "--poll-interval", "0", stdout=out,
            stderr=io.StringIO(),
        )  # fmt: skip
    return out.getvalue(), str(excinfo.value)


def test_in_sync_orders_reconcile_clean_with_one_export(
    synced_shop, emulator, reconcile_cmd, media
):
    orders = [synced_shop.order(status=s) for s in ("new", "paid", "shipped", "cancelled")]
    before = len(emulator.requests)

    result = reconcile_cmd()

    assert "Compared 4 local orders with 4 in Voucherify" in result.stdout
    assert "No drift." in result.stdout
    calls = [(r.method, r.path.split("/")[2]) for r in emulator.requests[before:]]
    # One export: created, polled twice, downloaded. Never one GET per order.
    assert calls == [("POST", "orders"), ("GET", "exports"), ("GET", "exports"),
                     ("GET", "exports")]  # fmt: skip
    job = ExportJob.objects.get()
    assert job.status == JobStatus.DONE and job.row_count == len(orders)
    assert job.parameters["fields"] == ["id", "source_id", "status", "amount"]


def make_drift(shop, remote_order):
    """One order of each kind of drift, and one in sync. Returns them by kind."""
    in_sync = shop.order(status="paid")
    with paused_sync():
        missing = shop.order(status="paid")
    status = shop.order(status="paid")
    Order.objects.filter(pk=status.pk).update(status="cancelled")  # no signal: no push
    amount = shop.order(items=[("mug", 1)])
    OrderItem.objects.filter(order=amount).update(quantity=3)
    unmappable = shop.order()
    Order.objects.filter(pk=unmappable.pk).update(status="lost")
    remote_order("ghost-1", status="CREATED", amount=700)
    gone = shop.order()
    gone_pk = gone.pk
    gone.delete()
    return {
        "in_sync": in_sync,
        MISSING: missing,
        "status": status,
        "amount": amount,
        UNMAPPABLE: unmappable,
        "deleted_pk": gone_pk,
    }


def test_each_kind_of_drift_is_reported(synced_shop, remote_order, reconcile_cmd, media):
    orders = make_drift(synced_shop, remote_order)

    output, error = drift_error(reconcile_cmd)

    assert "Compared 5 local orders with 6 in Voucherify" in output
    assert "Missing in Voucherify: 1" in output
    assert "Different in Voucherify (status or amount): 2" in output
    assert "Not mappable (the mapper fails; a push would fail too): 1" in output
    assert "In Voucherify only: 1" in output
    assert "Deleted locally, kept by Voucherify" in output
    lines = output.splitlines()

    def line_of(order_pk) -> str:
        return next(line for line in lines if line.split()[:2] == [str(order_pk)] * 2)

    assert "pending" in line_of(orders[MISSING].pk)  # its outbox row is waiting
    assert "status: local CANCELED, Voucherify PAID" in line_of(orders["status"].pk)
    assert "amount: local 3750, Voucherify 1250" in line_of(orders["amount"].pk)
    assert "status: 'lost' is not a shop status" in line_of(orders[UNMAPPABLE].pk)
    assert any(line.split()[:1] == ["ghost-1"] for line in lines)
    assert [str(orders["in_sync"].pk)] not in [line.split()[:1] for line in lines]
    assert error == (
        "drift found: 1 missing, 2 different, 1 unmappable, 1 remote only, 1 deleted; "
        "--fix pushes the missing and differing orders"
    )


def test_fix_pushes_the_missing_and_differing_orders_and_the_next_run_is_clean(
    synced_shop, emulator, reconcile_cmd, media
):
    shop = synced_shop
    shop.order(status="paid")
    with paused_sync():
        missing = shop.order(status="paid")
    status = shop.order(status="paid")
    Order.objects.filter(pk=status.pk).update(status="shipped")
    amount = shop.order(items=[("tea", 1)])
    OrderItem.objects.filter(order=amount).update(quantity=2)
    # Changed in Voucherify behind our back: our payload is the one last pushed.
    remote_side = shop.order(status="paid")
    get_client().update_order(str(remote_side.pk), {"status": "CANCELED"})

    output = reconcile_cmd("--fix").stdout  # every fix queued: no error
    assert "1 missing, 3 different" in output
    assert "4 orders marked changed and pushed, run again to confirm." in output

    assert emulator.get_order(str(missing.pk))["status"] == "PAID"
    assert emulator.get_order(str(status.pk))["status"] == "FULFILLED"
    assert emulator.get_order(str(amount.pk))["amount"] == 1600
    assert emulator.get_order(str(remote_side.pk))["status"] == "PAID"
    assert "No drift." in reconcile_cmd().stdout


def test_what_fix_cannot_fix_still_fails_the_run(synced_shop, remote_order, reconcile_cmd, media):
    make_drift(synced_shop, remote_order)
    drift_error(reconcile_cmd, "--fix")
    _, error = drift_error(reconcile_cmd)
    assert error.startswith("drift found: 0 missing, 0 different, 1 unmappable, 1 remote only")


def test_tables_are_capped_but_counts_are_exact(synced_shop, reconcile_cmd, media):
    with paused_sync():
        for _ in range(5):
            synced_shop.order()
    output, error = drift_error(reconcile_cmd, "--limit", "2", "--batch-size", "2")
    assert "Missing in Voucherify: 5, first 2 shown" in output
    table = output.split("Missing in Voucherify")[1].strip().splitlines()
    assert len(table) == 1 + 1 + 2  # title, header, two rows
    assert error.startswith("drift found: 5 missing")


def test_orders_without_a_source_id_in_voucherify_are_remote_only(
    synced_shop, reconcile_cmd, media
):
    synced_shop.order()
    order = get_client().create_order({"status": "PAID", "amount": 100})
    output, _ = drift_error(reconcile_cmd)
    assert "In Voucherify only: 1" in output and order.id in output
    assert "no source_id" in output


def test_a_failed_export_is_a_command_error(synced_shop, emulator, reconcile_cmd, media):
    synced_shop.order()
    emulator.faults.fail_export_next()
    with pytest.raises(CommandError, match=r"reconcile: export job #\d+ failed: .*ended in ERROR"):
        reconcile_cmd()


def test_reconcile_api_batches_and_counts(synced_shop, media):
    for _ in range(5):
        synced_shop.order(status="paid")
    result = reconcile(batch_size=2, poll_interval=0)
    assert result.clean and result.local_count == 5 and result.remote_count == 5
    assert result.counts[DIFFERENT] == result.counts[REMOTE_ONLY] == result.counts[DELETED] == 0


def test_deleted_orders_are_not_drift(synced_shop, media):
    order = synced_shop.order()
    key = str(order.pk)
    order.delete()
    assert OrderSync.objects.get(pk=key).state == "deleted"
    result = reconcile(poll_interval=0)
    assert result.clean and result.counts[DELETED] == 1
    assert result.findings[DELETED][0].order_pk == key


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"amount": 500, "status": "PAID"}, ("PAID", 500)),
        ({}, ("CREATED", None)),
        (
            {
                "items": [
                    {"product_id": "p", "quantity": 2, "price": 300},
                    {"product_id": "q", "amount": 50},
                ]
            },
            ("CREATED", 650),
        ),
    ],
)
def test_expected_state(payload, expected):
    assert expected_state(OrderCreate.model_validate(payload)) == expected
