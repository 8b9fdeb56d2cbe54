"""Chaos soak (issue 14, item 2): ~55 services of mixed kinds under a seeded random driver
(SIGKILLs, pauses, restarts, redefinitions, reloads, actor panics, two SIGKILLs of steward
itself), with invariants checked throughout and at the end. See docs/RELIABILITY.md."""

import http.client
import json
import os
import random
import signal
import threading
import time

from lib import procs
from .daemon import PROBE_TAG, Daemon, free_port, groups_by_marker, marked_by_service, yq

TREE = "(sleep 1000 & wait) & sleep 1000 & wait"
CHATTY = "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.02; done"
TCP = ("import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
       "s.bind(('127.0.0.1',{port}))\ns.listen(16)\nwhile True:\n c,_=s.accept()\n c.close()\n")
BOUND_S = 1.0 + 15.0   # largest backoff step + slack for a loaded 2-core machine
ACTORS = ["server", "port_manager", "log_buffer", "health_checker"]


class Spec:
    def __init__(self, sid, kind, lines, permanent=True):
        self.id, self.kind, self.lines, self.permanent = sid, kind, lines, permanent


def permanent_lines():
    return ["restart: permanent", "backoff: [100ms, 500ms, 1s]", "max_restarts: 1000000",
            "restart_window: 1s", "stop_timeout: 5s"]


def build_specs(d):
    specs = []

    def add(sid, kind, body, permanent=True, extra=()):
        lines = list(body) + (permanent_lines() if permanent else []) + list(extra)
        lines += ["env:", f"  {procs.MARKER}: {yq(d.marker(sid))}"]
        specs.append(Spec(sid, kind, lines, permanent))

    for i in range(15):
        add(f"argv_{i:02d}", "argv", ['argv: [sleep, "1000"]'])
    for i in range(10):
        add(f"shell_{i:02d}", "shell", [f"command: {yq(TREE)}"])
    for i in range(5):
        p = free_port()
        add(f"http_{i:02d}", "http", [f'argv: [python3, -m, http.server, "{p}", --bind, 127.0.0.1]',
                                      "liveness:", f"  http: {{url: \"http://127.0.0.1:{p}/\"}}",
                                      "  interval: 1s", "  initial_delay: 2s"])
    for i in range(5):
        p = free_port()
        add(f"tcp_{i:02d}", "tcp", [f"argv: [python3, -c, {yq(TCP.format(port=p))}]",
                                    "readiness:", f"  tcp: 127.0.0.1:{p}", "  interval: 1s"])
    for i in range(3):
        add(f"cmd_{i:02d}", "command-probe", ['argv: [sleep, "1000"]', "liveness:",
                                              f"  command: \"true {PROBE_TAG}\"", "  interval: 1s"])
    prev = None
    for name in ("chain_a", "chain_b", "chain_c", "chain_d"):
        add(name, "depends_on", ['argv: [sleep, "1000"]'] +
            ([f"depends_on: [{prev}]"] if prev else []))
        prev = name
    for i in range(2):
        add(f"oneshot_tmp_{i}", "one-shot temporary", ['command: "echo done"'], False,
            ["restart: temporary"])
        add(f"oneshot_tr_{i}", "one-shot transient", ['command: "echo done"'], False,
            ["restart: transient"])
    for i in range(3):
        add(f"log_{i:02d}", "chatty", [f"command: {yq(CHATTY)}"])
    pid_file = os.path.join(d.dir, "daemon.pid")
    add("detached", "detached", [
        f"command: {yq(f'sleep 1000 >/dev/null 2>&1 & echo $! > {pid_file}')}",
        "detached: true", f"pid_file: {yq(pid_file)}",
        f"stop_command: {yq(f'kill $(cat {pid_file})')}"], False)
    return specs


def yaml_of(specs):
    out = []
    for s in specs:
        out.append(f"  {s.id}:")
        out += ["    " + l for l in s.lines]
    return "\n".join(out) + "\n"


def extra_file(d, version):
    specs = []
    for i in range(2):
        sid = f"extra_{i}"
        specs.append(Spec(sid, "services.d", ['argv: [sleep, "1000"]'] + permanent_lines() +
                          ["env:", f"  {procs.MARKER}: {yq(d.marker(sid))}",
                           f"  VERSION: \"{version}\""]))
    return specs, "version: 1\nservices:\n" + yaml_of(specs)


