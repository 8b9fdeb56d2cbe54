"""Installs the peers from package registries, each with its ordinary client, into the
suite's cache dir. Already-installed peers are kept (a rerun installs nothing).

  supervisord  PyPI `supervisor`   python3 -m venv CACHE/venv && pip install supervisor
  pm2          npm `pm2`           npm install --prefix CACHE/npm pm2
  s6, runit    Debian              apt-get update && apt-get install -y s6 runit
  wrk          Debian              (the HTTP load generator for S7)
  horust       crates.io `horust`  cargo install horust --locked --root CACHE/cargo

A peer that cannot be installed is recorded with the reason (the last lines of its
installer's output) and the suite goes on without it.
"""

import os
import shutil
import subprocess


def _run(ctx, argv, log_name, timeout, env=None):
    log = os.path.join(ctx.cache, log_name)
    ctx.log("installing: " + " ".join(argv))
    with open(log, "w") as out:
        try:
            r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               timeout=timeout, env=env)
            code = r.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        except OSError as e:
            out.write(str(e))
            code = "missing"
    if code != 0:
        with open(log, errors="replace") as f:
            tail = " | ".join(f.read().strip().splitlines()[-3:])
        return f"`{' '.join(argv[:4])}` failed ({code}): {tail[-300:]}"
    return None


def install_all(ctx, peers):
    notes = {}
    c = ctx.cache
    apt = [p for p in ("s6", "runit") if p in peers and not shutil.which(
        "s6-svscan" if p == "s6" else "runsvdir")]
    if not shutil.which("wrk"):
        apt.append("wrk")
    if apt:
        err = _run(ctx, ["apt-get", "update"], "apt-update.log", 300) or \
            _run(ctx, ["apt-get", "install", "-y", "--no-install-recommends"] + apt,
                 "apt-install.log", 600, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if err:
            for p in apt:
                notes[p] = err
    if "supervisord" in peers and not os.path.exists(os.path.join(c, "venv", "bin", "supervisord")):
        err = _run(ctx, ["python3", "-m", "venv", os.path.join(c, "venv")], "venv.log", 120) or \
            _run(ctx, [os.path.join(c, "venv", "bin", "pip"), "install", "-q", "supervisor"],
                 "pip.log", 300)
        if err:
            notes["supervisord"] = err
    if "pm2" in peers and not os.path.exists(os.path.join(c, "npm", "node_modules", ".bin", "pm2")):
        if not shutil.which("npm"):
            notes["pm2"] = "npm is not installed (apt-get install npm)"
        else:
            err = _run(ctx, ["npm", "install", "--prefix", os.path.join(c, "npm"), "--no-audit",
                             "--no-fund", "pm2"], "npm.log", 600)
            if err:
                notes["pm2"] = err
    if "horust" in peers and not os.path.exists(os.path.join(c, "cargo", "bin", "horust")):
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(c, "horust-target"))
        err = _run(ctx, ["cargo", "install", "horust", "--locked", "--root",
                         os.path.join(c, "cargo")], "horust.log", 1200, env=env)
        if err:
            notes["horust"] = err
        else:
            shutil.rmtree(os.path.join(c, "horust-target"), ignore_errors=True)
    return notes
