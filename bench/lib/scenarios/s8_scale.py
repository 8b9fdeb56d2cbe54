"""S8 scale: 10,000 services `sleep 3600` on one machine (issue 16).

steward, in phases, each timed, with steward's RSS and PSS after each:
  empty     the runtime with no service (the reference for "memory comes back");
  boot      10,000 services from 5 files of services.d (2,000 each): wall time from launch
            until all 10,000 processes exist (S1's method, /proc polled), while a client asks
            GET /health/live every 50 ms (latency p50/p99/max: the API must not freeze);
            the shell floor spawns the same 10,000 the same way for the ratio;
  idle      CPU of steward over 30 s once quiet, at 10,000;
  define    1,000 more over POST /api/v1/services, one after the other (each starts its
            process): per-request p50/p99 and total;
  list      GET /api/v1/services at 11,000: 20 requests one by one (p50/p99, size), then
            wrk with 50 connections for 10 s (p50/p99, requests/s); the same again with
            `Accept-Encoding: gzip` (the compressed size and a second wrk run);
  metrics   GET /metrics at 11,000: 20 scrapes (p50/p99, size);
  stop      POST /api/v1/lifecycle/stop: until it answers and until no service process is
            left;
  remove    DELETE /api/v1/services/{id} for all 11,000: p50/p99 and total.
Per-service memory is the slope between `empty` and `idle` (KiB per service).

s6 and supervisord: boot (same method), memory of their own processes, idle CPU over 30 s,
stop all; supervisord's list is XML-RPC getAllProcessInfo (20 calls). Where a tool cannot
hold 10,000 (a limit, an error, or not all running within the time allowed) the result
says so with what it reached. Every tool gets RLIMIT_NOFILE 65536 (steward and supervisord
hold two pipes per service), as an operator would set with `LimitNOFILE=`.
"""

import http.client
import json
import os
import resource
import shutil
import threading
import time
import urllib.parse
import urllib.request
import xmlrpc.client

from .. import procs
from ..tools import Service, ShellFloor
from .common import percentile, running, wait_quiet, wait_services
from .s7_control import wrk

# STEWARD_BENCH_S8_N / _MORE / _IDLE shrink the scenario for a smoke test of this file.
N = int(os.environ.get("STEWARD_BENCH_S8_N", 10_000))
MORE = int(os.environ.get("STEWARD_BENCH_S8_MORE", 1_000))
FILES = 5
NOFILE = 65_536
IDLE_S = float(os.environ.get("STEWARD_BENCH_S8_IDLE", 30.0))
# The whole of supervisord's list phase (5 calls); past it the phase says how many answered.
LIST_BUDGET_S = 60


# steward holds 4 descriptors per running service (stdin, stdout and stderr pipes and a
# pidfd), supervisord 3 (its pipes); plus a margin for listeners, files and epoll.
FDS_PER_SERVICE = 4
FD_MARGIN = 64


def nofile_limit():
    """The RLIMIT_NOFILE every tool gets: NOFILE when this process may raise its hard limit
    to it (root with CAP_SYS_RESOURCE), else the hard limit it has."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= NOFILE:
        return NOFILE
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, NOFILE))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # only a probe
        return NOFILE
    except (ValueError, OSError):
        return hard


def _raise_nofile():
    limit = nofile_limit()
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _with_nofile(tool):
    """Makes the adapter start its processes with RLIMIT_NOFILE = NOFILE."""
    spawn = tool.spawn

    def spawn_raised(argv, log_name, extra_env=None, cwd=None):
        import subprocess
        out = open(os.path.join(tool.dir, log_name), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=tool.env(extra_env), cwd=cwd or tool.dir,
                             start_new_session=True, preexec_fn=_raise_nofile)
        out.close()
        tool.popens.append(p)
        return p
    tool.spawn = spawn_raised
    return tool


def stats_ms(xs):
    return {"n": len(xs), "p50_ms": _r(percentile(xs, 50)), "p99_ms": _r(percentile(xs, 99)),
            "max_ms": _r(max(xs) if xs else None)}


def _r(v, digits=2):
    return None if v is None else round(v, digits)


def mem_of(tool, table):
    m = procs.memory(tool.supervision_pids(table.refresh()))
    return {"rss_kib": m["rss_kib"], "pss_kib": m["pss_kib"], "processes": m["processes"]}


def idle_cpu(tool, table, seconds):
    pids = tool.supervision_pids(table.refresh())
    before = procs.cpu_sample(pids)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.25)
    ns_ms, tick_ms = procs.cpu_delta(before, procs.cpu_sample(pids))
    return {"window_s": seconds, "cpu_ms": round(ns_ms, 1), "cpu_ms_ticks": tick_ms,
            "core_percent": round(ns_ms / (seconds * 1000) * 100, 3)}


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, timing each request."""

    def __init__(self, port, timeout=120):
        self.port, self.timeout = port, timeout
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            t0 = time.monotonic()
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data, (time.monotonic() - t0) * 1000
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()


