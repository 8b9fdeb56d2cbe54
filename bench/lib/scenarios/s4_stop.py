"""S4 stop-all with grandchildren: N = 100 services `sh -c 'sleep 3600 & sleep 3600'`
(each a shell with two `sleep` children, 200 sleeps in all); the tool's normal
stop-everything command; the time until that command has returned and every service's
shell is gone, and the processes of the services still alive 2 s later (orphans).

steward is measured twice when its HTTP API answers: SIGTERM to `steward up`, and
`POST /api/v1/lifecycle/stop` (the daemon stays up).
"""

import time

from .. import procs
from ..tools import Service
from .common import median, running, wait_quiet, wait_services

ARGV = ["sh", "-c", "sleep 3600 & sleep 3600"]
# PM2's `stop all` takes minutes for 100 apps here (it stops them one after the other):
# it is measured once, so the suite stays inside its 20-minute budget.
MAX_REPS = {"pm2": 1}
SH_ARGV = procs.argv_bytes(ARGV)


def one(ctx, tool_cls, n, via=None):
    services = [Service(f"g{i}", ARGV) for i in range(n)]
    label = tool_cls.NAME + (f"-{via}" if via else "")
    with running(tool_cls, ctx, f"s4-{label}", services) as tool:
        if via == "api" and ctx.steward_api_bin:
            tool.use_api_program = True
        table = procs.ProcTable().refresh()
        tool.launch()
        wait_services(tool, table, procs.SLEEP_ARGV, 2 * n, ctx.timeout(120))
        if via == "api":
            procs.wait_until(tool.api_up, ctx.timeout(30), 0.05, "steward's HTTP API")
        wait_quiet(tool, table)
        tree = tool.tree(table.refresh())
        shells = table.matching(tree, SH_ARGV)
        sleeps = table.matching(tree, procs.SLEEP_ARGV)
        victims = shells | sleeps
        t0 = time.monotonic()
        how = tool.stop_all(via) if via else tool.stop_all()
        t_cmd = time.monotonic() - t0
        procs.wait_until(lambda: not any(procs.pid_alive(p) for p in shells),
                         ctx.timeout(120), 0.002, "the services' shells to exit")
        t_all = time.monotonic() - t0
        # The measure: what is left 2 s after the stop.
        time.sleep(2.0)
        alive = [p for p in victims if procs.pid_alive(p)]
        return {"how": how, "command_s": round(t_cmd, 3), "stop_s": round(max(t_cmd, t_all), 3),
                "services": len(shells), "sleeps": len(sleeps),
                "orphans": sum(1 for p in alive if p in sleeps),
                "survivors": len(alive)}


def run(ctx, tools, opts):
    out = {}
    for rep in range(opts.reps):
        for name, cls in tools.items():
            if rep >= MAX_REPS.get(name, opts.reps):
                continue
            vias = [None]
            if name == "steward":
                vias = ["sigterm"] + (["api"] if ctx.steward_has_api else [])
            for via in vias:
                key = name + ("" if via in (None, "sigterm") else "-api")
                ctx.log(f"S4 rep {rep + 1}/{opts.reps} {key}")
                try:
                    r = one(ctx, cls, opts.s4_n, via)
                except procs.Deadline as e:
                    r = {"error": str(e)}
                out.setdefault(key, {}).setdefault("runs", []).append(r)
    for key, r in out.items():
        runs = r["runs"]
        r.update(stop_s=median([x.get("stop_s") for x in runs]),
                 command_s=median([x.get("command_s") for x in runs]),
                 orphans=median([x.get("orphans") for x in runs]),
                 survivors=median([x.get("survivors") for x in runs]))
    return out
