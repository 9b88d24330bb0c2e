"""The publisher: after commit, a per-process thread hands the changed orders to the broker.

It must survive what production does to processes: a broker outage (the "queued" markers
must not outlive the failed enqueue), a fork (gunicorn, Celery prefork: the child needs
its own thread), and the process exiting (what was committed is published first).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from django.core.cache import cache
from kombu.exceptions import OperationalError

from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import publisher
from django_voucherify_orders.sync.publisher import QUEUED_KEY

ROOT = Path(__file__).resolve().parents[2]


def test_a_broker_outage_leaves_no_queued_marker_behind(shop, emulator, monkeypatch):
    """The enqueue failed: the next change to the order must be queued, not taken for a
    duplicate of a push that was never queued."""
    sent: list[list[str]] = []
    outage = [True]

    def send_task(task, batch, *args):
        if outage[0]:
            raise OperationalError("Error 111 connecting to the broker. Connection refused.")
        sent.append(batch)

    monkeypatch.setattr(publisher, "_send_task", send_task)
    order = shop.order(status="new")  # committed while the broker is down
    key = str(order.pk)
    assert sent == [] and cache.get(QUEUED_KEY.format(key)) is None
    outage[0] = False

    order.status = "paid"
    order.save()

    assert sent == [[key]]
    assert OrderSync.objects.get(pk=key).state == SyncState.PENDING


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_publishes_with_a_thread_of_its_own(monkeypatch, tmp_path):
    """As in gunicorn: the master published once (its thread is alive), then forked."""
    log = tmp_path / "sent.jsonl"
    parent_sent = threading.Event()

    def send_task(task, batch, *args):
        with log.open("a") as out:
            out.write(json.dumps({"pid": os.getpid(), "keys": batch}) + "\n")
        parent_sent.set()

    monkeypatch.setattr(publisher, "_send_task", send_task)
    publisher._publisher.submit(["in-the-parent"])
    assert parent_sent.wait(10), "the parent's publisher thread sent nothing"

    pid = os.fork()
    if pid == 0:  # the child: publish, then say whether its own thread did it
        code = 3
        try:
            signal.alarm(20)  # a hung child must not hang the test
            publisher._publisher.submit(["in-the-child"])
            publisher.flush_publisher(timeout=10)
            lines = [json.loads(line) for line in log.read_text().splitlines()]
            code = 0 if {"pid": os.getpid(), "keys": ["in-the-child"]} in lines else 1
        finally:
            os._exit(code)

    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"the child died: status {status}"
    assert os.WEXITSTATUS(status) == 0, log.read_text()
    publisher.flush_publisher()  # the parent's thread is still its own
    assert [json.loads(line)["pid"] for line in log.read_text().splitlines()].count(
        os.getpid()
    ) == 1


# The process exits right after its last commit: its publisher thread holds keys it has not
# handed to the broker yet. Each send waits until the exit has begun, so only the flush at
# exit can publish them; the last exit handler reports what was published by then.
EXITING_PROCESS = textwrap.dedent(
    """
    import atexit, json, sys, threading

    published = []
    report = sys.argv[1]

    def say_what_was_published():  # registered first: runs after every other handler
        with open(report, "w") as out:
            json.dump(sorted(published), out)

    atexit.register(say_what_was_published)

    import django

    django.setup()
    from django_voucherify_orders.sync import publisher

    exiting = threading.Event()
    atexit.register(exiting.set)  # registered after the publisher's flush: runs before it

    def send_task(task, batch, *args):
        exiting.wait(30)
        published.extend(batch)

    publisher._send_task = send_task
    publisher._publisher.submit(["1", "2", "3"])
    """
)


def test_what_was_committed_is_published_before_the_process_exits(tmp_path):
    report = tmp_path / "published.json"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    done = subprocess.run(
        [sys.executable, "-c", EXITING_PROCESS, str(report)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text()) == ["1", "2", "3"], done.stderr
