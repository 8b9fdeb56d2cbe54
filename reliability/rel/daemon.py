"""A real `steward up` on 127.0.0.1 with a temp config dir, and a small HTTP client.

Every process the campaigns start carries the marker variable (bench/lib/procs.MARKER,
set by reliability/run to STEWARD_RELIABILITY_RUN): steward itself `RUN/steward`, each
service `RUN/svc/ID` (in its `env`), so leftovers are found by marker whatever their
parent. Waits are bounded polls (procs.wait_until); nothing sleeps in place of an event.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time

from lib import procs  # bench/lib/procs.py


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yq(s):
    """A YAML scalar for any string (a JSON string is one)."""
    return json.dumps(s)


class Answer:
    """One HTTP answer: status (None when none came), parsed JSON body, seconds taken."""

    def __init__(self, status, body, seconds, error=None):
        self.status, self.body, self.seconds, self.error = status, body, seconds, error

    def __repr__(self):
        return f"Answer({self.status}, {str(self.body)[:200]}, {self.error})"


class Daemon:
    def __init__(self, ctx, name, settings_extra=(), token=None):
        self.ctx = ctx
        self.dir = ctx.workdir(name)
        self.config = os.path.join(self.dir, "config")
        os.makedirs(os.path.join(self.config, "services.d"), exist_ok=True)
        self.state_dir = os.path.join(self.dir, "state")
        self.port = free_port()
        self.token = token
        self.settings_extra = list(settings_extra)
        self.proc = None
        self.boots = 0
        self.extra_env = {}

    def marker(self, service):
        return f"{self.ctx.run_id}/svc/{service}"

    def write(self, services_yaml, extra_files=None):
        """services_yaml: the text under `services:` (already indented by 2), or ''."""
        lines = ["version: 1", "settings:", f"  listen: 127.0.0.1:{self.port}",
                 f"  state_dir: {yq(self.state_dir)}", "  shutdown_timeout: 60s"]
        if self.token:
            lines.append("  token_env: STEWARD_REL_TOKEN")
        lines += ["  " + s for s in self.settings_extra]
        lines.append("services:" if services_yaml.strip() else "services: {}")
        with open(os.path.join(self.config, "services.yml"), "w") as f:
            f.write("\n".join(lines) + "\n" + services_yaml)
        for name, text in (extra_files or {}).items():
            self.write_file(name, text)

    def write_file(self, name, text):
        path = os.path.join(self.config, "services.d", name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def start(self, timeout=60):
        env = dict(os.environ, STEWARD_LOG="info", NO_COLOR="1")
        # With RUST_BACKTRACE set, the first panic (the soak injects them) makes std load the
        # binary's debug info to print a backtrace: a one-time +200 MiB in a debug build that
        # is the runtime's, not steward's. The RSS figures are steward's own without it.
        for var in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE"):
            env.pop(var, None)
        env[procs.MARKER] = f"{self.ctx.run_id}/steward"
        if self.token:
            env["STEWARD_REL_TOKEN"] = self.token
        env.update(self.extra_env)
        self.boots += 1
        log = open(os.path.join(self.dir, f"steward-{self.boots}.log"), "w")
        self.proc = subprocess.Popen([self.ctx.steward_bin, "up", "--config", self.config],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        procs.wait_until(self.live, timeout, 0.05, "steward's /health/live")
        return self.proc.pid

    def live(self):
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, f"steward-{self.boots}.log"), errors="replace") as f:
                tail = " | ".join(f.read().strip().splitlines()[-4:])
            raise RuntimeError(f"steward exited with {self.proc.returncode}: {tail[-800:]}")
        a = self.call("GET", "/health/live", timeout=2)
        return a.status == 200

    def sigkill(self):
        procs.kill_quiet(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout=120):
        """SIGTERM, then waits for exit; returns the exit code (None: it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.sigkill()
            return None

    def rss_kib(self):
        return read_status_kib(self.proc.pid, "VmRSS")

    def hwm_kib(self):
        return read_status_kib(self.proc.pid, "VmHWM")

    def call(self, method, path, body=None, timeout=60, token=True, raw=None):
        headers = {}
        if self.token and token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text.decode(errors="replace")
            return Answer(r.status, parsed, time.monotonic() - t0)
        except (OSError, http.client.HTTPException) as e:
            return Answer(None, None, time.monotonic() - t0, f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def services(self):
        a = self.call("GET", "/api/v1/services", timeout=30)
        if a.status != 200:
            return None
        return {s["id"]: s for s in a.body["services"]}


def read_status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def marked_by_service(prefix):
    """{marker value: [pids]} of every live process whose marker starts with prefix."""
    out = {}
    needle = f"{procs.MARKER}={prefix}".encode()
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for e in env:
            if e.startswith(needle):
                st = procs.read_stat(int(name))
                if st and st[1] not in ("Z", "X"):
                    out.setdefault(e.split(b"=", 1)[1].decode(), []).append(int(name))
    return out


# Command probes run with their service's environment (marker included) in a process group
# of their own; the soak's probe commands carry this word so the duplicate check skips them.
PROBE_TAG = "steward-soak-probe"


def groups_by_marker(prefix):
    """{marker value: {process group ids}} of every live process whose marker starts with
    prefix. A service's processes share one group; two groups of one service mean two
    instances of it alive at once. (Not direct children of steward: steward is a child
    subreaper, so an orphaned grandchild becomes its child while still in the group.)"""
    out = {}
    for marker, pids in marked_by_service(prefix).items():
        for p in pids:
            if PROBE_TAG.encode() in (procs.read_cmdline(p) or b""):
                continue  # a command probe: it runs with the service's environment
            st = procs.read_stat(p)
            # A process read while it is torn down can show no group (a pgid of -1 was seen
            # in a full soak, beside the service's one real group): not a second instance.
            if st is not None and st[1] not in ("Z", "X") and st[3] > 0:
                out.setdefault(marker, set()).add(st[3])
    return out
