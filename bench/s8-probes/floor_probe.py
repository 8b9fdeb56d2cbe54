"""S8's shell floor alone (issue 16): what `/bin/sh` takes to start N `sleep 3600` in the
background, one line each (S1's method, as bench/lib/tools/shell.py runs it), counted until
N children of the shell run; prints the seconds beside the load average, for comparing
with boot_probe.py's `boot_s` in the same minute.

    python3 bench/s8-probes/floor_probe.py 4000
"""
import json, os, signal, subprocess, sys, time, shutil
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import procs  # noqa: E402

N = int(sys.argv[1])
D = "/tmp/s8p/floor"
shutil.rmtree(D, ignore_errors=True)
os.makedirs(D)
script = os.path.join(D, "spawn.sh")
with open(script, "w") as f:
    f.write("sleep 3600 &\n" * N + "wait\n")


table = procs.ProcTable()
def count(parent):
    # The suite's incremental view of /proc, as boot_probe.py counts.
    table.refresh()
    return sum(1 for i in table.procs.values() if i["ppid"] == parent and i["comm"] == "sleep")


t0 = time.monotonic()
p = subprocess.Popen(["/bin/sh", script], start_new_session=True)
deadline = t0 + 600
while count(p.pid) < N and time.monotonic() < deadline:
    time.sleep(0.05)
floor = time.monotonic() - t0
print(json.dumps({"n": N, "floor_s": round(floor, 2), "load": os.getloadavg()[0]}))
os.killpg(p.pid, signal.SIGTERM)
p.wait(30)
