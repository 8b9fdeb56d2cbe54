"""Hostile input (issue 14, item 6).

* a 50 MiB POST body → 413, answered quickly, steward's peak RSS (VmHWM) not raised by
  anything near the body's size;
* `settings.max_services` (here 5): defining past it over the API → 409 naming the key;
* query values out of range (`tail=-1`, `tail=10^12`, `since=abc`, …) → 400;
* YAML alias bombs (billion laughs) and 10,000-deep nesting → `steward validate` refuses
  them with an error, within a deadline, with its time and peak memory measured.
"""

import http.client
import os
import resource
import subprocess
import time

from .daemon import Daemon

BODY_MIB = 50


def run(ctx, args):
    # The YAML files first: a child's peak RSS from wait4 starts at this process's RSS
    # when it forked (Linux carries the forking process's high-water mark across exec),
    # so it is measured while this runner is small (before the 50 MiB body).
    out = {"yaml": yaml_bombs(ctx)}
    d = Daemon(ctx, "hostile", settings_extra=["max_services: 5"])
    d.write("")
    try:
        d.start()
        out["big_body"] = big_body(d)
        out["max_services"] = max_services(d)
        out["queries"] = queries(d)
    finally:
        out["steward_exit"] = d.stop()
    return out


def big_body(d):
    d.call("GET", "/api/v1/status")
    rss0, hwm0 = d.rss_kib(), d.hwm_kib()
    body = b"{" + b" " * (BODY_MIB * 1024 * 1024 - 2) + b"}"
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    status, error = None, None
    try:
        conn.putrequest("POST", "/api/v1/services")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            view = memoryview(body)
            for i in range(0, len(body), 1 << 20):
                conn.send(view[i:i + (1 << 20)])
        except OSError as e:  # the server may answer and close before the body is sent
            error = f"{type(e).__name__} while sending (server closed early)"
        r = conn.getresponse()
        status = r.status
        r.read()
    except (OSError, http.client.HTTPException) as e:
        error = (error or "") + f"; {type(e).__name__}: {e}"
    finally:
        conn.close()
    seconds = time.monotonic() - t0
    rss1, hwm1 = d.rss_kib(), d.hwm_kib()
    return {"body_mib": BODY_MIB, "status": status, "seconds": round(seconds, 3),
            "send_note": error, "rss_kib_before": rss0, "rss_kib_after": rss1,
            "hwm_kib_before": hwm0, "hwm_kib_after": hwm1,
            "hwm_rise_kib": (hwm1 - hwm0) if hwm0 and hwm1 else None}


def max_services(d):
    answers = []
    for i in range(7):
        a = d.call("POST", "/api/v1/services",
                   {"id": f"cap{i}", "command": "sleep 1000", "autostart": False})
        answers.append(a.status)
    last = d.call("POST", "/api/v1/services",
                  {"id": "cap-last", "command": "sleep 1000", "autostart": False})
    err = (last.body or {}).get("error", {}) if isinstance(last.body, dict) else {}
    return {"limit": 5, "answers": answers, "past_limit_status": last.status,
            "past_limit_code": err.get("code"), "past_limit_message": err.get("message")}


QUERIES = [
    "/api/v1/services/cap0/logs?tail=-1",
    "/api/v1/services/cap0/logs?tail=1000000000000",
    "/api/v1/services/cap0/logs?tail=99999999999999999999999",
    "/api/v1/services/cap0/logs?since=abc",
    "/api/v1/services/cap0/logs?since=-5",
    "/api/v1/services/cap0/logs?follow=maybe",
    "/api/v1/events?since=abc",
    "/api/v1/events?since=-1",
    "/api/v1/services/cap0/stop?wait=sometimes",
]


def queries(d):
    out = {}
    for q in QUERIES:
        method = "POST" if q.endswith("wait=sometimes") else "GET"
        a = d.call(method, q, timeout=10)
        out[f"{method} {q}"] = a.status
    return out


def billion_laughs(levels=10):
    """Ten levels of ten aliases each: 10^10 strings once expanded, in one service's tags."""
    items = ['&x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        items.append(f"&x{i} [{', '.join([f'*x{i - 1}'] * 10)}]")
    return ("version: 1\nservices:\n  bomb:\n    command: sleep 1\n    tags: [" +
            ", ".join(items) + "]\n")


def deep_nesting(depth=10000):
    return "version: 1\nservices:\n  deep:\n    command: sleep 1\n    env: " + \
        "[" * depth + "]" * depth + "\n"


def yaml_bombs(ctx):
    out = {}
    for name, text in (("billion_laughs", billion_laughs()), ("deep_nesting_10000", deep_nesting()),
                       ("deep_mapping_10000", "version: 1\nservices: " + "{a: " * 10000 + "1" + "}" * 10000 + "\n")):
        cfg = ctx.workdir(f"yaml-{name}")
        with open(os.path.join(cfg, "services.yml"), "w") as f:
            f.write(text)
        log = os.path.join(cfg, "validate.out")
        runner_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.monotonic()
        with open(log, "w") as f:
            p = subprocess.Popen([ctx.steward_bin, "validate", "--config", cfg], stdout=f,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=dict(os.environ, NO_COLOR="1"))
        # wait4 of this child alone gives its own peak RSS; a bounded poll for its end.
        timed_out = False
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > 20:
                timed_out = True
                p.kill()
                pid, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.monotonic() - t0
        code = os.waitstatus_to_exitcode(status)
        p.returncode = code
        maxrss = usage.ru_maxrss
        with open(log, errors="replace") as f:
            outtext = [l for l in f.read().splitlines() if l.strip()]
        out[name] = {"bytes": len(text), "exit": code, "seconds": round(seconds, 3),
                     "timed_out": timed_out, "peak_rss_kib": maxrss,
                     "runner_rss_kib_at_fork": runner_rss,
                     "message": " / ".join(l.strip() for l in outtext[:3])[:400]}
    return out
