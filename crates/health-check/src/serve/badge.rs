//! A shields-style badge (flat: grey label, coloured message) of one target's uptime, for
//! READMEs and wikis. The message is text, so the colour is never the only signal.

use crate::report::html::escape;
use crate::report::{show_percent, TargetReport};

/// Approximate width of one character of 11 px Verdana, as the shields badges size their text.
const CHAR_WIDTH: usize = 7;
const PADDING: usize = 10;

/// The badge: label the target, message its uptime over 24 h, or "down" while it fails.
pub fn render(target: &TargetReport) -> String {
    let message = if target.up {
        target
            .uptime_24h_percent
            .map_or_else(|| "no probes".to_string(), show_percent)
    } else {
        "down".to_string()
    };
    let colour = match (target.up, target.uptime_24h_percent) {
        (false, _) => "#e05d44",
        (true, Some(p)) if p >= 99.0 => "#4c1",
        (true, Some(p)) if p >= 95.0 => "#dfb317",
        (true, Some(_)) => "#fe7d37",
        (true, None) => "#9f9f9f",
    };
    let label = escape(&target.target);
    let message = escape(&message);
    let left = target.target.chars().count() * CHAR_WIDTH + PADDING;
    let right = message.chars().count() * CHAR_WIDTH + PADDING;
    let width = left + right;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"20\" role=\"img\" \
         aria-label=\"{label}: {message}\"><title>{label}: {message}</title>\
         <rect width=\"{left}\" height=\"20\" fill=\"#555\"/>\
         <rect x=\"{left}\" width=\"{right}\" height=\"20\" fill=\"{colour}\"/>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\">\
         <text x=\"{lx}\" y=\"14\">{label}</text><text x=\"{rx}\" y=\"14\">{message}</text></g></svg>\n",
        lx = left / 2,
        rx = left + right / 2,
    )
}