class HealthWatch:
    """Asks GET /health/live every 50 ms from another thread, noting each latency (a
    refused connection before the API listens is counted apart)."""

    def __init__(self, port):
        self.port = port
        self.latencies, self.refused, self.first_answer = [], 0, None
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/live",
                                            timeout=10) as r:
                    r.read()
                self.latencies.append((time.monotonic() - t) * 1000)
                if self.first_answer is None:
                    self.first_answer = time.monotonic() - self.t0
            except OSError:
                self.refused += 1
            self.stop.wait(0.05)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=15)
        return dict(stats_ms(self.latencies), refused_before_listening=self.refused,
                    api_first_answer_s=_r(self.first_answer))


def write_split_config(tool, services):
    """steward: services.yml holds the settings only; the services go to services.d in
    FILES files."""
    tool.setup([])
    d = os.path.join(tool.config_dir, "services.d")
    os.makedirs(d, exist_ok=True)
    per = (len(services) + FILES - 1) // FILES
    for k in range(FILES):
        chunk = services[k * per:(k + 1) * per]
        lines = ["version: 1", "services:"]
        for s in chunk:
            lines += [f"  {s.name}:", "    argv: [" + ", ".join(json.dumps(a) for a in s.argv) + "]"]
        with open(os.path.join(d, f"part-{k:02d}.yml"), "w") as f:
            f.write("\n".join(lines) + "\n")


