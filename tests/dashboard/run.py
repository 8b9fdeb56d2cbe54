#!/usr/bin/env python3
"""The dashboard's browser tests: a real `steward up` with real services, and Debian's
headless Chromium driven by selenium (see harness.py).

Run: `python3 tests/dashboard/run.py [NAME-SUBSTRING ...]` from the repository. It brings
`target/debug/steward` up to date with `cargo build` (or uses $STEWARD_BIN), and runs itself in
`target/dashboard-venv` (created with selenium from PyPI) when selenium is not importable.
Set DASH_SCREENSHOTS=docs/img to save the screenshots the docs show. Ends with
`N passed, M failed` and exits 1 when a test failed.
"""

import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(ROOT, "target", "dashboard-venv")
SELENIUM = "selenium==4.51.0"


def ensure_selenium():
    try:
        import selenium  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        sys.exit("selenium is not importable inside target/dashboard-venv")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", SELENIUM], check=True)
    os.execv(python, [python] + sys.argv)


ensure_selenium()
sys.path.insert(0, HERE)
from harness import BIN, Browser, Daemon, wait_for  # noqa: E402

LONG = "sleep 1000"


def sleeper(sid, tags=(), extra=""):
    tag_line = f"    tags: [{', '.join(tags)}]\n" if tags else ""
    return f"  {sid}:\n    command: {LONG}\n{tag_line}{extra}"


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def page(daemon, browser):
    browser.open(daemon.url)
    wait_for("the cards", lambda: browser.js("return document.body.dataset.rendered") not in (None, "0"))


