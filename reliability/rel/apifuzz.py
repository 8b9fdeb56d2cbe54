"""API fuzzing with schemathesis (issue 14, item 5), against the served OpenAPI document
of a running `steward up`, without and with a token. Full run only (see report.py)."""

import os
import re
import subprocess
import time

from .daemon import Daemon

VERSION = "4"  # schemathesis major version whose CLI this drives
# One pattern: schemathesis keeps only the last of repeated --exclude-path-regex options.
EXCLUDE = r"^/api/v1/events$|^/api/v1/services/\{id\}/logs$|^/mcp$"
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance," \
         "content_type_conformance"


def install(ctx):
    venv = os.path.join(ctx.cache, "venv")
    st = os.path.join(venv, "bin", "st")
    if not os.path.exists(st):
        ctx.log("installing schemathesis from PyPI into " + venv)
        subprocess.run(["python3", "-m", "venv", venv], check=True, timeout=300,
                       stdin=subprocess.DEVNULL, capture_output=True)
        r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q",
                            f"schemathesis>={VERSION},<{int(VERSION) + 1}"], timeout=900,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr[-500:]
    v = subprocess.run([st, "--version"], capture_output=True, text=True, timeout=60)
    return st, v.stdout.strip()


def run(ctx, args):
    if not args.schemathesis:
        return {"skipped": "the quick run has no time for it (a full run takes minutes)"}
    st, version = install(ctx)
    if st is None:
        return {"error": f"schemathesis could not be installed: {version}"}
    out = {"version": version, "runs": []}
    for name, token in (("no token", None), ("with token", "rel-token-0123456789")):
        # Fuzzed definitions are started: steward runs here with an empty PATH, so a
        # generated command line or argv fails to spawn (start_failed) instead of running
        # whatever the generator made up, and with a cap of 50 services.
        d = Daemon(ctx, "apifuzz" + ("-token" if token else ""), token=token,
                   settings_extra=["max_services: 50"])
        d.extra_env = {"PATH": "/nonexistent"}
        # A few services so paths with {id} have something to find.
        d.write("  web:\n    argv: [/bin/sleep, \"1000\"]\n  job:\n    argv: [/bin/true]\n"
                "    restart: temporary\n")
        try:
            d.start()
            out["runs"].append(one(ctx, st, d, name, token, args))
        finally:
            d.stop()
    return out


def one(ctx, st, d, name, token, args):
    url = f"http://127.0.0.1:{d.port}/api/v1/openapi.json"
    argv = [st, "run", url, "--phases", "examples,coverage,fuzzing,stateful", "--workers", "1",
            "--checks", CHECKS, "--max-examples", str(args.fuzz_examples),
            "--request-timeout", "10", "--seed", str(ctx.seed), "--no-color"]
    argv += ["--exclude-path-regex", EXCLUDE]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    log = os.path.join(d.dir, "schemathesis.log")
    t0 = time.monotonic()
    with open(log, "w") as f:
        try:
            r = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               timeout=args.fuzz_timeout, env=dict(os.environ, NO_COLOR="1"),
                               cwd=d.dir)
            code = r.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    with open(log, errors="replace") as f:
        text = f.read()
    keep = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results",
                        f"schemathesis-{name.replace(' ', '-')}.log")
    with open(keep, "w") as f:
        f.write(text)
    cases = sum(int(n) for n in re.findall(r"(\d+) generated", text)) or \
        sum(int(n) for n in re.findall(r"(\d+) test cases", text))
    found, accepted = failures_of(text)
    return {"name": name, "exit": code, "cases": cases, "failures": len(found),
            "failure_detail": found[:20], "accepted": accepted,
            "ok": code in (0, 1) and not found and cases > 0, "seconds": round(time.monotonic() - t0, 1),
            "log": os.path.relpath(keep, os.path.dirname(os.path.dirname(keep)))}


# Documented 5xx answers that schemathesis's not_a_server_error flags all the same:
# /health/ready is 503 by design while a service is not ready (DESIGN §6, HTTP_API.md).
ACCEPTED = {("GET /health/ready", "ST101", "503")}


def failures_of(text):
    """[(operation, check code, status)] from schemathesis's failure sections, minus the
    documented ones (returned apart)."""
    found, accepted = [], []
    parts = re.split(r"^_{3,} (.+?) _{3,}$", text, flags=re.M)
    for op, body in zip(parts[1::2], parts[2::2]):
        body = body.split("=====")[0]
        statuses = re.findall(r"^\[(\d{3})\]", body, re.M)
        for check in re.findall(r"^- (ST\d+) (.+)$", body, re.M):
            for status in statuses or ["?"]:
                item = (op.strip(), check[0], status)
                (accepted if item in ACCEPTED else found).append(
                    f"{item[0]}: {check[0]} {check[1].strip()} [{status}]")
    return sorted(set(found)), sorted(set(accepted))
