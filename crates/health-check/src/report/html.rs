//! The report as one self-contained status page: inline CSS, no external assets (no CDN, no web
//! fonts), so it opens from the volume in any browser, offline; the served page adds a few lines
//! of script that refresh it in place.

use std::fmt::Write;
use std::time::Duration;

use super::{show_percent, show_uptime, Report, TargetReport};

/// Light and dark palettes (`prefers-color-scheme`); text colours keep 4.5:1 contrast or more
/// on their background, and a failed segment is also shorter and striped, so colour is never the
/// only signal.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1f24;background:#fff}\
h1{font-size:1.5rem}section{border:1px solid #d0d7de;border-radius:6px;padding:1rem;margin:1rem 0}\
h2{font-size:1.1rem;margin:0}h3{font-size:1rem;margin:.75rem 0 .25rem}.url{color:#57606a;font-family:monospace;word-break:break-all}\
.stats{margin:.5rem 0}.bar{display:flex;gap:1px;height:2rem;align-items:flex-end}.bar span{flex:1;border-radius:1px;height:100%}\
.up{background:#2da44e}.down{background:repeating-linear-gradient(45deg,#cf222e 0 3px,#8c1219 3px 6px);height:60%!important}\
.state{font-weight:bold;margin:.25rem 0}.state.is-up{color:#116329}.state.is-down{color:#a40e26}\
.failure{color:#a40e26}.none{color:#57606a}dl{display:flex;gap:1.5rem;margin:.5rem 0}dt{color:#57606a}dd{margin:0;font-weight:bold}\
svg.spark{display:block;margin:.5rem 0}svg.spark polyline{fill:none;stroke:#0969da;stroke-width:1.5}\
a{color:#0969da}\
@media (prefers-color-scheme:dark){body{color:#e6edf3;background:#0d1117}section{border-color:#30363d}\
.url,.none,dt{color:#9198a1}.state.is-up{color:#3fb950}.state.is-down,.failure{color:#ff7b72}\
svg.spark polyline{stroke:#58a6ff}a{color:#58a6ff}}";

/// The status page as a static file (`report --format html`): no scripts, opens offline.
pub fn render_html(report: &Report) -> String {
    render_page(report, None)
}

/// The page `health-check serve` answers at `/`: the same page, whose `<main>` a few lines of
/// script fetch again every `refresh` and swap in place; without JavaScript a `<noscript>`
/// refresh reloads the whole page instead.
pub fn render_live_page(report: &Report, refresh: Duration) -> String {
    render_page(report, Some(refresh))
}

fn render_page(report: &Report, refresh: Option<Duration>) -> String {
    let window = match &report.since {
        Some(since) => format!("since {}", escape(since)),
        None => "whole history".to_string(),
    };
    let seconds = refresh.map(|r| r.as_secs().max(1));
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n",
    );
    if let Some(s) = seconds {
        let _ = writeln!(
            page,
            "<noscript><meta http-equiv=\"refresh\" content=\"{s}\"></noscript>"
        );
    }
    let down = report.targets.iter().filter(|t| !t.up).count();
    let _ = write!(
        page,
        "<title>abn-stack health</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>abn-stack health</h1></header>\n<main id=\"status\">\n\
         <p>Report at {} ({window}), {} target(s): {} up, {down} down.</p>\n",
        escape(&report.generated_at),
        report.targets.len(),
        report.targets.len() - down,
    );
    if report.targets.is_empty() {
        page.push_str("<p class=\"none\">No probes in this window.</p>\n");
    }
    for target in &report.targets {
        target_section(&mut page, target);
    }
    if report.skipped_lines > 0 {
        let _ = writeln!(
            page,
            "<p class=\"none\">{} history line(s) were not probe records and were skipped.</p>",
            report.skipped_lines
        );
    }
    page.push_str("</main>\n");
    if let Some(s) = seconds {
        let _ = write!(
            page,
            "<footer><p>Refreshed every {s} s. The same data as JSON: \
             <a href=\"api/v1/status\">api/v1/status</a>.</p></footer>\n\
             <script>setInterval(function(){{fetch(location.href,{{cache:\"no-store\"}})\
             .then(function(r){{return r.ok?r.text():null}}).then(function(t){{if(!t)return;\
             var m=new DOMParser().parseFromString(t,\"text/html\").getElementById(\"status\");\
             if(m)document.getElementById(\"status\").replaceWith(m)}}).catch(function(){{}})}},{ms});</script>\n",
            ms = s * 1000
        );
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn target_section(page: &mut String, t: &TargetReport) {
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    let window = |p: Option<f64>| p.map_or("no probes".to_string(), show_percent);
    let uptime = show_uptime(t);
    let (state_class, state) = if t.up {
        ("is-up", "<span aria-hidden=\"true\">✓</span> Up")
    } else {
        ("is-down", "<span aria-hidden=\"true\">✗</span> Down")
    };
    let _ = write!(
        page,
        "<section class=\"target\" id=\"target-{id}\" aria-label=\"{name}\">\n<h2>{name}</h2>\n\
         <p class=\"state {state_class}\">{state}</p>\n<div class=\"url\">{url}</div>\n\
         <div class=\"stats\">uptime <strong>{uptime}</strong> · {ok} of {probes} probes ok · p50 {p50} · p99 {p99} · {first} to {last}</div>\n\
         <dl><div><dt>Uptime 24 h</dt><dd class=\"uptime-24h\">{day}</dd></div>\
         <div><dt>Uptime 7 d</dt><dd class=\"uptime-7d\">{week}</dd></div></dl>\n",
        id = escape(&t.target),
        name = escape(&t.target),
        url = escape(&t.url),
        ok = t.ok,
        probes = t.probes,
        p50 = ms(t.p50_ms),
        p99 = ms(t.p99_ms),
        first = escape(&t.first_ts),
        last = escape(&t.last_ts),
        day = window(t.uptime_24h_percent),
        week = window(t.uptime_7d_percent),
    );
    let failed = t.recent.iter().filter(|p| !p.ok).count();
    let _ = write!(
        page,
        "<div class=\"bar\" role=\"img\" aria-label=\"last {} probes: {} ok, {failed} failed\">",
        t.recent.len(),
        t.recent.len() - failed,
    );
    for p in &t.recent {
        let (class, result) = if p.ok {
            ("up", "ok")
        } else {
            ("down", "failed")
        };
        let _ = write!(
            page,
            "<span class=\"{class}\" title=\"{}: {result}\"></span>",
            escape(&p.ts)
        );
    }
    page.push_str("</div>\n");
    sparkline(page, t);
    match &t.last_failure {
        Some(f) => {
            let status = f
                .status
                .map_or("no answer".to_string(), |s| format!("HTTP {s}"));
            let _ = writeln!(
                page,
                "<p class=\"failure\">Last failure: {} {status}: {}</p>",
                escape(&f.ts),
                escape(f.error.as_deref().unwrap_or(""))
            );
        }
        None => page.push_str("<p class=\"none\">No failure in this window.</p>\n"),
    }
    incidents(page, t);
    page.push_str("</section>\n");
}

/// The answered latencies of the recent probes as a small inline SVG line.
fn sparkline(page: &mut String, t: &TargetReport) {
    const WIDTH: f64 = 180.0;
    const HEIGHT: f64 = 30.0;
    let answered: Vec<u64> = t.recent.iter().filter_map(|p| p.latency_ms).collect();
    if answered.len() < 2 {
        return;
    }
    let low = *answered.iter().min().expect("not empty");
    let high = *answered.iter().max().expect("not empty");
    let span = (high - low).max(1) as f64;
    let step = WIDTH / (answered.len() - 1) as f64;
    let points: Vec<String> = answered
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let y = HEIGHT - 1.0 - (v - low) as f64 / span * (HEIGHT - 2.0);
            format!("{:.1},{y:.1}", i as f64 * step)
        })
        .collect();
    let _ = writeln!(
        page,
        "<svg class=\"spark\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"latency of the last {} answered probes: {low} to {high} ms\"><polyline points=\"{}\"/></svg>",
        answered.len(),
        points.join(" ")
    );
}

fn incidents(page: &mut String, t: &TargetReport) {
    if t.incidents.is_empty() {
        return;
    }
    page.push_str("<h3>Incidents</h3>\n<ul class=\"incidents\">\n");
    for i in &t.incidents {
        let when = match &i.ended {
            Some(ended) => format!("{} to {}", escape(&i.started), escape(ended)),
            None => format!("<strong>open</strong> since {}", escape(&i.started)),
        };
        let _ = writeln!(
            page,
            "<li>{when}: {} failed probe(s): {}</li>",
            i.failed_probes,
            escape(&i.reason)
        );
    }
    page.push_str("</ul>\n");
}

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
