"""Turns a results JSON into the generated part of docs/BENCHMARKS.md.

The generated part sits between two marker comments; everything outside them (the
method notes, the memory breakdown commentary, the findings for the core team) is kept as
written. Ratios are steward / peer from the same run; each table says which way is better.
"""

import os

from .scenarios.common import median

BEGIN = "<!-- bench/run: generated results begin -->"
END = "<!-- bench/run: generated results end -->"
PEER_ORDER = ["steward-base", "supervisord", "s6", "pm2", "horust", "runit"]


def fmt(v, unit="", digits=None):
    if v is None:
        return "–"
    if isinstance(v, float):
        if digits is None:
            digits = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else 2)
        v = f"{v:,.{digits}f}"
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"


def peers(results):
    measured = [p for p in PEER_ORDER if p in results.get("versions", {})]
    return measured


def s1_sizes(s1):
    return sorted({int(n) for k, v in s1.items() if k != "steward_memory_breakdown"
                   for n in v if n.isdigit() and n != "0"})


def s1_stats(s1, tool, n):
    runs = [r for r in s1.get(tool, {}).get(str(n), []) if "error" not in r]
    return {
        "spawn_ms": median([r.get("spawn_ms") for r in runs]),
        "pss_kib": median([r.get("pss_kib") for r in runs]),
        "rss_kib": median([r.get("rss_kib") for r in runs]),
        "processes": median([r.get("processes") for r in runs]),
        "errors": [r["error"] for r in s1.get(tool, {}).get(str(n), []) if "error" in r],
    }


def section_s1(res, out, t):
    s1 = res["scenarios"].get("S1")
    if not s1 or "error" in s1:
        out.append(f"S1 did not run: {s1.get('error') if s1 else 'not selected'}\n")
        return
    sizes = s1_sizes(s1)
    tools = ["steward"] + peers(res) + ["shell"]
    st = {n: s1_stats(s1, "steward", n) for n in sizes + [0]}
    head = "| tool |" + "".join(f" spawn {n} |" for n in sizes) + \
        "".join(f" PSS {n} |" for n in sizes) + " marginal PSS / service | RSS at max N | processes |"
    out.append(head)
    out.append("|" + "---|" * (head.count("|") - 1))
    for tool in tools:
        stats = {n: s1_stats(s1, tool, n) for n in sizes}
        if not any(stats[n]["spawn_ms"] for n in sizes):
            errs = [e for n in sizes for e in stats[n]["errors"]]
            if errs:
                out.append(f"| {tool} | failed: {errs[0]} |")
            continue
        row = f"| **{tool}** |" if tool == "steward" else f"| {tool} |"
        for n in sizes:
            row += f" {fmt(stats[n]['spawn_ms'], ' ms')} |"
        for n in sizes:
            p = stats[n]["pss_kib"]
            row += f" {fmt(p / 1024 if p is not None else None, ' MiB', 1)} |" if tool != "shell" else " – |"
        lo, hi = sizes[0], sizes[-1]
        if tool != "shell" and len(sizes) > 1 and stats[hi]["pss_kib"] and stats[lo]["pss_kib"]:
            marg = (stats[hi]["pss_kib"] - stats[lo]["pss_kib"]) / (hi - lo)
            row += f" {fmt(marg, ' KiB', 1)} |"
        else:
            row += " – |"
        r = stats[hi]["rss_kib"]
        row += f" {fmt(r / 1024 if r is not None and tool != 'shell' else None, ' MiB', 1)} |"
        row += f" {fmt(stats[hi]['processes'])} |"
        out.append(row)
    out.append("")
    out.append("Ratios steward / peer (< 1: steward is better):\n")
    head = "| peer |" + "".join(f" spawn {n} |" for n in sizes) + "".join(f" PSS {n} |" for n in sizes)
    out.append(head)
    out.append("|" + "---|" * (head.count("|") - 1))
    for tool in peers(res) + ["shell"]:
        row = f"| {tool} |"
        for n in sizes:
            row += f" {ratio(st[n]['spawn_ms'], s1_stats(s1, tool, n)['spawn_ms'])} |"
        for n in sizes:
            row += (" – |" if tool == "shell" else
                    f" {ratio(st[n]['pss_kib'], s1_stats(s1, tool, n)['pss_kib'])} |")
        out.append(row)
    out.append("")
    if st[0]["pss_kib"]:
        line = f"steward with no service: PSS {fmt(st[0]['pss_kib'] / 1024, ' MiB', 1)}, RSS " \
               f"{fmt(st[0]['rss_kib'] / 1024, ' MiB', 1)}."
        for n in sizes:
            if st[n]["pss_kib"]:
                line += f" Per service at N = {n}: " \
                        f"{fmt((st[n]['pss_kib'] - st[0]['pss_kib']) / n, ' KiB', 1)} PSS above that."
        out.append(line + "\n")
    mb = s1.get("steward_memory_breakdown")
    if mb and "error" not in mb:
        out.append(f"Heap and memory per service inside one process (`cargo bench --bench "
                   f"memory_breakdown`, N = {mb['n']}; KiB):\n")
        out.append("| step | heap | RSS | PSS |")
        out.append("|---|---|---|---|")
        out.append(f"| runtime alone (total) | {fmt(mb['base']['heap_kib'])} | "
                   f"{fmt(mb['base']['rss_kib'])} | {fmt(mb['base']['pss_kib'])} |")
        for key, label in [("idle_actor_kib", "one idle ractor actor (do-nothing actor)"),
                           ("defined_per_service_kib", "define a service (4 actors, ring, row)"),
                           ("started_per_service_kib", "start it (process, pipes, waiter)")]:
            v = mb[key]
            out.append(f"| {label} | {fmt(v['heap'], '', 1)} | {fmt(v['rss'], '', 1)} | "
                       f"{fmt(v['pss'], '', 1)} |")
        out.append("")


