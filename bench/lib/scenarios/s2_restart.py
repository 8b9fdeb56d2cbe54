"""S2 restart latency: one `sleep 3600` with restart always and the smallest backoff the
tool allows; SIGKILL it and time until its replacement exists (a new child of the same
parent whose command line is `sleep 3600`, i.e. exec done). --reps runs of 10 kills each
(30 in all by default); p50, p90 and max over all kills, and the median of the runs' p50.
Each victim has run for STABLE_S before it is killed: a service that crashes after running
stably (s6-supervise and runsv hold back a restart for 1 s when the previous run lasted
less than 1 s, which would measure that rule instead of the restart path).

The new pid is found without scanning /proc: /proc/loadavg names the last pid the kernel
handed out, so the poll reads one small file and only the few new pids.
"""

import os
import signal
import time

from .. import procs
from ..tools import Service
from .common import median, percentile, running, wait_quiet, wait_services

STABLE_S = 1.05


def last_pid():
    with open("/proc/loadavg") as f:
        return int(f.read().split()[-1])


def wait_replacement(parent, old_pid, since_pid, timeout):
    """Polls for a new child of `parent` running `sleep 3600`; returns its pid."""
    end = time.monotonic() + timeout
    candidates = {}
    cursor = since_pid
    while time.monotonic() < end:
        top = last_pid()
        if top != cursor:
            # pids are handed out in increasing order (a wrap is handled by the modulo walk).
            pid = cursor
            for _ in range(4096):
                if pid == top:
                    break
                pid = pid + 1 if pid < 4194304 else 300
                candidates[pid] = True
            cursor = top
        for pid in list(candidates):
            st = procs.read_stat(pid)
            if st is None or st[1] in ("Z", "X"):
                # not yet visible, or already gone; give a missing pid a few more looks
                continue
            if st[2] != parent:
                del candidates[pid]
                continue
            if procs.normalize(procs.read_cmdline(pid)) == procs.SLEEP_ARGV and pid != old_pid:
                return pid
        time.sleep(0.0001)
    raise procs.Deadline(f"no replacement within {timeout}s")


def one(ctx, tool_cls, kills):
    svc = [Service("victim", ["sleep", "3600"])]
    with running(tool_cls, ctx, f"s2-{tool_cls.NAME}", svc) as tool:
        table = procs.ProcTable().refresh()
        tool.launch()
        wait_services(tool, table, procs.SLEEP_ARGV, 1, ctx.timeout(60))
        wait_quiet(tool, table)
        pid = next(iter(tool.service_pids(table.refresh(), procs.SLEEP_ARGV)))
        samples = []
        born = time.monotonic()
        for _ in range(kills):
            # Spacing, not an event: the victim must have run stably for STABLE_S.
            time.sleep(max(0.0, born + STABLE_S - time.monotonic()))
            parent = procs.read_stat(pid)[2]
            since = last_pid()
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            new = wait_replacement(parent, pid, since, ctx.timeout(15))
            samples.append((time.perf_counter() - t0) * 1000)
            born = time.monotonic()
            pid = new
        return samples


# A tool whose restarts take longer than this (a fixed timer: s6, runit, supervisord,
# Horust wait about a second) is measured in the first run only: ten more kills would
# only measure the same timer, at two seconds a kill.
SLOW_MS = 500


def run(ctx, tools, opts):
    out = {}
    for rep in range(opts.reps):
        for name, cls in tools.items():
            first = out.get(name, {}).get("runs")
            if rep > 0 and first and percentile(first[0], 50) > SLOW_MS:
                continue
            ctx.log(f"S2 rep {rep + 1}/{opts.reps} {name}")
            try:
                samples = one(ctx, cls, opts.s2_kills)
            except procs.Deadline as e:
                out.setdefault(name, {}).setdefault("errors", []).append(str(e))
                continue
            out.setdefault(name, {}).setdefault("runs", []).append(samples)
    for name, r in out.items():
        runs = r.get("runs", [])
        every = [x for run in runs for x in run]
        if every:
            r.update(p50_ms=percentile(every, 50), p90_ms=percentile(every, 90),
                     max_ms=max(every), kills=len(every),
                     median_of_run_p50_ms=median([percentile(x, 50) for x in runs]))
    return out
