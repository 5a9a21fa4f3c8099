"""An installed wheel carries its templates, static files and migrations (issue 13)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("curl") is None, reason="the smoke script needs curl")
def test_wheel_installs_migrates_and_serves_login(tmp_path):
    env = {**os.environ, "DEPS": "borrow", "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    if not Path(env["PYTHON"]).exists():
        env["PYTHON"] = shutil.which("python3") or "python3"
    done = subprocess.run(
        [str(ROOT / ".ci" / "wheel-smoke")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/login 200" in done.stdout
