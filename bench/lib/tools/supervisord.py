"""supervisord adapter (PyPI `supervisor`, installed in the suite's cache venv).

One supervisord.conf with a [program:x] per service, run in the foreground (`-n`).
Stop-everything: `supervisorctl stop all`. Restart settings: `autorestart=true`, and for
the fast profile `startsecs=0` (a process counts as started at once, so a SIGKILL is
restarted without a "spawn error" back-off); the crash-loop profile keeps the defaults
(`startsecs=1`, `startretries=3`). Child logs keep their defaults (AUTO files) except S3.
"""

import os
import subprocess

from .base import Tool, Unavailable, shell_line


class Supervisord(Tool):
    NAME = "supervisord"
    COMMS = {"supervisord"}

    def __init__(self, ctx, workdir):
        super().__init__(ctx, workdir)
        self.bin = os.path.join(ctx.cache, "venv", "bin", "supervisord")
        self.ctl = os.path.join(ctx.cache, "venv", "bin", "supervisorctl")
        if not os.path.exists(self.bin):
            raise Unavailable(ctx.install_notes.get(self.NAME, "supervisor not installed"))
        self.http_port = ctx.free_port()

    def version(self):
        out = subprocess.run([self.bin, "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or "?"

    def write_config(self, services, profile):
        d = self.dir
        os.makedirs(os.path.join(d, "childlogs"), exist_ok=True)
        self.conf = os.path.join(d, "supervisord.conf")
        out = [
            "[unix_http_server]", f"file={d}/supervisor.sock", "",
            "[inet_http_server]", f"port=127.0.0.1:{self.http_port}", "",
            "[supervisord]", "nodaemon=true", f"logfile={d}/supervisord.log",
            f"pidfile={d}/supervisord.pid", f"childlogdir={d}/childlogs",
            "minfds=16384", "minprocs=8192", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{d}/supervisor.sock", "",
        ]
        for s in services:
            out.append(f"[program:{s.name}]")
            out.append("command=" + shell_line(s.argv).replace("%", "%%"))  # % is interpolation
            out.append("autostart=true")
            if s.restart == "never":
                out.append("autorestart=false")
            else:
                out.append("autorestart=true")
                if profile.kind == "fast":
                    out.append("startsecs=0")
            if s.log_file:
                out += [f"stdout_logfile={s.log_file}", "stdout_logfile_maxbytes=0",
                        "stdout_logfile_backups=0"]
            out.append("")
        with open(self.conf, "w") as f:
            f.write("\n".join(out))

    def launch(self):
        self.proc = self.spawn([self.bin, "-n", "-c", self.conf], "supervisord.out")

    def stop_all(self):
        code = self.run_cmd([self.ctl, "-c", self.conf, "stop", "all"], timeout=300)
        return f"supervisorctl stop all (exit {code})"

    def xmlrpc_url(self):
        return f"http://127.0.0.1:{self.http_port}/RPC2"
