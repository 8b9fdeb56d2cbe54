#!/usr/bin/env python3
"""What cgroup tracking costs an idle steward (issue 13, item 4): the same steward binary in
cgroup mode and with `STEWARD_CGROUPS=off` (process group + subreaper), measured one after
the other on 127.0.0.1:

* idle CPU: N services (`sleep 3600`, default 100, as S5), every one running, then steward's
  own CPU time (its threads' schedstat nanoseconds) over consecutive windows; the median
  window in ms per 30 s;
* list latency: M services (default 1000), then sequential `GET /api/v1/services`; p50/p99.

  python3 bench/cgroup_cost.py --bin target/release/steward [--idle 100] [--list 1000]
                               [--windows 3] [--window-s 30] [--requests 200]

Kills what it started (its own steward, by pid); prints one JSON object.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def thread_ns(pid):
    """{tid: nanoseconds on CPU} of every thread of pid (schedstat: ns, not 10 ms ticks)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except OSError:
            pass
    return out


def window_ns(before, after):
    """CPU used between two readings: threads seen at both ends count their difference, new
    threads all of theirs; a thread that ended meanwhile (tokio's idle blocking threads end
    after 10 s of nothing) is left out, so the figure is a lower bound by at most its work."""
    return sum(v - before.get(tid, 0) for tid, v in after.items())


def deadline_poll(what, seconds, check):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out after {seconds}s waiting for {what}")


class Steward:
    def __init__(self, binary, services, cgroups):
        self.dir = tempfile.mkdtemp(prefix="cgcost-")
        os.makedirs(os.path.join(self.dir, "config"))
        self.port = free_port()
        lines = ["version: 1", "settings:", f"  state_dir: {self.dir}/state", "services:"]
        for i in range(services):
            lines += [f"  s{i:05d}:", '    argv: [sleep, "3600"]']
        with open(os.path.join(self.dir, "config", "services.yml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        env = dict(os.environ)
        env.pop("RUST_BACKTRACE", None)
        if not cgroups:
            env["STEWARD_CGROUPS"] = "off"
        self.log = open(os.path.join(self.dir, "steward.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "up", "--config", os.path.join(self.dir, "config"),
             "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.services = services

    def all_running(self):
        try:
            status, body = get(self.port, "/api/v1/services")
        except OSError:
            return False
        if status != 200:
            return False
        rows = json.loads(body)
        rows = rows.get("services", rows) if isinstance(rows, dict) else rows
        return len(rows) == self.services and all(r.get("status") == "running" for r in rows)

    def mode(self):
        status, body = get(self.port, "/api/v1/status")
        return json.loads(body).get("tracking", {}).get("mode") if status == 200 else None

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def idle(args, cgroups):
    s = Steward(args.bin, args.idle, cgroups)
    try:
        deadline_poll("every service running", 300, s.all_running)
        mode = s.mode()
        time.sleep(5)  # let the boot's last work settle; the windows follow
        windows = []
        for _ in range(args.windows):
            a = thread_ns(s.proc.pid)
            time.sleep(args.window_s)
            windows.append(window_ns(a, thread_ns(s.proc.pid)) / 1e6 * 30 / args.window_s)
        return {"mode": mode, "services": args.idle,
                "cpu_ms_per_30s_windows": [round(w, 1) for w in windows],
                "cpu_ms_per_30s_median": round(statistics.median(windows), 1)}
    finally:
        s.close()


def listing(args, cgroups):
    s = Steward(args.bin, args.list, cgroups)
    try:
        deadline_poll("every service running", 600, s.all_running)
        mode = s.mode()
        times = []
        for _ in range(args.requests):
            t = time.perf_counter()
            status, _ = get(s.port, "/api/v1/services")
            times.append((time.perf_counter() - t) * 1000)
            if status != 200:
                raise SystemExit(f"list answered {status}")
        times.sort()
        return {"mode": mode, "services": args.list, "requests": args.requests,
                "p50_ms": round(times[len(times) // 2], 2),
                "p99_ms": round(times[int(len(times) * 0.99) - 1], 2)}
    finally:
        s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--idle", type=int, default=100)
    p.add_argument("--list", type=int, default=1000)
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--window-s", type=float, default=30)
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args()
    out = {"binary": args.bin, "load_before": os.getloadavg()}
    for cgroups in (True, False):
        key = "cgroup" if cgroups else "group"
        out[key] = {"idle": idle(args, cgroups), "list": listing(args, cgroups)}
    out["load_after"] = os.getloadavg()
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
