"""`scripts/serve` installs only when it must: a first start, or new dependencies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checkout(tmp_path: Path) -> Path:
    """A copy of the script beside a setup.sh that logs its runs and makes a
    `live` that echoes its arguments."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "serve", tmp_path / "scripts" / "serve")
    setup = tmp_path / "scripts" / "setup.sh"
    setup.write_text(
        "#!/usr/bin/env bash\n"
        'echo "$1" >> setup.log\n'
        "mkdir -p .venv/bin\n"
        "printf '#!/bin/sh\\necho live \"$@\"\\n' > .venv/bin/live\n"
        "chmod +x .venv/bin/live\n"
    )
    setup.chmod(0o755)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "live"\n')
    return tmp_path


def _serve(checkout: Path, *args: str) -> str:
    result = subprocess.run(
        [str(checkout / "scripts" / "serve"), *args],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return result.stdout


def _setups(checkout: Path) -> int:
    log = checkout / "setup.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_setup_runs_on_the_first_start_and_when_dependencies_change(tmp_path):
    checkout = _checkout(tmp_path)
    assert _serve(checkout, "--http", "0.0.0.0:8080") == "live serve --http 0.0.0.0:8080\n"
    assert _setups(checkout) == 1
    _serve(checkout)
    _serve(checkout)
    assert _setups(checkout) == 1  # nothing changed: no reinstall
    with (checkout / "pyproject.toml").open("a") as pyproject:
        pyproject.write("dependencies = []\n")
    _serve(checkout)
    assert _setups(checkout) == 2
    (checkout / ".venv" / "bin" / "live").unlink()  # a broken virtualenv
    _serve(checkout)
    assert _setups(checkout) == 3
