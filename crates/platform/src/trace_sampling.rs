//! Which spans reach the OpenTelemetry layer: the sampler decides once, at a trace's root, and
//! only the spans of a kept trace go on.
//!
//! tracing-opentelemetry builds every span's OpenTelemetry data (builder, attributes, ids,
//! timings) as the span is opened and asks the sampler only when the span starts, so a dropped
//! trace costs nearly as much as a kept one (2.3x of tracing off at a 1 % sampler, measured with
//! `bench/instructions.py`). [`SampledOnly`] wraps that layer: a root opened through
//! [`Root::open`] reaches it only when [`Root`]'s decision kept the trace, a child only when its
//! parent did; every other span and event is checked with one extension lookup and skipped. The
//! SDK's own sampler is then `AlwaysOn`, as every span it sees is already kept.
//!
//! A dropped trace still tells the services it calls so (`traceparent` with the sampled flag
//! off), as the SDK would: [`unsampled_context`] gives that context for any span of it.

use std::any::TypeId;
use std::cell::Cell;

use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// The decision for one trace, taken before its root span is opened.
pub struct Root {
    kept: bool,
    /// The caller's context (from `traceparent`), or none for a new trace.
    parent: Option<Context>,
}

/// Marks a span of a kept trace: it and its children reach the OpenTelemetry layer.
struct Traced;

/// On the root of a dropped trace that a caller started: the caller's trace, so that calls made
/// for it carry the same trace id (unsampled).
struct NotSampled(SpanContext);

thread_local! {
    /// The decision for the root span being opened on this thread by [`Root::open`]; taken by
    /// [`SampledOnly::on_new_span`] within the same call.
    static OPENING: Cell<Option<bool>> = const { Cell::new(None) };
}

impl Root {
    /// The sampler's decision for a new trace, or for the caller's trace when `parent` (extracted
    /// from `traceparent`) names one: the parent-based samplers follow its sampled flag.
    pub(crate) fn decide(sampler: &Sampler, parent: Option<Context>, name: &str) -> Self {
        let parent_span = parent
            .as_ref()
            .map(|cx| cx.span().span_context().clone())
            .filter(SpanContext::is_valid);
        let trace_id = parent_span.as_ref().map_or_else(
            || RandomIdGenerator::default().new_trace_id(),
            SpanContext::trace_id,
        );
        let result = sampler.should_sample(
            parent.as_ref().filter(|_| parent_span.is_some()),
            trace_id,
            name,
            &SpanKind::Internal,
            &[],
            &[],
        );
        Self {
            kept: result.decision == SamplingDecision::RecordAndSample,
            parent: parent.filter(|_| parent_span.is_some()),
        }
    }

    /// A root kept or dropped as the caller says: data-api's group commit is kept when one of
    /// the requests it acknowledges is.
    pub(crate) fn kept(kept: bool) -> Self {
        Self { kept, parent: None }
    }

    /// Whether the trace is kept (its spans exported).
    pub fn is_kept(&self) -> bool {
        self.kept
    }

    /// Opens the root span with `open` (one span, opened on this thread), under this decision;
    /// a kept trace's span is the child of the caller's span, when there is one.
    pub fn open(self, open: impl FnOnce() -> tracing::Span) -> tracing::Span {
        let _parent = self.parent.as_ref().map(|cx| cx.clone().attach());
        OPENING.with(|opening| opening.set(Some(self.kept)));
        let span = open();
        OPENING.with(|opening| opening.set(None));
        if !self.kept {
            if let Some(parent) = &self.parent {
                let caller = parent.span().span_context().clone();
                with_registry_span(&span, |span| {
                    span.extensions_mut().insert(NotSampled(caller));
                });
            }
        }
        span
    }
}

/// Whether `span` belongs to a kept trace.
pub(crate) fn is_traced(span: &tracing::Span) -> bool {
    with_registry_span(span, |span| span.extensions().get::<Traced>().is_some()).unwrap_or(false)
}

/// The context a span of a dropped trace sends to the services it calls: the caller's trace id
/// when a caller started the trace, a new one otherwise; a new span id; not sampled.
pub(crate) fn unsampled_context(span: &tracing::Span) -> Context {
    let caller = with_registry_span(span, |span| {
        span.scope()
            .find_map(|s| s.extensions().get::<NotSampled>().map(|n| n.0.clone()))
    })
    .flatten();
    let ids = RandomIdGenerator::default();
    let (trace_id, trace_state) = match caller {
        Some(caller) => (caller.trace_id(), caller.trace_state().clone()),
        None => (ids.new_trace_id(), TraceState::default()),
    };
    let context = SpanContext::new(
        trace_id,
        ids.new_span_id(),
        TraceFlags::default(),
        false,
        trace_state,
    );
    Context::new().with_remote_span_context(context)
}

fn with_registry_span<T>(
    span: &tracing::Span,
    f: impl FnOnce(SpanRef<'_, tracing_subscriber::Registry>) -> T,
) -> Option<T> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        registry.span(id).map(f)
    })
    .flatten()
}

/// The OpenTelemetry layer, seeing only the spans (and their events) of kept traces.
pub(crate) struct SampledOnly<L> {
    inner: L,
}

impl<L> SampledOnly<L> {
    pub(crate) fn new(inner: L) -> Self {
        Self { inner }
    }
}

fn traced<S>(id: &Id, ctx: &LayerContext<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.span(id)
        .is_some_and(|span| span.extensions().get::<Traced>().is_some())
}

impl<S, L> Layer<S> for SampledOnly<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: LayerContext<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let parent = if attrs.is_contextual() {
            ctx.current_span().id().cloned()
        } else {
            attrs.parent().cloned()
        };
        let kept = match parent {
            Some(parent) => traced(&parent, &ctx),
            // A root: kept only when opened through `Root::open` with a kept decision.
            None => OPENING.with(Cell::take).unwrap_or(false),
        };
        if !kept {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Traced);
        }
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        if traced(id, &ctx) {
            self.inner.on_record(id, values, ctx);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        if traced(id, &ctx) && traced(follows, &ctx) {
            self.inner.on_follows_from(id, follows, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let span = match event.parent() {
            Some(parent) => Some(parent.clone()),
            None if event.is_contextual() => ctx.current_span().id().cloned(),
            None => None,
        };
        if span.is_some_and(|span| traced(&span, &ctx)) {
            self.inner.on_event(event, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if traced(id, &ctx) {
            self.inner.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if traced(id, &ctx) {
            self.inner.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        if traced(&id, &ctx) {
            self.inner.on_close(id, ctx);
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // SAFETY: the pointer is to `self` for our own type and comes from the inner layer
    // otherwise (tracing-opentelemetry's `span.context()` finds its layer through this).
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded unchanged; the inner layer upholds the same contract.
        unsafe { self.inner.downcast_raw(id) }
    }
}
