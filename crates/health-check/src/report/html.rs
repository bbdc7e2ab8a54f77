//! The report as one self-contained status page: inline CSS, no scripts, no external assets, so
//! it opens from the volume in any browser, offline.

use std::fmt::Write;

use std::time::SystemTime;

use super::{show_uptime, Report, TargetReport};
use crate::record::format_ts;

/// Most segments in an uptime bar; longer histories are grouped into this many slices.
const BAR_SEGMENTS: usize = 60;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1f24}\
h1{font-size:1.5rem}section{border:1px solid #d0d7de;border-radius:6px;padding:1rem;margin:1rem 0}\
h2{font-size:1.1rem;margin:0}.url{color:#57606a;font-family:monospace;word-break:break-all}\
.stats{margin:.5rem 0}.bar{display:flex;gap:2px;height:2rem}.bar span{flex:1;border-radius:2px}\
.up{background:#2da44e}.partial{background:#d4a72c}.down{background:#cf222e}\
.failure{color:#cf222e}.none{color:#57606a}";

pub fn render_html(report: &Report) -> String {
    let window = match &report.since {
        Some(since) => format!("since {}", escape(since)),
        None => "whole history".to_string(),
    };
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>abn-stack health</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>abn-stack health</h1>\n<p>Report at {} ({window}), {} target(s).</p>\n",
        escape(&report.generated_at),
        report.targets.len()
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
    page.push_str("</body>\n</html>\n");
    page
}

fn target_section(page: &mut String, t: &TargetReport) {
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    let uptime = show_uptime(t);
    let _ = write!(
        page,
        "<section class=\"target\" id=\"target-{id}\">\n<h2>{name}</h2>\n<div class=\"url\">{url}</div>\n\
         <div class=\"stats\">uptime <strong>{uptime}</strong> · {ok} of {probes} probes ok · p50 {p50} · p99 {p99} · {first} to {last}</div>\n\
         <div class=\"bar\" role=\"img\" aria-label=\"uptime {uptime}\">",
        id = escape(&t.target),
        name = escape(&t.target),
        url = escape(&t.url),
        ok = t.ok,
        probes = t.probes,
        p50 = ms(t.p50_ms),
        p99 = ms(t.p99_ms),
        first = escape(&t.first_ts),
        last = escape(&t.last_ts),
    );
    for slice in slices(&t.outcomes) {
        let ok = slice.iter().filter(|(_, ok)| *ok).count();
        let class = match ok {
            0 => "down",
            n if n == slice.len() => "up",
            _ => "partial",
        };
        let (from, to) = (slice[0].0, slice[slice.len() - 1].0);
        let span = if from == to {
            format_ts(from)
        } else {
            format!("{} to {}", format_ts(from), format_ts(to))
        };
        let _ = write!(
            page,
            "<span class=\"{class}\" title=\"{span}: {ok} of {} ok\"></span>",
            slice.len()
        );
    }
    page.push_str("</div>\n");
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
    page.push_str("</section>\n");
}

/// Splits the outcomes into at most [`BAR_SEGMENTS`] contiguous, nearly equal slices.
fn slices(outcomes: &[(SystemTime, bool)]) -> Vec<&[(SystemTime, bool)]> {
    let n = outcomes.len();
    let count = n.min(BAR_SEGMENTS);
    (0..count)
        .map(|i| &outcomes[i * n / count..(i + 1) * n / count])
        .collect()
}

fn escape(s: &str) -> String {
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
    fn slices_cover_every_outcome_once() {
        let outcomes: Vec<(SystemTime, bool)> = (0..125)
            .map(|i| {
                (
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(i),
                    i % 2 == 0,
                )
            })
            .collect();
        let s = slices(&outcomes);
        assert_eq!(s.len(), BAR_SEGMENTS);
        assert_eq!(s.iter().map(|x| x.len()).sum::<usize>(), 125);
        assert_eq!(slices(&outcomes[..3]).len(), 3);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
