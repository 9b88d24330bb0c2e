"""What a cron job sees: voucherify_reconcile's exit status, as manage.py would exit."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from django.core.management import execute_from_command_line
from shop.models import Order

from django_voucherify_orders import paused_sync

pytestmark = pytest.mark.django_db(transaction=True)


def exit_status(*args: str) -> tuple[int, str, str]:
    """Run ``manage.py voucherify_reconcile ARGS`` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["manage.py", "voucherify_reconcile", *args, "--poll-interval", "0"]
    with redirect_stdout(out), redirect_stderr(err):
        try:
            execute_from_command_line(argv)
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_in_step_is_0(synced_shop, media):
    synced_shop.order(status="paid")
    status, out, _ = exit_status()
    assert (status, "No drift." in out) == (0, True)


def test_an_order_deleted_here_that_voucherify_keeps_is_expected_so_0(synced_shop, media):
    synced_shop.order(status="paid")
    synced_shop.order(status="paid").delete()

    status, out, _ = exit_status()

    assert status == 0
    assert "Deleted locally, kept by Voucherify (expected" in out and "No drift." in out


def test_drift_is_1_and_fix_is_0_once_every_fix_is_queued(synced_shop, media):
    order = synced_shop.order(status="paid")
    Order.objects.filter(pk=order.pk).update(status="cancelled")  # no signal: no push
    with paused_sync():
        synced_shop.order(status="paid")

    status, _, err = exit_status()
    assert status == 1
    assert "drift found: 1 missing, 1 different" in err

    status, out, _ = exit_status("--fix")
    assert status == 0
    assert "2 orders marked changed and pushed, run again to confirm." in out

    assert exit_status()[0] == 0


def test_fix_is_still_1_when_drift_it_cannot_fix_remains(synced_shop, remote_order, media):
    synced_shop.order(status="paid")
    remote_order("ghost-1")  # only in Voucherify: --fix has nothing to push

    status, _, err = exit_status("--fix")

    assert status == 1 and "1 remote only" in err


def test_a_check_that_could_not_finish_is_2(synced_shop, emulator, media):
    synced_shop.order()
    emulator.faults.fail_export_next()

    status, _, err = exit_status()

    assert status == 2 and "ended in ERROR" in err


def test_the_help_says_what_the_statuses_mean(capsys):
    with pytest.raises(SystemExit):
        execute_from_command_line(["manage.py", "voucherify_reconcile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 when both sides agree or differ only as expected" in text
    assert "1 when drift was found" in text
    assert "with --fix, 0 once a push is queued for every missing and differing order" in text
