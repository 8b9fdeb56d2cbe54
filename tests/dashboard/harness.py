"""Harness of the dashboard's browser tests: a real `steward up` on a free 127.0.0.1 port
with real services, and Debian's headless Chromium driven by selenium.

Nothing here sleeps in place of an event: `wait_for` polls a condition until it holds or
its deadline passes, and then fails naming what it waited for.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("STEWARD_BIN", os.path.join(ROOT, "target", "debug", "steward"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
DEADLINE = 20.0


def wait_for(what, check, deadline=DEADLINE):
    """Polls `check` until it returns something truthy (returned) or `deadline` seconds pass."""
    end = time.monotonic() + deadline
    last_error = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # a stale element or a refused connection: try again
            last_error = error
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`steward up` over a temporary config directory holding `services` (YAML text of the
    services map, indented by two spaces under `services:`)."""

    def __init__(self, services, token=None):
        self.dir = tempfile.mkdtemp(prefix="steward-dash-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        settings = f"  listen: 127.0.0.1:{self.port}\n  state_dir: .steward\n"
        if token:
            settings += "  token_env: DASH_TEST_TOKEN\n"
        self.write("services.yml", f"version: 1\nsettings:\n{settings}services:\n{services}")
        os.makedirs(os.path.join(self.dir, "services.d"), exist_ok=True)
        env = dict(os.environ)
        env.pop("STEWARD_TOKEN", None)
        if token:
            env["DASH_TEST_TOKEN"] = token
        self.log = open(os.path.join(self.dir, "steward.log"), "wb")
        self.proc = subprocess.Popen([BIN, "up", "--config", self.dir], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        wait_for("steward to answer /health/live", self._live)

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def _live(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"steward exited with {self.proc.returncode}: {self.log_text()}")
        try:
            with urllib.request.urlopen(self.url + "/health/live", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_text(self):
        with open(os.path.join(self.dir, "steward.log"), errors="replace") as f:
            return f.read()[-4000:]

    def request(self, method, path, body=None, headers=None):
        """(status, headers, bytes) of one request, with the token when there is one."""
        req = urllib.request.Request(self.url + path, method=method,
                                     data=body if body is None or isinstance(body, bytes) else json.dumps(body).encode())
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def api(self, method, path, body=None):
        status, _, data = self.request(method, path, body)
        return status, (json.loads(data) if data else None)

    def state(self, sid):
        status, body = self.api("GET", f"/api/v1/services/{sid}")
        assert status == 200, f"GET {sid}: {status} {body}"
        return body

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Browser:
    """Headless Chromium with a fresh profile; keeps the network log (performance log)."""

    def __init__(self, width=1280, height=900):
        self.profile = tempfile.mkdtemp(prefix="steward-dash-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ["--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-dev-shm-usage",
                    f"--user-data-dir={self.profile}", f"--window-size={width},{height}"]:
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.requested = []

    def open(self, url):
        self.driver.get(url + "/")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def one(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def card(self, sid):
        return self.one(f'.card[data-id="{sid}"]')

    def card_status(self, sid):
        """(data-status, status in words, tone class) of a card, or None when absent."""
        return self.js("""
            const c = document.querySelector(`.card[data-id="${arguments[0]}"]`);
            if (!c) return null;
            const tone = [...c.classList].find((k) => k.startsWith('tone-'));
            return [c.dataset.status, c.querySelector('.status').textContent, tone];""", sid)

    def click(self, css):
        self.one(css).click()

    def confirm(self):
        wait_for("the confirm dialog", lambda: self.js("return document.querySelector('#confirm-dialog').open"))
        text = self.one("#confirm-text").text
        self.click("#confirm-ok")
        return text

    def urls(self):
        """Every URL the page requested so far (from Chromium's network log)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
        return self.requested

    def screenshot(self, name):
        folder = os.environ.get("DASH_SCREENSHOTS")
        if folder:
            os.makedirs(folder, exist_ok=True)
            self.driver.save_screenshot(os.path.join(folder, name))

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
