#!/usr/bin/env python3
"""Times the dashboard with 1000 services in Debian's headless Chromium (issue 11).

Run: `python3 bench/dashboard.py [--services 1000] [--runs 3]` from the repository (it uses
target/release/steward when present, else target/debug/steward, or $STEWARD_BIN; selenium
as tests/dashboard/run.py sets it up). It boots N `sleep` services under a real
`steward up`, then for each run opens a fresh page and measures:

* first render: navigation start → every card on the page (the page's
  `steward:first-render` performance mark, taken after the list answer is drawn);
* idle: the longest frame gap over 11 s without events (two of the page's 5 s list
  re-reads, which move every card's uptime and sparklines);
* pause burst: `POST /api/v1/lifecycle/pause` (N `paused` events over the one SSE stream) →
  every card shows `paused`, and the longest gap between animation frames meanwhile (what a
  person would feel as a freeze); the same for resume.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "dashboard"))
import run as tests  # noqa: E402,F401  (sets up selenium in target/dashboard-venv)
import harness  # noqa: E402


def pick_binary():
    if "STEWARD_BIN" in os.environ:
        return os.environ["STEWARD_BIN"]
    release = os.path.join(ROOT, "target", "release", "steward")
    return release if os.path.exists(release) else os.path.join(ROOT, "target", "debug", "steward")


FRAME_WATCH = """
window.__maxGap = 0; window.__watch = true;
let last = performance.now();
const tick = (t) => { window.__maxGap = Math.max(window.__maxGap, t - last); last = t;
  if (window.__watch) requestAnimationFrame(tick); };
requestAnimationFrame(tick);
window.__longest = 0; window.__longSum = 0;
if (!window.__observer) {
  window.__observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) {
    window.__longest = Math.max(window.__longest, e.duration); window.__longSum += e.duration; } });
  window.__observer.observe({ type: 'longtask' });
}
"""


def burst(daemon, browser, verb, status, n):
    browser.js(FRAME_WATCH)
    started = time.monotonic()
    code, _ = daemon.api("POST", f"/api/v1/lifecycle/{verb}")
    assert code == 200, code
    harness.wait_for(f"{n} cards {status}", lambda: browser.js(
        f"return document.querySelectorAll('.card[data-status={status}]').length") == n, deadline=120)
    elapsed = time.monotonic() - started
    browser.js("window.__watch = false")
    print(f"  {verb}: longest task {browser.js('return window.__longest'):.0f} ms, long tasks total {browser.js('return window.__longSum'):.0f} ms; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    return elapsed, browser.js("return window.__maxGap")


def idle(browser):
    """The longest frame gap over 11 s without events: two of the page's periodic list
    re-reads (CPU, memory, uptimes) with 1000 cards."""
    browser.js(FRAME_WATCH)
    browser.js("window.__idleDone = false; setTimeout(() => { window.__idleDone = true; }, 11000)")
    harness.wait_for("11 s of page time", lambda: browser.js("return window.__idleDone"), deadline=60)
    browser.js("window.__watch = false")
    return browser.js("return window.__maxGap")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    harness.BIN = pick_binary()
    n = args.services
    services = "".join(f"  s{i:04}:\n    command: sleep 100000\n    tags: [t{i % 10}]\n" for i in range(n))
    print(f"binary: {harness.BIN}; booting {n} services", flush=True)
    daemon = harness.Daemon(services)
    try:
        harness.wait_for(f"{n} running", lambda: daemon.api("GET", "/api/v1/status")[1]["counts"].get("running") == n,
                         deadline=300)
        rows = []
        for run in range(args.runs):
            browser = harness.Browser()
            try:
                browser.open(daemon.url)
                harness.wait_for("every card", lambda: browser.js("return document.body.dataset.rendered") == str(n),
                                 deadline=120)
                first = browser.js("return performance.getEntriesByName('steward:first-render')[0].startTime")
                pause_s, pause_gap = burst(daemon, browser, "pause", "paused", n)
                resume_s, resume_gap = burst(daemon, browser, "resume", "running", n)
                idle_gap = idle(browser)
                rows.append((first, pause_s * 1000, pause_gap, resume_s * 1000, resume_gap, idle_gap))
                print(f"run {run + 1}: first render {first:.0f} ms; pause burst {pause_s * 1000:.0f} ms "
                      f"(longest frame gap {pause_gap:.0f} ms); resume burst {resume_s * 1000:.0f} ms "
                      f"(longest frame gap {resume_gap:.0f} ms); idle with 5 s list re-reads: longest frame gap {idle_gap:.0f} ms", flush=True)
            finally:
                browser.close()
        med = [statistics.median(col) for col in zip(*rows)]
        print(f"median of {len(rows)}: first render {med[0]:.0f} ms; pause burst {med[1]:.0f} ms, "
              f"longest frame gap {med[2]:.0f} ms; resume burst {med[3]:.0f} ms, longest frame gap {med[4]:.0f} ms; "
              f"idle longest frame gap {med[5]:.0f} ms")
    finally:
        daemon.close()


if __name__ == "__main__":
    main()
