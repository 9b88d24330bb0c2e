"""DESIGN.md invariant 6, end to end: the secret key is searched for, and absent, in log
records, attempt rows, command output and rendered admin pages (issue 6, §3).

One realistic run touches everything that could carry the key: live pushes that succeed
and fail (a 500, a 429, a dropped connection, a 400, bad local data, and a 401 for a
mistyped key), the four management commands (an import with a refused batch and refused
orders, exports that succeed and fail, reconcile), and every page the admin registers for
the app's models and for the shop's orders, each action included. Then the key, in every
form it could take on the way out, is looked for wherever the run left text behind.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command, get_commands
from django.db.models import FileField, Model
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse

from django_voucherify_orders import paused_sync
from django_voucherify_orders.admin import VoucherifySyncAdminMixin
from django_voucherify_orders.emulator import Emulator
from django_voucherify_orders.models import (
    ExportJob,
    ImportFailure,
    ImportJob,
    JobStatus,
    OrderSync,
    SyncAttempt,
    SyncState,
)
from django_voucherify_orders.sync import limiter

APP_LABEL = "voucherify_orders"
APP_MODULE = "django_voucherify_orders"


PIECE = 16  # characters in a row of a key's random part that count as a leak


@dataclass(frozen=True)
class Key:
    """A key no test text holds by chance: 40 random characters between a prefix and a
    suffix that URL-quoting changes (``+``, ``/`` and ``=``)."""

    prefix: str
    core: str = field(default_factory=lambda: secrets.token_urlsafe(30))

    @property
    def value(self) -> str:
        return f"{self.prefix}+{self.core}/=="

    def forms(self) -> dict[str, str]:
        """The forms it is looked for in, each with an example of it."""
        return {
            "as is": self.value,
            "URL-quoted": quote(self.value, safe=""),
            "form-encoded": quote_plus(self.value),
            # Any other copy: truncated, escaped, re-encoded, split across lines.
            "a piece of it": self.core[12 : 12 + PIECE],
        }

    def found_in(self, text: str) -> list[str]:
        """The forms of the key that ``text`` holds."""
        found = [form for form, copy in list(self.forms().items())[:-1] if copy in text]
        pieces = (self.core[i : i + PIECE] for i in range(len(self.core) - PIECE + 1))
        if any(piece in text for piece in pieces):
            found.append("a piece of it")
        return found


SECRET = Key("sk")  # the configured SECRET_KEY
WRONG = Key("wk")  # a mistyped key, refused with a 401: a secret all the same
KEYS = {"secret": SECRET, "mistyped": WRONG}


class Found(NamedTuple):
    key: str
    form: str
    kind: str
    place: str


class Search:
    """Where the keys were looked for (how many texts of each kind), and where found."""

    def __init__(self) -> None:
        self.looked: Counter[str] = Counter()
        self.found: list[Found] = []

    def look(self, kind: str, place: str, text: str) -> None:
        self.looked[kind] += 1
        for name, key in KEYS.items():
            self.found += [Found(name, form, kind, place) for form in key.found_in(text)]


# --- what is searched ------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger from DEBUG up, whatever the logging configuration."""
    root = logging.getLogger()
    loggers = [
        root,
        *(x for x in root.manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]
    levels = {logger: logger.level for logger in loggers}
    handler = _Collect()
    hooked = [logger for logger in loggers if logger is root or not logger.propagate]
    for logger in loggers:
        if logger is root or logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
    for logger in hooked:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in hooked:
            logger.removeHandler(handler)
        for logger, level in levels.items():
            logger.setLevel(level)


def search_logs(search: Search, records: list[logging.LogRecord]) -> None:
    formatter = logging.Formatter()
    for record in records:
        parts = [record.getMessage(), repr(record.args), repr(vars(record))]
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        place = f"{record.name} {record.levelname} {record.msg!r}"
        search.look("log records", place, "\n".join(parts))


def search_rows(search: Search) -> Counter[str]:
    """Every field of every row of every model of the app, and every stored file."""
    rows: Counter[str] = Counter()
    for model in apps.get_app_config(APP_LABEL).get_models():
        files = [f.name for f in model._meta.fields if isinstance(f, FileField)]
        for obj in model._default_manager.order_by("pk"):
            rows[model.__name__] += 1
            for f in model._meta.concrete_fields:
                value = f.value_from_object(obj)
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                search.look("rows", f"{model.__name__} {obj.pk}: {f.name}", text)
            for name in files:
                stored = getattr(obj, name)
                if stored:
                    with stored.open("rb") as handle:
                        content = handle.read().decode("utf-8", "replace")
                    search.look("stored files", stored.name, content)
    return rows


def search_response(search: Search, place: str, response: Any) -> str:
    if response.streaming:  # read to the end, which closes it
        body = b"".join(response.streaming_content).decode("utf-8", "replace")
    else:
        body = response.content.decode("utf-8", "replace")
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    search.look("admin responses", f"{place} -> {response.status_code}", f"{headers}\n{body}")
    return body


# --- the run ---------------------------------------------------------------------------------


class RecordingEmulator(Emulator):
    """The emulator, noting the X-App-Token of every API request it is sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens: list[str | None] = []

    def handle(self, method: str, url: str, headers: Any, body: Any = b"") -> Any:
        lowered = {name.lower(): value for name, value in headers.items()}
        self.tokens.append(lowered.get("x-app-token"))
        return super().handle(method, url, headers, body)


@pytest.fixture
def emulator(settings, tmp_path) -> Iterator[RecordingEmulator]:
    """An emulator that accepts only SECRET; the app configured with it."""
    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS,
        "SECRET_KEY": SECRET.value,
        "MAX_ATTEMPTS": 2,
    }
    settings.MEDIA_ROOT = str(tmp_path / "media")
    emu = RecordingEmulator(
        settings.VOUCHERIFY_ORDERS["APP_ID"],
        SECRET.value,
        async_steps=0,  # no polling waits
    )
    emu.faults.retry_after = 0  # a 429 asks for no real wait
    with emu.mock():
        yield emu


@contextmanager
def mistyped_key(settings) -> Iterator[None]:
    configured = settings.VOUCHERIFY_ORDERS
    settings.VOUCHERIFY_ORDERS = {**configured, "SECRET_KEY": WRONG.value}
    try:
        yield
    finally:
        settings.VOUCHERIFY_ORDERS = configured


def live_pushes(shop, emulator, settings) -> Any:
    """Orders saved in the shop and pushed after commit: delivered, or failed every way.
    Returns the order with bad local data."""
    first, *_ = [shop.order(status="paid") for _ in range(3)]
    first.status = "shipped"
    first.save()  # an update: PUT
    # 429 is retried and delivered; 500s and 400 fail; a dropped write may still land, so
    # its order waits (pending) until it no longer can.
    for faults in ([429], [500, 500], ["drop"], [400]):
        emulator.faults.script(faults)
        shop.order(status="paid")
    bad = shop.order(status="lost")  # bad local data: fails before any call
    with mistyped_key(settings):
        refused = shop.order(status="paid")  # 401: every push paused, this order pending

    failures = set(OrderSync.objects.filter(state=SyncState.FAILED).values_list(
        "last_error_key", flat=True
    ))  # fmt: skip
    assert {"bad_request", "invalid_local_data"} <= failures
    paused = OrderSync.objects.get(pk=str(refused.pk))
    assert (paused.state, paused.last_error_key) == (SyncState.PENDING, "unauthorized")
    assert OrderSync.objects.filter(state=SyncState.SYNCED).count() == 4
    return bad


def commands(search: Search, emulator, settings, shop, bad_order, tmp_path) -> set[str]:
    """Each command, its error paths included; output, errors and files written searched.
    Returns the commands run."""
    ran = set()

    def run(command: str, *args: str) -> str:
        """stdout, stderr and the CommandError of one command, searched; returns the error."""
        out, err, error = io.StringIO(), io.StringIO(), ""
        try:
            call_command(command, *args, stdout=out, stderr=err)
        except CommandError as exc:
            error = str(exc)
        ran.add(command)
        place = " ".join(("manage.py", command, *args))
        for stream, text in (("stdout", out.getvalue()), ("stderr", err.getvalue())):
            search.look("command output", f"{place} ({stream})", text)
        search.look("command output", f"{place} (error)", error)
        return error

    # The failed pushes above stay failed: the admin shows them later.
    run("voucherify_sync", "--failed", "--dry-run")
    with paused_sync():
        shop.order(status="paid")  # a push that never went: the sync command's work
    emulator.faults.script([500])
    assert "could not be pushed" in run("voucherify_sync", "--inline")
    run("voucherify_sync")

    with paused_sync():  # historical orders, never pushed live
        history = [shop.order(status="shipped") for _ in range(4)]
    ids = ",".join(str(order.pk) for order in [*history, bad_order])
    failures_csv = tmp_path / "failures.csv"
    emulator.faults.script([400])  # the first batch is refused
    assert "refused the batch" in run(
        "voucherify_import", "--ids", ids, "--batch-size", "2", "--no-progress"
    )
    job = ImportJob.objects.get()
    emulator.faults.fail_import([str(history[-1].pk)], "Customer is blocked")
    assert "were not imported" in run(
        "voucherify_import", "--resume", str(job.pk), "--no-progress",
        "--failures-csv", str(failures_csv),
    )  # fmt: skip
    search.look("command output", "the --failures-csv file", failures_csv.read_text())
    run("voucherify_import", "--dry-run", "--no-progress")

    exported = tmp_path / "orders.csv"
    fields = "id,source_id,status,amount,metadata,customer_id"
    assert not run("voucherify_export", "--output", str(exported), "--fields", fields,
                   "--poll-interval", "0")  # fmt: skip
    search.look("command output", "the --output file", exported.read_text())
    run("voucherify_export", "--output", "-", "--poll-interval", "0")
    run("voucherify_export", "--async")
    emulator.faults.fail_export_next()
    assert "ended in ERROR" in run("voucherify_export", "--poll-interval", "0")
    with mistyped_key(settings):
        assert "HTTP 401" in run("voucherify_export", "--poll-interval", "0")

    assert "drift found" in run("voucherify_reconcile", "--poll-interval", "0")
    return ran


def app_admins() -> list[admin.ModelAdmin]:
    """The app's model admins, and any admin that mixes the app in (the shop's orders)."""
    return [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == APP_LABEL or isinstance(model_admin, VoucherifySyncAdminMixin)
    ]


#: What makes one object's pages differ from another's: a page is rendered for one object
#: of each kind (each failure kind of a sync row, each outcome of a job).
KINDS = {
    OrderSync: ("state", "last_error_key"),
    ImportJob: ("status", "failed"),
    ExportJob: ("status", "file"),
}


def samples(model: type[Model]) -> list[Model]:
    """One object of each kind; for the shop's orders, those of the sampled sync rows."""
    if model not in KINDS:
        keys = [row.pk for row in samples(OrderSync)]
        return list(model._default_manager.filter(pk__in=keys).order_by("pk"))
    kinds: dict[tuple[Any, ...], Model] = {}
    for obj in model._default_manager.order_by("pk"):
        kinds.setdefault(tuple(str(getattr(obj, name)) for name in KINDS[model]), obj)
    return list(kinds.values())


