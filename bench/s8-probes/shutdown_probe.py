"""How long `steward up` takes to exit on SIGTERM with N services defined and none running
(`autostart: false`), from files of at most 5,000 services in services.d (issue 16, fifth
session: the stop-all fan-out and the actors' teardown, without any process to stop).
Prints the seconds from SIGTERM to exit.

    python3 bench/s8-probes/shutdown_probe.py target/release/steward 60000

Its files go to /tmp/s8p/shutdown-PORT; steward's log is steward.log there."""
import json, os, shutil, signal, subprocess, sys, time

BIN = sys.argv[1]
N = int(sys.argv[2])
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 18990
PER_FILE = 5000  # the loader's node budget per file allows about 33,000
D = f"/tmp/s8p/shutdown-{PORT}"
shutil.rmtree(D, ignore_errors=True)
os.makedirs(D + "/config/services.d")
with open(D + "/config/services.yml", "w") as f:
    f.write(f"version: 1\nsettings:\n  listen: 127.0.0.1:{PORT}\n  state_dir: {D}/state\n"
            "services: {}\n")
for k, first in enumerate(range(0, N, PER_FILE)):
    lines = ["version: 1", "services:"]
    for i in range(first, min(N, first + PER_FILE)):
        lines += [f"  s{i}:", '    argv: ["sleep", "3600"]', "    autostart: false"]
    with open(f"{D}/config/services.d/part-{k:03d}.yml", "w") as f:
        f.write("\n".join(lines) + "\n")

log_path = D + "/steward.log"
with open(log_path, "wb") as log:
    p = subprocess.Popen([BIN, "up", "--config", D + "/config"], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True,
                         env=dict(os.environ, STEWARD_LOG="info", NO_COLOR="1"))
deadline = time.monotonic() + 600
while time.monotonic() < deadline and p.poll() is None:
    with open(log_path, "rb") as f:
        if b"boot finished" in f.read():
            break
    time.sleep(0.1)
if p.poll() is not None:
    raise SystemExit(f"steward exited during boot (code {p.returncode}): see {log_path}")
time.sleep(2)  # let the boot's work settle
t0 = time.monotonic()
p.send_signal(signal.SIGTERM)
code = p.wait(600)
print(json.dumps({"n": N, "shutdown_s": round(time.monotonic() - t0, 2), "exit": code,
                  "load": os.getloadavg()[0]}))
