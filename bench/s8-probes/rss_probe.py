"""S8's memory phases alone (issue 16): RSS of an empty `steward up`; then N services
booted from files, the list and /metrics read 10 times each, stop all, remove all one by
one over the API; RSS after each, and after remove-all as a multiple of the empty runtime
(with the largest mappings from smaps).

    python3 bench/s8-probes/rss_probe.py target/release/steward 4000 18933

Its files go to /tmp/s8p/rss-PORT. With KEEP=1 steward is left running (its pid printed).

Profiling what stays after remove-all (issue 16, fourth session):
* MALLOC_STATS=1: `gdb -p` calls glibc's `malloc_stats()` in steward at the empty runtime and
  after remove-all and prints the heap's "system bytes" (taken from the kernel) and "in use
  bytes" (live blocks); the rest is free space inside the heap.
* HEAPTRACK=FILE: steward runs under `heaptrack -o FILE` and is killed with SIGKILL right
  after remove-all, so the trace's "leaked" allocations are exactly the blocks still live
  then: `heaptrack_print --print-leaks FILE.zst` names their call stacks. (RSS figures in
  this mode include heaptrack's own and are not comparable.)
Any GLIBC_TUNABLES in the environment reach steward (e.g. glibc.malloc.mmap_threshold)."""
import json, os, subprocess, sys, time, urllib.request, shutil, signal, http.client
BIN, N, PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs("/tmp/s8p", exist_ok=True)
D = f"/tmp/s8p/rss-{PORT}"
def cfg(n):
    shutil.rmtree(D, ignore_errors=True)
    os.makedirs(D + "/config/services.d")
    open(D + "/config/services.yml", "w").write(
        f"version: 1\nsettings:\n  listen: 127.0.0.1:{PORT}\n  state_dir: {D}/state\n  shutdown_timeout: 30s\nservices: {{}}\n")
    per = (n + 4) // 5
    for k in range(5):
        lines = ["version: 1", "services:" if n else "services: {}"]
        for i in range(k * per, min(n, (k + 1) * per)):
            lines += [f"  s{i}:", '    argv: ["sleep", "3600"]']
        open(f"{D}/config/services.d/part-{k}.yml", "w").write("\n".join(lines) + "\n")
def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
def smaps(pid):
    out = {}
    cur = None
    for l in open(f"/proc/{pid}/smaps"):
        parts = l.split()
        if len(parts) >= 5 and "-" in parts[0]:
            cur = parts[5] if len(parts) > 5 else "[anon]"
        elif parts[0] == "Rss:":
            out[cur] = out.get(cur, 0) + int(parts[1])
    return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1])[:6]}
HEAPTRACK = os.environ.get("HEAPTRACK")
def heap(pid, tag):
    """glibc's own account of the heap, printed by malloc_stats() into steward's log."""
    if not os.environ.get("MALLOC_STATS"): return
    log = D + "/steward.log"; start = os.path.getsize(log)
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void)malloc_stats()"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    text = open(log, "rb").read()[start:].decode(errors="replace")
    total = [l for l in text.splitlines() if l.startswith(("Total (incl. mmap)", "system bytes", "in use bytes", "max mmap"))]
    print("heap", tag, " | ".join(l.strip() for l in total[-5:]), flush=True)
def up(n):
    cfg(n)
    log = open(D + "/steward.log", "wb")
    argv = [BIN, "up", "--config", D + "/config"]
    if HEAPTRACK: argv = ["heaptrack", "-o", HEAPTRACK] + argv
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, STEWARD_LOG=os.environ.get("STEWARD_LOG", "info"), NO_COLOR="1"), start_new_session=True)
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300)
    for _ in range(6000):
        try:
            c.request("GET", "/health/live"); r = c.getresponse(); r.read(); break
        except OSError:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300); time.sleep(0.05)
    return p, c
def req(c, m, path, body=None):
    t = time.monotonic(); c.request(m, path, body=body); r = c.getresponse(); d = r.read()
    return r.status, d, (time.monotonic() - t) * 1000
def steward_pid(p):
    """steward's own pid: under heaptrack, the `steward` process in its session."""
    if not HEAPTRACK: return p.pid
    for _ in range(600):
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.getsid(int(d)) == p.pid and open(f"/proc/{d}/comm").read().strip() == os.path.basename(BIN)[:15]:
                        return int(d)
                except OSError: pass
        time.sleep(0.1)
    raise SystemExit("no steward process under heaptrack")
p, c = up(0); time.sleep(2); sp = steward_pid(p); empty = rss(sp); print("empty", empty, smaps(sp), flush=True)
heap(sp, "empty")
p.send_signal(signal.SIGTERM) if not HEAPTRACK else os.kill(sp, signal.SIGTERM); p.wait()
p, c = up(N)
sp = steward_pid(p)
while True:
    st, d, _ = req(c, "GET", "/api/v1/status")
    s = json.loads(d)
    if s.get("counts", {}).get("running", 0) >= N: break
    time.sleep(0.5)
time.sleep(2)
print("at N", rss(sp), flush=True)
ls = [req(c, "GET", "/api/v1/services")[2] for _ in range(10)]
st, d, _ = req(c, "GET", "/api/v1/services"); print("list bytes", len(d), "ms", sorted(ls)[5])
ms = [req(c, "GET", "/metrics")[2] for _ in range(10)]; print("metrics ms", sorted(ms)[5])
print("after reads", rss(sp), flush=True)
t = time.monotonic(); req(c, "POST", "/api/v1/lifecycle/stop", b""); print("stop s", round(time.monotonic() - t, 1))
time.sleep(1); print("after stop", rss(sp))
t = time.monotonic()
for i in range(N): req(c, "DELETE", f"/api/v1/services/s{i}")
print("remove s", round(time.monotonic() - t, 1))
time.sleep(3)
after = rss(sp)
print("after remove", after, "x empty", round(after / empty, 2), smaps(sp), flush=True)
heap(sp, "after remove")
if HEAPTRACK:
    os.kill(sp, signal.SIGKILL); p.wait(600)
    print("trace", HEAPTRACK, "- heaptrack_print --print-leaks 1 on it lists what stayed", flush=True)
    sys.exit(0)
if os.environ.get("KEEP"): print("pid", p.pid); p.wait()
p.send_signal(signal.SIGTERM); p.wait(60)