def steward_phases(ctx, cls, name, floor_ms):
    out = {}
    # The empty runtime.
    with running(cls, ctx, f"s8-{name}-empty", []) as tool:
        _with_nofile(tool)
        table = procs.ProcTable().refresh()
        tool.launch()
        procs.wait_until(tool.api_up, ctx.timeout(30), 0.05, f"{name}'s HTTP API")
        wait_quiet(tool, table)
        out["empty"] = mem_of(tool, table)
    services = [Service(f"s{i}", ["sleep", "3600"]) for i in range(N)]
    tool = _with_nofile(cls(ctx, ctx.workdir(f"s8-{name}")))
    try:
        write_split_config(tool, services)
        table = procs.ProcTable().refresh()
        watch = HealthWatch(tool.port)
        t0 = time.monotonic()
        tool.launch()
        try:
            wait_services(tool, table, procs.SLEEP_ARGV, N, ctx.timeout(300))
            boot_ms = (time.monotonic() - t0) * 1000
        except procs.Deadline as e:
            out["boot"] = {"error": str(e), "health": watch.finish(),
                           "services_running": len(tool.service_pids(table.refresh(),
                                                                     procs.SLEEP_ARGV))}
            return out
        health = watch.finish()
        out["boot"] = {"ms": round(boot_ms), "floor_ms": floor_ms,
                       "vs_floor": _r(boot_ms / floor_ms) if floor_ms else None,
                       "health_during_boot": health}
        procs.wait_until(tool.api_up, ctx.timeout(60), 0.05, f"{name}'s HTTP API")
        out["boot"]["settle_s"] = round(wait_quiet(tool, table, timeout=60), 1)
        out["boot"]["memory"] = mem_of(tool, table)
        ctx.log(f"S8 {name}: {N} running in {boot_ms / 1000:.1f} s; idle window {IDLE_S:.0f} s")
        out["idle"] = idle_cpu(tool, table, IDLE_S)
        out["idle"]["memory"] = mem_of(tool, table)
        empty = out["empty"]
        at_n = out["idle"]["memory"]
        out["per_service_kib"] = {
            "rss": _r((at_n["rss_kib"] - empty["rss_kib"]) / N, 1),
            "pss": _r((at_n["pss_kib"] - empty["pss_kib"]) / N, 1)}

        client = Client(tool.port)
        ctx.log(f"S8 {name}: define {MORE} over POST /api/v1/services")
        lat, errors, t0 = [], [], time.monotonic()
        budget_end = t0 + ctx.timeout(150)
        for i in range(MORE):
            body = json.dumps({"id": f"x{i}", "argv": ["sleep", "3600"]})
            status, data, ms = client.request("POST", "/api/v1/services", body)
            lat.append(ms)
            if status != 201 and len(errors) < 3:
                errors.append(f"{status}: {data[:200].decode(errors='replace')}")
            if time.monotonic() > budget_end:
                errors.append(f"stopped after {i + 1} definitions: over the phase's time budget")
                break
        defined = len(lat)
        out["define"] = dict(stats_ms(lat), total_ms=round((time.monotonic() - t0) * 1000),
                             defined=defined, errors=errors)
        total = N + defined
        try:
            wait_services(tool, table, procs.SLEEP_ARGV, total, ctx.timeout(60))
        except procs.Deadline as e:
            out["define"]["wait_error"] = str(e)
        wait_quiet(tool, table, timeout=30)
        out["define"]["memory"] = mem_of(tool, table)

        ctx.log(f"S8 {name}: list and metrics at {total}")
        lat, size = [], None
        for _ in range(20):
            status, data, ms = client.request("GET", "/api/v1/services")
            lat.append(ms)
            size = len(data)
        out["list"] = dict(stats_ms(lat), response_bytes=size)
        if shutil.which("wrk"):
            w = wrk(ctx, tool.api_url("/api/v1/services"), 10)
            w.pop("raw", None)
            out["list"]["wrk_50_connections"] = w
        out["list"]["gzip"] = _list_gzip(ctx, tool)
        lat = []
        for _ in range(20):
            status, data, ms = client.request("GET", "/metrics")
            lat.append(ms)
            size = len(data)
        out["metrics"] = dict(stats_ms(lat), response_bytes=size, status=status)
        out["metrics"]["memory"] = mem_of(tool, table)

        ctx.log(f"S8 {name}: stop all")
        t0 = time.monotonic()
        status, data, ms = client.request("POST", "/api/v1/lifecycle/stop", b"")
        answered = time.monotonic() - t0
        try:
            procs.wait_until(lambda: not tool.service_pids(table.refresh(), procs.SLEEP_ARGV),
                             ctx.timeout(120), 0.05, "every service process to end")
            gone_ms = round((time.monotonic() - t0) * 1000)
        except procs.Deadline as e:
            gone_ms = str(e)
        out["stop"] = {"answered_ms": round(answered * 1000), "status": status,
                       "all_gone_ms": gone_ms}
        wait_quiet(tool, table, timeout=30)
        out["stop"]["memory"] = mem_of(tool, table)

        ctx.log(f"S8 {name}: remove all {total}")
        ids = [s.name for s in services] + [f"x{i}" for i in range(defined)]
        lat, errors, t0 = [], [], time.monotonic()
        budget_end = t0 + ctx.timeout(150)
        for i, sid in enumerate(ids):
            status, data, ms = client.request("DELETE", f"/api/v1/services/{sid}")
            lat.append(ms)
            if status != 200 and len(errors) < 3:
                errors.append(f"{sid} {status}: {data[:200].decode(errors='replace')}")
            if time.monotonic() > budget_end:
                errors.append(f"stopped after {i + 1} removals: over the phase's time budget")
                break
        out["remove"] = dict(stats_ms(lat), total_ms=round((time.monotonic() - t0) * 1000),
                             removed=len(lat), errors=errors)
        client.close()
        wait_quiet(tool, table, timeout=30)
        out["remove"]["memory"] = mem_of(tool, table)
        out["remove"]["rss_vs_empty"] = _r(out["remove"]["memory"]["rss_kib"] / empty["rss_kib"])
    finally:
        tool.teardown()
    return out


