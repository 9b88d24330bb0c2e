"""Who may open each admin page and run each admin action (issue 6, §3).

Two tables, one row per page or action that the app's admins register (and the shop's
order admin, which mixes the app in), each naming the permissions it needs.
``test_the_tables_cover_every_page_and_action`` fails when an admin gains a page or an
action without a row here. Each row is tried by:

- anonymous: sent to the login page;
- staff with no permission: refused (403);
- staff with only the model's view permission: may look, not act (no push, fetch or job);
- staff with exactly the permissions the row names (a superuser for the rows that say
  so): it works, and leaves what it should behind.

Whoever is refused leaves nothing behind: no call reached Voucherify, nothing was queued
to run after commit, and no row of the app and no order of the shop changed. Opening a page that
is allowed leaves nothing behind either.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse

from django_voucherify_orders import paused_sync
from django_voucherify_orders.admin import VoucherifySyncAdminMixin
from django_voucherify_orders.models import (
    ExportJob,
    ImportFailure,
    ImportJob,
    JobStatus,
    OrderSync,
    SyncState,
)

# Who tries a row: these, or staff holding a tuple of permission codenames.
ANONYMOUS = "anonymous"
NO_PERMISSION = "no permission"
SUPERUSER = "superuser"
# What a row needs: a tuple of codenames, SUPERUSER, or NOBODY (not even a superuser).
NOBODY = "nobody"

SYNC, IMPORTS, EXPORTS, ORDERS = (
    "voucherify_orders_ordersync",
    "voucherify_orders_importjob",
    "voucherify_orders_exportjob",
    "shop_order",
)
_OBJECT_PAGES = ("_change", "_history", "_delete", "_failures", "_download")
_names = itertools.count(1)


@dataclass(frozen=True)
class Page:
    """An admin URL, by its name without ``admin:``, and what opens it."""

    name: str
    needs: tuple[str, ...] | str
    method: str = "get"
    data: dict[str, Any] = field(default_factory=dict)
    ok: int = 200  # the status when allowed
    leaves: str = ""  # what it leaves behind when allowed (a key of EFFECTS)

    @property
    def model_name(self) -> str:
        return self.name.split("_")[-2]

    @property
    def label(self) -> str:
        model, view = self.name.split("_")[-2:]
        return f"{model} {view}" + (" POST" if self.method == "post" else "")


@dataclass(frozen=True)
class Action:
    """An action of the changelist ``changelist`` (``app_model``), and what runs it."""

    changelist: str
    name: str
    needs: tuple[str, ...] | str
    leaves: str  # what it leaves behind when allowed (a key of EFFECTS)

    @property
    def model_name(self) -> str:
        return self.changelist.split("_")[-1]

    @property
    def label(self) -> str:
        return f"{self.model_name} {self.name}"


PAGES = [
    Page(f"{SYNC}_changelist", ("view_ordersync",)),
    Page(f"{SYNC}_change", ("view_ordersync",)),
    Page(f"{SYNC}_history", ("view_ordersync",)),
    Page(f"{SYNC}_add", NOBODY),  # rows are written by the push engine only
    Page(f"{SYNC}_delete", SUPERUSER),  # even the delete permission is not enough
    Page(f"{SYNC}_health", ("view_ordersync",)),
    Page(f"{SYNC}_remote", ("view_remote_orders",)),
    Page(f"{IMPORTS}_changelist", ("view_importjob",)),
    Page(f"{IMPORTS}_change", ("view_importjob",)),
    Page(f"{IMPORTS}_history", ("view_importjob",)),
    Page(f"{IMPORTS}_add", NOBODY),  # jobs are started with the start form
    Page(f"{IMPORTS}_delete", ("delete_importjob",)),
    Page(f"{IMPORTS}_failures", ("view_importjob",)),
    Page(f"{IMPORTS}_start", ("run_importjob",)),
    Page(f"{IMPORTS}_start", ("run_importjob",), "post", {"dry_run": "on"}, 302, "job queued"),
    Page(f"{EXPORTS}_changelist", ("view_exportjob",)),
    Page(f"{EXPORTS}_change", ("view_exportjob",)),
    Page(f"{EXPORTS}_history", ("view_exportjob",)),
    Page(f"{EXPORTS}_add", NOBODY),
    Page(f"{EXPORTS}_delete", ("delete_exportjob",)),
    Page(f"{EXPORTS}_download", ("view_exportjob",)),
    Page(f"{EXPORTS}_start", ("run_exportjob",)),
    Page(f"{EXPORTS}_start", ("run_exportjob",), "post", {"junction": "and"}, 302, "job queued"),
    Page(f"{ORDERS}_changelist", ("view_order",)),
    Page(f"{ORDERS}_change", ("view_order",)),
    Page(f"{ORDERS}_history", ("view_order",)),
    Page(f"{ORDERS}_add", ("add_order",)),
    Page(f"{ORDERS}_delete", ("delete_order",)),
]

ACTIONS = [
    Action(SYNC, "push_now", ("view_ordersync", "push_ordersync"), "push queued"),
    Action(SYNC, "retry_failed", ("view_ordersync", "push_ordersync"), "push queued"),
    Action(SYNC, "fetch_from_voucherify", ("view_ordersync", "view_remote_orders"), "fetched"),
    Action(SYNC, "delete_selected", SUPERUSER, "deleted"),
    Action(IMPORTS, "resume_imports", ("view_importjob", "run_importjob"), "import resumed"),
    Action(IMPORTS, "delete_selected", ("view_importjob", "delete_importjob"), "deleted"),
    Action(EXPORTS, "delete_selected", ("view_exportjob", "delete_exportjob"), "deleted"),
    Action(ORDERS, "push_now", ("view_order", "push_ordersync"), "push queued"),
    Action(ORDERS, "retry_failed", ("view_order", "push_ordersync"), "push queued"),
    Action(ORDERS, "fetch_from_voucherify", ("view_order", "view_remote_orders"), "fetched"),
    Action(ORDERS, "delete_selected", ("view_order", "delete_order"), "deleted"),
]


def cases(rows: list[Page] | list[Action]) -> list[Any]:
    """Each row with each person who tries it (the view permission once, if that is
    what the row needs)."""
    params = []
    for row in rows:
        holder = row.needs if isinstance(row.needs, tuple) else SUPERUSER
        roles = dict.fromkeys([ANONYMOUS, NO_PERMISSION, (f"view_{row.model_name}",), holder])
        for role in roles:
            who = "+".join(role) if isinstance(role, tuple) else role
            params.append(pytest.param(row, role, id=f"{row.label} / {who}"))
    return params


def may(role: str | tuple[str, ...], row: Page | Action) -> bool:
    if role == SUPERUSER:
        return row.needs != NOBODY
    return isinstance(role, tuple) and isinstance(row.needs, tuple) and set(row.needs) <= set(role)


def app_admins() -> list[admin.ModelAdmin]:
    """The app's model admins, and those that mix the app in (the shop's orders)."""
    return [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "voucherify_orders"
        or isinstance(model_admin, VoucherifySyncAdminMixin)
    ]


# --- the world each row is tried in ----------------------------------------------------------


@dataclass
class World:
    """One object of each model (what each action selects), and the emulator."""

    emulator: Any
    order: Any
    sync: OrderSync
    import_job: ImportJob
    export_job: ExportJob

    def model(self, model_name: str) -> Any:
        return {
            "ordersync": OrderSync,
            "importjob": ImportJob,
            "exportjob": ExportJob,
            "order": type(self.order),
        }[model_name]

    def pk(self, model_name: str) -> Any:
        return {
            "ordersync": self.sync.pk,
            "importjob": self.import_job.pk,
            "exportjob": self.export_job.pk,
            "order": self.order.pk,
        }[model_name]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every model of the app, and the shop's orders."""
        models = [*apps.get_app_config("voucherify_orders").get_models(), type(self.order)]
        return {
            model._meta.label: list(model._default_manager.order_by("pk").values())
            for model in models
        }


