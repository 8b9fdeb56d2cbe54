"""s6 adapter (Debian `s6`): `s6-svscan` on a scan directory with one service directory
per service (`run` = `#!/bin/sh` + `exec COMMAND`), and for S3 a `log/run` with s6-log.

Stop-everything: `s6-svscanctl -t SCANDIR` (the supervision tree brings every service down
and exits). s6 has no restart delay to set: s6-supervise waits 1 s before restarting a
service that ran for less than 1 s.
"""

import os
import subprocess

from .base import Tool, Unavailable, shell_line


def _script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)


class S6(Tool):
    NAME = "s6"
    COMMS = {"s6-svscan", "s6-supervise", "s6-log"}

    def __init__(self, ctx, workdir):
        super().__init__(ctx, workdir)
        if not os.path.exists("/usr/bin/s6-svscan"):
            raise Unavailable(ctx.install_notes.get(self.NAME, "s6 not installed"))

    def version(self):
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "s6"], capture_output=True,
                             text=True, timeout=10)
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
                _script(os.path.join(sd, "log", "run"), f"exec s6-log -b n20 s100000000 {logdir}")

    def launch(self):
        # s6-svscan supervises at most 500 service dirs unless told more (-c); a logged
        # service counts twice.
        limit = max(500, 2 * len(self.services) + 10)
        self.proc = self.spawn(["s6-svscan", "-c", str(limit), self.scan], "s6-svscan.log")

    def stop_all(self):
        code = self.run_cmd(["s6-svscanctl", "-t", self.scan], timeout=60)
        return f"s6-svscanctl -t (exit {code})"