def admin_urls() -> list[str]:
    """Every named URL of those admins: once, or once per sample for those taking an object."""
    urls = [reverse("admin:index")]
    labels = dict.fromkeys(ma.opts.app_label for ma in app_admins())
    urls += [reverse("admin:app_list", kwargs={"app_label": label}) for label in labels]
    for model_admin in app_admins():
        objects = samples(model_admin.model)
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name:
                continue  # the unnamed <object_id>/ redirect to the change page
            params = list(pattern.pattern.converters)
            if not params:
                objects_shown: list[Any] = [None]
            elif pattern.name.endswith(("_history", "_delete")):
                objects_shown = objects[:1]  # Django's own pages: the same for every object
            else:
                objects_shown = objects
            for obj in objects_shown:
                kwargs = {name: obj.pk for name in params} if obj is not None else {}
                urls.append(reverse(f"admin:{pattern.name}", kwargs=kwargs))
    return urls


def admin_pages(search: Search, emulator, settings) -> None:
    user = User.objects.create_superuser("boss", "boss@example.com", None)
    client = Client()
    client.force_login(user)

    def visit(method: str, url: str, data: dict[str, Any] | None = None) -> str:
        """One request, and the redirects after it (where the messages show), searched."""
        response = getattr(client, method)(url, data or {})
        body = search_response(search, f"{method.upper()} {url}", response)
        hops = 0
        while response.status_code in (301, 302) and hops < 3:
            url, hops = response["Location"], hops + 1
            response = client.get(url)
            body = search_response(search, f"GET {url} (redirected)", response)
        return body

    for url in admin_urls():
        visit("get", url)

    changelist = reverse("admin:voucherify_orders_ordersync_changelist")
    remote = reverse("admin:voucherify_orders_ordersync_remote")
    visit("get", changelist, {"state": SyncState.FAILED})
    visit("get", changelist, {"error_key": "unauthorized"})
    visit("get", remote, {"page": 1, "limit": 100})
    emulator.faults.retry_after = 3600  # rate-limited for an hour: not retried, reported
    emulator.faults.script([429])
    assert "Voucherify answered with an error" in visit("get", remote, {"page": 1, "limit": 10})
    # That 429 paused every caller for the hour: the next page sends nothing, says why.
    assert "shared rate limit is busy" in visit("get", remote, {"page": 1, "limit": 10})
    cache.delete(f"{limiter.PREFIX}:pause")  # the hour is over
    emulator.faults.retry_after = 0
    with mistyped_key(settings):
        assert "HTTP 401" in visit("get", remote, {"page": 1, "limit": 10})

    # Every action of every changelist, on every row (the fetch takes the first 20).
    for model_admin in app_admins():
        opts = model_admin.opts
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        request = RequestFactory().get(url)
        request.user = user
        keys = [str(pk) for pk in model_admin.model._default_manager.values_list("pk", flat=True)]
        for action in model_admin.get_actions(request):
            page = visit("post", url, {"action": action, "_selected_action": keys})
            if action == "fetch_from_voucherify":  # its own page: both sides of each order
                assert "vo-fetch-result" in page and "vo-diff" in page

    # And the actions' error messages.
    rows = list(OrderSync.objects.values_list("pk", flat=True))
    with mistyped_key(settings):
        page = visit(
            "post", changelist, {"action": "fetch_from_voucherify", "_selected_action": rows}
        )
    assert "HTTP 401" in page
    emulator.faults.script([500] * 3)
    # An order whose data is good (rows come in no set order on PostgreSQL).
    good = OrderSync.objects.filter(state=SyncState.SYNCED).order_by("pk").first()
    page = visit("post", changelist, {"action": "push_now", "_selected_action": [good.pk]})
    assert "the push failed (internal_error)" in page

    visit("post", reverse("admin:voucherify_orders_importjob_start"), {"dry_run": "on"})
    visit("post", reverse("admin:voucherify_orders_exportjob_start"), {"junction": "and"})
    visit("get", reverse("admin:voucherify_orders_ordersync_health"))