def section_s2(res, out):
    s2 = res["scenarios"].get("S2")
    if not s2 or "error" in s2:
        return
    st = s2.get("steward", {})
    out.append("| tool | p50 | p90 | max | kills | p50 ratio steward / peer (< 1: steward is better) |")
    out.append("|---|---|---|---|---|---|")
    for tool in ["steward"] + peers(res):
        r = s2.get(tool)
        if not r:
            continue
        if "p50_ms" not in r:
            out.append(f"| {tool} | failed: {'; '.join(r.get('errors', []))[:200]} | | | | |")
            continue
        name = f"**{tool}**" if tool == "steward" else tool
        out.append(f"| {name} | {fmt(r['p50_ms'], ' ms')} | {fmt(r['p90_ms'], ' ms')} | "
                   f"{fmt(r['max_ms'], ' ms')} | {r['kills']} | "
                   f"{'' if tool == 'steward' else ratio(st.get('p50_ms'), r['p50_ms'])} |")
    out.append("")


def section_s3(res, out):
    s3 = res["scenarios"].get("S3")
    if not s3 or "error" in s3:
        return
    med = s3.get("median", {})
    st = med.get("steward", {})
    out.append(f"{s3['lines']:,} lines of 100 bytes. | tool | lines/s into the log file | "
               "lost | seconds | ratio steward / peer (> 1: steward is better) |"
               .split(". ", 1)[1])
    out.append("|---|---|---|---|---|")
    for tool in ["steward"] + peers(res):
        r = med.get(tool)
        if not r:
            continue
        name = f"**{tool}**" if tool == "steward" else tool
        if r.get("lines_per_s") is None:
            runs = s3["tools"].get(tool, [])
            why = next((x.get("error") for x in runs if x.get("error")), None) or \
                f"incomplete: {runs[0].get('lines') if runs else '?'} lines arrived"
            out.append(f"| {name} | – | {fmt(r.get('lost'))} | – | {why} |")
            continue
        out.append(f"| {name} | {fmt(r['lines_per_s'])} | {fmt(r['lost'])} | {fmt(r['seconds'], ' s', 3)} | "
                   f"{'' if tool == 'steward' else ratio(st.get('lines_per_s'), r['lines_per_s'])} |")
    out.append(f"| writer alone into a file (floor) | {fmt(s3.get('floor_lines_per_s'))} | – | – | |")
    out.append("")
    ring = s3.get("steward_ring")
    if ring and "error" not in ring:
        out.append(f"steward's in-memory path (`cargo bench --bench log_pipeline`: pipe → "
                   f"PortManager → LogBuffer → ring → one live subscriber): "
                   f"**{fmt(ring['ring_lines_per_s'])} lines/s into the ring**, "
                   f"{fmt(ring['subscriber_lines_per_s'])} lines/s read by the subscriber, "
                   f"{fmt(ring['lost'])} lines lost by the subscriber, max lag "
                   f"{fmt(ring['max_lag_lines'])} lines"
                   + (f", done {fmt(ring['drain_lag_ms'], ' ms')} after the last append"
                      if ring.get("drain_lag_ms") is not None else "")
                   + ".\n")
    elif ring:
        out.append(f"steward's in-memory path: not measured ({ring['error'][:200]}).\n")


