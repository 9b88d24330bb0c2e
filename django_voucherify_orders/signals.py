"""Public signals around each push. All are sent with ``sender=OrderSync``.

``before_push(sync, order, payload)``
    Sent before the HTTP call. A receiver may raise :class:`CancelPush` to skip
    this version of the order (the row is marked ``skipped``).
``after_push(sync, order, remote_order, method)``
    Sent after Voucherify accepted the order; ``remote_order`` is the client's
    ``Order`` model, ``method`` is "POST" or "PUT".
``push_failed(sync, order, error, final)``
    Sent when a push fails; ``final`` is True when it will not be retried
    (a 4xx, bad local data, or ``RETRY_FOR`` / ``MAX_ATTEMPTS`` reached). Not sent for
    a 401/403: that pauses every push instead (``sync.outage``), failing no order.
"""

from django.dispatch import Signal

__all__ = ["CancelPush", "after_push", "before_push", "push_failed"]

before_push = Signal()
after_push = Signal()
push_failed = Signal()


class CancelPush(Exception):
    """Raise from a ``before_push`` receiver to skip the push."""
