"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol through a pipe
(``--remote-debugging-pipe``: no port, no network, no websocket client): open a page, wait for it to
load, read every <img>'s naturalWidth, collect console errors and uncaught exceptions, take a
full-page screenshot."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@dataclass
class PageLook:
    """What the browser saw: each image (alt, complete, naturalWidth), errors logged, the screenshot."""

    images: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    title: str = ""


class DevTools:
    """One Chromium process and its DevTools pipe (messages are JSON, each ended by a NUL byte)."""

    def __init__(self, chromium: str, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="report-chromium-")
        self._log = Path(self.profile) / "chromium.log"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # above fd 9 (bash redirects them onto 3 and 4; dash would refuse fds past 9), so neither
        # redirection can overwrite the other end
        to_browser_r, from_browser_w = (_above(fd, 10) for fd in (to_browser_r, from_browser_w))
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                 "--disable-extensions", "--disable-background-networking", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
                 "about:blank"]
        # fd 3: what the browser reads (our commands), fd 4: what it writes (replies and events)
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}',
                                      chromium, *flags], pass_fds=(to_browser_r, from_browser_w),
                                     stdout=subprocess.DEVNULL, stderr=self._log.open("wb"))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer over the DevTools pipe")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                tail = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
                raise RuntimeError(f"chromium closed the DevTools pipe; its log ends: {tail}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command; return its result (events read meanwhile are kept in self.events)."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout_s
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)


def _above(fd: int, lowest: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return moved


def look_at(url: str, chromium: str, width: int = 1200) -> PageLook:
    """Open url in headless Chromium, wait for its load event; images, errors and a full-page screenshot."""
    tools = DevTools(chromium)
    try:
        targets = tools.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = tools.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            tools.send(f"{domain}.enable", session=session)
        tools.send("Emulation.setDeviceMetricsOverride",
                   {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        tools.send("Page.navigate", {"url": url}, session=session)
        tools.wait_for("Page.loadEventFired")
        probe = ("JSON.stringify({title: document.title, images: Array.from(document.images).map("
                 "i => ({alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth}))})")
        seen = json.loads(tools.send("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                                     session=session)["result"]["value"])
        height = tools.send("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
        tools.send("Emulation.setDeviceMetricsOverride",
                   {"width": width, "height": int(min(height, 16000)), "deviceScaleFactor": 1, "mobile": False},
                   session=session)
        shot = tools.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        errors = []
        for ev in tools.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return PageLook(images=seen["images"], errors=errors, screenshot=base64.b64decode(shot), title=seen["title"])
    finally:
        tools.close()


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
