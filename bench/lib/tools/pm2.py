"""PM2 adapter (npm `pm2`, installed in the suite's cache dir).

An ecosystem JSON with one app per service (`interpreter: none`, so PM2 spawns the command
itself), a private PM2_HOME per run. PM2's daemon (the "God Daemon", a node process)
detaches from the CLI, so the adapter finds it through PM2_HOME/pm2.pid.
Stop-everything: `pm2 stop all`. Fast profile: `restart_delay: 0`, `min_uptime: 0` and a
huge `max_restarts` (so 30 SIGKILLs are not counted as an unstable app); the crash-loop
profile keeps PM2's defaults.
"""

import json
import os
import subprocess

from .. import procs
from .base import Tool, Unavailable


class PM2(Tool):
    NAME = "pm2"
    COMMS = set()  # the daemon renames itself ("PM2 v7.0.4: God"): see supervision_pids

    def __init__(self, ctx, workdir):
        super().__init__(ctx, workdir)
        self.bin = os.path.join(ctx.cache, "npm", "node_modules", ".bin", "pm2")
        if not os.path.exists(self.bin):
            raise Unavailable(ctx.install_notes.get(self.NAME, "pm2 not installed"))
        self.home = os.path.join(self.dir, "h")
        os.makedirs(self.home, exist_ok=True)

    def env(self, extra=None):
        e = super().env(extra)
        e["PM2_HOME"] = self.home
        e["PM2_DISCRETE_MODE"] = "true"
        return e

    def version(self):
        pkg = os.path.join(self.ctx.cache, "npm", "node_modules", "pm2", "package.json")
        with open(pkg) as f:
            return json.load(f)["version"]

    def write_config(self, services, profile):
        apps = []
        for s in services:
            app = {"name": s.name, "script": s.argv[0], "args": s.argv[1:],
                   "interpreter": "none", "exec_mode": "fork",
                   "autorestart": s.restart != "never", "cwd": self.dir}
            if profile.kind == "fast":
                app.update(restart_delay=0, min_uptime=0, max_restarts=1000000)
            if s.log_file:
                app.update(out_file=s.log_file, error_file=s.log_file + ".err")
            apps.append(app)
        self.eco = os.path.join(self.dir, "ecosystem.json")
        with open(self.eco, "w") as f:
            json.dump({"apps": apps}, f)

    def launch(self):
        # `pm2 start` starts the daemon, hands it every app and returns.
        self.proc = self.spawn([self.bin, "start", self.eco], "pm2-start.log")

    def daemon_pid(self):
        try:
            with open(os.path.join(self.home, "pm2.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def roots(self):
        r = super().roots()
        d = self.daemon_pid()
        if d and procs.pid_alive(d):
            r.add(d)
        return r

    def supervision_pids(self, table):
        return {p for p in self.tree(table)
                if table.procs[p]["comm"].startswith("PM2") or table.procs[p]["comm"] == "node"}

    def stop_all(self):
        code = self.run_cmd([self.bin, "stop", "all"], timeout=300)
        return f"pm2 stop all (exit {code})"

    def jlist(self):
        out = subprocess.run([self.bin, "jlist"], capture_output=True, text=True, timeout=60,
                             env=self.env(), stdin=subprocess.DEVNULL)
        try:
            return json.loads(out.stdout[out.stdout.index("["):])
        except ValueError:
            return []

    def teardown(self):
        # No `pm2 kill`: with hundreds of apps it stops them one by one (minutes). The base
        # teardown SIGKILLs the daemon and every process below it (roots() includes it).
        super().teardown()
