"""Horust adapter (crates.io `horust`, `cargo install --locked` into the suite's cache).

One `NAME.toml` per service in a services directory; `horust --services-path DIR`.
Stop-everything: SIGTERM to horust (it stops every service, then exits). Fast profile:
`[restart] strategy = "always"`, `backoff = "0s"`, `attempts = 0`; crash-loop profile:
`strategy = "always"` with Horust's default backoff and attempts. For S3 Horust opens the
`stdout` file and hands it to the child, so the child writes the file itself.
"""

import json
import os
import re
import signal

from .. import procs
from .base import Tool, Unavailable, shell_line


class Horust(Tool):
    NAME = "horust"
    COMMS = {"horust"}

    def __init__(self, ctx, workdir):
        super().__init__(ctx, workdir)
        self.bin = os.path.join(ctx.cache, "cargo", "bin", "horust")
        if not os.path.exists(self.bin):
            raise Unavailable(ctx.install_notes.get(self.NAME, "horust not installed"))

    def version(self):
        # horust has no --version; cargo install records what it installed.
        try:
            with open(os.path.join(self.ctx.cache, "cargo", ".crates.toml")) as f:
                m = re.search(r'"horust ([^ ]+) ', f.read())
            return m.group(1) if m else "?"
        except OSError:
            return "?"

    def write_config(self, services, profile):
        self.sdir = os.path.join(self.dir, "services")
        os.makedirs(self.sdir, exist_ok=True)
        for s in services:
            lines = [f"command = {json.dumps(shell_line(s.argv))}"]
            if s.log_file:
                lines.append(f"stdout = {json.dumps(s.log_file)}")
            lines.append("[restart]")
            lines.append('strategy = "never"' if s.restart == "never" else 'strategy = "always"')
            if profile.kind == "fast":
                lines += ['backoff = "0s"', "attempts = 0"]
            # Horust clears the environment; pass the suite's marker variable through.
            lines += ["[environment]", f're-export = ["{procs.MARKER}"]']
            with open(os.path.join(self.sdir, f"{s.name}.toml"), "w") as f:
                f.write("\n".join(lines) + "\n")

    def launch(self):
        self.proc = self.spawn([self.bin, "--services-path", self.sdir,
                                "--uds-folder-path", self.dir], "horust.log")

    def stop_all(self):
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.wait_exit(self.proc, 120)
        return f"SIGTERM to horust (exit {code})"