def floor(ctx):
    services = [Service(f"s{i}", ["sleep", "3600"]) for i in range(N)]
    with running(ShellFloor, ctx, "s8-shell", services) as tool:
        _with_nofile(tool)
        table = procs.ProcTable().refresh()
        t0 = time.monotonic()
        tool.launch()
        wait_services(tool, table, procs.SLEEP_ARGV, N, ctx.timeout(300))
        return round((time.monotonic() - t0) * 1000)


def peer_phases(ctx, cls, name):
    out = {}
    services = [Service(f"s{i}", ["sleep", "3600"]) for i in range(N)]
    with running(cls, ctx, f"s8-{name}", services) as tool:
        _with_nofile(tool)
        if name == "supervisord":
            # supervisord refuses to start when its fd limit is below minfds.
            with open(tool.conf) as f:
                text = f.read()
            with open(tool.conf, "w") as f:
                f.write(text.replace("minfds=16384", f"minfds={min(nofile_limit(), 3 * N + 256)}")
                        .replace("minprocs=8192", "minprocs=32768"))
        table = procs.ProcTable().refresh()
        t0 = time.monotonic()
        tool.launch()
        limit = ctx.timeout(150)
        try:
            # Ends early when the tool exits (it refused the config or a limit).
            procs.wait_until(
                lambda: (len(tool.service_pids(table.refresh(), procs.SLEEP_ARGV)) >= N
                         or all(p.poll() is not None for p in tool.popens)),
                limit, 0.002, f"{N} services of {name}")
            if all(p.poll() is not None for p in tool.popens):
                raise procs.Deadline("the tool exited")
            out["boot"] = {"ms": round((time.monotonic() - t0) * 1000)}
        except procs.Deadline:
            running_n = len(tool.service_pids(table.refresh(), procs.SLEEP_ARGV))
            alive = any(p.poll() is None for p in tool.popens)
            out["boot"] = {"error": f"{running_n} of {N} running after {limit:.0f} s"
                                    + ("" if alive else " (the tool exited)"),
                           "services_running": running_n}
            out["log_tail"] = _log_tail(tool)
            if not alive or running_n == 0:
                return out
        out["boot"]["settle_s"] = round(wait_quiet(tool, table, timeout=60), 1)
        out["boot"]["memory"] = mem_of(tool, table)
        ctx.log(f"S8 {name}: idle window {IDLE_S:.0f} s")
        out["idle"] = idle_cpu(tool, table, IDLE_S)
        out["idle"]["memory"] = mem_of(tool, table)
        if name == "supervisord":
            out["list"] = _supervisord_list(tool, ctx.timeout(LIST_BUDGET_S))
        ctx.log(f"S8 {name}: stop all")
        t0 = time.monotonic()
        try:
            how = tool.stop_all()
            answered = round((time.monotonic() - t0) * 1000)
            procs.wait_until(lambda: not tool.service_pids(table.refresh(), procs.SLEEP_ARGV),
                             ctx.timeout(120), 0.05, "every service process to end")
            out["stop"] = {"how": how, "answered_ms": answered,
                           "all_gone_ms": round((time.monotonic() - t0) * 1000)}
        except Exception as e:  # a peer that cannot stop 10,000 in time: say so
            out["stop"] = {"error": f"{type(e).__name__}: {e}"}
    return out