def section_s4(res, out):
    s4 = res["scenarios"].get("S4")
    if not s4 or "error" in s4:
        return
    st = s4.get("steward", {})
    out.append("| tool | how | stop time | orphans 2 s later (of 200 sleeps) | runs | "
               "time ratio steward / peer (< 1: steward is better) |")
    out.append("|---|---|---|---|---|---|")
    for tool in ["steward", "steward-api"] + peers(res):
        r = s4.get(tool)
        if not r:
            continue
        runs = r.get("runs", [])
        how = next((x.get("how") for x in runs if x.get("how")), None) or \
            next((x.get("error") for x in runs if x.get("error")), "?")
        name = f"**{tool}**" if tool.startswith("steward") else tool
        out.append(f"| {name} | {how} | {fmt(r.get('stop_s'), ' s', 3)} | {fmt(r.get('orphans'))} | "
                   f"{len(runs)} | {'' if tool.startswith('steward') else ratio(st.get('stop_s'), r.get('stop_s'))} |")
    out.append("")


def section_s5(res, out):
    s5 = res["scenarios"].get("S5")
    if not s5 or "error" in s5:
        return
    out.append(f"{s5['n']} idle services per tool, all tools at once; CPU of each tool's own "
               f"processes, median of {len(s5.get('steward', {}).get('windows', []))} windows of "
               f"{s5['window_s']:.0f} s (schedstat; probes: {s5.get('probe_connections_per_s')} "
               f"connections/s reached the listener).\n")
    out.append("| tool | CPU per 30 s | % of one core | processes |")
    out.append("|---|---|---|---|")
    for tool in ["steward", "steward+probes"] + peers(res):
        r = s5.get(tool)
        if not r:
            continue
        name = f"**{tool}**" if tool.startswith("steward") else tool
        out.append(f"| {name} | {fmt(r['cpu_ms_per_30s'], ' ms', 1)} | {fmt(r['core_percent'], ' %', 3)} | "
                   f"{r['processes']} |")
    out.append("")


def section_s6(res, out):
    s6 = res["scenarios"].get("S6")
    if not s6 or "error" in s6:
        return
    out.append(f"| tool | launches in {s6['seconds']:.0f} s | gaps between launches (ms) | what it does |")
    out.append("|---|---|---|---|")
    for tool in ["steward"] + peers(res):
        r = s6.get(tool)
        if not r:
            continue
        gaps = r["gaps_ms"]
        shown = ", ".join(f"{g:.0f}" for g in gaps[:12]) + (" …" if len(gaps) > 12 else "")
        name = f"**{tool}**" if tool == "steward" else tool
        out.append(f"| {name} | {r['launches']} | {shown} | {r['verdict']} |")
    st = s6.get("steward")
    if st:
        out.append(f"\nsteward's configured gaps: {', '.join(str(g) for g in st['expected_gaps_ms'])} ms; "
                   f"largest deviation {fmt(st.get('max_gap_error_ms'), ' ms')}; follows the backoff: "
                   f"{'yes' if st.get('follows_backoff') else 'no'}.")
    out.append("")


def section_s7(res, out):
    s7 = res["scenarios"].get("S7")
    if not s7:
        return
    if "error" in s7:
        out.append(f"S7 did not run: {s7['error']}\n")
        return
    out.append(f"{s7['n']} services, wrk with {s7['connections']} connections, 2 threads, "
               f"{s7['seconds']} s, on the same 2 cores.\n")
    out.append("| tool | request | response | p50 | p99 | requests/s | errors |")
    out.append("|---|---|---|---|---|---|---|")
    for tool in ["steward", "supervisord"]:
        r = s7.get(tool)
        if not r:
            continue
        if "error" in r:
            out.append(f"| {tool} | {r['error']} | | | | | |")
            continue
        req = r.get("request", "GET /api/v1/services")
        errs = (r.get("socket_errors") or "") + (f" non-2xx {r['non_2xx']}" if r.get("non_2xx") else "")
        name = f"**{tool}**" if tool == "steward" else tool
        out.append(f"| {name} | {req} | {fmt(r.get('response_bytes'))} B | {fmt(r.get('p50_ms'), ' ms')} | "
                   f"{fmt(r.get('p99_ms'), ' ms')} | {fmt(r.get('requests_per_s'))} | {errs or 'none'} |")
    if s7.get("steward", {}).get("served_by"):
        out.append(f"\nsteward's API served by: {s7['steward']['served_by']}.")
    out.append("")


