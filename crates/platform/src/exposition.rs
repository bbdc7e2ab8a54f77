//! The two text formats `/metrics` can answer in, chosen from the scraper's `Accept`.
//!
//! prometheus-client writes OpenMetrics: a counter's metadata names the family (`# TYPE
//! http_requests counter`) while its samples are `http_requests_total`, and the page ends with
//! `# EOF`. Served as the classic format (`text/plain; version=0.0.4`) those metadata lines name
//! a metric that has no samples, so the counters scrape as untyped. A client that asks only for
//! the classic format gets a page rewritten for it: metadata named after the samples, no `# UNIT`
//! or `# EOF`.

use std::collections::HashMap;

/// A text exposition format of Prometheus metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    OpenMetrics,
    Classic,
}

impl Format {
    /// OpenMetrics unless the `Accept` header asks for the classic `text/plain` (with a q above
    /// 0) and for no OpenMetrics at all. Wildcards ask for nothing in particular, so `*/*` and a
    /// missing header get OpenMetrics, what Prometheus itself prefers.
    pub(crate) fn negotiate(accept: Option<&str>) -> Self {
        let mut classic = false;
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|param| param.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, value)| value.trim().parse::<f32>().unwrap_or(0.0));
            if q <= 0.0 {
                continue;
            }
            match media.as_str() {
                "application/openmetrics-text" => return Self::OpenMetrics,
                "text/plain" => classic = true,
                _ => {}
            }
        }
        if classic {
            Self::Classic
        } else {
            Self::OpenMetrics
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The page in this format, from prometheus-client's OpenMetrics output.
    pub(crate) fn render(self, openmetrics: String) -> String {
        match self {
            Self::OpenMetrics => openmetrics,
            Self::Classic => to_classic(&openmetrics),
        }
    }
}

/// How an OpenMetrics family is named and typed in the classic format.
struct Classic {
    /// The suffix OpenMetrics adds to the family name in its samples.
    suffix: &'static str,
    kind: &'static str,
}

fn classic_of(openmetrics_type: &str) -> Classic {
    let (suffix, kind) = match openmetrics_type {
        "counter" => ("_total", "counter"),
        "info" => ("_info", "gauge"),
        "gauge" => ("", "gauge"),
        "histogram" => ("", "histogram"),
        "summary" => ("", "summary"),
        _ => ("", "untyped"),
    };
    Classic { suffix, kind }
}

/// Rewrites prometheus-client's OpenMetrics page as classic text format 0.0.4.
fn to_classic(openmetrics: &str) -> String {
    // Families by name, from their `# TYPE` lines (which follow `# HELP`).
    let families: HashMap<&str, Classic> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name, classic_of(kind)))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = families.get(name).map_or("", |family| family.suffix);
            out.push_str(&format!("# HELP {name}{suffix} {help}\n"));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(name, _)| name);
            let family = families.get(name).expect("collected above");
            out.push_str(&format!("# TYPE {name}{} {}\n", family.suffix, family.kind));
        } else if is_created_sample(line, &families) {
            // A counter's creation time has no place in the classic format.
        } else {
            // Exemplars (` # {...}`) are OpenMetrics only.
            let sample = line.split_once(" # ").map_or(line, |(sample, _)| sample);
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

fn is_created_sample(line: &str, families: &HashMap<&str, Classic>) -> bool {
    let name = line.split(['{', ' ']).next().unwrap_or_default();
    name.strip_suffix("_created")
        .and_then(|family| families.get(family))
        .is_some_and(|family| family.kind == "counter")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_unless_the_client_asks_only_for_classic_text() {
        // Prometheus 2.x's scrape header, and its header with OpenMetrics turned off.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4;q=1,*/*;q=0.1")),
            Format::Classic
        );
        assert_eq!(Format::negotiate(Some("Text/Plain")), Format::Classic);
        assert_eq!(Format::negotiate(None), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Format::Classic
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0, application/json")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn classic_metadata_names_the_samples() {
        let openmetrics =
            "# HELP requests Requests.\n# TYPE requests counter\n# UNIT requests seconds\n\
            requests_total{a=\"1\"} 3 # {trace=\"x\"} 1.0\nrequests_created 17\n\
            # HELP up Build.\n# TYPE up info\nup_info{v=\"1\"} 1\n\
            # HELP load Load.\n# TYPE load gauge\nload 2\n# EOF\n";
        assert_eq!(
            to_classic(openmetrics),
            "# HELP requests_total Requests.\n# TYPE requests_total counter\n\
             requests_total{a=\"1\"} 3\n\
             # HELP up_info Build.\n# TYPE up_info gauge\nup_info{v=\"1\"} 1\n\
             # HELP load Load.\n# TYPE load gauge\nload 2\n"
        );
    }
}
