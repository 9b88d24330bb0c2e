"""The shared rate limiter across real processes, over the Redis-backed Django cache:
two processes taking slots of one SharedRateLimiter never exceed the limit together; two
Celery workers pushing a backlog keep Voucherify under RATE_LIMIT; a 429 one worker sees
pauses the other one too.

Admitted times are the limiter's own clock readings; Voucherify's are the emulator's
arrival times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT, wait_until

pytestmark = pytest.mark.integration

LIMIT, PERIOD = 5, 1.0  # "5/s": low, so a few seconds hold many windows
RUN_SECONDS = 3.0

# One contender: set up Django, say "ready", wait for "go", then take every slot it can
# until the deadline. Admitted times are the limiter's own clock readings.
CONTENDER = textwrap.dedent(
    """
    import json, sys, time

    import django

    django.setup()
    from django.core.cache import cache

    from django_voucherify_orders.conf import RateLimit
    from django_voucherify_orders.sync.limiter import SharedRateLimiter

    limit, period, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    last_reading = [0.0]

    def clock():  # try_acquire reads it once: the time the call is admitted at
        last_reading[0] = time.time()
        return last_reading[0]

    limiter = SharedRateLimiter(RateLimit(limit, period), cache=cache, clock=clock)
    cache.get("warm-up")  # connect to Redis before the start
    print("ready", flush=True)
    stop_at = float(sys.stdin.readline())
    admitted = []
    while time.time() < stop_at:
        wait = limiter.try_acquire()
        if wait == 0:
            admitted.append(last_reading[0])
        else:
            time.sleep(min(wait, 0.01))  # poll often: the two contend for each slot
    with open(out, "w") as f:
        json.dump(admitted, f)
    """
)


def test_two_processes_never_exceed_the_limit_together(integration_run, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # This test's own cache keys (under the run's prefix: deleted at the end of the run).
        "VO_IT_PREFIX": f"{integration_run.prefix}-limiter-{uuid.uuid4().hex[:8]}",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    outputs = [tmp_path / f"admitted-{n}.json" for n in (1, 2)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    command = [sys.executable, "-c", CONTENDER, str(LIMIT), str(PERIOD)]
    processes = [
        subprocess.Popen([*command, str(out)], cwd=ROOT, env=env, text=True, **pipes)
        for out in outputs
    ]
    try:
        for process in processes:
            line = process.stdout.readline()  # bounded by the test's timeout
            assert line.strip() == "ready", process.stderr.read()
        stop_at = time.time() + RUN_SECONDS
        for process in processes:
            process.stdin.write(f"{stop_at}\n")
            process.stdin.flush()
        wait_until(
            lambda: all(p.poll() is not None for p in processes),
            RUN_SECONDS + 30,
            lambda: "the contenders did not finish",
        )
        for process in processes:
            assert process.returncode == 0, process.stderr.read()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    each = [json.loads(Path(out).read_text()) for out in outputs]
    admitted = sorted(t for times in each for t in times)
    busiest = max(sum(1 for t in admitted if start <= t < start + PERIOD) for start in admitted)
    assert busiest <= LIMIT, f"{busiest} calls in one {PERIOD:g} s window: {admitted}"
    # The limit is used, and shared: neither process starves the other out completely.
    assert len(admitted) >= LIMIT * (RUN_SECONDS - 1), admitted
    assert all(each), [len(times) for times in each]


def test_two_workers_pushing_a_backlog_obey_rate_limit_together(harness, shop):
    """The engine's own limiter, end to end: Voucherify never sees more than RATE_LIMIT
    writes in any second while two workers push a backlog between them."""
    from django_voucherify_orders import paused_sync
    from django_voucherify_orders.sync import enqueue_pushes

    from .conftest import assert_remote_is_local, writes

    harness.configure(RATE_LIMIT=f"{LIMIT}/s")
    workers = harness.start_workers(2)
    with paused_sync():
        orders = [shop.order(status="paid") for _ in range(16)]
    keys = [str(order.pk) for order in orders]
    for start in range(0, len(keys), 2):  # small tasks, so both workers get some
        enqueue_pushes(keys[start : start + 2], countdown=0)

    harness.wait_synced(orders, timeout=60)

    assert_remote_is_local(harness.emulator, orders)
    sent = [
        at
        for record, at in harness.emulator.request_log()
        if record.method in ("POST", "PUT") and record.path.startswith("/v1/orders")
    ]
    assert len(sent) == writes(harness.emulator) == 16
    busiest = max(sum(1 for t in sent if start <= t < start + PERIOD) for start in sent)
    assert busiest <= LIMIT, f"{busiest} writes in one {PERIOD:g} s window: {sorted(sent)}"
    for worker in workers:  # the limit was shared, not obeyed by one worker alone
        assert "django_voucherify_orders.push_orders" in worker.output(tail=500), worker.name


def test_a_429_seen_by_one_worker_pauses_both(harness, shop):
    """Voucherify answers one push with 429 and Retry-After: 3. Until then, no worker
    sends anything, although the other one never saw that answer itself."""
    from django_voucherify_orders import paused_sync
    from django_voucherify_orders.sync import enqueue_pushes

    from .conftest import assert_remote_is_local

    emu = harness.emulator
    retry_after = 3
    harness.start_workers(2)
    with paused_sync():
        orders = [shop.order(status="paid") for _ in range(6)]
    keys = [str(order.pk) for order in orders]
    emu.faults.retry_after = retry_after
    emu.faults.script([429])

    enqueue_pushes(keys[:1], countdown=0)
    wait_until(lambda: any(record.status == 429 for record in emu.requests), 30, harness.describe)
    for key in keys[1:]:  # one task each: both workers take some
        enqueue_pushes([key], countdown=0)
    harness.wait_synced(orders, timeout=60)

    assert_remote_is_local(emu, orders)
    log = emu.request_log()
    [refused_at] = [at for record, at in log if record.status == 429]
    too_soon = [(record, at - refused_at) for record, at in log if refused_at < at]
    too_soon = [(record, round(after, 3)) for record, after in too_soon if after < retry_after]
    assert too_soon == [], f"sent before Voucherify's {retry_after} s were up"