def api_def(d, i, version):
    sid = f"api_{i}"
    return {"id": sid, "argv": ["sleep", "1000"], "restart": "permanent",
            "backoff": ["100ms", "500ms", "1s"], "max_restarts": 1000000, "restart_window": "1s",
            "env": {procs.MARKER: d.marker(sid), "VERSION": str(version)}}


class EventReader(threading.Thread):
    """Reads /api/v1/events as SSE; checks seq strictly increasing, holes covered by gaps.
    Reconnects (a new stream, its own seq) after steward is booted again."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.stop = d, threading.Event()
        self.read = self.gaps = self.starts = 0
        self.violations = []
        self.streams = 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.one_stream()
            except (OSError, http.client.HTTPException, ValueError):
                pass
            self.stop.wait(0.1)

    def one_stream(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        conn.request("GET", "/api/v1/events")
        r = conn.getresponse()
        if r.status != 200:
            conn.close()
            return
        self.streams += 1
        last, allowance, event, data = None, 0, None, None
        try:
            while not self.stop.is_set():
                line = r.fp.readline()
                if not line:
                    return
                line = line.decode(errors="replace").rstrip("\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and data is not None:
                    obj = json.loads(data)
                    if event == "gap":
                        self.gaps += 1
                        allowance += int(obj.get("gap", 0))
                    else:
                        seq = obj["seq"]
                        self.read += 1
                        if obj.get("kind") == "started":
                            self.starts += 1
                        if last is not None:
                            if seq <= last:
                                self.violations.append(f"seq {seq} after {last}")
                            elif seq - last - 1 > allowance:
                                self.violations.append(
                                    f"hole {last}->{seq} with {allowance} reported")
                            else:
                                allowance -= max(0, seq - last - 1)
                        last = seq
                    event, data = None, None
        finally:
            conn.close()


def run(ctx, args):
    rng = random.Random(ctx.seed + 2)
    d = Daemon(ctx, "soak")
    specs = build_specs(d)
    version = 1
    extra_specs, extra_text = extra_file(d, version)
    d.write(yaml_of(specs), {"extra.yml": extra_text})
    by_id = {s.id: s for s in specs + extra_specs}
    for i in range(3):
        by_id[f"api_{i}"] = Spec(f"api_{i}", "api-defined", [], True)
    api_versions = {i: 1 for i in range(3)}
    detached_marker = d.marker("detached")

    injected = {}
    pending = {}            # sid -> (old pid or None, t)
    recov = {"checked": 0, "late": [], "slowest": 0.0}
    dup = {"samples": 0, "bad": []}
    rss = []
    bad_answers = []
    requests = 0
    left_after_kills = []
    log_last, log_read, log_violations = {}, [0], []
    lock = threading.Lock()

    def note(kind):
        injected[kind] = injected.get(kind, 0) + 1

    def call(method, path, body=None, ok=(200, 201, 202, 204, 409)):
        nonlocal requests
        a = d.call(method, path, body, timeout=60)
        requests += 1
        if a.status is None or a.status >= 500 or a.status not in ok:
            bad_answers.append(f"{method} {path}: {a.status} {a.error or str(a.body)[:200]}")
        return a

    def define_api():
        for i in range(3):
            call("POST", "/api/v1/services", api_def(d, i, api_versions[i]), ok=(201,))

    stop_sampler = threading.Event()
    sampler_pause = threading.Event()

    def sampler():
        while not stop_sampler.is_set():
            if not sampler_pause.is_set():
                groups = groups_by_marker(f"{ctx.run_id}/svc/")
                with lock:
                    dup["samples"] += 1
                    for m, pgids in groups.items():
                        if m != detached_marker and len(pgids) > 1 and not sampler_pause.is_set():
                            dup["bad"].append({"marker": m, "process_groups": sorted(pgids)})
            stop_sampler.wait(0.05)

    def boot():
        d.start()
        define_api()
        rss.append({"start": d.rss_kib(), "peak": d.rss_kib(), "end": None})

    # Panics need the `chaos` feature: a bogus actor is a 400 there, a 404 (no route) here.
    boot()
    probe = d.call("POST", "/api/v1/services/argv_00/chaos/panic?actor=bogus")
    panics = probe.status == 400
    panics_note = "injected (binary built with --features chaos)" if panics else \
        "not injected: this binary has no chaos route (built without --features chaos)"
    reader = EventReader(d)
    reader.start()
    th = threading.Thread(target=sampler, daemon=True)
    th.start()

    seconds = args.soak_seconds
    t_start = time.monotonic()
    steward_kills_at = [seconds / 3, 2 * seconds / 3]
    steward_kills = 0
    next_rss = next_logs = 0.0
    actions = ["kill_main", "kill_grandchild", "pause_resume", "restart", "redefine", "reload"]
    weights = [30, 10, 10, 15, 10, 10]
    if panics:
        actions.append("panic")
        weights.append(15)
    try:
        while True:
            now = time.monotonic() - t_start
            if now >= seconds:
                break
            if steward_kills_at and now >= steward_kills_at[0]:
                steward_kills_at.pop(0)
                steward_kills += 1
                sampler_pause.set()
                rss[-1]["end"] = d.rss_kib()
                d.sigkill()
                note("steward SIGKILL")
                pending.clear()
                log_last.clear()
                boot()
                left_after_kills.append(orphans_of_old(d, ctx, detached_marker))
                sampler_pause.clear()
                continue
            if now >= next_rss:
                next_rss = now + 1.0
                v = d.rss_kib()
                if v:
                    rss[-1]["peak"] = max(rss[-1]["peak"] or 0, v)
            states = d.services() or {}
            check_pending(states, pending, recov)
            if now >= next_logs:
                next_logs = now + 2.0
                read_logs(d, log_last, log_read, log_violations)
            act = rng.choices(actions, weights)[0]
            candidates = [s for s in by_id.values()
                          if s.permanent and s.id not in pending
                          and states.get(s.id, {}).get("status") == "running"]
            if not candidates:
                time.sleep(0.05)
                continue
            s = rng.choice(candidates)
            pid = states[s.id].get("pid")
            if act == "kill_main" and pid:
                if procs.kill_quiet(pid):
                    pending[s.id] = (pid, time.monotonic())
                    note("SIGKILL main process")
            elif act == "kill_grandchild":
                shells = [c for c in candidates if c.kind == "shell"]
                if shells:
                    s = rng.choice(shells)
                    pid = states[s.id].get("pid")
                    tree = [p for p in marked_by_service(d.marker(s.id)).get(d.marker(s.id), [])
                            if p != pid]
                    if tree and procs.kill_quiet(rng.choice(tree)):
                        note("SIGKILL grandchild")
            elif act == "pause_resume":
                call("POST", f"/api/v1/services/{s.id}/pause")
                call("POST", f"/api/v1/services/{s.id}/resume")
                note("pause+resume")
            elif act == "restart":
                call("POST", f"/api/v1/services/{s.id}/restart")
                note("restart")
            elif act == "redefine":
                i = rng.randrange(3)
                sid = f"api_{i}"
                if sid in pending:
                    continue
                call("POST", f"/api/v1/services/{sid}/stop")
                call("DELETE", f"/api/v1/services/{sid}")
                api_versions[i] += 1
                call("POST", "/api/v1/services", api_def(d, i, api_versions[i]), ok=(201,))
                note("redefine (DELETE + POST)")
            elif act == "reload":
                version += 1
                extra_specs, extra_text = extra_file(d, version)
                d.write_file("extra.yml", extra_text)
                if rng.random() < 0.5:
                    os.kill(d.proc.pid, signal.SIGHUP)
                    note("reload (SIGHUP)")
                else:
                    call("POST", "/api/v1/reload")
                    note("reload (POST /api/v1/reload)")
                for e in extra_specs:
                    pending.pop(e.id, None)
            elif act == "panic":
                actor = rng.choice(ACTORS)
                a = call("POST", f"/api/v1/services/{s.id}/chaos/panic?actor={actor}")
                if a.status == 202:
                    note(f"panic {actor}")
                    # A one-for-all restart replaces the process: recovered = running
                    # under a new pid, not merely still running.
                    pending[s.id] = (pid, time.monotonic())
            time.sleep(0.2)
        # Let every pending recovery finish (bounded), then the final figures.
        deadline = time.monotonic() + BOUND_S + 5
        while pending and time.monotonic() < deadline:
            check_pending(d.services() or {}, pending, recov)
            time.sleep(0.1)
        for sid, (pid, t) in pending.items():
            recov["late"].append(f"{sid}: not running again {time.monotonic() - t:.1f}s after")
        read_logs(d, log_last, log_read, log_violations)
        rss[-1]["end"] = d.rss_kib()
    finally:
        stop_sampler.set()
        th.join()
        exit_code = d.stop()
        reader.stop.set()
    try:
        procs.wait_until(lambda: not procs.marked_pids(f"{ctx.run_id}/svc/", prefix=True),
                         10, 0.05, "the services' processes to go")
    except procs.Deadline:
        pass
    left = marked_by_service(f"{ctx.run_id}/svc/")
    return {
        "seconds": round(time.monotonic() - t_start, 1), "services": len(by_id),
        "kinds": sorted({s.kind for s in by_id.values()}),
        "injected": injected, "steward_kills": steward_kills, "panics_note": panics_note,
        "starts_observed": reader.starts, "recoveries_checked": recov["checked"],
        "recovery_late": len(recov["late"]), "recovery_late_detail": recov["late"][:10],
        "slowest_recovery_s": round(recov["slowest"], 2),
        "proc_samples": dup["samples"], "duplicate_samples": len(dup["bad"]),
        "duplicate_detail": dup["bad"][:10],
        "events_read": reader.read, "gaps_reported": reader.gaps, "event_streams": reader.streams,
        "event_violations": reader.violations[:20],
        "log_lines_read": log_read[0], "log_violations": log_violations[:20],
        "requests": requests, "bad_answers": len(bad_answers), "bad_answer_detail": bad_answers[:20],
        "left_after_steward_kills": sum(left_after_kills), "rss": rss,
        "steward_exit": exit_code,
        "left_after_final_stop": sum(len(v) for v in left.values()),
        "left_after_final_stop_detail": {k.rsplit("/", 1)[-1]: len(v) for k, v in left.items()},
    }


def check_pending(states, pending, recov):
    now = time.monotonic()
    for sid, (old, t) in list(pending.items()):
        st = states.get(sid, {})
        if st.get("status") == "running" and st.get("pid") and st.get("pid") != old:
            recov["checked"] += 1
            recov["slowest"] = max(recov["slowest"], now - t)
            del pending[sid]
        elif now - t > BOUND_S:
            recov["checked"] += 1
            recov["late"].append(f"{sid}: {st.get('status')} {now - t:.1f}s after the fault")
            del pending[sid]


def read_logs(d, log_last, log_read, violations):
    for i in range(3):
        sid = f"log_{i:02d}"
        since = log_last.get(sid)
        q = f"/api/v1/services/{sid}/logs?" + (f"since={since}" if since is not None else "tail=1000")
        a = d.call("GET", q, timeout=30)
        if a.status != 200 or not isinstance(a.body, dict):
            continue
        lines = a.body.get("lines", [])
        last = since
        for l in lines:
            if last is not None and l["seq"] <= last:
                violations.append(f"{sid}: seq {l['seq']} after {last}")
            last = l["seq"]
        log_read[0] += len(lines)
        if last is not None:
            log_last[sid] = last


def orphans_of_old(d, ctx, detached_marker):
    """After a reboot: processes of the services outside the new steward's tree (what
    crash recovery should have stopped), after a bounded wait for them to go."""
    def outside():
        table = procs.ProcTable().refresh()
        mine = table.descendants({d.proc.pid})
        marked = marked_by_service(f"{ctx.run_id}/svc/")
        return [p for m, ps in marked.items() if m != detached_marker for p in ps if p not in mine]
    try:
        procs.wait_until(lambda: not outside(), 10, 0.05, "the old steward's services to go")
        return 0
    except procs.Deadline:
        left = outside()
        for p in left:
            procs.kill_quiet(p)
        return len(left)
