"""S3 log throughput: one service writes 500,000 lines of 100 bytes (99 + newline) to
stdout as fast as it can (`yes LINE | head -n 500000`, then `exec sleep 3600` so no tool
restarts it); time from the writer's first instant (it writes `date +%s%N` to a file just
before) until the tool's log file sink holds every line; lines/s and lines lost (a sink
that stops growing for 5 s is done). Each tool keeps everything: rotation is set large.
The floor is the same writer into a file with no supervisor. steward's in-memory path
(pipe -> ring -> one live subscriber) is measured by `cargo bench --bench log_pipeline`.
"""

import glob
import os
import subprocess
import time

from .. import procs
from ..tools import Service
from .common import bench_program, median

LINE = "x" * 99


def writer_argv(n, start_file):
    return ["sh", "-c", f"date +%s%N > {start_file}; yes {LINE} | head -n {n}; exec sleep 3600"]


def sink_files(base):
    files = [base] + glob.glob(base + ".[0-9]*") + glob.glob(os.path.join(base + ".d", "*"))
    return [f for f in files if os.path.isfile(f) and not f.endswith(("/lock", "/state", "/config"))]


def sink_size(base):
    return sum(os.path.getsize(f) for f in sink_files(base) if os.path.exists(f))


def first_line_len(base):
    for f in sorted(sink_files(base), key=os.path.getmtime):
        with open(f, "rb") as fh:
            line = fh.readline()
        if line.endswith(b"\n"):
            return len(line)
    return None


def count_lines(base):
    n = 0
    for f in sink_files(base):
        with open(f, "rb") as fh:
            while True:
                b = fh.read(1 << 20)
                if not b:
                    break
                n += b.count(b"\n")
    return n


def one(ctx, tool_cls, n):
    wd_name = f"s3-{tool_cls.NAME}"
    holder = {}

    def svc(tool_dir):
        return [Service("writer", writer_argv(n, os.path.join(tool_dir, "start")),
                        log_file=os.path.join(tool_dir, "out.log"))]

    tool = tool_cls(ctx, ctx.workdir(wd_name))
    try:
        tool.setup(svc(tool.dir))
        base = os.path.join(tool.dir, "out.log")
        start_file = os.path.join(tool.dir, "start")
        tool.launch()
        procs.wait_until(lambda: os.path.exists(start_file) and os.path.getsize(start_file) > 0,
                         ctx.timeout(60), 0.005, "the writer to start")
        t_start = int(open(start_file).read().strip()) / 1e9
        # Every line of a sink has the same length (a fixed-width prefix, if any), so the
        # sink is complete when it holds n times the length of its first line: poll sizes
        # (cheap), and count the lines once, after the clock has stopped.
        line_len = None
        last_size, last_change = -1, time.monotonic()
        done_at = None
        hard_end = time.monotonic() + ctx.timeout(120)
        while time.monotonic() < hard_end:
            size = sink_size(base)
            now_wall = time.time()
            if size != last_size:
                last_size, last_change = size, time.monotonic()
            if line_len is None and size > 0:
                line_len = first_line_len(base)
            if line_len and size >= n * line_len:
                done_at = now_wall
                break
            if time.monotonic() - last_change > 5.0:
                break
            time.sleep(0.002)
        lines = count_lines(base)
        if lines < n:
            done_at = None
        holder = {"lines": lines, "lost": max(0, n - lines), "bytes": last_size}
        if done_at:
            secs = done_at - t_start
            holder.update(seconds=round(secs, 3), lines_per_s=round(n / secs))
        else:
            holder.update(seconds=None, lines_per_s=None)
        return holder
    finally:
        tool.teardown()


def floor(ctx, n):
    d = ctx.workdir("s3-floor")
    out = os.path.join(d, "out.log")
    t0 = time.time()
    subprocess.run(["sh", "-c", f"yes {LINE} | head -n {n} > {out}"], check=True, timeout=60)
    secs = time.time() - t0
    return {"seconds": round(secs, 3), "lines_per_s": round(n / secs), "lines": count_lines(out)}


def run(ctx, tools, opts):
    n = opts.s3_lines
    out = {"lines": n, "floor": [], "tools": {}}
    for rep in range(opts.reps):
        out["floor"].append(floor(ctx, n))
        for name, cls in tools.items():
            ctx.log(f"S3 rep {rep + 1}/{opts.reps} {name}")
            try:
                r = one(ctx, cls, n)
            except procs.Deadline as e:
                r = {"error": str(e)}
            out["tools"].setdefault(name, []).append(r)
    for name, runs in out["tools"].items():
        out.setdefault("median", {})[name] = {
            "lines_per_s": median([r.get("lines_per_s") for r in runs]),
            "lost": median([r.get("lost") for r in runs]),
            "seconds": median([r.get("seconds") for r in runs])}
    out["floor_lines_per_s"] = median([f["lines_per_s"] for f in out["floor"]])
    if "steward" in tools:
        ctx.log("S3 steward in-memory path: cargo bench --bench log_pipeline")
        out["steward_ring"] = bench_program(ctx, "log_pipeline")
    return out