def _list_gzip(ctx, tool):
    """The list asked for with `Accept-Encoding: gzip`: 20 requests one by one (p50/p99 and
    the size sent), then wrk with 50 connections (a one-line script sets the header). A
    build that does not compress answers plain: then `content_encoding` is None."""
    url = tool.api_url("/api/v1/services")
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    lat, size, encoding = [], None, None
    try:
        for _ in range(20):
            t0 = time.monotonic()
            conn.request("GET", parts.path, headers={"Accept-Encoding": "gzip"})
            r = conn.getresponse()
            data = r.read()
            encoding = r.getheader("Content-Encoding")
            lat.append((time.monotonic() - t0) * 1000)
            size = len(data)
    finally:
        conn.close()
    out = dict(stats_ms(lat), response_bytes=size, content_encoding=encoding)
    if shutil.which("wrk"):
        script = os.path.join(ctx.workdir("s8-wrk-gzip"), "accept-gzip.lua")
        with open(script, "w") as f:
            f.write('wrk.headers["Accept-Encoding"] = "gzip"\n')
        w = wrk(ctx, url, 10, script)
        w.pop("raw", None)
        out["wrk_50_connections"] = w
    return out


def _supervisord_list(tool, budget_s):
    """Up to 5 XML-RPC getAllProcessInfo calls, within `budget_s` in all. At 4,500 programs
    one call did not answer in 6 minutes (a socket timeout bounds each read, not the call,
    and supervisord trickled its answer): the calls run in a thread that is given up on at
    the budget (its socket closes when supervisord is torn down)."""
    lat, failure = [], []

    def calls():
        try:
            proxy = xmlrpc.client.ServerProxy(tool.xmlrpc_url())
            for _ in range(5):
                t = time.monotonic()
                proxy.supervisor.getAllProcessInfo()
                lat.append((time.monotonic() - t) * 1000)
        except (OSError, xmlrpc.client.Error) as e:
            failure.append(f"{type(e).__name__}: {e}")

    worker = threading.Thread(target=calls, daemon=True)
    worker.start()
    worker.join(budget_s)
    result = dict(stats_ms(list(lat)), request="XML-RPC getAllProcessInfo")
    if worker.is_alive():
        result["error"] = f"{len(lat)} of 5 calls answered within {budget_s:.0f} s"
    elif failure:
        result["error"] = failure[0]
    return result


def _log_tail(tool):
    for name in ("supervisord.log", "supervisord.out", "s6-svscan.log"):
        try:
            with open(os.path.join(tool.dir, name), errors="replace") as f:
                return f.read()[-600:]
        except OSError:
            continue
    return None


def run(ctx, tools, opts):
    global N, MORE
    limit = nofile_limit()
    out = {"n_asked": N, "nofile": limit, "idle_window_s": IDLE_S, "files": FILES,
           "pid_max": int(open("/proc/sys/kernel/pid_max").read())}
    fits = (limit - FD_MARGIN) // FDS_PER_SERVICE
    if fits < N + MORE:
        # The machine cannot give steward the descriptors for N + MORE running services:
        # measure at the largest round N that fits (MORE a tenth of it), and say so.
        n = int(fits / 1.1) // 100 * 100
        out["limited_by"] = (
            f"RLIMIT_NOFILE hard limit {limit} (not raisable here: no CAP_SYS_RESOURCE) < "
            f"{FDS_PER_SERVICE} descriptors × {N + MORE:,} services; measured at N = {n:,}")
        ctx.log("S8: " + out["limited_by"])
        N, MORE = n, n // 10
    out["n"], out["more"] = N, MORE
    ctx.log(f"S8 shell floor: {N} × sleep")
    try:
        out["shell_floor_ms"] = floor(ctx)
    except procs.Deadline as e:
        out["shell_floor_ms"] = None
        out["shell_floor_error"] = str(e)
    for name in ("steward", "steward-base"):
        if name in tools:
            ctx.log(f"S8 {name}")
            try:
                out[name] = steward_phases(ctx, tools[name], name, out["shell_floor_ms"])
            except Exception as e:  # one tool's failure must not lose the others' figures
                out[name] = {"error": f"{type(e).__name__}: {e}"}
    for name in ("s6", "supervisord"):
        if name in tools:
            ctx.log(f"S8 {name}")
            try:
                out[name] = peer_phases(ctx, tools[name], name)
            except Exception as e:  # one tool's failure must not lose the others' figures
                out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out
