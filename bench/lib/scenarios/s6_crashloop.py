"""S6 crash loop: one service `sh -c 'exit 1'` (which first appends `date +%s%N` to a file,
so every launch is counted and timed exactly), restart always, every tool at once for
20 s. Reported: launches, the gaps between them, and what the tool does when it gives up.
steward is configured with `backoff: [100ms, 200ms, 500ms, 1s]`, `max_restarts: 10`,
`restart_window: 1m`: its gaps must follow the list and it must give up after the 11th
launch, saying why; the peers keep their default give-up rules.
"""

import os
import re
import time

from .. import procs
from ..tools import Profile, Service

EXPECTED_STEWARD_GAPS_MS = [100, 200, 500] + [1000] * 7


def launches(path):
    try:
        with open(path) as f:
            return [int(x) / 1e6 for x in f.read().split()]
    except OSError:
        return []


def verdict(name, tool, stamps, window_end_ms):
    """What the tool says about the service at the end."""
    if not stamps:
        return "never started"
    quiet_for = (window_end_ms - stamps[-1]) / 1000
    if name == "steward":
        text = tool.log_text()
        m = re.findall(r'kind="failed".*?cause="([^"\n]*)"', text)
        if m:
            return f"failed: {m[-1].strip()}"
        return f"still restarting (last launch {quiet_for:.1f} s before the end)"
    if name == "supervisord":
        try:
            with open(os.path.join(tool.dir, "supervisord.log")) as f:
                log = f.read()
            if "entered FATAL state" in log:
                return "FATAL: " + log[log.index("entered FATAL state"):].splitlines()[0]
        except OSError:
            pass
    if name == "pm2":
        for app in tool.jlist():
            env = app.get("pm2_env", {})
            if env.get("status") == "errored":
                return f"errored after {env.get('restart_time')} restarts (stopped restarting)"
    if quiet_for > 5:
        return f"no launch in the last {quiet_for:.0f} s (gave up, silently)"
    return "restarts forever"


def run(ctx, tools, opts):
    started = {}
    out = {"seconds": opts.s6_seconds}
    try:
        t0 = time.time()
        for name, cls in tools.items():
            tool = cls(ctx, ctx.workdir(f"s6-{name}"))
            stamp_file = os.path.join(tool.dir, "launches")
            tool.setup([Service("crasher", ["sh", "-c", f"date +%s%N >> {stamp_file}; exit 1"])],
                       Profile("crashloop"))
            tool.launch()
            started[name] = (tool, stamp_file, time.time())
        end = t0 + opts.s6_seconds
        while time.time() < end:
            time.sleep(0.1)
        for name, (tool, stamp_file, t_launch) in started.items():
            window_end_ms = (t_launch + opts.s6_seconds) * 1000
            stamps = [s for s in launches(stamp_file) if s <= window_end_ms]
            gaps = [round(b - a, 1) for a, b in zip(stamps, stamps[1:])]
            r = {"launches": len(stamps), "restarts": max(0, len(stamps) - 1),
                 "first_launch_ms": round(stamps[0] - t_launch * 1000, 1) if stamps else None,
                 "gaps_ms": gaps[:40], "verdict": verdict(name, tool, stamps, window_end_ms)}
            if name == "steward":
                exp = EXPECTED_STEWARD_GAPS_MS
                n = min(len(exp), len(gaps))
                r["expected_gaps_ms"] = exp
                r["max_gap_error_ms"] = round(max((abs(g - e) for g, e in zip(gaps, exp)),
                                                  default=0), 1)
                r["follows_backoff"] = len(gaps) == len(exp) and all(
                    0 <= g - e <= 50 for g, e in zip(gaps[:n], exp[:n]))
            out[name] = r
        return out
    finally:
        for tool, _, _ in started.values():
            tool.teardown()
