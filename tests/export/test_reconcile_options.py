"""Wrong options of voucherify_reconcile: a clear message, status 2 (nothing compared, not
"drift"), and nothing asked of Voucherify."""

from __future__ import annotations

import pytest

from .test_reconcile_exit import exit_status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--deep", "--resume-after", "12a"), "--resume-after: '12a' is not a primary key of"),
        (("--limit", "-1"), "--limit must be 0 or more"),
    ],
)
def test_a_wrong_option_is_status_2_before_anything_is_sent(
    synced_shop, emulator, media, args, said
):
    synced_shop.order(status="paid")
    emulator.reset()

    status, _out, err = exit_status(*args, "--no-progress")

    assert (status, said in err, "Traceback" in err) == (2, True, False), err[-800:]
    assert emulator.count() == 0
