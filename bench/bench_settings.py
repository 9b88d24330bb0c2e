"""Django settings for the benches: the example shop's, plus the knobs the benches turn.

Everything else comes from the example shop's environment variables (DATABASE_URL,
CELERY_BROKER_URL, CACHE_URL, VOUCHERIFY_API_URL, VOUCHERIFY_RATE_LIMIT ...), which the
bench scripts set before Django or a worker starts. Extra knob:

BENCH_PUSH_DELAY     VOUCHERIFY_ORDERS["PUSH_DELAY"] in seconds (unset: the app's default)
BENCH_DB_REUSE_MAX   CELERY_DB_REUSE_MAX (unset: Celery's default, a new database
                     connection for every task)
BENCH_VOUCHERIFY_ORDERS  a JSON object merged into VOUCHERIFY_ORDERS last, e.g.
                     '{"MAX_ATTEMPTS": 30, "LEASE_SECONDS": 15}' (chaos.py)
"""

import json
import os

from example_project.settings import *  # noqa: F403
from example_project.settings import VOUCHERIFY_ORDERS as _SHOP_VOUCHERIFY_ORDERS

VOUCHERIFY_ORDERS = dict(_SHOP_VOUCHERIFY_ORDERS)
if os.environ.get("BENCH_PUSH_DELAY"):
    VOUCHERIFY_ORDERS["PUSH_DELAY"] = float(os.environ["BENCH_PUSH_DELAY"])
if os.environ.get("BENCH_DB_REUSE_MAX"):
    CELERY_DB_REUSE_MAX = int(os.environ["BENCH_DB_REUSE_MAX"])
if os.environ.get("BENCH_VOUCHERIFY_ORDERS"):
    VOUCHERIFY_ORDERS.update(json.loads(os.environ["BENCH_VOUCHERIFY_ORDERS"]))
