//! The report as an aligned text table for a terminal or a Job log.

use super::{show_uptime, Report};

pub fn render_text(report: &Report) -> String {
    let window = match &report.since {
        Some(since) => format!("since {since}"),
        None => "whole history".to_string(),
    };
    let mut out = format!("health report at {} ({window})\n", report.generated_at);
    if report.targets.is_empty() {
        out.push_str("no probes in this window\n");
    }
    let mut rows = vec![[
        "TARGET".to_string(),
        "PROBES".to_string(),
        "UPTIME".to_string(),
        "P50".to_string(),
        "P99".to_string(),
        "LAST FAILURE".to_string(),
    ]];
    for t in &report.targets {
        let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v}ms"));
        let failure = t.last_failure.as_ref().map_or("-".to_string(), |f| {
            let status = f
                .status
                .map_or("no answer".to_string(), |s| format!("HTTP {s}"));
            let error = f.error.as_deref().unwrap_or("");
            format!("{} {status}: {error}", f.ts)
        });
        rows.push([
            t.target.clone(),
            t.probes.to_string(),
            show_uptime(t),
            ms(t.p50_ms),
            ms(t.p99_ms),
            failure,
        ]);
    }
    if !report.targets.is_empty() {
        let mut widths = [0usize; 5];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(widths) {
                line.push_str(&format!("{cell:<w$}  "));
            }
            line.push_str(&row[5]);
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    if report.skipped_lines > 0 {
        out.push_str(&format!(
            "{} history line(s) were not probe records and were skipped\n",
            report.skipped_lines
        ));
    }
    out
}
