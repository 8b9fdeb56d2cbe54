"""S4E, S4 with escaping grandchildren (issue 13 "Done when"): N = 20 services, each a
shell that starts one `sleep 3601` in a new session (`setsid sleep`, its parent stays),
one `sleep 3602` through a double fork into a new session (`setsid sh -c 'sleep 3602 &'`:
its parent exits at once, so it is reparented), and waits on a plain `sleep 3600`. The
tool's normal stop-everything command, then the processes of the services still alive 2 s
after the shells are gone, counted per kind: `group` (the plain sleep, in the service's
process group), `setsid` and `double_fork` (both left the group and the session).

Escaped processes are not below the tool once reparented (unless it is a subreaper), so
they are found by the suite's marker in their environment, which every process the tool
starts inherits.

steward runs twice: in cgroup mode (a cgroup per service, `cgroup.kill`) and with
`STEWARD_CGROUPS=off` (process group + subreaper). Only run when named:
`bench/run --only S4E` (it is not part of the default run).
"""

import time

from .. import procs
from ..tools import Service
from ..tools.steward import Steward
from .common import running, wait_quiet

N = 20
LINE = "setsid sleep 3601 & setsid sh -c 'sleep 3602 &'; sleep 3600"
ARGV = ["sh", "-c", LINE]
SH_ARGV = procs.argv_bytes(ARGV)
KINDS = {
    "group": procs.argv_bytes(["sleep", "3600"]),
    "setsid": procs.argv_bytes(["sleep", "3601"]),
    "double_fork": procs.argv_bytes(["sleep", "3602"]),
}


class StewardNoCgroups(Steward):
    """steward with `STEWARD_CGROUPS=off`: the process group plus the subreaper."""
    NAME = "steward-nocgroups"

    def launch(self):
        argv = [self.bin, "up", "--config", self.config_dir]
        self.proc = self.spawn(argv, "steward.log", extra_env={
            "STEWARD_LOG": "info", "NO_COLOR": "1", "STEWARD_CGROUPS": "off"})


def by_kind(tag):
    """Live processes carrying the tool's marker, by kind (and the shells)."""
    table = procs.ProcTable().refresh()
    marked = procs.marked_pids(tag)
    out = {kind: table.matching(marked, argv) for kind, argv in KINDS.items()}
    out["shells"] = table.matching(marked, SH_ARGV)
    return out


def mode_of(tool):
    """steward's process tracking as its boot log says it."""
    for line in tool.log_text().splitlines():
        if "process tracking:" in line:
            return line.split("process tracking:", 1)[1].strip()
    return None


def one(ctx, tool_cls, n):
    services = [Service(f"e{i}", ARGV) for i in range(n)]
    with running(tool_cls, ctx, f"s4e-{tool_cls.NAME}", services) as tool:
        table = procs.ProcTable().refresh()
        tool.launch()
        procs.wait_until(lambda: all(len(p) >= n for k, p in by_kind(tool.tag).items()
                                     if k in KINDS),
                         ctx.timeout(120), 0.01, f"{3 * n} sleeps of {tool_cls.NAME}")
        wait_quiet(tool, table)
        before = by_kind(tool.tag)
        victims = set().union(*(before[k] for k in KINDS))
        t0 = time.monotonic()
        how = tool.stop_all()
        t_cmd = time.monotonic() - t0
        procs.wait_until(lambda: not any(procs.pid_alive(p) for p in before["shells"]),
                         ctx.timeout(120), 0.002, "the services' shells to exit")
        t_all = time.monotonic() - t0
        time.sleep(2.0)
        alive = {k: sorted(p for p in before[k] if procs.pid_alive(p)) for k in KINDS}
        result = {"how": how, "command_s": round(t_cmd, 3),
                  "stop_s": round(max(t_cmd, t_all), 3),
                  "services": len(before["shells"]),
                  "processes": len(victims),
                  "orphans": sum(len(v) for v in alive.values()),
                  "orphans_by_kind": {k: len(v) for k, v in alive.items()}}
        if tool_cls.NAME.startswith("steward"):
            result["mode"] = mode_of(tool)
        return result


def run(ctx, tools, opts):
    out = {}
    order = []
    for name, cls in tools.items():
        order.append((name, cls))
        if name == "steward":
            order.append((StewardNoCgroups.NAME, StewardNoCgroups))
    for name, cls in order:
        ctx.log(f"S4E {name}")
        try:
            r = one(ctx, cls, N)
        except procs.Deadline as e:
            r = {"error": str(e)}
        out[name] = r
    return out
