"""Process helpers for the benchmark suite, all read from /proc.

What lives here:
  * ProcTable  - an incremental view of /proc (pid -> ppid, comm, cmdline), cheap to refresh
                 in a polling loop: only pids not seen before are read.
  * descendants / tool process classification (service vs supervision process);
  * memory of a set of processes: RSS and PSS from /proc/PID/smaps_rollup;
  * CPU of a set of processes: nanoseconds on CPU from /proc/PID/task/*/schedstat, and
    utime+stime ticks from /proc/PID/stat (which also counts threads that have exited);
  * wait_until: the only way the suite waits (a bounded poll with a deadline);
  * cleanup: kill process groups and every process carrying this run's marker variable.

Nothing here sleeps in place of an event: every wait polls a condition until a deadline.
"""

import os
import signal
import time

MARKER = "STEWARD_BENCH_RUN"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Deadline(Exception):
    """A bounded wait ran out of time."""


def wait_until(cond, timeout, interval=0.002, what="condition"):
    """Polls cond() until it returns a truthy value; returns (value, seconds waited).

    Between polls it sleeps `interval`, or twice as long as the poll itself took if that is
    more, so the poller never takes more than a third of a core from what it measures.
    Raises Deadline after `timeout` seconds.
    """
    start = time.monotonic()
    end = start + timeout
    while True:
        t0 = time.monotonic()
        value = cond()
        if value:
            return value, time.monotonic() - start
        now = time.monotonic()
        if now >= end:
            raise Deadline(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(max(interval, 2 * (now - t0)))


def read_stat(pid):
    """(comm, state, ppid, pgid, utime+stime ticks, starttime) or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm is between the first '(' and the last ')': it may hold spaces or parens.
    lpar = data.index(b"(")
    rpar = data.rindex(b")")
    comm = data[lpar + 1:rpar].decode(errors="replace")
    rest = data[rpar + 2:].split()
    state = rest[0].decode()
    ppid = int(rest[1])
    pgid = int(rest[2])
    ticks = int(rest[11]) + int(rest[12])
    starttime = int(rest[19])
    return comm, state, ppid, pgid, ticks, starttime


def read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def pid_alive(pid):
    st = read_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


class ProcTable:
    """An incremental snapshot of /proc.

    refresh() lists /proc and reads stat+cmdline only of pids it has not seen. A young
    process (seen less than YOUNG seconds ago) may still exec (fork, then exec a run
    script, then exec the service): its stat is read again at each refresh, and its
    cmdline again whenever its comm has changed, unless it already runs `sleep` (the
    services' program, final). Zombies count as gone.
    """

    YOUNG = 15.0

    def __init__(self):
        self.procs = {}  # pid -> dict(comm, ppid, cmdline, start, seen)

    def refresh(self):
        try:
            names = os.listdir("/proc")
        except OSError:
            return self
        now = time.monotonic()
        live = set()
        for name in names:
            if not name.isdigit():
                continue
            pid = int(name)
            info = self.procs.get(pid)
            if info is not None and ((info["comm"] == "sleep" and info["cmdline"])
                                     or now - info["seen"] > self.YOUNG):
                live.add(pid)
                continue
            st = read_stat(pid)
            if st is None or st[1] in ("Z", "X"):
                continue
            comm, _state, ppid, _pgid, _ticks, start = st
            live.add(pid)
            if info is None or info["start"] != start:
                self.procs[pid] = {"comm": comm, "ppid": ppid, "start": start,
                                   "cmdline": read_cmdline(pid), "seen": now}
            elif info["comm"] != comm or info["ppid"] != ppid or not info["cmdline"]:
                # (an empty cmdline: caught in the middle of an exec)
                info.update(comm=comm, ppid=ppid, cmdline=read_cmdline(pid))
        for pid in list(self.procs):
            if pid not in live:
                del self.procs[pid]
        return self

    def recheck(self, pid):
        """Re-reads one pid (comm, ppid, cmdline); False if it is gone."""
        st = read_stat(pid)
        if st is None or st[1] in ("Z", "X"):
            self.procs.pop(pid, None)
            return False
        info = self.procs.setdefault(pid, {"seen": time.monotonic()})
        info.update(comm=st[0], ppid=st[2], start=st[5], cmdline=read_cmdline(pid))
        return True

    def descendants(self, roots):
        """Every live pid below (and including) the given roots."""
        roots = {r for r in roots if r in self.procs}
        children = {}
        for pid, info in self.procs.items():
            children.setdefault(info["ppid"], []).append(pid)
        out, stack = set(), list(roots)
        while stack:
            pid = stack.pop()
            if pid in out:
                continue
            out.add(pid)
            stack.extend(children.get(pid, ()))
        return out

    def matching(self, pids, cmdline):
        """The pids among `pids` whose cmdline is `cmdline` (bytes, NUL-separated), the
        program compared by its base name (PM2 runs `sleep` as `/usr/bin/sleep`)."""
        want = normalize(cmdline)
        return {p for p in pids if normalize(self.procs.get(p, {}).get("cmdline")) == want}


def normalize(cmdline):
    """A cmdline with its program reduced to the base name."""
    if not cmdline:
        return cmdline
    prog, sep, rest = cmdline.partition(b"\0")
    return prog.rsplit(b"/", 1)[-1] + sep + rest


def argv_bytes(argv):
    return b"".join(a.encode() + b"\0" for a in argv)


SLEEP_ARGV = argv_bytes(["sleep", "3600"])


def memory(pids):
    """Sum of RSS and PSS in KiB over the pids (from smaps_rollup), and per-pid detail."""
    total_rss = total_pss = 0
    detail = {}
    for pid in pids:
        rss = pss = None
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss = int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss = int(line.split()[1])
        except OSError:
            continue
        if rss is None or pss is None:
            continue
        total_rss += rss
        total_pss += pss
        st = read_stat(pid)
        detail[pid] = {"comm": st[0] if st else "?", "rss_kib": rss, "pss_kib": pss}
    return {"rss_kib": total_rss, "pss_kib": total_pss, "processes": len(detail),
            "detail": detail}


def cpu_ns(pid):
    """Nanoseconds on CPU of the live threads of pid (schedstat), or None if gone."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu_sample(pids):
    """{pid: (schedstat ns, stat ticks)} for the pids still alive."""
    out = {}
    for pid in pids:
        st = read_stat(pid)
        ns = cpu_ns(pid)
        if st is None or ns is None:
            continue
        out[pid] = (ns, st[4])
    return out


def cpu_delta(before, after):
    """CPU used between two samples by the pids present in both: (ms from schedstat, ms
    from ticks)."""
    ns = ticks = 0
    for pid, (ns1, t1) in after.items():
        if pid in before:
            ns0, t0 = before[pid]
            ns += max(0, ns1 - ns0)
            ticks += max(0, t1 - t0)
    return ns / 1e6, ticks * 1000.0 / CLK_TCK


def killpg_quiet(pgid, sig=signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_quiet(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def marked_pids(tag, prefix=False):
    """Live pids whose environment holds MARKER=tag (every process the suite started,
    and their descendants, inherit it). With prefix, MARKER=tag... matches too."""
    needle = f"{MARKER}={tag}".encode()
    me = os.getpid()
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        entries = env.split(b"\0")
        if any(e == needle or (prefix and e.startswith(needle)) for e in entries):
            st = read_stat(int(name))
            if st and st[1] not in ("Z", "X"):
                out.add(int(name))
    return out


def sweep(tag, extra_pids=(), timeout=5.0, prefix=False):
    """Kills every process carrying the marker `tag` (or listed) and waits until none is
    left. Returns the number of processes that had to be killed.
    """
    victims = set(extra_pids) | marked_pids(tag, prefix)
    victims = {p for p in victims if pid_alive(p) and p != os.getpid()}
    for p in victims:
        kill_quiet(p)
    try:
        wait_until(lambda: not any(pid_alive(p) for p in victims)
                   and not marked_pids(tag, prefix), timeout, 0.02, "leftover processes to die")
    except Deadline:
        for p in marked_pids(tag, prefix):
            kill_quiet(p)
    return len(victims)
