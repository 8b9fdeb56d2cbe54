"""S1 spawn: N services `sleep 3600`; wall time from launching the supervisor until all N
service processes exist (polling /proc), then the RSS and PSS of every process of the tool
that is not a service, once it is quiet. The floor is a plain shell loop spawning the same
N. steward is also measured at N = 0 (its fixed cost), for the per-service breakdown.

Budget: at the largest N, peers other than s6 (the one the target names) are measured in
the first run only; steward, s6 and the shell floor in every run.
"""

import time

from .. import procs
from ..tools import Service, ShellFloor
from .common import bench_program, running, wait_quiet, wait_services


def one(ctx, tool_cls, n):
    services = [Service(f"s{i}", ["sleep", "3600"]) for i in range(n)]
    with running(tool_cls, ctx, f"s1-{tool_cls.NAME}-{n}", services) as tool:
        table = procs.ProcTable().refresh()
        t0 = time.monotonic()
        tool.launch()
        if n:
            wait_services(tool, table, procs.SLEEP_ARGV, n, ctx.timeout(60 + n * 0.1))
            spawn_ms = (time.monotonic() - t0) * 1000
        else:
            procs.wait_until(lambda: tool.supervision_pids(table.refresh()), 30, 0.01,
                             "the tool to start")
            spawn_ms = None
        quiet_s = wait_quiet(tool, table)
        mem = procs.memory(tool.supervision_pids(table.refresh()))
        still = len(tool.service_pids(table, procs.SLEEP_ARGV))
        return {"n": n, "spawn_ms": spawn_ms, "rss_kib": mem["rss_kib"], "pss_kib": mem["pss_kib"],
                "processes": mem["processes"], "services_running": still,
                "settle_s": round(quiet_s, 2),
                "by_program": _by_comm(mem["detail"])}


def _by_comm(detail):
    out = {}
    for d in detail.values():
        e = out.setdefault(d["comm"], {"count": 0, "pss_kib": 0, "rss_kib": 0})
        e["count"] += 1
        e["pss_kib"] += d["pss_kib"]
        e["rss_kib"] += d["rss_kib"]
    return out


def run(ctx, tools, opts):
    sizes = opts.s1_sizes
    results = {}
    for rep in range(opts.reps):
        for n in sizes:
            names = list(tools) + ["shell"] if n else (["steward"] if "steward" in tools else [])
            if rep > 0 and n == max(sizes) and n > 200:
                names = [x for x in names if x in ("steward", "steward-base", "s6", "shell")]
            for name in names:
                cls = ShellFloor if name == "shell" else tools[name]
                ctx.log(f"S1 rep {rep + 1}/{opts.reps} N={n} {name}")
                try:
                    r = one(ctx, cls, n)
                except procs.Deadline as e:
                    r = {"n": n, "error": str(e)}
                results.setdefault(name, {}).setdefault(str(n), []).append(r)
    if "steward" in tools:
        n = max(sizes)
        ctx.log(f"S1 steward memory breakdown: cargo bench --bench memory_breakdown (N={n})")
        results["steward_memory_breakdown"] = bench_program(ctx, "memory_breakdown", ["--n", str(n)])
    return results
