"""Drive Debian's headless Chromium from tests: the DOM after scripts ran, screenshots, and (``Browser``) real
keyboard input over the DevTools protocol."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from harness.servers import free_port

T = TypeVar("T")

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


class Browser:
    """A headless Chromium driven over the DevTools protocol (real key events), for what --dump-dom cannot do.

    ``Browser().run(url, steps)`` opens ``url`` and awaits ``steps(page)``; ``page.evaluate`` runs an expression
    and returns its value, ``page.press`` sends a key as keyboard input to the focused element."""

    def run(self, url: str, steps: Callable[[CdpPage], Awaitable[T]], timeout: float = 60) -> T:
        return asyncio.run(asyncio.wait_for(self._run(url, steps), timeout))

    async def _run(self, url: str, steps: Callable[[CdpPage], Awaitable[T]]) -> T:
        port = free_port()
        # Chromium's helper processes may still write to the profile as it goes: its own session, killed whole,
        # and a profile whose removal tolerates a straggler's file.
        with tempfile.TemporaryDirectory(prefix="dbpulse-chromium-", ignore_cleanup_errors=True) as profile:
            proc = subprocess.Popen([chromium_binary(), *FLAGS, f"--user-data-dir={profile}",
                                     f"--remote-debugging-port={port}", "--remote-allow-origins=*",
                                     "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                async with aiohttp.ClientSession() as session:
                    ws_url = await _page_socket(session, port)
                    async with session.ws_connect(ws_url, max_msg_size=0) as ws:
                        page = CdpPage(ws)
                        await page.send("Page.enable")
                        await page.navigate(url)
                        return await steps(page)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


async def _page_socket(session: aiohttp.ClientSession, port: int) -> str:
    for _ in range(300):  # Chromium takes a moment to listen (bounded: about 30 s)
        try:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [p for p in await response.json() if p.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("Chromium's DevTools endpoint did not come up")


class CdpPage:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == ident:
                assert "error" not in message, message
                return dict(message.get("result", {}))
            self.events.append(message)

    async def navigate(self, url: str) -> None:
        self.events.clear()
        await self.send("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(await self.ws.receive_json())

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def viewport(self, width: int, height: int) -> None:
        """The window's size in CSS pixels, as a desktop browser (or a narrow one) has it."""
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                        mobile=False)

    async def click(self, selector: str) -> None:
        """A mouse click in the middle of the first element matching ``selector``, scrolled into view first."""
        box = await self.evaluate(
            f"(function () {{ var e = document.querySelector({selector!r}); if (!e) {{ return null; }}"
            " e.scrollIntoView({block: 'center'}); var r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        assert box is not None, f"nothing matches {selector}"
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    async def screenshot(self, name: str, width: int, height: int, y: float = 0.0) -> Path:
        """The page from ``y`` down, ``width`` x ``height``, saved under artifacts/."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": y, "width": width, "height": height, "scale": 1})
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def press(self, key: str) -> None:
        """A key pressed and released on the focused element, as a keyboard sends it (Enter, or " " for Space)."""
        codes = {"Enter": ("Enter", 13, "\r"), " ": ("Space", 32, " ")}
        code, vk, text = codes[key]
        await self.send("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, windowsVirtualKeyCode=vk,
                        nativeVirtualKeyCode=vk, text=text, unmodifiedText=text)
        await self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk,
                        nativeVirtualKeyCode=vk)


def element_screenshot(url: str, element_id: str, name: str, width: int = 1400, height: int = 1200) -> Path:
    """A screenshot of the page from the element ``element_id`` down (what a link to ``#id`` shows), saved under
    artifacts/; the page's script has run."""
    async def steps(page: CdpPage) -> str:
        await page.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                        mobile=False)
        for _ in range(100):  # the page's script marks itself ready
            if await page.evaluate("document.documentElement.getAttribute('data-ui') === 'ready'"):
                break
            await asyncio.sleep(0.1)
        top = await page.evaluate(f"document.getElementById({element_id!r}).getBoundingClientRect().top"
                                  " + window.scrollY")
        shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": top, "width": width, "height": height, "scale": 1})
        return str(shot["data"])

    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(Browser().run(url, steps)))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path
