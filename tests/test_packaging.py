"""What a user installs and what the example project leaves behind."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from django_voucherify_orders.models import ExportJob

ROOT = Path(__file__).resolve().parent.parent


def test_the_redis_extra_brings_celerys_redis_transport():
    """A plain `redis` is not enough for Celery's Redis broker: kombu's transport imports
    `packaging` too, which `celery[redis]` brings."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    celery = [Requirement(line) for line in extras["redis"] if Requirement(line).name == "celery"]
    assert celery and "redis" in celery[0].extras


@pytest.mark.parametrize("documented", ["README.md", "docs/installation.md"])
def test_the_install_line_per_broker_is_documented(documented):
    text = (ROOT / documented).read_text()
    assert 'pip install "django-voucherify-orders[redis]"' in text
    assert "RabbitMQ" in text


@pytest.mark.parametrize(
    "written",
    [
        # An export run in the example project: its default storage is where manage.py runs.
        f"example_project/{ExportJob._meta.get_field('file').upload_to}orders-1.csv",
        "example_project/demo.sqlite3",
        "example_project/db.sqlite3",
    ],
)
def test_files_the_example_project_writes_are_ignored_by_git(written):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", written], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, f"{written} is not in .gitignore"


@pytest.mark.timeout(300)
def test_a_built_wheel_holds_every_file_of_the_package(tmp_path):
    """Until the app is on PyPI, users install a wheel built from a checkout (README):
    templates, migrations and py.typed must be in it, not only the modules."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    import sys
    import zipfile

    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w",
         str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("django_voucherify_orders-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "django_voucherify_orders"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert tracked
    assert [name for name in tracked if name not in shipped] == []
    assert not any(name.endswith((".pyc", ".orig")) for name in shipped)
