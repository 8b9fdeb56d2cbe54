"""The invariants each campaign must keep, read from its results: a list of
{campaign, name, value, ok}. A campaign that raised is one broken invariant ("ran")."""


# How far steward's RSS may rise over one boot of the soak (its event ring, log rings and
# caches fill within the first minute; a leak grows past this in a full run).
RSS_RISE_KIB = 32 * 1024


def check(results):
    out = []

    def inv(campaign, name, value, ok):
        out.append({"campaign": campaign, "name": name, "value": value, "ok": bool(ok)})

    c = results["campaigns"]
    for name, r in c.items():
        if "error" in r:
            inv(name, "the campaign ran to its end", r["error"], False)
    o = c.get("orphans", {})
    if "cycles" in o and "error" not in o:
        cy, ra = o["cycles"], o["races"]
        inv("orphans", "0 processes left after each stop/kill", cy["leftover_processes"],
            cy["leftover_processes"] == 0)
        inv("orphans", "every cycle's request answered 200", len(cy["failures"]),
            not cy["failures"])
        inv("orphans", "never two instances of the raced service",
            ra["duplicate_samples"], ra["duplicate_samples"] == 0)
        inv("orphans", "0 answers 5xx to conflicting requests", ra["server_errors_5xx"],
            ra["server_errors_5xx"] == 0)
        inv("orphans", "every conflicting request answered", ra["unanswered"],
            ra["unanswered"] == 0)
        inv("orphans", "API state equal to /proc after each round", ra["state_mismatch_count"],
            ra["state_mismatch_count"] == 0)
        inv("orphans", "0 processes left after steward's stop", o["left_after_final_stop"],
            o["left_after_final_stop"] == 0)
    h = c.get("hostile", {})
    if "big_body" in h:
        b = h["big_body"]
        inv("hostile", "a 50 MiB body is answered 413", b["status"], b["status"] == 413)
        rise = b["hwm_rise_kib"]
        inv("hostile", "no memory spike from it (peak RSS rise < 16 MiB)", rise,
            rise is not None and rise < 16 * 1024)
        m = h["max_services"]
        inv("hostile", "defining past settings.max_services is a 409 naming the key",
            m["past_limit_status"], m["past_limit_status"] == 409
            and "max_services" in (m["past_limit_message"] or ""))
        bad = {q: s for q, s in h["queries"].items() if s != 400}
        inv("hostile", "out-of-range query values answered 400", bad or "all 400", not bad)
        for name, y in h["yaml"].items():
            inv("hostile", f"`steward validate` refuses {name} within 20 s",
                f"exit {y['exit']} in {y['seconds']} s, {y['peak_rss_kib']} KiB",
                y["exit"] not in (0, None) and not y["timed_out"])
    s = c.get("soak", {})
    if "seconds" in s and "error" not in s:
        inv("soak", "every permanent service back running within its bound after a kill",
            f"{s['recovery_late']} late of {s['recoveries_checked']}", s["recovery_late"] == 0)
        inv("soak", "never two instances (process groups) of one service", s["duplicate_samples"],
            s["duplicate_samples"] == 0)
        inv("soak", "crash recovery leaves no process of the killed steward",
            s["left_after_steward_kills"], s["left_after_steward_kills"] == 0)
        inv("soak", "0 processes left after the final stop", s["left_after_final_stop"],
            s["left_after_final_stop"] == 0)
        inv("soak", "event seq strictly increasing, holes only where a gap is reported",
            len(s["event_violations"]), not s["event_violations"])
        inv("soak", "log seq per service strictly increasing", len(s["log_violations"]),
            not s["log_violations"])
        inv("soak", "every control request answered, none 5xx", s["bad_answers"],
            s["bad_answers"] == 0)
        rises = [b["end"] - b["start"] for b in s.get("rss", []) if b["start"] and b["end"]]
        inv("soak", "steward's RSS flat: each boot ends within 32 MiB of its start",
            "rise " + ", ".join(f"{r / 1024:+.1f} MiB" for r in rises) if rises else "no figures",
            bool(rises) and all(r <= RSS_RISE_KIB for r in rises))
    a = c.get("apifuzz", {})
    for run in a.get("runs", []):
        inv("apifuzz", f"schemathesis {run['name']}: 0 server errors, 0 schema violations",
            f"{run['failures']} failures in {run['cases']} cases", run["ok"])
    return out
