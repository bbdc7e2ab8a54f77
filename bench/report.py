"""Turns the raw figures of bench/bench.py into OUT/results.md, OUT/results.json (summary and
raw figures) and OUT/ratios.png. Usage: report.py RAW_JSON OUT_DIR"""
import json
import statistics
import sys
from pathlib import Path

MIB = 1024  # figures are in KiB

# The performance goals (the limits the summary is checked against; README's Performance table).
GOAL_HEALTH_VS_LEGACY = 10.0
GOAL_HEALTH_VS_HYPER = 0.85
GOAL_API1_RPS = 1900.0  # 0.95 of 1,000 connections / 0.5 s
GOAL_HEALTHZ_P99_MS = 10.0
GOAL_DATA_VS_LEGACY = 3.0
GOAL_IDLE_MIB = 10.0
GOAL_LOADED_MIB = 64.0
GOAL_STARTUP_MS = 20.0
GOAL_DOWNLOAD_GROWTH_MIB = 5.0  # "peak RSS flat within a few MiB"
GOAL_HEALTHCHECK_FACTOR = 1.25  # wall time at most 1.25 timeouts ("close to one timeout")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def med(rounds, key):
    return median([r[key] for r in rounds])


def paired(a_rounds, b_rounds, key="rps"):
    """The median of the per-round ratios a/b: each round runs the two back to back, so a drift
    of the shared machine between rounds cancels out, which the ratio of the medians does not."""
    return median([a[key] / b[key] for a, b in zip(a_rounds, b_rounds)])


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def mib(kib):
    return None if kib is None else kib / MIB


