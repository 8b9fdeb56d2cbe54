"""What every tool adapter does: write its config for N services, start, stop-all, tear down.

A scenario describes its services as `Service` records (same commands for every tool); an
adapter turns them into the tool's own config. Adapters never wait with a bare sleep: they
poll with procs.wait_until.

Process accounting: `supervision_pids(table)` returns the tool's own processes (the ones
that are not services): descendants of the adapter's roots whose `comm` is one of the
tool's program names (`COMMS`). Services are everything else below the roots.
"""

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

from .. import procs


@dataclass
class Service:
    """One service, the same for every tool."""
    name: str
    argv: list
    restart: str = "always"        # always | never
    log_file: str = None           # S3: a file sink for stdout
    probe_port: int = None         # S5 (steward only): a 1 s TCP liveness probe


@dataclass
class Profile:
    """How restarts behave. `fast`: the smallest backoff and no give-up (S1-S5);
    `crashloop`: the tool's own defaults for giving up, steward's configured backoff (S6)."""
    kind: str = "fast"


class Unavailable(Exception):
    """The tool is not installed (the reason says why)."""


class Tool:
    NAME = "?"
    COMMS = set()

    def __init__(self, ctx, workdir):
        self.ctx = ctx
        self.dir = workdir
        os.makedirs(self.dir, exist_ok=True)
        self.popens = []
        self.services = []
        self.profile = Profile()
        self.seen_pids = set()
        ctx.counter += 1
        # Every process this adapter starts carries this marker in its environment.
        self.tag = f"{ctx.run_id}/{self.NAME}/{ctx.counter}"

    # --- what adapters implement -------------------------------------------------------
    def write_config(self, services, profile):
        raise NotImplementedError

    def launch(self):
        """Starts the supervisor; returns as soon as it is launched (not when ready)."""
        raise NotImplementedError

    def stop_all(self):
        """The tool's normal stop-everything command; returns when that command returns.
        Returns a short description of what was done."""
        raise NotImplementedError

    def roots(self):
        """Pids at the top of the tool's process tree."""
        return {p.pid for p in self.popens if p.poll() is None}

    # --- shared ---------------------------------------------------------------------------
    def setup(self, services, profile=None):
        self.services = services
        self.profile = profile or Profile()
        self.write_config(services, self.profile)

    def env(self, extra=None):
        env = dict(os.environ)
        env[procs.MARKER] = self.tag
        env.update(extra or {})
        return env

    def spawn(self, argv, log_name, extra_env=None, cwd=None):
        """Starts a long-running process of the tool in its own session (own group)."""
        out = open(os.path.join(self.dir, log_name), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=self.env(extra_env), cwd=cwd or self.dir, start_new_session=True)
        out.close()
        self.popens.append(p)
        return p

    def run_cmd(self, argv, timeout=120, extra_env=None):
        """Runs a short control command to completion (bounded)."""
        with open(os.path.join(self.dir, "control.log"), "ab") as out:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  env=self.env(extra_env), cwd=self.dir, timeout=timeout,
                                  start_new_session=True).returncode

    def tree(self, table):
        pids = table.descendants(self.roots())
        self.seen_pids |= pids
        return pids

    def supervision_pids(self, table):
        return {p for p in self.tree(table) if table.procs[p]["comm"] in self.COMMS}

    def service_pids(self, table, argv_bytes):
        return table.matching(self.tree(table), argv_bytes)

    def teardown(self):
        """Kills everything the tool started (no grace: measurements are over) and checks
        that nothing of it is left."""
        for p in self.popens:
            procs.killpg_quiet(p.pid)
        table = procs.ProcTable().refresh()
        leftovers = table.descendants(self.roots()) | self.seen_pids
        for p in self.popens:
            procs.kill_quiet(p.pid)
        for pid in leftovers:
            procs.kill_quiet(pid)
        for p in self.popens:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.popens = []
        self.seen_pids = set()
        procs.sweep(self.tag, leftovers)

    def wait_exit(self, popen, timeout):
        """Waits (bounded) for a launched process to exit; returns its exit code or None."""
        try:
            return popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_root(self, sig=signal.SIGTERM):
        for p in self.popens:
            if p.poll() is None:
                procs.kill_quiet(p.pid, sig)

    def version(self):
        return "?"


def shell_line(argv):
    import shlex
    return shlex.join(argv)


def now():
    return time.monotonic()
