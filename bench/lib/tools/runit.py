"""runit adapter (Debian `runit`): `runsvdir` on a scan directory with one service
directory per service (`run` = `#!/bin/sh` + `exec COMMAND`), and for S3 a `log/run`
with svlogd.

Stop-everything: `sv stop SCANDIR/*` (which waits, up to its default 7 s, for each to be
down). runit has no restart delay to set.
"""

import glob
import os
import subprocess

from .base import Tool, Unavailable, shell_line
from .s6 import _script


class Runit(Tool):
    NAME = "runit"
    COMMS = {"runsvdir", "runsv", "svlogd"}

    def __init__(self, ctx, workdir):
        super().__init__(ctx, workdir)
        if not os.path.exists("/usr/bin/runsvdir"):
            raise Unavailable(ctx.install_notes.get(self.NAME, "runit not installed"))

    def version(self):
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "runit"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"

    def write_config(self, services, profile):
        self.scan = os.path.join(self.dir, "scan")
        os.makedirs(self.scan, exist_ok=True)
        for s in services:
            sd = os.path.join(self.scan, s.name)
            os.makedirs(sd, exist_ok=True)
            _script(os.path.join(sd, "run"), "exec " + shell_line(s.argv))
            if s.log_file:
                os.makedirs(os.path.join(sd, "log"), exist_ok=True)
                logdir = s.log_file + ".d"
                os.makedirs(logdir, exist_ok=True)
                with open(os.path.join(logdir, "config"), "w") as f:
                    f.write("s100000000\nn20\n")
                _script(os.path.join(sd, "log", "run"), f"exec svlogd {logdir}")

    def launch(self):
        self.proc = self.spawn(["runsvdir", self.scan], "runsvdir.log")

    def stop_all(self):
        dirs = sorted(glob.glob(os.path.join(self.scan, "*")))
        code = self.run_cmd(["sv", "stop"] + dirs, timeout=300)
        return f"sv stop SCANDIR/* (exit {code})"