def summarize(raw):
    sc = raw["scenarios"]
    summary, goals, ratios = {}, [], []

    def goal(name, measured, target, met, note=""):
        goals.append({"goal": name, "measured": measured, "target": target, "met": bool(met), "note": note})

    if "health" in sc:
        h = sc["health"]
        rps = {n: med(h[n]["rounds"], "rps") for n in ("legacy", "rust", "hello")}
        cpu_us = {n: median([r["server_cpu_s"] / r["requests"] * 1e6 for r in h[n]["rounds"]])
                  for n in ("legacy", "rust", "hello")}
        cpu_split = {n: {"user": median([r.get("server_user_s", 0) / r["requests"] * 1e6 for r in h[n]["rounds"]]),
                         "sys": median([r.get("server_sys_s", 0) / r["requests"] * 1e6 for r in h[n]["rounds"]])}
                     for n in ("legacy", "rust", "hello")}
        vs_legacy, vs_hello = rps["rust"] / rps["legacy"], rps["rust"] / rps["hello"]
        summary["health_c64"] = {
            "rps_median": rps, "p99_ms_median": {n: med(h[n]["rounds"], "p99_ms") for n in rps},
            "server_cpu_us_per_request": cpu_us, "server_cpu_us_per_request_split": cpu_split,
            "hello_vs_rust_cpu_per_request": cpu_us["hello"] / cpu_us["rust"],
            "wrk_cpu_s_median": {n: med(h[n]["rounds"], "wrk_cpu_s") for n in rps},
            "errors_total": {n: sum(r["errors"] + r["non_2xx"] for r in h[n]["rounds"]) for n in rps},
            "rust_vs_legacy": vs_legacy, "rust_vs_hello_hyper": vs_hello,
            "rust_vs_hello_hyper_per_round": paired(h["rust"]["rounds"], h["hello"]["rounds"]),
            "rss_peak_mib": {n: mib(max(r["rss_peak_kib"] for r in h[n]["rounds"])) for n in rps},
        }
        goal("/health_check c64: ≥ 10x legacy req/s", f"{vs_legacy:.1f}x ({fmt(rps['rust'], 0)} vs {fmt(rps['legacy'], 0)})",
             "≥ 10x", vs_legacy >= GOAL_HEALTH_VS_LEGACY)
        goal("/health_check c64: ≥ 0.85x bare hyper", f"{vs_hello:.2f}x ({fmt(rps['rust'], 0)} vs {fmt(rps['hello'], 0)})",
             "≥ 0.85x", vs_hello >= GOAL_HEALTH_VS_HYPER)
        ratios.append(("/health_check c64 req/s: Rust ÷ legacy", vs_legacy, GOAL_HEALTH_VS_LEGACY))
        ratios.append(("/health_check c64 req/s: Rust ÷ bare hyper", vs_hello, GOAL_HEALTH_VS_HYPER))

    if "accesslog" in sc:
        a = sc["accesslog"]
        rps = {n: med(a[n]["rounds"], "rps") for n in ("on", "off")}
        cpu_us = {n: median([r["server_cpu_s"] / r["requests"] * 1e6 for r in a[n]["rounds"]])
                  for n in ("on", "off")}
        summary["access_log_c64"] = {
            "rps_median": rps, "server_cpu_us_per_request": cpu_us,
            "on_vs_off_rps": rps["on"] / rps["off"],
            "on_vs_off_per_round": paired(a["on"]["rounds"], a["off"]["rounds"]),
            "log_bytes_per_request": median([r["log_bytes_written"] / r["requests"] for r in a["on"]["rounds"]]),
            "errors_total": {n: sum(r["errors"] + r["non_2xx"] for r in a[n]["rounds"]) for n in rps},
        }

    if "tracing" in sc:
        t = sc["tracing"]
        names = [n for n in ("before", "off", "sampled_1pct") if n in t]
        rps = {n: med(t[n]["rounds"], "rps") for n in names}
        cpu_us = {n: median([r["server_cpu_s"] / r["requests"] * 1e6 for r in t[n]["rounds"]]) for n in names}
        summary["tracing_c64"] = {
            "rps_median": rps, "server_cpu_us_per_request": cpu_us,
            "sampled_1pct_vs_off_rps": rps["sampled_1pct"] / rps["off"],
            "off_vs_before_rps": rps["off"] / rps["before"] if "before" in rps else None,
            "sampled_1pct_vs_off_per_round": paired(t["sampled_1pct"]["rounds"], t["off"]["rounds"]),
            "off_vs_before_per_round": (paired(t["off"]["rounds"], t["before"]["rounds"])
                                        if "before" in t else None),
            "before_binary": t.get("before_binary"),
            "errors_total": {n: sum(r["errors"] + r["non_2xx"] for r in t[n]["rounds"]) for n in names},
        }

    if "api1" in sc:
        a = sc["api1"]
        rust, legacy = a["rust"]["rounds"], a["legacy"]["rounds"]
        rps_r, rps_l = med(rust, "rps"), med(legacy, "rps")
        errors = sum(r["errors"] + r["non_2xx"] for r in rust)
        p99s = [r["probe"]["p99_ms"] for r in rust]
        probe_fail = sum(r["probe"]["failures"] for r in rust)
        peak = max(r["rss_peak_kib"] for r in rust)
        summary["api1_c1000"] = {
            "rps_median": {"rust": rps_r, "legacy": rps_l}, "rust_vs_legacy": rps_r / rps_l,
            "rust_errors_total": errors,
            "legacy_errors_total": sum(r["errors"] + r["non_2xx"] for r in legacy),
            "rust_p50_ms_median": med(rust, "p50_ms"), "rust_p99_ms_median": med(rust, "p99_ms"),
            "rust_healthz_probe_p99_ms": {"median": median(p99s), "worst": max(p99s),
                                          "failures": probe_fail,
                                          "answered": sum(r["probe"]["answered"] for r in rust),
                                          "same_probe_idle_server_median": median(
                                              [r.get("probe_idle", {}).get("p99_ms") for r in rust])},
            "legacy_health_check_probe": {"answered": sum(r["probe"]["answered"] for r in legacy),
                                          "failures": sum(r["probe"]["failures"] for r in legacy),
                                          "p99_ms_median": median([r["probe"]["p99_ms"] for r in legacy])},
            "rss_peak_mib": {"rust": mib(peak), "legacy": mib(max(r["rss_peak_kib"] for r in legacy))},
        }
        goal("/api_1 c1000: ≥ 1,900 req/s, 0 errors", f"{fmt(rps_r, 0)} req/s, {errors} errors (legacy {fmt(rps_l)} req/s)",
             "≥ 1,900, 0", rps_r >= GOAL_API1_RPS and errors == 0)
        idle_p99 = median([r.get("probe_idle", {}).get("p99_ms") for r in rust])
        goal("/healthz p99 during /api_1 c1000: ≤ 10 ms",
             f"{fmt(median(p99s), 2)} ms (worst round {fmt(max(p99s), 2)}; {probe_fail} failed; "
             f"same probe, idle server: {fmt(idle_p99, 2)} ms)", "≤ 10 ms",
             median(p99s) is not None and median(p99s) <= GOAL_HEALTHZ_P99_MS and probe_fail == 0)
        goal("RSS with 1,000 requests in flight: ≤ 64 MiB", f"{fmt(mib(peak))} MiB (legacy {fmt(mib(max(r['rss_peak_kib'] for r in legacy)))})",
             "≤ 64 MiB", mib(peak) <= GOAL_LOADED_MIB)
        ratios.append(("/api_1 c1000 req/s: Rust ÷ legacy", rps_r / rps_l, GOAL_API1_RPS / rps_l))

    if "data" in sc:
        d = sc["data"]
        rps = {n: med(d[n]["rounds"], "rps") for n in ("legacy_get", "rust_post", "rust_get")}
        dur = d.get("rust_durability", {})
        post_vs, get_vs = rps["rust_post"] / rps["legacy_get"], rps["rust_get"] / rps["legacy_get"]
        durable = (dur.get("lines_in_segments", 0) >= dur.get("acknowledged_by_wrk", 1)
                   and not str(dur.get("segments_check", "")).startswith("FAILED"))
        summary["data_c64"] = {
            "rps_median": rps, "p99_ms_median": {n: med(d[n]["rounds"], "p99_ms") for n in rps},
            "errors_total": {n: sum(r["errors"] + r["non_2xx"] for r in d[n]["rounds"]) for n in rps},
            "rust_post_vs_legacy": post_vs, "rust_get_vs_legacy": get_vs, "durability": dur,
            "server_cpu_us_per_request": {n: median([r["server_cpu_s"] / r["requests"] * 1e6 for r in d[n]["rounds"]])
                                          for n in rps},
            "rss_peak_mib": {n: mib(max(r["rss_peak_kib"] for r in d[n]["rounds"])) for n in rps},
        }
        best_legacy = max(r["rps"] for r in d["legacy_get"]["rounds"])
        summary["data_c64"]["legacy_best_round_rps"] = best_legacy
        summary["data_c64"]["rust_post_vs_legacy_best_round"] = rps["rust_post"] / best_legacy
        goal("data writes c64, durable: ≥ 3x legacy (POST /logs)",
             f"{post_vs:.1f}x ({fmt(rps['rust_post'], 0)} vs {fmt(rps['legacy_get'], 0)}); against the legacy's best "
             f"round ({fmt(best_legacy, 0)}): {rps['rust_post'] / best_legacy:.1f}x; every ack on disk: {durable}",
             "≥ 3x", post_vs >= GOAL_DATA_VS_LEGACY and durable)
        goal("data writes c64, durable: ≥ 3x legacy (GET /)", f"{get_vs:.1f}x ({fmt(rps['rust_get'], 0)})", "≥ 3x",
             get_vs >= GOAL_DATA_VS_LEGACY and durable)
        ratios.append(("data writes c64 req/s: Rust POST /logs (durable) ÷ legacy", post_vs, GOAL_DATA_VS_LEGACY))
        ratios.append(("data writes c64 req/s: Rust GET / (durable) ÷ legacy", get_vs, GOAL_DATA_VS_LEGACY))

    if "idle" in sc:
        idle = {n: v["rss_kib"] for n, v in sc["idle"].items() if n not in ("loadavg_at_start",)}
        summary["idle_rss_mib"] = {n: mib(v) for n, v in idle.items()}
        worst = max(v for n, v in idle.items() if not n.startswith("legacy"))
        goal("idle RSS per service: ≤ 10 MiB",
             ", ".join(f"{n} {fmt(mib(v))}" for n, v in idle.items() if not n.startswith("legacy"))
             + f" MiB (legacy backend {fmt(mib(idle.get('legacy backend_api')))})", "≤ 10 MiB",
             mib(worst) <= GOAL_IDLE_MIB)
        if "legacy backend_api" in idle:
            ratios.append(("idle RSS: legacy backend ÷ Rust backend-api", idle["legacy backend_api"] / idle["backend-api"],
                           idle["legacy backend_api"] / (GOAL_IDLE_MIB * MIB)))

    if "startup" in sc:
        s = sc["startup"]
        med_ms = {n: s[n]["median_ms"] for n in ("legacy", "backend-api", "data-api", "log-provider")}
        summary["startup_ms_median"] = med_ms
        worst = max(v for n, v in med_ms.items() if n != "legacy")
        goal("start-up to first 200, median of runs: ≤ 20 ms",
             ", ".join(f"{n} {fmt(v)}" for n, v in med_ms.items()) + " ms", "≤ 20 ms", worst <= GOAL_STARTUP_MS)
        ratios.append(("start-up to first 200: legacy ÷ Rust backend-api", med_ms["legacy"] / med_ms["backend-api"],
                       med_ms["legacy"] / GOAL_STARTUP_MS))

    if "download" in sc:
        dl = sc["download"]
        via = [r for r in dl["rounds"] if r["path"] == "backend"]
        direct = [r for r in dl["rounds"] if r["path"] == "direct"]
        growth = max((r["backend_rss_peak_kib"] - r["backend_rss_before_kib"]) for r in via)
        ok = all(r["status"] == 200 and r["bytes"] >= dl["target_bytes"] for r in via)
        summary["download"] = {
            "bytes_per_round": median([r["bytes"] for r in via]),
            "via_backend_mib_per_s_median": med(via, "mib_per_s"),
            "direct_from_provider_mib_per_s_median": med(direct, "mib_per_s"),
            "backend_rss_growth_mib_max": mib(growth),
            "backend_rss_peak_mib_max": mib(max(r["backend_rss_peak_kib"] for r in via)),
            "backend_idle_mib": mib(dl["backend_idle_kib"]),
            "backend_cpu_s_median": med(via, "backend_cpu_s"),
            "all_complete": ok,
        }
        goal(f"/download_external_logs {dl['target_bytes'] / (1 << 30):g} GiB: peak RSS flat (≤ 5 MiB growth)",
             f"{fmt(med(via, 'mib_per_s'))} MiB/s through the backend (provider direct {fmt(med(direct, 'mib_per_s'))}); "
             f"RSS +{fmt(mib(growth))} MiB (peak {fmt(mib(max(r['backend_rss_peak_kib'] for r in via)))} MiB)",
             "≤ +5 MiB", ok and mib(growth) <= GOAL_DOWNLOAD_GROWTH_MIB,
             "legacy: a stub that answers OK, nothing to compare")

    if "healthcheck" in sc:
        hc = sc["healthcheck"]
        wall = median([r["wall_s"] for r in hc["runs"]])
        right = all(r["records"] == hc["targets"] and r["healthy"] == hc["targets"] - hc["hanging"]
                    and r["exit_code"] == 1 for r in hc["runs"])
        summary["healthcheck"] = {"wall_s_median": wall, "timeout_s": hc["timeout_s"],
                                  "wall_over_timeout": wall / hc["timeout_s"], "results_right": right,
                                  "rss_peak_mib": mib(max(r["rss_peak_kib"] for r in hc["runs"]))}
        goal("health-check --once, 100 targets, 50 hanging: wall ≈ one timeout",
             f"{wall:.2f} s for a {hc['timeout_s']:g} s timeout ({wall / hc['timeout_s']:.2f}x); 100 records, 50 healthy, exit 1: {right}",
             "≤ 1.25 timeouts", right and wall <= hc["timeout_s"] * GOAL_HEALTHCHECK_FACTOR,
             "a sequential loop (the legacy bash + curl) would take 50 timeouts")

    for name, scenario_key, server in (("/health_check c64", "health", "rust"), ("data POST c64", "data", "rust_post")):
        if scenario_key in sc:
            peak = max(r["rss_peak_kib"] for r in sc[scenario_key][server]["rounds"])
            summary.setdefault("rss_under_load_mib", {})[name] = mib(peak)
    return summary, goals, ratios