# --- the tests -------------------------------------------------------------------------------


def test_the_secret_key_is_nowhere_after_a_run_that_touches_everything(
    shop, emulator, settings, tmp_path, log_records
):
    search = Search()
    bad_order = live_pushes(shop, emulator, settings)
    ran = commands(search, emulator, settings, shop, bad_order, tmp_path)
    admin_pages(search, emulator, settings)
    search_logs(search, log_records)
    rows = search_rows(search)

    # Not vacuous: the key went out on the authenticated calls, and a mistyped one was
    # refused; every kind of failure happened; every command ran; every model has rows.
    assert emulator.tokens.count(SECRET.value) >= 50
    assert WRONG.value in emulator.tokens
    assert {0, 200, 400, 401, 429, 500} <= {r.status for r in emulator.requests}
    assert ran == {name for name, app in get_commands().items() if app == APP_MODULE}
    assert set(rows) == {m.__name__ for m in apps.get_app_config(APP_LABEL).get_models()}
    assert all(rows.values()), rows
    assert search.looked["log records"] >= 50
    assert search.looked["admin responses"] >= len(admin_urls())

    assert search.found == []


@pytest.mark.parametrize("form", list(SECRET.forms()))
def test_the_search_finds_a_planted_key(form, db, settings, tmp_path, log_records):
    """The search above can fail: each place it looks reports a key planted there."""
    settings.MEDIA_ROOT = str(tmp_path)
    needle = SECRET.forms()[form]
    logger = logging.getLogger("django_voucherify_orders.sync")
    logger.debug("pushing with %s", f"X-App-Token: {needle}")
    try:
        try:
            raise KeyError(f"header {needle}")
        except KeyError as exc:
            raise RuntimeError("no header") from exc
    except RuntimeError:
        logger.exception("push failed")  # the key is in the traceback's cause only
    row = OrderSync.objects.create(order_pk="1", state=SyncState.FAILED)
    SyncAttempt.objects.create(sync=row, started_at=row.created_at, method="GET", path="/",
                               error=f"token={needle}")  # fmt: skip
    export = ExportJob.objects.create(status=JobStatus.DONE)
    export.file.save("leak.csv", ContentFile(f"id,token\n1,{needle}\n".encode()))
    job = ImportJob.objects.create(status=JobStatus.DONE_WITH_FAILURES, failed=1)
    ImportFailure.objects.create(job=job, stage="remote", reason=f"refused {needle}")
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", None))
    page = reverse("admin:voucherify_orders_importjob_change", args=[job.pk])

    search = Search()
    search_logs(search, log_records)
    search_rows(search)
    search_response(search, page, client.get(page))

    planted = [
        ("log records", "'pushing with %s'"),  # the formatted arguments
        ("log records", "'push failed'"),  # the exception's traceback
        ("rows", "SyncAttempt"),
        ("rows", "ImportFailure"),
        ("stored files", "leak"),
        ("admin responses", page),
    ]
    found = {(f.kind, where) for f in search.found for kind, where in planted
             if f.form == form and f.kind == kind and where in f.place}  # fmt: skip
    assert [p for p in planted if p not in found] == []
