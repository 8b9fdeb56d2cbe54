"""The floor: a plain shell loop that spawns the same N commands in the background and
waits. No supervision at all (no restarts, no logs); S1 compares against it."""

import os

from .base import Tool, shell_line


class ShellFloor(Tool):
    NAME = "shell"
    COMMS = {"sh", "dash", "bash"}

    def version(self):
        return "/bin/sh (dash)" if os.path.realpath("/bin/sh").endswith("dash") else "/bin/sh"

    def write_config(self, services, profile):
        body = "".join(f"{shell_line(s.argv)} &\n" for s in services)
        self.script = os.path.join(self.dir, "spawn.sh")
        with open(self.script, "w") as f:
            f.write(body + "wait\n")

    def launch(self):
        self.proc = self.spawn(["/bin/sh", self.script], "shell.log")

    def stop_all(self):
        import signal
        from .. import procs
        procs.killpg_quiet(self.proc.pid, signal.SIGTERM)
        self.wait_exit(self.proc, 10)
        return "SIGTERM to the shell's process group"
