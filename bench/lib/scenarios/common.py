"""Helpers the scenarios share: statistics, settling, and running one tool safely."""

import contextlib
import statistics
import time

from .. import procs


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def percentile(xs, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(q / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def wait_quiet(tool, table, window=0.3, max_ms=3.0, timeout=15.0):
    """Waits (bounded) until the tool's own processes use less than `max_ms` of CPU over
    `window` seconds: startup work is done. Returns the seconds it took."""
    start = time.monotonic()
    end = start + timeout
    while time.monotonic() < end:
        pids = tool.supervision_pids(table.refresh())
        a = procs.cpu_sample(pids)
        t0 = time.monotonic()
        while time.monotonic() - t0 < window:
            time.sleep(0.05)
        ms, _ = procs.cpu_delta(a, procs.cpu_sample(pids))
        if ms < max_ms:
            break
    return time.monotonic() - start


@contextlib.contextmanager
def running(tool_cls, ctx, name, services, profile=None, log=None):
    """Creates the adapter in its own work dir, writes its config, yields it (not yet
    launched), and always tears it down."""
    tool = tool_cls(ctx, ctx.workdir(name))
    try:
        tool.setup(services, profile)
        yield tool
    finally:
        tool.teardown()


def wait_services(tool, table, argv, n, timeout):
    """Waits until n service processes with this argv exist below the tool; returns the
    seconds waited."""
    _, waited = procs.wait_until(
        lambda: len(tool.service_pids(table.refresh(), argv)) >= n,
        timeout, 0.002, f"{n} services of {tool.NAME}")
    return waited


def bench_program(ctx, name, args=(), timeout=900):
    """Runs one of steward's measuring programs (`cargo bench --bench NAME -- --json ARGS`)
    and returns the JSON line it prints, or {"error": ...}."""
    import json
    import os
    import subprocess
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = dict(os.environ, CARGO_TARGET_DIR=ctx.target_dir)
    env[procs.MARKER] = f"{ctx.run_id}/bench-{name}/0"
    r = subprocess.run(["cargo", "bench", "--bench", name, "--", "--json", *args], cwd=repo,
                       env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (r.stderr or r.stdout)[-500:]}