def targets(res):
    """[(target, measured, met)] for every target of issue 5 the run has data for."""
    sc = res["scenarios"]
    rows = []
    s1 = sc.get("S1") or {}
    if "steward" in s1:
        sizes = s1_sizes(s1)
        for n in sizes:
            st = s1_stats(s1, "steward", n)["spawn_ms"]
            floor = s1_stats(s1, "shell", n)["spawn_ms"]
            s6 = s1_stats(s1, "s6", n)["spawn_ms"]
            if st and floor:
                rows.append((f"S1 spawn {n}: within 2× of the shell floor",
                             f"{fmt(st, ' ms')} vs floor {fmt(floor, ' ms')} ({st / floor:.1f}×)",
                             st <= 2 * floor))
            if st and s6:
                rows.append((f"S1 spawn {n}: faster than s6", f"{fmt(st, ' ms')} vs s6 {fmt(s6, ' ms')}",
                             st < s6))
        if len(sizes) >= 2:
            lo, hi = sizes[0], sizes[-1]
            a, b = s1_stats(s1, "steward", lo)["pss_kib"], s1_stats(s1, "steward", hi)["pss_kib"]
            if a and b:
                marg = (b - a) / (hi - lo)
                rows.append((f"S1 marginal PSS ≤ 40 KiB per service (N {lo} → {hi})",
                             fmt(marg, " KiB", 1), marg <= 40))
        if sizes:
            n = 200 if 200 in sizes else sizes[0]
            st = s1_stats(s1, "steward", n)["pss_kib"]
            others = {p: s1_stats(s1, p, n)["pss_kib"] for p in ("supervisord", "s6", "pm2", "runit")}
            others = {p: v for p, v in others.items() if v}
            if st and others:
                worst = min(others, key=others.get)
                rows.append((f"S1 total PSS at N = {n} below supervisord, s6, PM2 and runit",
                             f"{fmt(st / 1024, ' MiB', 1)} vs lowest of them {worst} "
                             f"{fmt(others[worst] / 1024, ' MiB', 1)}", st < others[worst]))
            spawn = {p: s1_stats(s1, p, n)["spawn_ms"] for p in peers(res)}
            spawn = {p: v for p, v in spawn.items() if v}
            stt = s1_stats(s1, "steward", n)["spawn_ms"]
            if spawn and stt:
                best = min(spawn, key=spawn.get)
                rows.append((f"S1 spawn {n}: beat the best peer", f"{fmt(stt, ' ms')} vs {best} "
                             f"{fmt(spawn[best], ' ms')}", stt < spawn[best]))
    s2 = sc.get("S2") or {}
    if s2.get("steward", {}).get("p50_ms") is not None:
        p50 = s2["steward"]["p50_ms"]
        rows.append(("S2 restart p50 ≤ 2 ms", fmt(p50, " ms"), p50 <= 2))
        best = {p: s2[p]["p50_ms"] for p in peers(res) if s2.get(p, {}).get("p50_ms")}
        if best:
            b = min(best, key=best.get)
            rows.append(("S2: beat the best peer", f"{fmt(p50, ' ms')} vs {b} {fmt(best[b], ' ms')}",
                         p50 < best[b]))
    s3 = sc.get("S3") or {}
    med = s3.get("median", {})
    if med.get("steward", {}).get("lines_per_s"):
        v, lost = med["steward"]["lines_per_s"], med["steward"]["lost"]
        rows.append(("S3 ≥ 1.5 M lines/s into the file sink, 0 lost",
                     f"{fmt(v)} lines/s, {fmt(lost)} lost", v >= 1.5e6 and lost == 0))
        best = {p: med[p]["lines_per_s"] for p in peers(res) if med.get(p, {}).get("lines_per_s")}
        if best:
            b = max(best, key=best.get)
            rows.append(("S3: beat the best peer", f"{fmt(v)} vs {b} {fmt(best[b])} lines/s", v > best[b]))
    ring = s3.get("steward_ring") or {}
    if ring.get("ring_lines_per_s"):
        rows.append(("S3 ≥ 3 M lines/s into the ring (one live subscriber)",
                     f"{fmt(ring['ring_lines_per_s'])} lines/s, subscriber lost {fmt(ring['lost'])}",
                     ring["ring_lines_per_s"] >= 3e6))
    s4 = sc.get("S4") or {}
    if s4.get("steward", {}).get("stop_s") is not None:
        t, o = s4["steward"]["stop_s"], s4["steward"]["orphans"]
        rows.append(("S4 stop-all ≤ 0.2 s with 0 orphans", f"{fmt(t, ' s', 3)}, {fmt(o)} orphans",
                     t <= 0.2 and o == 0))
        best = {p: s4[p]["stop_s"] for p in peers(res) if s4.get(p, {}).get("stop_s") is not None}
        if best:
            b = min(best, key=best.get)
            rows.append(("S4: beat the best peer", f"{fmt(t, ' s', 3)} vs {b} {fmt(best[b], ' s', 3)} "
                         f"({fmt(s4[b]['orphans'])} orphans)", t < best[b] and o == 0))
    s5 = sc.get("S5") or {}
    if "steward" in s5:
        v = s5["steward"]["cpu_ms_per_30s"]
        rows.append(("S5 idle ≤ 5 ms CPU per 30 s (100 services, no probes)", fmt(v, " ms", 1), v <= 5))
        best = {p: s5[p]["cpu_ms_per_30s"] for p in peers(res) if p in s5}
        if best:
            b = min(best, key=best.get)
            rows.append(("S5: as low as the best peer", f"{fmt(v, ' ms', 1)} vs {b} {fmt(best[b], ' ms', 1)}",
                         v <= best[b]))
    if "steward+probes" in s5:
        v = s5["steward+probes"]["core_percent"]
        rows.append(("S5 < 1 % of a core with 100 one-second TCP probes", fmt(v, " %", 2), v < 1))
    s6 = sc.get("S6") or {}
    if "steward" in s6:
        r = s6["steward"]
        said = r["verdict"].startswith("failed:")
        rows.append(("S6 follows the configured backoff exactly and gives up per the intensity, saying why",
                     f"max deviation {fmt(r.get('max_gap_error_ms'), ' ms')}, {r['launches']} launches; "
                     f"{r['verdict']}", bool(r.get("follows_backoff")) and said))
    s7 = sc.get("S7") or {}
    if s7.get("steward", {}).get("p50_ms") is not None:
        r = s7["steward"]
        sv = s7.get("supervisord", {})
        m = f"p50 {fmt(r['p50_ms'], ' ms')}, p99 {fmt(r['p99_ms'], ' ms')}"
        if sv.get("p50_ms") is not None:
            m += f"; supervisord XML-RPC p50 {fmt(sv['p50_ms'], ' ms')}, p99 {fmt(sv['p99_ms'], ' ms')}"
            rows.append(("S7 GET /api/v1/services (1000 services, 50 clients): beat the peer", m,
                         r["p99_ms"] < sv["p99_ms"] and r["p50_ms"] < sv["p50_ms"]))
        else:
            rows.append(("S7 GET /api/v1/services (1000 services, 50 clients)", m, None))
    return rows


