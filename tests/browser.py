"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe``, for the report tests.

Chromium reads protocol messages (JSON, each ended by a NUL byte) from its file descriptor 3 and
writes replies and events to descriptor 4 (chromium ``content/browser/devtools/devtools_pipe_handler.cc``).
:meth:`Browser.open` loads one page in a fresh tab and records what the page did: console errors,
uncaught exceptions, log entries of level error, and every request it made.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageVisit:
    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)   # every URL asked for other than the page itself
    loaded: bool = False

    @property
    def problems(self) -> list[str]:
        return self.console_errors + [f"request: {u}" for u in self.requests]


class Browser:
    """Headless Chromium driven through a pipe: ``with Browser() as b: visit = b.open(path)``."""

    def __init__(self, executable: str | None = None, timeout: float = 60.0):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise FileNotFoundError("Chromium is not installed (apt-get install chromium)")
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="gruinspect-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        args = [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--mute-audio", "about:blank"]
        self._log_path = os.path.join(self._profile, "chromium.log")

        def pipes_at_3_and_4():  # in the child, before exec: Chromium looks for the pipe there
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child_r, from_child_w)]
            for fd, target in zip(high, (3, 4)):
                os.dup2(fd, target)
                os.close(fd)

        with open(self._log_path, "wb") as log:
            self._proc = subprocess.Popen(args, preexec_fn=pipes_at_3_and_4, close_fds=False,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._events: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ protocol plumbing
    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._replies[-1] = {"closed": True}
                    self._cond.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._replies[message["id"]] = message
                        self._cond.notify_all()
                else:
                    self._events.put(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its reply; raise on a protocol error."""
        self._next_id += 1
        mid = self._next_id
        message = {"id": mid, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_child, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(f"Chromium has exited ({self._proc.poll()}); its output ends:\n{self.log_tail()}") from None
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while mid not in self._replies:
                if -1 in self._replies:
                    raise RuntimeError(f"Chromium closed the pipe while waiting for {method}; its output ends:\n"
                                       f"{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no reply to {method} within {self.timeout} s")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def _event(self, deadline: float) -> dict | None:
        try:
            return self._events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    # ------------------------------------------------------------------------- pages
    def open(self, path: str, *, width: int = 1366, height: int = 900, screenshot: str | None = None,
             evaluate: str | None = None, pdf: str | None = None, max_height: int = 8000) -> tuple[PageVisit, object]:
        """Load ``path`` in a new tab; return what it did and the value of the ``evaluate`` expression.

        ``screenshot`` saves a PNG of the page (up to ``max_height`` px tall); ``pdf`` saves it printed.
        """
        url = "file://" + os.path.abspath(path)
        visit = PageVisit(url)
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                self.send(f"{domain}.enable", session=session)
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
            self.send("Page.navigate", {"url": url}, session)
            deadline = time.monotonic() + self.timeout
            while not visit.loaded:
                event = self._event(deadline)
                if event is None:
                    raise TimeoutError(f"{url} did not finish loading within {self.timeout} s")
                self._record(event, session, visit)
            # events of the load itself may trail the load event: drain briefly
            self.send("Runtime.evaluate", {"expression": "1"}, session)
            while (event := self._event(time.monotonic() + 0.2)) is not None:
                self._record(event, session, visit)
            value = None
            if evaluate:
                result = self.send("Runtime.evaluate", {"expression": evaluate, "returnByValue": True}, session)
                if "exceptionDetails" in result:
                    raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
                value = result["result"].get("value")
            if screenshot:
                metrics = self.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
                clip = {"x": 0, "y": 0, "width": width, "height": min(metrics["height"], max_height), "scale": 1}
                shot = self.send("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                            "captureBeyondViewport": True}, session)
                with open(screenshot, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
            if pdf:
                printed = self.send("Page.printToPDF", {"printBackground": True}, session)
                with open(pdf, "wb") as f:
                    f.write(base64.b64decode(printed["data"]))
            while (event := self._event(time.monotonic() + 0.05)) is not None:
                self._record(event, session, visit)
            return visit, value
        finally:
            self.send("Target.closeTarget", {"targetId": target})

    @staticmethod
    def _record(event: dict, session: str, visit: PageVisit) -> None:
        if event.get("sessionId") != session:
            return
        method, params = event["method"], event.get("params", {})
        if method == "Page.loadEventFired":
            visit.loaded = True
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            visit.console_errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                                for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            visit.console_errors.append("exception: " + str(details.get("exception", {}).get("description")
                                                            or details.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            visit.console_errors.append(f"log ({entry.get('source')}): {entry.get('text')}")
        elif method == "Network.requestWillBeSent":
            request_url = params.get("request", {}).get("url", "")
            if request_url != visit.url:
                visit.requests.append(request_url)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
