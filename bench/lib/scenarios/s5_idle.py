"""S5 idle cost: N = 100 `sleep 3600` services per tool, every tool at once (idle tools
do not disturb each other, and the window is long), plus steward a second time with a
1 s TCP liveness probe on each service (against a listener this suite runs on
127.0.0.1). Once every tool runs its services and is quiet, the CPU time of each tool's own
processes is read over consecutive windows of 30 s (schedstat nanoseconds; stat ticks as
a cross-check); the median window is reported.
"""

import socket
import threading
import time

from .. import procs
from ..tools import Service
from .common import median, wait_quiet, wait_services


class Listener:
    """Accepts and closes TCP connections on 127.0.0.1 until stopped (the probe target)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
                c.close()
                self.accepted += 1
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def run(ctx, tools, opts):
    n = opts.s5_n
    listener = Listener()
    started = {}
    try:
        plan = [(name, cls, None) for name, cls in tools.items()]
        if "steward" in tools:
            plan.append(("steward+probes", tools["steward"], listener.port))
        table = procs.ProcTable().refresh()
        for name, cls, port in plan:
            tool = cls(ctx, ctx.workdir(f"s5-{name}"))
            tool.setup([Service(f"i{i}", ["sleep", "3600"], probe_port=port) for i in range(n)])
            started[name] = tool
            tool.launch()
        for name, tool in started.items():
            wait_services(tool, table, procs.SLEEP_ARGV, n, ctx.timeout(120))
        for tool in started.values():
            wait_quiet(tool, table)
        ctx.log(f"S5 all tools up; {opts.s5_windows} window(s) of {opts.s5_window:.0f} s")
        pids = {name: tool.supervision_pids(table.refresh()) for name, tool in started.items()}
        windows = {name: [] for name in started}
        before = {name: procs.cpu_sample(p) for name, p in pids.items()}
        accepted0 = listener.accepted
        for w in range(opts.s5_windows):
            end = time.monotonic() + opts.s5_window
            while time.monotonic() < end:
                time.sleep(0.25)
            after = {name: procs.cpu_sample(p) for name, p in pids.items()}
            for name in started:
                ns_ms, tick_ms = procs.cpu_delta(before[name], after[name])
                windows[name].append({"cpu_ms": round(ns_ms, 2), "cpu_ms_ticks": tick_ms})
            before = after
        probes_per_s = (listener.accepted - accepted0) / (opts.s5_window * opts.s5_windows)
        out = {"n": n, "window_s": opts.s5_window, "probe_connections_per_s": round(probes_per_s, 1)}
        for name in started:
            ms = median([w["cpu_ms"] for w in windows[name]])
            out[name] = {"windows": windows[name], "cpu_ms_per_window": ms,
                         "cpu_ms_per_30s": round(ms * 30.0 / opts.s5_window, 2),
                         "core_percent": round(ms / (opts.s5_window * 1000) * 100, 3),
                         "processes": len(pids[name])}
        return out
    finally:
        for tool in started.values():
            tool.teardown()
        listener.close()