def generated(res, results_path=None):
    out = []
    m = res["machine"]
    out.append(f"## Results of {res['date'][:10]}\n")
    out.append(f"Produced by `{res['command'].strip()}`"
               + (f" → [`{results_path}`](../{results_path})" if results_path else "")
               + f", in {res['duration_s'] / 60:.1f} min (scenarios {res['scenarios_duration_s'] / 60:.1f} min)"
               + (f", steward at commit `{res['commit']}`" if res.get("commit") else "") + ".\n")
    out.append(f"Machine: {m['cores']} cores ({m.get('cpu', '?')}), {m['mem_gib']} GiB, Linux "
               f"{m['kernel']}; load average {res['load_before'][0]:.2f} before, "
               f"{res['load_after'][0]:.2f} after (the machine was shared with other builds). "
               f"Medians of {res['reps']} runs unless a table says otherwise.\n")
    out.append("| tool | version |")
    out.append("|---|---|")
    order = ["steward"] + PEER_ORDER
    for k, v in sorted(res["versions"].items(),
                       key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        out.append(f"| {k} | {v} |")
    for k, v in res.get("not_measured", {}).items():
        out.append(f"| {k} | not measured: {v} |")
    out.append("")
    out.append("### Targets of issue 5\n")
    out.append("| target | measured | met |")
    out.append("|---|---|---|")
    for name, measured, met in targets(res):
        out.append(f"| {name} | {measured} | {'met' if met else ('–' if met is None else '**not met**')} |")
    out.append("")
    for key, title, fn in [
        ("S1", "S1 spawn N × `sleep 3600`: time to all running, and the tool's own memory", None),
        ("S2", "S2 restart latency after SIGKILL", section_s2),
        ("S3", "S3 log throughput: 500,000 lines to the tool's log file", section_s3),
        ("S4", "S4 stop-all: 100 services `sh -c 'sleep 3600 & sleep 3600'`", section_s4),
        ("S5", "S5 idle cost", section_s5),
        ("S6", "S6 crash loop: `sh -c 'exit 1'`, restart always, 20 s", section_s6),
        ("S7", "S7 control latency", section_s7),
    ]:
        if key not in res["scenarios"]:
            continue
        out.append(f"### {title}\n")
        if key == "S1":
            section_s1(res, out, None)
        else:
            fn(res, out)
    if res.get("processes_left_after_cleanup") is not None:
        out.append(f"Processes left after the run: {res['processes_left_after_cleanup']} "
                   f"({res.get('leftover_processes_killed_at_end', 0)} stray ones killed by the final sweep).\n")
    return "\n".join(out)


def write(res, path, results_path=None):
    body = BEGIN + "\n" + generated(res, results_path) + "\n" + END
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + body + text[text.index(END) + len(END):]
        else:
            text = text.rstrip() + "\n\n" + body + "\n"
    else:
        text = "# Benchmarks\n\n" + body + "\n"
    with open(path, "w") as f:
        f.write(text)


def summary(res):
    lines = ["", "Targets:"]
    for name, measured, met in targets(res):
        lines.append(f"  [{'met' if met else ('  -' if met is None else 'NOT')}] {name}: {measured}")
    return "\n".join(lines)


# --- S8 (issue 16): its own block, so `bench/run --only S8` leaves S1-S7's block alone ----

S8_BEGIN = "<!-- bench/run: S8 results begin -->"
S8_END = "<!-- bench/run: S8 results end -->"


def _mem(m):
    if not m:
        return "–"
    return f"{m['rss_kib'] / 1024:.1f} / {m['pss_kib'] / 1024:.1f} MiB"


def _lat(r):
    if not r or r.get("p50_ms") is None:
        return "–"
    return f"p50 {fmt(r['p50_ms'], ' ms')}, p99 {fmt(r['p99_ms'], ' ms')}"


def section_s8(res):
    s8 = res["scenarios"].get("S8")
    out = [f"### S8 scale: {s8.get('n', 10000) if s8 else 10000:,} services (issue 16)\n"]
    if not s8 or "error" in s8:
        out.append(f"S8 did not run: {(s8 or {}).get('error', 'not in this results file')}\n")
        return "\n".join(out)
    out.append(f"Produced by `{res['command'].strip()}` on {res['date'][:10]}"
               + (f", steward at `{res['commit']}`" if res.get("commit") else "")
               + f"; load average {res['load_before'][0]:.2f} before, {res['load_after'][0]:.2f} after; "
               f"{s8['files']} files of services.d, RLIMIT_NOFILE {s8['nofile']}, pid_max {s8['pid_max']}. "
               f"Shell floor for {s8['n']:,} spawns: {fmt(s8.get('shell_floor_ms'), ' ms')}.\n")
    tools = [t for t in ("steward", "steward-base") if t in s8]
    if tools:
        out.append("| phase | " + " | ".join(tools) + " |")
        out.append("|---|" + "---|" * len(tools))

        def row(label, f):
            cells = []
            for t in tools:
                try:
                    cells.append(f(s8[t]))
                except (KeyError, TypeError):
                    cells.append("–")
            out.append(f"| {label} | " + " | ".join(cells) + " |")

        row("empty runtime RSS / PSS", lambda r: _mem(r["empty"]))
        row("boot: all running", lambda r: f"{fmt(r['boot']['ms'], ' ms')} ({fmt(r['boot']['vs_floor'], '×')} floor)"
            if "ms" in r["boot"] else r["boot"]["error"])
        row("health during boot", lambda r: _lat(r["boot"]["health_during_boot"])
            + f", max {fmt(r['boot']['health_during_boot']['max_ms'], ' ms')}")
        row("after boot RSS / PSS", lambda r: _mem(r["boot"]["memory"]))
        row(f"idle CPU over {s8['idle_window_s']:.0f} s", lambda r: f"{fmt(r['idle']['cpu_ms'], ' ms')} ({fmt(r['idle']['core_percent'], ' %')} of a core)")
        row("per idle service RSS / PSS", lambda r: f"{fmt(r['per_service_kib']['rss'])} / {fmt(r['per_service_kib']['pss'])} KiB")
        row(f"define {s8['more']:,} over the API", lambda r: f"{_lat(r['define'])}; {fmt(r['define']['total_ms'], ' ms')} in all"
            + (f"; {r['define']['errors'][0]}" if r['define'].get('errors') else ""))
        row("after define RSS / PSS", lambda r: _mem(r["define"]["memory"]))
        row("list, one client", lambda r: f"{_lat(r['list'])}, {fmt(r['list']['response_bytes'])} B")
        row("list, 50 clients (wrk)", lambda r: f"{_lat(r['list']['wrk_50_connections'])}, {fmt(r['list']['wrk_50_connections']['requests_per_s'])}/s")
        row("list gzip, 50 clients (wrk)", lambda r: (
            f"{_lat(r['list']['gzip']['wrk_50_connections'])}, {fmt(r['list']['gzip']['wrk_50_connections']['requests_per_s'])}/s, "
            f"{fmt(r['list']['gzip']['response_bytes'])} B ({r['list']['gzip']['content_encoding'] or 'plain'})")
            if "wrk_50_connections" in r["list"].get("gzip", {}) else "–")
        row("/metrics", lambda r: f"{_lat(r['metrics'])}, {fmt(r['metrics']['response_bytes'])} B")
        row("stop all", lambda r: f"answered {fmt(r['stop']['answered_ms'], ' ms')}, all gone {fmt(r['stop']['all_gone_ms'], ' ms')}")
        row("after stop RSS / PSS", lambda r: _mem(r["stop"]["memory"]))
        row("remove all", lambda r: f"{_lat(r['remove'])}; {fmt(r['remove']['total_ms'], ' ms')} in all"
            + (f"; {r['remove']['errors'][0]}" if r['remove'].get('errors') else ""))
        row("after remove RSS / PSS", lambda r: _mem(r["remove"]["memory"]) + f" ({fmt(r['remove']['rss_vs_empty'], '×')} empty)")
        out.append("")
    peers_ = [t for t in ("s6", "supervisord") if t in s8]
    if peers_:
        out.append("| peer | boot: all running | own RSS / PSS | idle CPU | list | stop all |")
        out.append("|---|---|---|---|---|---|")
        for t in peers_:
            r = s8[t]
            if "error" in r:
                out.append(f"| {t} | {r['error']} | | | | |")
                continue
            boot = r.get("boot", {})
            b = fmt(boot["ms"], " ms") if "ms" in boot else f"cannot: {boot.get('error')}"
            idle = r.get("idle")
            stop = r.get("stop", {})
            st = (f"answered {fmt(stop['answered_ms'], ' ms')}, all gone {fmt(stop['all_gone_ms'], ' ms')}"
                  if "answered_ms" in stop else stop.get("error", "–"))
            out.append(f"| {t} | {b} | {_mem((idle or boot).get('memory'))} | "
                       f"{fmt(idle['cpu_ms'], ' ms') if idle else '–'} | {_lat(r.get('list'))} | {st} |")
        out.append("")
    return "\n".join(out)


def write_s8(res, path, results_path=None):
    body = S8_BEGIN + "\n" + section_s8(res) + (
        f"\nResults file: [`{results_path}`](../{results_path}).\n" if results_path else "\n") + S8_END
    with open(path) as f:
        text = f.read()
    if S8_BEGIN in text and S8_END in text:
        text = text[:text.index(S8_BEGIN)] + body + text[text.index(S8_END) + len(S8_END):]
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    with open(path, "w") as f:
        f.write(text)
