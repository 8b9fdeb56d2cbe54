#!/usr/bin/env python3
"""Nothing escapes, counted: N start → stop/kill cycles of a service whose grandchildren
leave its process group (one `setsid sleep`, one `setsid` double fork), then how many of
the processes it ever started are still alive. Run in cgroup mode and in process-group
mode (settings.cgroups: false) on the same binary.

    python3 bench/escape_cycles.py [--cycles 1000] [--steward target/debug/steward]

Leftovers of a run are killed (by their recorded pids) before the script exits.
"""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request

ESCAPER = """#!/bin/sh
setsid sleep 1000 &
echo $! >> "$1/pids"
setsid sh -c 'sleep 1000 & echo $! >> "$1/pids"' sh "$1" &
exec sleep 1000
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url):
    req = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


def run(binary, cycles, cgroups):
    work = tempfile.mkdtemp(prefix="escape-cycles-")
    script = os.path.join(work, "escaper.sh")
    with open(script, "w") as f:
        f.write(ESCAPER)
    port = free_port()
    with open(os.path.join(work, "services.yml"), "w") as f:
        f.write(
            "version: 1\nsettings:\n  cgroups: %s\n  state_dir: state\nservices:\n"
            "  esc:\n    command: sh %s %s\n    autostart: false\n    stop_timeout: 5s\n"
            % ("true" if cgroups else "false", script, work)
        )
    daemon = subprocess.Popen(
        [binary, "up", "--config", work, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                status = get(base + "/api/v1/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        pids_file = os.path.join(work, "pids")
        started = time.time()
        for i in range(cycles):
            post(base + "/api/v1/services/esc/start")
            want = 2 * (i + 1)
            deadline = time.time() + 10
            while True:
                try:
                    with open(pids_file) as f:
                        if len(f.read().split()) >= want:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError(f"cycle {i}: the escapees never started")
                time.sleep(0.002)
            post(base + "/api/v1/services/esc/" + ("kill" if i % 2 else "stop"))
        elapsed = time.time() - started
        with open(pids_file) as f:
            pids = [int(p) for p in f.read().split()]
        left = [p for p in pids if alive(p)]
        mode = status["tracking"]["mode"]
        print(f"{mode:>13}: {cycles} cycles (stop/kill alternating) in {elapsed:.1f}s, "
              f"{len(pids)} escaped processes started, {len(left)} alive afterwards")
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--steward", default="target/debug/steward")
    args = parser.parse_args()
    for cgroups in (True, False):
        run(args.steward, args.cycles, cgroups)


if __name__ == "__main__":
    sys.exit(main())
