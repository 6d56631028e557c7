#!/usr/bin/env python3
"""Set-up and entry points for a fresh machine that has only python3.

    python3 dev.py demo    the console against the built-in sandbox
    python3 dev.py test    ruff, mypy --strict and the whole test suite

Both create ``.venv`` on first use and re-install when ``pyproject.toml``
changes, so nothing needs to be installed by hand.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".untag-installed"
PACKAGES = ["bot", "commands", "storage", "sandbox", "bench"]


def _requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> None:
    """Create the virtual environment and install the project, once per pyproject change."""
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = _requirements_digest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    print("installing untag and its dependencies into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(digest)


def run(*argv: str) -> int:
    return subprocess.run(list(argv), cwd=ROOT).returncode


def test(extra: list[str]) -> int:
    """Lint, type-check, then run pytest; the first failure decides the exit status."""
    steps = [
        [str(BIN / "ruff"), "check", *PACKAGES, "tests", "dev.py"],
        [str(BIN / "mypy"), "--strict", *PACKAGES],
        [str(BIN / "python"), "-m", "pytest", *extra],
    ]
    for step in steps:
        print(
            "$",
            " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)),
            flush=True,
        )
        code = run(*step)
        if code != 0:
            return code
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
    ensure_venv()
    command, extra = sys.argv[1], sys.argv[2:]
    if command == "test":
        return test(extra)
    if command == "demo":
        return run(str(BIN / "untag"), "console", *extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