@test
def assets_have_etag_gzip_and_answer_304(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web"))
    for path in ["/", "/ui/app.js", "/ui/app.css"]:
        status, headers, body = d.request("GET", path, headers={"Accept-Encoding": "gzip"})
        assert status == 200, (path, status)
        assert headers["Content-Encoding"] == "gzip", (path, dict(headers))
        assert body[:2] == b"\x1f\x8b", path
        etag = headers["ETag"]
        assert headers["Cache-Control"] == "no-cache"
        status, headers, body = d.request("GET", path, headers={"If-None-Match": etag})
        assert status == 304 and body == b"", (path, status)
        status, headers, body = d.request("GET", path)
        assert status == 200 and "Content-Encoding" not in headers, (path, dict(headers))
    status, _, body = d.request("GET", "/ui/nope.js")
    assert status == 404 and b"not_found" in body, status


@test
def cards_show_each_service_with_its_status(daemon_factory, browser_factory):
    d = daemon_factory(
        sleeper("web", ["frontend"])
        + "  job:\n    command: \"sh -c 'exit 0'\"\n    restart: temporary\n"
        + "  broken:\n    command: \"sh -c 'exit 3'\"\n    restart: temporary\n")
    b = browser_factory()
    page(d, b)
    wait_for("web running", lambda: b.card_status("web") == ["running", "running", "tone-ok"])
    wait_for("job exited 0", lambda: b.card_status("job") == ["exited", "exited · code 0", "tone-done"])
    wait_for("broken exited 3", lambda: b.card_status("broken") == ["exited", "exited · code 3", "tone-failed"])
    pid = d.state("web")["pid"]
    wait_for("web's pid on its card", lambda: b.one('.card[data-id="web"] .pid').text == str(pid))
    wait_for("the counts", lambda: b.js(
        "return [...document.querySelectorAll('[data-count]')].map(e => e.textContent).join('|')") == "exited 2|running 1")
    tags = b.one('.card[data-id="web"] .tags').text
    assert tags == "frontend", tags
    b.screenshot("overview.png")


@test
def unhealthy_and_paused_cards(daemon_factory, browser_factory):
    from harness import free_port
    closed = free_port()  # nothing listens there: the readiness probe fails
    d = daemon_factory(
        sleeper("sick", extra=f"    readiness:\n      tcp: 127.0.0.1:{closed}\n      interval: 100ms\n      failure_threshold: 1\n")
        + sleeper("web"))
    b = browser_factory()
    page(d, b)
    wait_for("sick unhealthy", lambda: b.card_status("sick") == ["running", "running · unhealthy", "tone-unhealthy"])
    wait_for("web running", lambda: b.card_status("web")[0] == "running")
    b.click('.card[data-id="web"] [data-act="pause"]')
    wait_for("web paused", lambda: b.card_status("web") == ["paused", "paused", "tone-paused"])
    assert d.state("web")["status"] == "paused"
    wait_for("the outcome", lambda: b.one('.card[data-id="web"] .outcome').text == f"✓ pause: paused (pid {d.state('web')['pid']})")
    b.click('.card[data-id="web"] [data-act="resume"]')
    wait_for("web running again", lambda: b.card_status("web")[0] == "running" and d.state("web")["status"] == "running")


@test
def restart_button_gives_a_new_pid(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web"))
    b = browser_factory()
    page(d, b)
    old = wait_for("web's pid", lambda: d.state("web")["pid"])
    wait_for("web running on the page", lambda: b.card_status("web")[0] == "running")
    b.click('.card[data-id="web"] [data-act="restart"]')
    assert b.confirm() == "Restart web?"
    new = wait_for("a new pid through the API", lambda: (lambda p: p if p and p != old else None)(d.state("web")["pid"]))
    assert os.path.exists(f"/proc/{new}"), new
    with open(f"/proc/{new}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    wait_for("the old process gone", lambda: not os.path.exists(f"/proc/{old}"))
    wait_for("the new pid on the card", lambda: b.one('.card[data-id="web"] .pid').text == str(new))
    wait_for("the outcome", lambda: "✓ restart: running" in b.one('.card[data-id="web"] .outcome').text)


@test
def crash_turns_the_card_to_backoff_live(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("crashy", extra="    backoff: [1h]\n"))
    b = browser_factory()
    page(d, b)
    pid = wait_for("crashy's pid", lambda: d.state("crashy")["pid"])
    wait_for("crashy running", lambda: b.card_status("crashy")[0] == "running")
    b.js("window.__samePage = true")
    os.kill(pid, 9)
    wait_for("the card in backoff", lambda: b.card_status("crashy") == ["backoff", "backoff", "tone-backoff"])
    assert b.js("return window.__samePage === true"), "the page was reloaded"
    reason = b.one('.card[data-id="crashy"] .reason').text
    assert "SIGKILL" in reason, reason
    assert d.state("crashy")["status"] == "backoff"


ECHO = r'''  echo:
    argv:
      - python3
      - -u
      - -c
      - |
        import sys
        print("ready", flush=True)
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line.startswith("err "):
                print(line, file=sys.stderr, flush=True)
            elif line == "big":
                print("x" * 20000, flush=True)
            else:
                print(line, flush=True)
'''


def log_items(b):
    return b.js("""return [...document.querySelectorAll('#log-lines li')].map(
        (li) => [li.className, li.dataset.seq || null, li.textContent]);""")


@test
def log_view_follows_pauses_resumes_searches_and_downloads(daemon_factory, browser_factory):
    d = daemon_factory(ECHO)
    b = browser_factory()
    downloads = os.path.join(d.dir, "downloads")
    os.makedirs(downloads)
    b.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    page(d, b)
    wait_for("echo running", lambda: b.card_status("echo")[0] == "running")
    b.click('.card[data-id="echo"] [data-open="logs"]')
    wait_for("the backlog line", lambda: any("ready" in t for _, _, t in log_items(b)))
    assert d.api("POST", "/api/v1/services/echo/input", b"after-open-1\n")[0] == 200
    wait_for("a line printed after the page opened", lambda: any(
        c == "stdout" and t.endswith("after-open-1") for c, _, t in log_items(b)))
    b.screenshot("logs.png")

    b.click("#log-pause")
    wait_for("paused", lambda: b.one("#log-state").text.startswith("paused"))
    for text in [b"while-paused\n", b"err oops\n", b"big\n"]:
        assert d.api("POST", "/api/v1/services/echo/input", text)[0] == 200
    wait_for("the lines in the ring", lambda: len(d.api("GET", "/api/v1/services/echo/logs?tail=10")[1]["lines"]) >= 5)
    shown = [t for _, _, t in log_items(b)]
    assert not any("while-paused" in t for t in shown), "a line arrived while paused"
    b.click("#log-pause")
    wait_for("the paused lines after resume", lambda: any(
        c == "stderr" and t.endswith("err oops") for c, _, t in log_items(b)))
    items = log_items(b)
    seqs = [int(s) for _, s, _ in items if s]
    assert seqs == list(range(1, len(seqs) + 1)), f"lines lost or doubled: {seqs}"
    assert any("while-paused" in t for _, _, t in items)
    big = [c for c, _, t in items if "[truncated]" in t]
    assert big and "truncated" in big[0], items[-1][:2]

    b.one("#log-search").send_keys("paused")
    wait_for("the highlight", lambda: b.js(
        "return [...document.querySelectorAll('#log-lines mark')].map(m => m.textContent)") == ["paused"])
    b.click("#log-stderr")
    wait_for("stderr hidden", lambda: not any(c == "stderr" for c, _, _ in log_items(b)))

    b.click("#log-download")
    path = os.path.join(downloads, "echo.log")
    text = wait_for("the download", lambda: os.path.exists(path) and open(path).read())
    assert "stdout after-open-1" in text and "stderr err oops" in text, text[-300:]


@test
def log_resume_after_the_ring_moved_on_shows_the_gap(daemon_factory, browser_factory):
    d = daemon_factory("  echo:\n    argv: [cat]\n    log_lines: 5\n")
    b = browser_factory()
    page(d, b)
    wait_for("echo running", lambda: b.card_status("echo")[0] == "running")
    b.click('.card[data-id="echo"] [data-open="logs"]')
    wait_for("following", lambda: b.one("#log-state").text == "following")
    assert d.api("POST", "/api/v1/services/echo/input", b"first\n")[0] == 200
    wait_for("the first line", lambda: [t for _, _, t in log_items(b)] == ["1outfirst"])
    b.click("#log-pause")
    wait_for("paused", lambda: b.one("#log-state").text == "paused after line 1")
    lines = "".join(f"n{i}\n" for i in range(2, 12)).encode()
    assert d.api("POST", "/api/v1/services/echo/input", lines)[0] == 200
    wait_for("the ring moved on", lambda: [l["line"] for l in d.api(
        "GET", "/api/v1/services/echo/logs?tail=5")[1]["lines"]] == [f"n{i}" for i in range(7, 12)])
    b.click("#log-pause")
    wait_for("the gap, then the lines still in the ring", lambda: [t for _, _, t in log_items(b)] == (
        ["1outfirst", "— 5 line(s) lost —"] + [f"{i}outn{i}" for i in range(7, 12)]))
    assert log_items(b)[1][0] == "gap"


@test
def token_flow_prompts_keeps_and_forgets_never_in_a_url(daemon_factory, browser_factory):
    token = "dash-" + os.urandom(8).hex()
    d = daemon_factory(sleeper("web"), token=token)
    b = browser_factory()
    b.open(d.url)
    wait_for("the token prompt", lambda: b.js("return document.querySelector('#token-dialog').open"))
    b.one("#token-input").send_keys("wrong-token")
    b.click("#token-form button[type=submit]")
    wait_for("the prompt again, saying the token was refused", lambda: b.js(
        "return document.querySelector('#token-dialog').open") and "refused" in b.one("#token-error").text)
    b.one("#token-input").send_keys(token)
    b.click("#token-form button[type=submit]")
    wait_for("web running", lambda: (b.card_status("web") or [None])[0] == "running")
    assert b.js("return localStorage.getItem('steward.token')") == token
    b.click('.card[data-id="web"] [data-open="logs"]')
    wait_for("the log stream", lambda: b.one("#log-state").text == "following")
    urls = b.urls()
    assert any("/api/v1/events" in u for u in urls), urls
    assert any("/logs?follow=true" in u for u in urls), urls
    leaked = [u for u in urls if token in u]
    assert not leaked, leaked

    b.open(d.url)  # kept in local storage: no prompt
    wait_for("web running after reload", lambda: (b.card_status("web") or [None])[0] == "running")
    assert not b.js("return document.querySelector('#token-dialog').open")
    b.click("#forget-token")
    wait_for("the prompt after forgetting", lambda: b.js("return document.querySelector('#token-dialog').open"))
    assert b.js("return localStorage.getItem('steward.token')") is None
    leaked = [u for u in b.urls() if token in u]
    assert not leaked, leaked


@test
def reload_shows_the_plan_before_anything_changes(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web"))
    b = browser_factory()
    page(d, b)
    d.write("services.d/added.yml", "version: 1\nservices:\n" + sleeper("added"))
    b.click("#reload-btn")
    wait_for("the plan", lambda: b.js(
        "const r = document.querySelector('[data-plan=\"added\"]'); return r && r.cells[1].textContent") == "start")
    assert b.one('[data-plan="web"]').text.split()[1] == "keep"
    assert d.api("GET", "/api/v1/services/added")[0] == 404, "the plan applied something"
    b.screenshot("reload-plan.png")
    b.click("#reload-apply")
    wait_for("applied", lambda: b.one("#reload-outcome").text == "✓ applied")
    assert d.state("added")["status"] in ("starting", "running")
    b.click('#reload-dialog button[value="cancel"]')
    wait_for("the new card", lambda: (b.card_status("added") or [None])[0] == "running")


@test
def filter_by_tag_status_and_text_and_sort(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web", ["frontend"]) + sleeper("api", ["backend"])
                       + sleeper("worker", ["backend", "batch"])
                       + "  job:\n    command: \"sh -c 'exit 0'\"\n    restart: temporary\n")
    b = browser_factory()
    page(d, b)
    wait_for("all four", lambda: b.js("return document.body.dataset.rendered") == "4")
    visible = lambda: b.js("return [...document.querySelectorAll('.card:not([hidden])')].map(c => c.dataset.id)")  # noqa: E731
    wait_for("the tag in the list", lambda: b.js("return [...document.querySelector('#tag-filter').options].map(o => o.value)") == ["", "backend", "batch", "frontend"])
    b.js("const s = document.querySelector('#tag-filter'); s.value = 'backend'; s.dispatchEvent(new Event('change'))")
    wait_for("backend only", lambda: visible() == ["api", "worker"])
    b.js("const s = document.querySelector('#tag-filter'); s.value = ''; s.dispatchEvent(new Event('change'))")
    wait_for("job exited", lambda: b.card_status("job")[0] == "exited")
    b.js("const s = document.querySelector('#status-filter'); s.value = 'exited'; s.dispatchEvent(new Event('change'))")
    wait_for("exited only", lambda: visible() == ["job"])
    b.js("const s = document.querySelector('#status-filter'); s.value = ''; s.dispatchEvent(new Event('change'))")
    b.one("#search").send_keys("work")
    wait_for("search", lambda: visible() == ["worker"])
    b.one("#search").clear()
    b.js("document.querySelector('#search').dispatchEvent(new Event('input'))")
    b.js("const s = document.querySelector('#sort'); s.value = 'id'; s.dispatchEvent(new Event('change'))")
    wait_for("sorted by id", lambda: visible() == ["api", "job", "web", "worker"])
    b.click("#rows-view")
    assert "rows" in b.one("#services").get_attribute("class").split()
    b.screenshot("overview-rows.png")


@test
def stop_with_dependents_names_them_and_cascades(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("db") + sleeper("api", extra="    depends_on: [db]\n"))
    b = browser_factory()
    page(d, b)
    wait_for("api running", lambda: b.card_status("api")[0] == "running")
    b.click('.card[data-id="db"] [data-act="stop"]')
    assert b.confirm() == "Stop db?"
    second = b.confirm()
    assert "needed by running api" in second and "cascade" in second, second
    wait_for("both stopped (API)", lambda: d.state("db")["status"] == "stopped" and d.state("api")["status"] == "stopped")
    wait_for("the outcome", lambda: "also stopped api" in b.one('.card[data-id="db"] .outcome').text)
    wait_for("the cards", lambda: b.card_status("api")[0] == "stopped" and b.card_status("db")[0] == "stopped")


@test
def control_failure_shows_the_json_message(daemon_factory, browser_factory):
    d = daemon_factory("  needy:\n    command: sleep 1000\n    autostart: false\n    required_env: [DASH_MISSING_VAR]\n")
    b = browser_factory()
    page(d, b)
    wait_for("needy stopped", lambda: b.card_status("needy")[0] in ("stopped", "pending"))
    b.click('.card[data-id="needy"] [data-act="start"]')
    text = wait_for("the failure", lambda: (lambda t: t if t.startswith("✗") else None)(
        b.one('.card[data-id="needy"] .outcome').text))
    assert "DASH_MISSING_VAR" in text, text


@test
def events_explain_graph_and_definition(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("db") + sleeper("api", extra="    depends_on: [db]\n    env: {API_KEY: hunter2, PORT: 1}\n"))
    b = browser_factory()
    page(d, b)
    wait_for("api running", lambda: b.card_status("api")[0] == "running")
    b.click('[data-tab="events"]')
    wait_for("started events", lambda: b.js(
        "return [...document.querySelectorAll('#events li[data-kind=started] .svc')].map(e => e.textContent).sort()") == ["api", "db"])
    b.one("#events-filter").send_keys("db")
    wait_for("filtered to db", lambda: set(b.js(
        "return [...document.querySelectorAll('#events li .svc')].map(e => e.textContent)")) == {"db"})
    b.click('[data-tab="graph"]')
    wait_for("the graph", lambda: b.js(
        "return [...document.querySelectorAll('#graph .node')].map(n => n.dataset.node + ':' + n.dataset.status).sort()") == ["api:running", "db:running"])
    assert b.js("return document.querySelectorAll('#graph .edge').length") == 1
    assert "api waits for db" in b.js("return document.querySelector('#graph .edge title').textContent")
    b.screenshot("graph.png")
    assert d.api("POST", "/api/v1/services/db/stop?cascade=true")[0] == 200
    wait_for("live status in the graph", lambda: b.js(
        "return document.querySelector('#graph .node[data-node=db]').dataset.status") == "stopped")
    b.click('#graph .node[data-node="api"]')
    wait_for("the explain view", lambda: b.one("#detail-explain .summary").text.startswith("api "))
    b.click('[data-detail="definition"]')
    text = wait_for("the definition", lambda: b.one("#detail-definition pre").text)
    assert '"API_KEY": "***"' in text and "hunter2" not in text, text
    assert b.one("#detail-definition .source").text.endswith("services.yml")


@test
def pause_all_and_resume_all(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web") + sleeper("api"))
    b = browser_factory()
    page(d, b)
    wait_for("both running", lambda: b.card_status("web")[0] == "running" and b.card_status("api")[0] == "running")
    b.click('[data-runtime="pause"]')
    b.confirm()
    wait_for("paused", lambda: b.one("#runtime").text == "runtime paused"
             and b.card_status("web")[0] == "paused" and b.card_status("api")[0] == "paused")
    assert d.api("GET", "/api/v1/status")[1]["state"] == "paused"
    b.click('[data-runtime="resume"]')
    wait_for("resumed", lambda: b.one("#runtime").text == "runtime running"
             and b.card_status("web")[0] == "running" and b.card_status("api")[0] == "running")


@test
def stop_all_and_start_all(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web") + sleeper("api", extra="    depends_on: [web]\n"))
    b = browser_factory()
    page(d, b)
    wait_for("both running", lambda: b.card_status("web")[0] == "running" and b.card_status("api")[0] == "running")
    b.click('[data-runtime="stop"]')
    assert b.confirm() == "Stop every service?"
    wait_for("the outcome", lambda: b.one("#runtime-outcome").text == "✓ stop all: 2 ok")
    assert [d.state(x)["status"] for x in ("web", "api")] == ["stopped", "stopped"]
    wait_for("stopped cards", lambda: b.card_status("web")[0] == "stopped" and b.card_status("api")[0] == "stopped")
    b.click('[data-runtime="start"]')
    wait_for("both running again", lambda: b.card_status("web")[0] == "running" and b.card_status("api")[0] == "running")
    assert [d.state(x)["status"] for x in ("web", "api")] == ["running", "running"]


NOTIFIER = r'''  notifier:
    readiness: { notify: true }
    argv:
      - python3
      - -c
      - |
        import os, socket, time
        a = os.environ["NOTIFY_SOCKET"]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"READY=1\nSTATUS=serving 3 clients", "\0" + a[1:] if a.startswith("@") else a)
        time.sleep(1000)
'''


@test
def a_notify_status_shows_on_the_card(daemon_factory, browser_factory):
    d = daemon_factory(NOTIFIER)
    wait_for("STATUS= in the API state", lambda: d.state("notifier").get("notify_status") == "serving 3 clients")
    assert d.state("notifier")["ready"] is True
    b = browser_factory()
    page(d, b)
    wait_for("notifier running", lambda: b.card_status("notifier")[0] == "running")
    said = wait_for("the status on the card", lambda: b.js(
        "const p = document.querySelector('.card[data-id=\"notifier\"] .notify-status'); return p && p.textContent"))
    assert said == "serving 3 clients", said


@test
def sparklines_start_from_the_server_history(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web"))
    samples = wait_for("two samples in /api/v1/usage", lambda: (lambda x: x if len(x) >= 2 else None)(
        d.api("GET", "/api/v1/usage")[1]["services"].get("web", [])), deadline=30)
    assert all(s["rss_bytes"] > 0 for s in samples), samples
    b = browser_factory()
    page(d, b)
    # Drawn from the server's samples (the page marks the first render after they came;
    # without them the page would have one sample of its own, too few for a line).
    wait_for("the server's samples drawn", lambda: b.js("return document.body.dataset.usage") == "drawn")
    points = b.js("""const p = document.querySelectorAll('.card[data-id="web"] .spark polyline');
        return p.length === 2 ? p[1].getAttribute('points').split(' ').length : 0;""")
    assert points >= len(samples), (points, samples)


@test
def narrow_screen_dark_mode_and_keyboard(daemon_factory, browser_factory):
    d = daemon_factory(sleeper("web", ["frontend"]) + sleeper("api", ["backend"]))
    b = browser_factory()
    b.driver.set_window_size(390, 800)
    page(d, b)
    wait_for("both running", lambda: b.card_status("web")[0] == "running" and b.card_status("api")[0] == "running")
    overflow = b.js("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than a narrow screen"
    light = b.js("return getComputedStyle(document.body).backgroundColor")
    b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    dark = wait_for("the dark palette", lambda: (lambda c: c if c != light else None)(
        b.js("return getComputedStyle(document.body).backgroundColor")))
    b.screenshot("overview-dark-narrow.png")
    assert dark == "rgb(17, 20, 24)", dark
    # Keyboard only: Tab to the pause button of web's card, Enter presses it.
    from selenium.webdriver.common.keys import Keys
    body = b.one("body")
    for _ in range(60):
        body.send_keys(Keys.TAB) if b.js("return document.activeElement === document.body") else \
            b.driver.switch_to.active_element.send_keys(Keys.TAB)
        if b.js("""const a = document.activeElement;
            return a && a.dataset.act === 'pause' && a.closest('.card').dataset.id === 'web'"""):
            break
    else:
        raise AssertionError("Tab never reached web's pause button")
    b.driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for("web paused from the keyboard", lambda: d.state("web")["status"] == "paused")


def main():
    wanted = sys.argv[1:]
    if "STEWARD_BIN" not in os.environ:  # up to date with the sources (a no-op when it is)
        subprocess.run(["cargo", "build", "--quiet", "--bin", "steward"], cwd=ROOT, check=True)
    passed = failed = 0
    for fn in TESTS:
        if wanted and not any(w in fn.__name__ for w in wanted):
            continue
        daemons, browsers = [], []

        def daemon_factory(services, token=None):
            daemon = Daemon(services, token=token)
            daemons.append(daemon)
            return daemon

        def browser_factory():
            browser = Browser()
            browsers.append(browser)
            return browser

        started = time.monotonic()
        try:
            fn(daemon_factory, browser_factory)
            passed += 1
            print(f"PASS {fn.__name__} ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}\n{traceback.format_exc()}", flush=True)
            for browser in browsers:
                try:
                    for entry in browser.driver.get_log("browser"):
                        print("  console:", entry.get("message"))
                except Exception:
                    pass
            for daemon in daemons:
                print("  steward log (tail):\n" + daemon.log_text())
        finally:
            for browser in browsers:
                browser.close()
            for daemon in daemons:
                daemon.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
