"""Drive Debian's headless Chromium from tests: the DOM after scripts ran, and screenshots."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is not installed: run `make setup` (Debian package chromium)")


def _run(url: str, *extra: str, budget_ms: int = 4000, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="dbpulse-chromium-") as profile:
        args = [chromium_binary(), *FLAGS, f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}", *extra, url]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def dump_dom(url: str, budget_ms: int = 4000) -> str:
    """The serialized DOM once the page loaded and its timers had ``budget_ms`` of virtual time."""
    result = _run(url, "--dump-dom", budget_ms=budget_ms)
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout


def screenshot(url: str, name: str, size: str = "1400,2000", budget_ms: int = 4000) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    result = _run(url, f"--screenshot={path}", f"--window-size={size}", budget_ms=budget_ms)
    assert result.returncode == 0 and path.exists(), result.stderr[-2000:]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path
