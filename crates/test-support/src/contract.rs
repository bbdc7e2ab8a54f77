//! What a served OpenAPI document declares, for property tests that a parser accepts exactly
//! that: the range of an integer query parameter, and strategies of the RFC 3339 date-times that
//! `format: date-time` allows and of texts just outside it.

use proptest::prelude::*;

/// The `minimum` and `maximum` the document at `base/openapi.json` declares for query parameter
/// `name` of `GET path`; fails the test when either is missing.
pub async fn query_integer_bounds(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    name: &str,
) -> (u64, u64) {
    let doc: serde_json::Value = crate::get_json(client, &format!("{base}/openapi.json")).await;
    let parameter = doc["paths"][path]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("GET {path} declares no parameter {name}"));
    let bound = |key: &str| {
        parameter["schema"][key]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} has no {key}: {parameter}")) as u64
    };
    (bound("minimum"), bound("maximum"))
}

/// The parts of an RFC 3339 date-time, each within its range.
#[derive(Debug, Clone)]
struct Parts {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    fraction: String,
    offset: String,
    t: String,
}

impl Parts {
    fn render(&self) -> String {
        let Parts {
            year,
            month,
            day,
            hour,
            minute,
            second,
            fraction,
            offset,
            t,
        } = self;
        format!(
            "{year:04}-{month:02}-{day:02}{t}{hour:02}:{minute:02}:{second:02}{fraction}{offset}"
        )
    }
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        (0u32..=9999, 1u32..=12, 1u32..=31),
        (0u32..=23, 0u32..=59, 0u32..=59),
        prop::option::of("[0-9]{1,12}"),
        prop_oneof!["[Zz]", "[+-](0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]"],
        "[Tt]",
    )
        .prop_map(
            |((year, month, day), (hour, minute, second), fraction, offset, t)| Parts {
                year,
                month,
                day: day.min(days_in_month(year, month)),
                hour,
                minute,
                second,
                fraction: fraction.map(|f| format!(".{f}")).unwrap_or_default(),
                offset,
                t,
            },
        )
}

/// Every shape RFC 3339 allows for a date-time: years 0000 to 9999, days valid for their month,
/// `T` or `t`, any number of fraction digits, `Z`, `z` or any offset up to ±23:59.
pub fn rfc3339_date_time() -> impl Strategy<Value = String> {
    parts().prop_map(|p| p.render())
}

/// Texts one step outside RFC 3339: one field out of its range, or one part missing or
/// misshapen.
pub fn near_miss_date_time() -> impl Strategy<Value = String> {
    (parts(), 0usize..11).prop_map(|(p, which)| {
        let mut bad = p.clone();
        match which {
            0 => bad.month = 13,
            1 => bad.month = 0,
            2 => bad.day = days_in_month(p.year, p.month) + 1,
            3 => bad.hour = 24,
            4 => bad.minute = 60,
            5 => bad.second = 61,
            6 => bad.offset = String::new(),
            7 => bad.offset = "+24:00".to_string(),
            8 => bad.t = " ".to_string(),
            9 => bad.fraction = ".".to_string(),
            _ => return format!("1{}", p.render()),
        }
        bad.render()
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
