//! The JSON log line, written field by field into the line's buffer. The shape is
//! tracing-subscriber's JSON format with the event flattened and the current span:
//!
//! `{"timestamp":"…","level":"INFO","message":"…",<the event's fields>,"target":"…","span":{<the span's fields>,"name":"…"}}`
//!
//! tracing-subscriber's own JSON formatter pays, on every line, for a map of the event's fields
//! and for parsing the span's fields back from the JSON text it stored them as; at one access-log
//! line a request that was the largest cost of a request (`bench/instructions.py`). Here a span's
//! fields are kept as the JSON text of its members (`"k":v,…`), spliced into each line as they
//! are, and an event's fields are written as they are visited. Strings that need it are escaped
//! by serde_json, numbers formatted as serde_json does.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of JSON lines; its span fields come from [`JsonMembers`].
pub(crate) struct JsonLines;

/// A span's fields as JSON members, `"k":v,"k2":v2` (no braces, so a later `record` appends).
pub(crate) struct JsonMembers;

impl<S> FormatEvent<S, JsonMembers> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonMembers>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        timestamp(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(metadata.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = Members::after_others(&mut writer);
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        json_string(&mut writer, metadata.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            if let Some(members) = extensions.get::<FormattedFields<JsonMembers>>() {
                if !members.fields.is_empty() {
                    writer.write_str(&members.fields)?;
                    writer.write_char(',')?;
                }
            }
            writer.write_str("\"name\":")?;
            json_string(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

impl<'writer> FormatFields<'writer> for JsonMembers {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = Members::first(&mut writer);
        fields.record(&mut members);
        members.result
    }

    /// A field recorded after the span opened is appended (a field is recorded once: the ones
    /// declared `Empty` at the start).
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut members = Members {
            writer: &mut writer,
            first,
            result: Ok(()),
        };
        fields.record(&mut members);
        members.result
    }
}

/// Writes each visited field as a JSON member, `,` between them.
struct Members<'a, 'w> {
    writer: &'a mut Writer<'w>,
    /// No `,` before the next member.
    first: bool,
    result: fmt::Result,
}

impl<'a, 'w> Members<'a, 'w> {
    fn first(writer: &'a mut Writer<'w>) -> Self {
        Self {
            writer,
            first: true,
            result: Ok(()),
        }
    }

    fn after_others(writer: &'a mut Writer<'w>) -> Self {
        Self {
            writer,
            first: false,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'w>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.writer.write_char(',')?;
            }
            self.first = false;
            json_string(self.writer, field.name())?;
            self.writer.write_char(':')?;
            value(self.writer)
        })();
    }
}

thread_local! {
    /// The second the last line of this thread was written in, and its text up to the fraction
    /// (`2026-12-02T01:00:31.`): lines of the same second reuse it.
    static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };

    /// The text of a `Debug` field (the message, mostly) before it is escaped: one buffer per
    /// thread, reused.
    static DEBUG_TEXT: RefCell<String> = const { RefCell::new(String::new()) };
}

impl Visit for Members<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| json_string(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.member(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.member(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    /// As serde_json writes it (`1.0`, `0.25`); `null` for NaN and infinities.
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, |w| match serde_json::Number::from_f64(value) {
            Some(number) => write!(w, "{number}"),
            None => w.write_str("null"),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            DEBUG_TEXT.with(|text| {
                let mut text = text.borrow_mut();
                text.clear();
                write!(text, "{value:?}")?;
                json_string(w, &text)
            })
        });
    }
}

/// Now, in UTC, as tracing-subscriber writes it: `2026-12-02T01:00:31.119757Z` (microseconds).
fn timestamp(writer: &mut Writer<'_>) -> fmt::Result {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != seconds {
            let time = time::OffsetDateTime::from_unix_timestamp(seconds)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            second.1.clear();
            write!(
                second.1,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                time.year(),
                u8::from(time.month()),
                time.day(),
                time.hour(),
                time.minute(),
                time.second()
            )?;
            second.0 = seconds;
        }
        writer.write_str(&second.1)
    })?;
    let micros = now.subsec_micros();
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(micros);
    writer.write_str(&"000000"[digits.len()..])?;
    writer.write_str(digits)?;
    writer.write_char('Z')
}

/// `value` as a JSON string. Most values (routes, methods, ids, messages) need no escape and are
/// written as they are; the others are escaped by serde_json.
fn json_string(writer: &mut Writer<'_>, value: &str) -> fmt::Result {
    let plain = value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        writer.write_char('"')?;
        writer.write_str(value)?;
        return writer.write_char('"');
    }
    let escaped = serde_json::to_string(value).map_err(|_| fmt::Error)?;
    writer.write_str(&escaped)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer as _;

    use super::*;

    /// What tracing-subscriber's JSON formatter writes, and what this one writes, for the same
    /// events: the same text but for the time.
    #[test]
    fn lines_are_what_tracing_subscribers_json_format_writes() {
        let ours = lines(|writer| {
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonMembers)
                .event_format(JsonLines)
                .with_writer(writer)
                .boxed()
        });
        let theirs = lines(|writer| {
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer)
                .boxed()
        });
        assert_eq!(ours.len(), 4, "{ours:?}");
        assert_eq!(ours.len(), theirs.len());
        let after_time = |line: &String| line[line.find("\"level\"").expect(line)..].to_string();
        for (mine, reference) in ours.iter().zip(&theirs) {
            // Byte for byte after the timestamp: keys, their order, escapes, number formats.
            assert_eq!(after_time(mine), after_time(reference));
            serde_json::from_str::<serde_json::Value>(mine).expect(mine);
        }
    }

    #[test]
    fn the_time_is_written_as_tracing_subscriber_writes_it() {
        use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
        for _ in 0..3 {
            let (mut ours, mut theirs) = (String::new(), String::new());
            timestamp(&mut Writer::new(&mut ours)).unwrap();
            SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
            // The same up to the second (unless the second turned in between).
            // The same up to the second, unless the second turned in between: then again.
            if ours[..19] != theirs[..19] {
                continue;
            }
            assert_eq!(&ours[19..20], ".");
            assert!(ours.ends_with('Z') && ours[20..26].bytes().all(|b| b.is_ascii_digit()));
            return;
        }
        panic!("the second turned three times in a row");
    }

    type Boxed = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

    fn lines(layer: impl FnOnce(SharedBuffer) -> Boxed) -> Vec<String> {
        let buffer = SharedBuffer::default();
        let subscriber = tracing_subscriber::registry().with(layer(buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                count = 3u64,
                ratio = 1.0f64,
                ok = true,
                "plain \"quoted\"\n"
            );
            let span = tracing::info_span!(
                "request",
                request_id = "id-\u{1b}1",
                status = tracing::field::Empty
            );
            span.record("status", 503u64);
            span.in_scope(|| {
                tracing::warn!(target: "access_log", route = "/logs", duration_ms = 0.25, "request");
                tracing::info!(error = %"a\tb", delta = -2i64, "ünïcode");
            });
            let quiet = tracing::info_span!("quiet");
            quiet.in_scope(|| tracing::info!("in a span without fields"));
        });
        let text = buffer.0.lock().unwrap().clone();
        String::from_utf8(text)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[derive(Clone, Default)]
    struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SharedBuffer {
        type Writer = SharedBuffer;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }
}
