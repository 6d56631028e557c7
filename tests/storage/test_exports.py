"""The package surface: every exported name exists, and storage imports nothing of ours."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import storage

# Every module of the package, found rather than listed: a new one is checked at once.
MODULES = sorted(f"storage.{m.name}" for m in pkgutil.iter_modules(storage.__path__))


@pytest.mark.parametrize("name", ["storage", *MODULES])
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for export in module.__all__:
        assert hasattr(module, export), export


def test_package_exports_every_public_name() -> None:
    public = {
        export
        for name in MODULES
        if not name.startswith("storage._")
        for export in importlib.import_module(name).__all__
    }
    assert public == set(storage.__all__)


def test_storage_imports_nothing_of_the_other_packages() -> None:
    check = (
        "import sys, storage; "
        "bad = sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'bot', 'commands', 'sandbox', 'httpx', 'httpx2'}); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
