"""Issue 16, item 3: RSS of N services (not started) loaded from 5 files, against the same
N defined one by one over POST /api/v1/services in an empty runtime.

    python3 bench/s8-probes/load_probe.py target/release/steward 10000 18940

Its files go to /tmp/s8p/load-PORT."""
import json, os, subprocess, sys, time, shutil, signal, http.client
BIN, N, PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cfg(D, n):
    shutil.rmtree(D, ignore_errors=True); os.makedirs(D + "/config/services.d")
    open(D + "/config/services.yml", "w").write(
        f"version: 1\nsettings:\n  listen: 127.0.0.1:{PORT}\n  state_dir: {D}/state\n  max_services: {N + 10}\nservices: {{}}\n")
    per = (n + 4) // 5
    for k in range(5):
        lines = ["version: 1", "services:" if n else "services: {}"]
        for i in range(k * per, min(n, (k + 1) * per)):
            lines += [f"  s{i}:", '    argv: ["sleep", "3600"]', "    autostart: false"]
        open(f"{D}/config/services.d/part-{k}.yml", "w").write("\n".join(lines) + "\n")
def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
def up(D):
    p = subprocess.Popen([BIN, "up", "--config", D + "/config"], stdout=open(D + "/log", "wb"), stderr=subprocess.STDOUT,
                         env=dict(os.environ, STEWARD_LOG="warn", NO_COLOR="1"), start_new_session=True)
    t0 = time.monotonic()
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
            c.request("GET", "/health/live"); r = c.getresponse(); r.read(); return p, c, time.monotonic() - t0
        except OSError: time.sleep(0.05)
os.makedirs("/tmp/s8p", exist_ok=True)
D = f"/tmp/s8p/load-{PORT}"
cfg(D, N); p, c, took = up(D); time.sleep(3)
files = rss(p.pid); print(json.dumps({"from_files_kib": files, "load_s": round(took, 1)}), flush=True)
p.send_signal(signal.SIGTERM); p.wait(120)
cfg(D, 0); p, c, _ = up(D); time.sleep(1)
empty = rss(p.pid)
t0 = time.monotonic()
for i in range(N):
    c.request("POST", "/api/v1/services", body=json.dumps({"id": f"s{i}", "argv": ["sleep", "3600"], "autostart": False}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 201: print("define failed", r.status); break
time.sleep(3)
one = rss(p.pid)
print(json.dumps({"N": N, "empty_kib": empty, "from_files_kib": files, "one_by_one_kib": one,
                  "define_s": round(time.monotonic() - t0, 1), "ratio": round(files / one, 2)}), flush=True)
p.send_signal(signal.SIGTERM); p.wait(120)