@pytest.fixture
def world(make_order, voucherify_emulator, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = str(tmp_path)
    with paused_sync():  # nothing queued yet, so what a request queues is seen
        order = make_order()
    sync = OrderSync.objects.get(pk=str(order.pk))
    sync.state, sync.last_error_key = SyncState.FAILED, "internal_error"
    sync.save()
    import_job = ImportJob.objects.create(status=JobStatus.INTERRUPTED, total=2, failed=1)
    ImportFailure.objects.create(job=import_job, order_pk="1", stage="local", reason="bad")
    export_job = ExportJob.objects.create(status=JobStatus.DONE, row_count=1)
    export_job.file.save("orders.csv", ContentFile(b"id,source_id\nord_1,1\n"))
    return World(voucherify_emulator, order, sync, import_job, export_job)


def login(role: str | tuple[str, ...]) -> tuple[Client, User | None]:
    """A client for the role, and its user (None when anonymous)."""
    client = Client()
    if role == ANONYMOUS:
        return client, None
    if role == SUPERUSER:
        user = User.objects.create_superuser(f"boss{next(_names)}", None, None)
    else:
        codenames = () if role == NO_PERMISSION else role
        user = User.objects.create_user(f"staff{next(_names)}", is_staff=True)
        perms = Permission.objects.filter(
            codename__in=codenames, content_type__app_label__in=["voucherify_orders", "shop"]
        )
        assert perms.count() == len(codenames), codenames
        user.user_permissions.set(perms)
    client.force_login(user)
    return client, user


def offered(user: User, action: Action) -> list[str]:
    """The actions the changelist offers the user (what its action menu lists)."""
    model_admin = next(ma for ma in app_admins() if ma.opts.model_name == action.model_name)
    request = RequestFactory().get(reverse(f"admin:{action.changelist}_changelist"))
    request.user = user
    return list(model_admin.get_actions(request))


def assert_sent_to_login(response) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=")


def assert_nothing_happened(world: World, queued: list[Any], before: dict[str, Any]) -> None:
    assert world.emulator.requests == []
    assert queued == []
    assert world.snapshot() == before


# --- what an allowed page or action leaves behind ----------------------------------------------


def _push_queued(world: World, queued: list[Any], model_name: str) -> bool:
    version = OrderSync.objects.get(pk=world.sync.pk).version
    return queued != [] and version == world.sync.version + 1


def _fetched(world: World, queued: list[Any], model_name: str) -> bool:
    return world.emulator.count("GET", "/v1/orders/") == 1


def _deleted(world: World, queued: list[Any], model_name: str) -> bool:
    model = world.model(model_name)
    return not model._default_manager.filter(pk=world.pk(model_name)).exists()


def _import_resumed(world: World, queued: list[Any], model_name: str) -> bool:
    status = ImportJob.objects.get(pk=world.import_job.pk).status
    return queued != [] and status == JobStatus.QUEUED


def _job_queued(world: World, queued: list[Any], model_name: str) -> bool:
    return queued != [] and world.model(model_name).objects.count() == 2


EFFECTS: dict[str, Callable[[World, list[Any], str], bool]] = {
    "push queued": _push_queued,
    "fetched": _fetched,
    "deleted": _deleted,
    "import resumed": _import_resumed,
    "job queued": _job_queued,
}


# --- the tests -------------------------------------------------------------------------------


def test_the_tables_cover_every_page_and_action(db):
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create_superuser("boss", None, None)
    pages, actions = set(), set()
    for model_admin in app_admins():
        prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
        pages |= {p.name for p in model_admin.get_urls() if isinstance(p, URLPattern) and p.name}
        actions |= {(prefix, name) for name in model_admin.get_actions(request)}

    assert pages == {page.name for page in PAGES}
    assert actions == {(action.changelist, action.name) for action in ACTIONS}
    # The pages that act when posted to are tried with a POST too.
    assert {page.name for page in PAGES if page.method == "post"} == {
        name for name in pages if name.endswith("_start")
    }


@pytest.mark.parametrize(("page", "role"), cases(PAGES))
def test_who_may_open_each_page(world, page, role, django_capture_on_commit_callbacks):
    args = [world.pk(page.model_name)] if page.name.endswith(_OBJECT_PAGES) else []
    url = reverse(f"admin:{page.name}", args=args)
    client, _ = login(role)
    before = world.snapshot()

    with django_capture_on_commit_callbacks() as queued:
        response = getattr(client, page.method)(url, page.data)
    if response.streaming:  # read to the end, which closes it (a CSV download)
        b"".join(response.streaming_content)

    if role == ANONYMOUS:
        assert_sent_to_login(response)
    elif not may(role, page):
        assert response.status_code == 403
    else:
        assert response.status_code == page.ok
        if page.leaves:
            assert EFFECTS[page.leaves](world, queued, page.model_name)
            return
    assert_nothing_happened(world, queued, before)


@pytest.mark.parametrize(("action", "role"), cases(ACTIONS))
def test_who_may_run_each_action(world, action, role, django_capture_on_commit_callbacks):
    url = reverse(f"admin:{action.changelist}_changelist")
    data = {"action": action.name, "_selected_action": [world.pk(action.model_name)]}
    if action.name == "delete_selected":
        data["post"] = "yes"  # confirmed: deletes at once
    client, user = login(role)
    may_view = role == SUPERUSER or f"view_{action.model_name}" in (
        role if isinstance(role, tuple) else ()
    )
    if may_view:  # the action is offered to those who may run it, and to them only
        assert (action.name in offered(user, action)) == may(role, action)
    before = world.snapshot()

    with django_capture_on_commit_callbacks() as queued:
        response = client.post(url, data)

    if role == ANONYMOUS:
        assert_sent_to_login(response)
    elif not may_view:
        assert response.status_code == 403
    elif not may(role, action):  # back to the list, or the list again: nothing run
        assert response.status_code in (200, 302)
    else:
        assert response.status_code in (200, 302)
        assert EFFECTS[action.leaves](world, queued, action.model_name)
        return
    assert_nothing_happened(world, queued, before)
