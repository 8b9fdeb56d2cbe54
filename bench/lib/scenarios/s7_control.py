"""S7 control latency: `GET /api/v1/services` with N = 1000 services running, under 50
concurrent connections (wrk, 2 threads, 10 s, --latency): p50, p99 and requests/s.
The peer with an HTTP control API here is supervisord (XML-RPC `getAllProcessInfo` over
HTTP on 127.0.0.1, the same question: the state of every process), measured the same way.
wrk and the tool share the machine's 2 cores, as a local client would.
"""

import os
import re
import shutil
import subprocess

from .. import procs
from ..tools import Service
from .common import running, wait_quiet, wait_services

XMLRPC_BODY = ('<?xml version="1.0"?><methodCall><methodName>supervisor.getAllProcessInfo'
               '</methodName><params></params></methodCall>')


def parse_ms(v, unit):
    v = float(v)
    return {"us": v / 1000, "ms": v, "s": v * 1000}[unit]


def wrk(ctx, url, seconds, script=None):
    argv = ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", script]
    r = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60)
    text = r.stdout
    lat = dict((p, parse_ms(v, u)) for p, v, u in
               re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:(.*)", text)
    return {"p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "requests_per_s": float(rps.group(1)) if rps else None,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1).strip() if errors else None,
            "raw": text[-1500:]}


def response_bytes(url, body=None):
    import urllib.request
    req = urllib.request.Request(url, data=body.encode() if body else None,
                                 headers={"Content-Type": "text/xml"} if body else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return len(r.read())


def run(ctx, tools, opts):
    if not shutil.which("wrk"):
        return {"error": "wrk is not installed"}
    n = opts.s7_n
    out = {"n": n, "seconds": opts.s7_seconds, "connections": 50}
    services = [Service(f"c{i}", ["sleep", "3600"]) for i in range(n)]
    if "steward" in tools:
        if not ctx.steward_has_api:
            out["steward"] = {"error": "this steward build does not serve the HTTP API"}
        else:
            with running(tools["steward"], ctx, "s7-steward", services) as tool:
                tool.use_api_program = ctx.steward_api_bin is not None
                table = procs.ProcTable().refresh()
                tool.launch()
                wait_services(tool, table, procs.SLEEP_ARGV, n, ctx.timeout(120))
                procs.wait_until(tool.api_up, ctx.timeout(30), 0.05, "steward's HTTP API")
                wait_quiet(tool, table)
                url = tool.api_url("/api/v1/services")
                size = response_bytes(url)
                ctx.log(f"S7 steward: wrk {opts.s7_seconds}s on GET /api/v1/services ({size} bytes)")
                out["steward"] = dict(wrk(ctx, url, opts.s7_seconds), response_bytes=size,
                                      served_by=ctx.steward_api_via)
    if "supervisord" in tools:
        with running(tools["supervisord"], ctx, "s7-supervisord", services) as tool:
            table = procs.ProcTable().refresh()
            tool.launch()
            wait_services(tool, table, procs.SLEEP_ARGV, n, ctx.timeout(180))
            wait_quiet(tool, table)
            script = os.path.join(tool.dir, "xmlrpc.lua")
            with open(script, "w") as f:
                f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/xml"\n'
                        f"wrk.body = '{XMLRPC_BODY}'\n")
            size = response_bytes(tool.xmlrpc_url(), XMLRPC_BODY)
            ctx.log(f"S7 supervisord: wrk {opts.s7_seconds}s on XML-RPC getAllProcessInfo")
            out["supervisord"] = dict(wrk(ctx, tool.xmlrpc_url(), opts.s7_seconds, script),
                                      response_bytes=size, request="XML-RPC getAllProcessInfo")
    return out