def chart(ratios, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r[0] for r in ratios][::-1]
    values = [r[1] for r in ratios][::-1]
    targets = [r[2] for r in ratios][::-1]
    colors = ["#2e7d32" if v >= t else "#c62828" for v, t in zip(values, targets)]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(ratios) + 1.4), dpi=110)
    bars = ax.barh(labels, values, color=colors)
    ax.set_xscale("log")
    for i, t in enumerate(targets):
        ax.plot([t, t], [i - 0.4, i + 0.4], color="black", linewidth=2)
    for bar, v in zip(bars, values):
        ax.text(bar.get_width() * 1.05, bar.get_y() + bar.get_height() / 2, f"{v:,.1f}x" if v >= 1 else f"{v:.2f}x",
                va="center", fontsize=9)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlim(min(values + targets) / 2, max(values + targets) * 4)
    ax.set_xlabel("ratio, higher is better (log scale); black tick = goal; green met, red missed")
    ax.set_title("abn-stack (Rust) vs legacy gunicorn, same machine, same run")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def markdown(raw, summary, goals, ratios) -> str:
    m = raw["machine"]
    lines = [
        "# Benchmark results: Rust services vs the legacy gunicorn apps",
        "",
        f"Generated by `bench/report.py` from one `{raw['command']}` run ({raw['mode']} mode), "
        f"started {raw['started_utc']}, {raw['duration_s']} s.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, kernel {m['kernel']}",
        f"- Tools: {m['wrk']}; {m['rustc']}; legacy on {m['python']} with {', '.join(m['baseline_requirements'])}, "
        f"gunicorn `-w {raw['legacy_workers']}` sync workers",
        f"- Source: git {m['git_revision']}; binaries `cargo build --release` (target/release)",
        f"- Load average (1, 5, 15 min) at start {raw['loadavg_at_start']}, at end {raw['loadavg_at_end']}; "
        "the machine is shared, and wrk runs on the same 2 cores as the servers",
        f"- Rounds per throughput scenario: {raw['config']['rounds']} (alternating order), "
        f"{raw['config']['duration']} s per wrk run; /api_1: {raw['config'].get('api_rounds', raw['config']['rounds'])} "
        f"rounds of {raw['config']['api_duration']} s",
        "",
        "## Goals",
        "",
        "| goal | measured | target | met |",
        "| --- | --- | --- | --- |",
    ]
    for g in goals:
        note = f" ({g['note']})" if g["note"] else ""
        lines.append(f"| {g['goal']} | {g['measured']}{note} | {g['target']} | {'yes' if g['met'] else '**no**'} |")
    lines += ["", "## Ratios (medians of the rounds)", "", "![ratios](ratios.png)", "",
              "| ratio | value | goal |", "| --- | --- | --- |"]
    for label, value, target in ratios:
        lines.append(f"| {label} | {value:,.2f}x | {target:,.2f}x |")
    if "access_log_c64" in summary:
        s = summary["access_log_c64"]
        lines += ["", "## The access log's cost (backend-api /health_check, 64 connections)", "",
                  "| ACCESS_LOG | req/s (median) | server CPU µs/request | errors |", "| --- | --- | --- | --- |"]
        for n in ("on", "off"):
            lines.append(f"| {n} | {fmt(s['rps_median'][n], 0)} | {fmt(s['server_cpu_us_per_request'][n])} | {s['errors_total'][n]} |")
        lines += ["", f"on ÷ off: {s['on_vs_off_rps']:.3f}x req/s ({s['on_vs_off_per_round']:.3f}x, the median of the per-round ratios); {fmt(s['log_bytes_per_request'], 0)} bytes of "
                  "log per request (JSON lines to the log file)."]
    if "tracing_c64" in summary:
        s = summary["tracing_c64"]
        lines += ["", "## What traces cost (backend-api /health_check, 64 connections, access log off)", "",
                  "| build and tracing | req/s (median) | server CPU µs/request | errors |", "| --- | --- | --- | --- |"]
        labels = {"before": f"built before traces ({s['before_binary']}), tracing off",
                  "off": "this build, tracing off", "sampled_1pct": "this build, 1 % sampler to a local OTLP sink"}
        for n, label in labels.items():
            if n in s["rps_median"]:
                lines.append(f"| {label} | {fmt(s['rps_median'][n], 0)} | {fmt(s['server_cpu_us_per_request'][n])} | {s['errors_total'][n]} |")
        lines += ["", f"1 % sampler ÷ tracing off: {s['sampled_1pct_vs_off_rps']:.3f}x req/s (ratio of the medians), "
                  f"{s['sampled_1pct_vs_off_per_round']:.3f}x (median of the per-round ratios)"
                  + (f"; tracing off ÷ the build before traces: {s['off_vs_before_rps']:.3f}x, "
                     f"{s['off_vs_before_per_round']:.3f}x per round." if s["off_vs_before_rps"] else ".")]
    lines += ["", "## Medians and raw figures", ""]
    sc = raw["scenarios"]
    if "health" in sc:
        lines += ["### /health_check, 64 connections (`wrk -t2 -c64`)", "",
                  "| server | req/s per round | median req/s | p99 ms (median) | server CPU µs/request (user + sys) | wrk CPU s | errors | peak RSS MiB |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        s = summary["health_c64"]
        for n, label in (("legacy", "legacy gunicorn -w 4"), ("rust", "backend-api"), ("hello", "bare hyper hello")):
            rounds = sc["health"][n]["rounds"]
            split = s["server_cpu_us_per_request_split"][n]
            lines.append(f"| {label} | {', '.join(fmt(r['rps'], 0) for r in rounds)} | {fmt(s['rps_median'][n], 0)} | "
                         f"{fmt(s['p99_ms_median'][n], 2)} | {fmt(s['server_cpu_us_per_request'][n])} "
                         f"({fmt(split['user'])} + {fmt(split['sys'])}) | "
                         f"{fmt(s['wrk_cpu_s_median'][n])} | {s['errors_total'][n]} | {fmt(s['rss_peak_mib'][n])} |")
        lines += ["", f"CPU time per request, a figure less sensitive to what else runs on the machine: the bare "
                  f"hyper server needs {s['hello_vs_rust_cpu_per_request']:.2f}x the CPU of backend-api per request "
                  "(user and system time of the server process from /proc/<pid>/stat, over the whole wrk run). "
                  f"backend-api ÷ bare hyper, the median of the per-round ratios (each round runs both back to "
                  f"back): {s['rust_vs_hello_hyper_per_round']:.2f}x.", ""]
    if "api1" in sc:
        s = summary["api1_c1000"]
        lines += ["### /api_1, 1,000 connections (`wrk -t2 -c1000 --timeout 30s`), liveness probe alongside", "",
                  "| server | req/s per round | median | errors (all rounds) | p50 / p99 ms | probe p99 ms per round (idle server) | probe failures | peak RSS MiB |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for n, label, path in (("legacy", "legacy gunicorn -w 4", "/health_check"), ("rust", "backend-api", "/healthz")):
            rounds = sc["api1"][n]["rounds"]
            lines.append(f"| {label} | {', '.join(fmt(r['rps']) for r in rounds)} | {fmt(s['rps_median'][n])} | "
                         f"{sum(r['errors'] + r['non_2xx'] for r in rounds)} | {fmt(med(rounds, 'p50_ms'))} / {fmt(med(rounds, 'p99_ms'))} | "
                         f"{path}: {', '.join(fmt(r['probe']['p99_ms'], 2) + (' (' + fmt(r['probe_idle']['p99_ms'], 2) + ')' if 'probe_idle' in r else '') for r in rounds)} | "
                         f"{sum(r['probe']['failures'] for r in rounds)} of {sum(r['probe']['failures'] + r['probe']['answered'] for r in rounds)} | "
                         f"{fmt(s['rss_peak_mib'][n])} |")
        lines += ["", "The probe opens a new connection per request, 50 per second, 2 s timeout, from 1 s after "
                  "the load starts until 1 s before it ends; the legacy app has no `/healthz`, so its probe asks "
                  "`/health_check`. In brackets: the same probe against the same backend-api with no load, just before "
                  "the round (what the machine itself adds). wrk's error count includes its `timeout` counter "
                  "(answers slower than 30 s).", ""]
    if "data" in sc:
        s = summary["data_c64"]
        lines += ["### data-api writes, 64 connections (`wrk -t2 -c64`), no simulated delay", "",
                  "| load | req/s per round | median | p99 ms (median) | server CPU µs/request | errors | peak RSS MiB |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for n, label in (("legacy_get", "legacy `GET /` (a new file per request, not synced; folder emptied before each round)"),
                         ("rust_post", "data-api `POST /logs` (fdatasync, group commit)"),
                         ("rust_get", "data-api `GET /` (fdatasync, group commit)")):
            rounds = sc["data"][n]["rounds"]
            lines.append(f"| {label} | {', '.join(fmt(r['rps'], 0) for r in rounds)} | {fmt(s['rps_median'][n], 0)} | "
                         f"{fmt(s['p99_ms_median'][n], 2)} | {fmt(s['server_cpu_us_per_request'][n])} | "
                         f"{s['errors_total'][n]} | {fmt(s['rss_peak_mib'][n])} |")
        d = s["durability"]
        if d:
            lines += ["", f"Durability check: {fmt(d['acknowledged_by_wrk'])} answers acknowledged to wrk, "
                      f"{fmt(d['lines_in_segments'])} records in the segment files afterwards, "
                      f"{fmt(int(d['fdatasync_calls']))} fdatasync calls ({d['records_per_sync']} records per sync, "
                      f"{fmt(d['sync_seconds_sum'], 2)} s spent syncing). Segment check "
                      f"(`bench/data-api/verify.py`: every line a whole record, ids unique): {d.get('segments_check', 'n/a')}."]
        lines.append("")
    if "idle" in sc:
        lines += ["### Memory (VmRSS, summed over gunicorn's master and workers)", "",
                  "| process | idle MiB | processes |", "| --- | --- | --- |"]
        for n, v in sc["idle"].items():
            if n != "loadavg_at_start":
                lines.append(f"| {n} | {fmt(mib(v['rss_kib']))} | {v['processes']} |")
        if "rss_under_load_mib" in summary or "api1_c1000" in summary:
            lines.append("")
            peaks = dict(summary.get("rss_under_load_mib", {}))
            if "api1_c1000" in summary:
                peaks["/api_1 c1000 (1,000 in flight)"] = summary["api1_c1000"]["rss_peak_mib"]["rust"]
            if "download" in summary:
                peaks["/download_external_logs stream"] = summary["download"]["backend_rss_peak_mib_max"]
            lines.append("Peak RSS of the Rust service under load (sampled every 0.1 s): " +
                         "; ".join(f"{k} {fmt(v)} MiB" for k, v in peaks.items()) + ".")
        lines.append("")
    if "startup" in sc:
        lines += ["### Start-up: spawn to first 200", "", "| process | path | runs ms | median ms |", "| --- | --- | --- | --- |"]
        for n, v in sc["startup"].items():
            if n != "loadavg_at_start":
                label = "legacy gunicorn -w 4" if n == "legacy" else n
                lines.append(f"| {label} | `{v['path']}` | {', '.join(fmt(t) for t in v['runs_ms'])} | {fmt(v['median_ms'])} |")
        lines.append("")
    if "download" in sc:
        s, dl = summary["download"], sc["download"]
        lines += [f"### /download_external_logs: {fmt(s['bytes_per_round'])} bytes ({dl['limit_lines']:,} lines) per round", "",
                  "| path | status | GiB | s | MiB/s | first byte s | backend RSS before → peak MiB | backend CPU s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in dl["rounds"]:
            lines.append(f"| {'provider direct' if r['path'] == 'direct' else 'through backend-api'} | {r['status']} | "
                         f"{r['bytes'] / (1 << 30):.2f} | {fmt(r['seconds'], 2)} | {fmt(r['mib_per_s'])} | {fmt(r['first_byte_s'], 3)} | "
                         f"{fmt(mib(r['backend_rss_before_kib']))} → {fmt(mib(r['backend_rss_peak_kib']))} | {fmt(r['backend_cpu_s'])} |")
        lines += ["", "Bytes counted by `curl -o /dev/null -w %{size_download}`. The legacy endpoint is a stub "
                  "(403 or `OK`), so there is no legacy figure.", ""]
    if "healthcheck" in sc:
        hc = sc["healthcheck"]
        lines += ["### health-check --once: 100 targets, 50 of them accept and never answer", "",
                  f"`{hc['command']}`", "", "| run | wall s | exit | records | healthy | peak RSS MiB |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for i, r in enumerate(hc["runs"], 1):
            lines.append(f"| {i} | {r['wall_s']:.3f} | {r['exit_code']} | {r['records']} | {r['healthy']} | {fmt(mib(r['rss_peak_kib']))} |")
        lines.append("")
    lines += ["## Commands", "", "Everything above came from one command:", "", f"    {raw['command']}", "",
              "which runs `cargo build --release -p backend-api -p data-api -p health-check -p log-provider -p hello-hyper`, "
              "starts each server on 127.0.0.1 (legacy: `bench/legacy/run.sh APP PORT 4`), and runs, per round:", ""]
    seen = set()
    for key in ("health", "api1", "data"):
        for group in sc.get(key, {}).values():
            if isinstance(group, dict):
                for r in group.get("rounds", []):
                    cmd = r["command"]
                    if cmd not in seen:
                        seen.add(cmd)
                        lines.append(f"    {r['command']}")
    lines += ["", "Raw figures for every round (wrk output fields, RSS samples' peaks, CPU seconds, load "
              "averages) are in `results.json` under `raw`."]
    return "\n".join(lines) + "\n"


def readme_table(summary) -> str:
    """The table of the root README's Performance section (copied there by hand)."""
    rows = ["| measure | Rust | legacy | ratio | goal |", "|---|---|---|---|---|"]
    h = summary.get("health_c64")
    if h:
        rows.append(f"| `/health_check`, 64 connections | {fmt(h['rps_median']['rust'], 0)} req/s | "
                    f"{fmt(h['rps_median']['legacy'], 0)} req/s | {h['rust_vs_legacy']:.1f}x | ≥ 10x "
                    f"({'met' if h['rust_vs_legacy'] >= GOAL_HEALTH_VS_LEGACY else '**missed**'}) |")
        rows.append(f"| `/health_check` against a bare hyper server ({fmt(h['rps_median']['hello'], 0)} req/s) | | | "
                    f"{h['rust_vs_hello_hyper']:.2f}x | ≥ 0.85x "
                    f"({'met' if h['rust_vs_hello_hyper'] >= GOAL_HEALTH_VS_HYPER else '**missed**: CPU per request of the middleware stack'}) |")
    a = summary.get("api1_c1000")
    if a:
        ok = a["rps_median"]["rust"] >= GOAL_API1_RPS and a["rust_errors_total"] == 0
        rows.append(f"| `/api_1` (500 ms of work), 1,000 connections | {fmt(a['rps_median']['rust'], 0)} req/s, "
                    f"{a['rust_errors_total']} errors | {fmt(a['rps_median']['legacy'])} req/s | {a['rust_vs_legacy']:.0f}x | "
                    f"≥ 1,900 req/s ({'met' if ok else '**missed**'}) |")
        p99 = a["rust_healthz_probe_p99_ms"]["median"]
        rows.append(f"| `/healthz` p99 during that load | {fmt(p99)} ms | no answer | | ≤ 10 ms "
                    f"({'met' if p99 is not None and p99 <= GOAL_HEALTHZ_P99_MS else '**missed**'}) |")
    d = summary.get("data_c64")
    if d:
        rows.append(f"| data writes, 64 connections (Rust: fdatasync before every answer) | "
                    f"{fmt(d['rps_median']['rust_post'], 0)} req/s | {fmt(d['rps_median']['legacy_get'], 0)} req/s (not synced) | "
                    f"{d['rust_post_vs_legacy']:.1f}x ({d['rust_post_vs_legacy_best_round']:.1f}x against the legacy's best round, "
                    f"{fmt(d['legacy_best_round_rps'], 0)} req/s) | ≥ 3x "
                    f"({'met' if d['rust_post_vs_legacy'] >= GOAL_DATA_VS_LEGACY else '**missed**'}) |")
    idle = summary.get("idle_rss_mib")
    if idle:
        rust = [v for n, v in idle.items() if not n.startswith("legacy")]
        rows.append(f"| idle RSS per service | {min(rust):.1f}-{max(rust):.1f} MiB | {idle['legacy backend_api']:.0f} MiB | "
                    f"{idle['legacy backend_api'] / idle['backend-api']:.0f}x less | ≤ 10 MiB "
                    f"({'met' if max(rust) <= GOAL_IDLE_MIB else '**missed**'}) |")
    if a:
        peak = a["rss_peak_mib"]["rust"]
        rows.append(f"| RSS with 1,000 requests in flight | {peak:.0f} MiB | {a['rss_peak_mib']['legacy']:.0f} MiB | | "
                    f"≤ 64 MiB ({'met' if peak <= GOAL_LOADED_MIB else '**missed**'}) |")
    st = summary.get("startup_ms_median")
    if st:
        worst = max(v for n, v in st.items() if n != "legacy")
        rows.append(f"| start-up to first 200 (median of 10) | {fmt(st['backend-api'])} ms | {st['legacy']:.0f} ms | "
                    f"{st['legacy'] / st['backend-api']:.0f}x | ≤ 20 ms ({'met' if worst <= GOAL_STARTUP_MS else '**missed**'}) |")
    dl = summary.get("download")
    if dl:
        ok = dl["all_complete"] and dl["backend_rss_growth_mib_max"] <= GOAL_DOWNLOAD_GROWTH_MIB
        rows.append(f"| `/download_external_logs`, 1 GiB | {fmt(dl['via_backend_mib_per_s_median'], 0)} MiB/s, RSS "
                    f"+{dl['backend_rss_growth_mib_max']:.0f} MiB | stub | | flat RSS ({'met' if ok else '**missed**'}) |")
    hc = summary.get("healthcheck")
    if hc:
        ok = hc["results_right"] and hc["wall_over_timeout"] <= GOAL_HEALTHCHECK_FACTOR
        rows.append(f"| health-check `--once`, 100 targets, 50 hanging, {hc['timeout_s']:g} s timeout | "
                    f"{hc['wall_s_median']:.2f} s | | | ≈ one timeout ({'met' if ok else '**missed**'}) |")
    return "\n".join(rows) + "\n"


def analysis_link(out: Path) -> str:
    if (out / "ANALYSIS.md").exists():
        return "\nWhat bounds the missed goals, with profiles: [ANALYSIS.md](ANALYSIS.md).\n"
    return ""


def main():
    raw_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    raw = json.loads(raw_path.read_text())
    summary, goals, ratios = summarize(raw)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"summary": summary, "goals": goals,
                                                  "ratios": [{"ratio": r[0], "value": r[1], "goal": r[2]} for r in ratios],
                                                  "raw": raw}, indent=1) + "\n")
    (out / "results.md").write_text(markdown(raw, summary, goals, ratios) + analysis_link(out))
    (out / "readme-table.md").write_text(readme_table(summary))
    if ratios:
        chart(ratios, out / "ratios.png")
    for g in goals:
        print(f"{'met   ' if g['met'] else 'MISSED'} {g['goal']}: {g['measured']}")
    print(f"results in {out}")


if __name__ == "__main__":
    main()
