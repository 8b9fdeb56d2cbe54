"""S8's boot phase alone (issue 16): N services `sleep 3600` from 5 files of services.d;
GET /health/live every 50 ms from launch until N processes run; prints boot seconds and the
latencies of the answered requests (p50/p99/max, and the first slow ones with their time),
and steward's own CPU time (user + system, its threads only) until all ran (`cpu_s`).

    python3 bench/s8-probes/boot_probe.py target/release/steward 4000 18931

Its files go to /tmp/s8p/run-PORT. With KEEP=1 steward is left running (its pid printed).
With ALSO=PATH (e.g. ALSO=/) a second client asks GET PATH every 50 ms as well and its
latencies are printed beside (`also_*`): a route that does not go through the root actor
(the dashboard's page) tells waiting for a tokio worker or a core apart from waiting in the
root's mailbox. STATE_DIR=DIR puts steward's state directory (its pid records) there
instead, e.g. on a tmpfs to take the file system's inode allocation out (issue 16, fourth
session)."""
import json, os, subprocess, sys, time, threading, urllib.request, shutil, statistics, signal, socket
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import procs  # noqa: E402

BIN = sys.argv[1]
N = int(sys.argv[2])
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 18931
os.makedirs("/tmp/s8p", exist_ok=True)
D = f"/tmp/s8p/run-{PORT}"
shutil.rmtree(D, ignore_errors=True)
os.makedirs(D + "/config/services.d")
open(D + "/config/services.yml", "w").write(
    f"version: 1\nsettings:\n  listen: 127.0.0.1:{PORT}\n  state_dir: {os.environ.get('STATE_DIR', D + '/state')}\n  shutdown_timeout: 30s\nservices: {{}}\n")
per = (N + 4) // 5
for k in range(5):
    lines = ["version: 1", "services:"]
    for i in range(k * per, min(N, (k + 1) * per)):
        lines += [f"  s{i}:", '    argv: ["sleep", "3600"]']
    open(f"{D}/config/services.d/part-{k}.yml", "w").write("\n".join(lines) + "\n")

lat = []  # (t, ms)
also = []  # (t, ms) of ALSO
refused = 0
stop = threading.Event()
t0 = time.monotonic()
def watch(path="/health/live", into=lat):
    global refused
    while not stop.is_set():
        t = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=30) as r:
                r.read()
            into.append((t - t0, (time.monotonic() - t) * 1000))
        except OSError:
            refused += 1
        stop.wait(0.05)
th = threading.Thread(target=watch, daemon=True); th.start()
ALSO = os.environ.get("ALSO")
th2 = threading.Thread(target=watch, args=(ALSO, also), daemon=True) if ALSO else None
if th2: th2.start()
log = open(D + "/steward.log", "wb")
p = subprocess.Popen([BIN, "up", "--config", D + "/config"], stdout=log, stderr=subprocess.STDOUT,
                     env=dict(os.environ, STEWARD_LOG="info", NO_COLOR="1"), start_new_session=True)

table = procs.ProcTable()
def count():
    # The suite's incremental view of /proc: a `sleep` already seen is not read again (a
    # full scan every 50 ms took a third of both cores at 4,000).
    table.refresh()
    return sum(1 for i in table.procs.values() if i["ppid"] == p.pid and i["comm"] == "sleep")
deadline = time.monotonic() + 600
while count() < N and time.monotonic() < deadline and p.poll() is None:
    time.sleep(0.05)
boot = time.monotonic() - t0
try:  # steward's own CPU time (user + system) until all run: its threads, not its children
    _f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    cpu_s = round((int(_f[11]) + int(_f[12])) / os.sysconf("SC_CLK_TCK"), 2)
except OSError:
    cpu_s = None
stop.set(); th.join()
if th2: th2.join()
ms = [m for _, m in lat]
def pct(xs, q):
    xs = sorted(xs); return round(xs[min(len(xs)-1, int(q/100*len(xs)))], 1) if xs else None
print(json.dumps({"n": N, "boot_s": round(boot, 2), "cpu_s": cpu_s, "load": os.getloadavg()[0], "running": count(), "health_n": len(ms), "refused": refused,
                  "p50": pct(ms, 50), "p99": pct(ms, 99), "max": pct(ms, 100),
                  "slow": [(round(t, 2), round(m)) for t, m in lat if m > 50][:20],
                  **({"also": ALSO, "also_n": len(also), "also_p50": pct([m for _, m in also], 50),
                      "also_p99": pct([m for _, m in also], 99), "also_max": pct([m for _, m in also], 100)} if ALSO else {})}))
if os.environ.get("KEEP"):
    print("pid", p.pid, flush=True); p.wait()
p.send_signal(signal.SIGTERM)
try: p.wait(120)
except subprocess.TimeoutExpired: p.kill()
