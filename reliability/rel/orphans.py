"""Orphans and races (issue 14, item 3).

1. A tree-spawning service (a shell with a background child that has a child of its own,
   and a second background child; all in the service's process group) through N
   stop/kill/restart cycles; after each stop or kill is answered, the processes that
   still carry the service's marker are counted (target 0). Processes that leave the
   group with `setsid` are not part of this campaign (cgroup tracking is another issue's).
2. 100 concurrent conflicting control requests (start/stop/restart/kill) on one service,
   R rounds. A sampler reads /proc throughout: never two instances of the service (two
   process groups among the processes carrying its marker) at once. Every request must be
   answered, none with a 5xx; after each round the API's state must match /proc (pid
   alive iff running, and nothing of the service alive when it is not running).
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from lib import procs
from .daemon import Daemon, groups_by_marker, marked_by_service, yq

TREE = "(sleep 1000 & wait) & sleep 1000 & wait"


def service(d, sid, extra=()):
    lines = [f"  {sid}:", f"    command: {yq(TREE)}", "    restart: permanent",
             "    backoff: [50ms, 200ms]", "    max_restarts: 1000000", "    restart_window: 1s",
             "    stop_timeout: 5s", "    env:", f"      {procs.MARKER}: {yq(d.marker(sid))}"]
    return "\n".join(lines + ["    " + e for e in extra]) + "\n"


def run(ctx, args):
    d = Daemon(ctx, "orphans")
    d.write(service(d, "tree") + service(d, "race"))
    out = {"cycles": {}, "races": {}}
    try:
        d.start()
        out["cycles"] = cycles(ctx, d, args.cycles)
        out["races"] = races(ctx, d, args.race_rounds, args.race_requests)
    finally:
        out["steward_exit"] = d.stop()
        out["left_after_final_stop"] = len(procs.marked_pids(f"{ctx.run_id}/svc/", prefix=True))
    return out


def tree_pids(d, sid):
    return marked_by_service(d.marker(sid)).get(d.marker(sid), [])


def cycles(ctx, d, n):
    rng = random.Random(ctx.seed)
    counts = {"stop": 0, "kill": 0, "restart": 0, "start": 0}
    leftovers, failures, max_tree = 0, [], 0
    t0 = time.monotonic()
    for i in range(n):
        action = rng.choice(["stop", "kill", "restart"])
        st = d.call("GET", "/api/v1/services/tree").body or {}
        if st.get("status") != "running" and action != "restart":
            a = d.call("POST", "/api/v1/services/tree/start")
            counts["start"] += 1
            if a.status != 200:
                failures.append(f"cycle {i}: start answered {a.status} {a.body}")
                continue
            # The whole tree is up before it is torn down (sh forks its children at once).
            try:
                procs.wait_until(lambda: len(tree_pids(d, "tree")) >= 4, 10, 0.01,
                                 "the service's tree")
            except procs.Deadline:
                failures.append(f"cycle {i}: the tree never had 4 processes")
        max_tree = max(max_tree, len(tree_pids(d, "tree")))
        a = d.call("POST", f"/api/v1/services/tree/{action}")
        counts[action] += 1
        if a.status != 200:
            failures.append(f"cycle {i}: {action} answered {a.status} {a.body}")
            continue
        if action in ("stop", "kill"):
            # The answer comes once the group is gone: what is left now is a leftover
            # (a zombie counts as gone; a short poll lets the kernel finish the exit).
            try:
                procs.wait_until(lambda: not tree_pids(d, "tree"), 2.0, 0.01, "no leftovers")
            except procs.Deadline:
                left = tree_pids(d, "tree")
                leftovers += len(left)
                failures.append(f"cycle {i}: {len(left)} processes left after {action}")
                for p in left:
                    procs.kill_quiet(p)
    return {"cycles": n, "actions": counts, "leftover_processes": leftovers,
            "largest_tree_seen": max_tree, "failures": failures[:20],
            "seconds": round(time.monotonic() - t0, 1)}


def races(ctx, d, rounds, per_round):
    rng = random.Random(ctx.seed + 1)
    statuses, unanswered, duplicates, mismatches, samples = {}, [], [], [], 0
    stop_sampling = threading.Event()
    marker = d.marker("race")

    def sampler():
        nonlocal samples
        while not stop_sampling.is_set():
            groups = groups_by_marker(marker).get(marker, set())
            samples += 1
            if len(groups) > 1:
                duplicates.append({"at": round(time.monotonic() - t0, 3),
                                   "process_groups": sorted(groups)})
            stop_sampling.wait(0.005)

    def one(verb):
        a = d.call("POST", f"/api/v1/services/race/{verb}", timeout=60)
        return verb, a

    t0 = time.monotonic()
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    try:
        with ThreadPoolExecutor(max_workers=per_round) as pool:
            for r in range(rounds):
                verbs = [rng.choice(["start", "stop", "restart", "kill"]) for _ in range(per_round)]
                for verb, a in pool.map(one, verbs):
                    key = f"{verb} {a.status}"
                    statuses[key] = statuses.get(key, 0) + 1
                    if a.status is None:
                        unanswered.append(f"round {r}: {verb}: {a.error}")
                check_state(d, marker, r, mismatches)
    finally:
        stop_sampling.set()
        th.join()
    five = sum(v for k, v in statuses.items() if k.split()[1].startswith("5"))
    return {"rounds": rounds, "requests_per_round": per_round,
            "requests": rounds * per_round, "answers": statuses, "server_errors_5xx": five,
            "unanswered": len(unanswered), "unanswered_detail": unanswered[:10],
            "duplicate_samples": len(duplicates), "duplicate_detail": duplicates[:10],
            "proc_samples": samples, "state_mismatches": mismatches[:10],
            "state_mismatch_count": len(mismatches),
            "seconds": round(time.monotonic() - t0, 1)}


def check_state(d, marker, r, mismatches):
    """API state equal to /proc once the round's requests are all answered: the status
    is settled (not starting/stopping/backoff), then running <=> its pid is alive and
    carries the marker; not running <=> no process of the service is alive."""
    def settled():
        st = d.call("GET", "/api/v1/services/race").body or {}
        return st if st.get("status") in ("running", "stopped", "exited", "failed") else None
    try:
        st, _ = procs.wait_until(settled, 30, 0.02, "the service to settle")
    except procs.Deadline:
        mismatches.append(f"round {r}: never settled")
        return
    alive = marked_by_service(marker).get(marker, [])
    if st["status"] == "running":
        if not st.get("pid") or st["pid"] not in alive:
            mismatches.append(f"round {r}: running with pid {st.get('pid')}, alive {alive}")
    elif alive:
        mismatches.append(f"round {r}: {st['status']} but {len(alive)} processes alive")
