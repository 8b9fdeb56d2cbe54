"""steward adapter: `steward up --config DIR` with DIR/services.yml (one file, N services).

Stop-everything: SIGTERM to `steward up` (it stops every service, process groups included,
then exits 0), or `POST /api/v1/lifecycle/stop` when the HTTP API answers.
"""

import json
import os
import re
import signal
import subprocess
import urllib.request

from .base import Tool, Unavailable


def _yaml_str(s):
    return json.dumps(s)  # a JSON string is a valid YAML scalar


class Steward(Tool):
    NAME = "steward"
    COMMS = {"steward"}  # tokio worker threads are threads, not processes

    def __init__(self, ctx, workdir):
        super().__init__(ctx, workdir)
        self.bin = ctx.steward_bin
        if not self.bin or not os.path.exists(self.bin):
            raise Unavailable("steward release binary not built")
        self.port = ctx.free_port()
        # True: run benches/api_server.rs (the library + its HTTP API) instead of
        # `steward up`, for the scenarios that need the API while `steward up` lacks it.
        self.use_api_program = False

    def version(self):
        out = subprocess.run([self.bin, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().split()[-1] if out.returncode == 0 else "?"

    def write_config(self, services, profile):
        cfg = os.path.join(self.dir, "config")
        os.makedirs(cfg, exist_ok=True)
        lines = ["version: 1", "settings:",
                 f"  listen: 127.0.0.1:{self.port}",
                 f"  state_dir: {_yaml_str(os.path.join(self.dir, 'state'))}",
                 "  shutdown_timeout: 30s",
                 "services:" if services else "services: {}"]
        for s in services:
            lines.append(f"  {s.name}:")
            lines.append("    argv: [" + ", ".join(_yaml_str(a) for a in s.argv) + "]")
            if s.restart == "never":
                lines.append("    restart: temporary")
            elif profile.kind == "crashloop":
                # What the issue asks of steward in S6: follow the configured backoff
                # exactly and give up per the intensity, saying why.
                lines += ["    restart: permanent",
                          "    backoff: [100ms, 200ms, 500ms, 1s]",
                          "    max_restarts: 10", "    restart_window: 1m"]
            else:
                lines += ["    restart: permanent", "    backoff: [0s]",
                          "    max_restarts: 1000000", "    restart_window: 1s"]
            if s.log_file:
                lines += [f"    log_file: {_yaml_str(s.log_file)}",
                          "    log_max_size: 1GiB", "    log_max_files: 5"]
            if s.probe_port:
                lines += ["    liveness:", f"      tcp: 127.0.0.1:{s.probe_port}",
                          "      interval: 1s"]
        with open(os.path.join(cfg, "services.yml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.config_dir = cfg

    def supervision_pids(self, table):
        return {p for p in self.tree(table)
                if table.procs[p]["comm"] == "steward" or table.procs[p]["comm"].startswith("api_server")}

    def launch(self):
        if self.use_api_program:
            argv = [self.ctx.steward_api_bin, "--config", self.config_dir,
                    "--listen", f"127.0.0.1:{self.port}"]
        else:
            argv = [self.bin, "up", "--config", self.config_dir]
        self.proc = self.spawn(argv, "steward.log",
                               extra_env={"STEWARD_LOG": "info", "NO_COLOR": "1"})

    def api_url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def api_up(self):
        try:
            with urllib.request.urlopen(self.api_url("/health/live"), timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop_all(self, via="sigterm"):
        if via == "api":
            req = urllib.request.Request(self.api_url("/api/v1/lifecycle/stop"), method="POST",
                                         data=b"")
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            return "POST /api/v1/lifecycle/stop"
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.wait_exit(self.proc, 60)
        return f"SIGTERM to steward up (exit {code})"

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "steward.log"), errors="replace") as f:
                return re.sub(r"\x1b\[[0-9;]*m", "", f.read())
        except OSError:
            return ""


class StewardBaseline(Steward):
    """Another steward build (`bench/run --baseline BIN:LABEL`), measured the same way in the
    same run, so a change is judged against the code before it under the same load. The
    binary must be named `steward` (its processes are found by that name)."""
    NAME = "steward-base"

    def __init__(self, ctx, workdir):
        super().__init__(ctx, workdir)
        self.bin = getattr(ctx, "baseline_bin", None)
        if not self.bin or not os.path.exists(self.bin):
            raise Unavailable("no --baseline binary given")

    def version(self):
        return f"{super().version()} ({self.ctx.baseline_label})"


def detect_api(ctx):
    """True when this steward build serves the HTTP API (boots an empty config and asks
    /health/live for up to 5 s)."""
    from .. import procs
    tool = Steward(ctx, ctx.workdir("steward-api-probe"))
    try:
        tool.setup([])
        tool.launch()
        try:
            procs.wait_until(tool.api_up, 5.0, 0.05, "steward's HTTP API")
            return True
        except procs.Deadline:
            return False
    finally:
        tool.teardown()
