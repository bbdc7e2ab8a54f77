"""global.otel.endpoint, rehearsed: the dev release rendered with its endpoint pointing at an
OTLP/HTTP receiver of this test (on the host, at the rehearsal network's gateway address: the host
as the pods see it), its pre-install hooks (the config checks, with the OTEL_ variables) and its
pods run as the rehearsal runs them; one `/download_external_logs` through backend-api must reach
the receiver as one trace: backend-api's request span, its `provider call` and `provider attempt`
(the client span), and the log-provider's request span a child of that attempt, across the two
processes. Each span's resource names its service, its pod and namespace (the downward API, as the
chart renders it) and the environment. The receiver decodes ExportTraceServiceRequest with the
OpenTelemetry protocol's own types (opentelemetry-proto), as a collector would.

Needs a Docker engine and the images abn-stack/*:<IMAGE_TAG> (the chart's appVersion by default).
"""

from __future__ import annotations

import gzip
import http.server
import os
import threading
import time
from typing import Any

import docker
import requests
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

import podspec
import render
import sources
from rehearsal import Rehearsal
from test_rehearsal import engine  # noqa: F401 (the fixture: the charts built, the engine's client)

REQUEST_ID = "rehearsal-otel-1"
#: The longest the spans may take to arrive after the response (the exporter sends every 500 ms).
ARRIVAL_BOUND_SECONDS = 30


def value_of(attribute: KeyValue) -> Any:
    any_value = attribute.value
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OtlpReceiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest (protobuf,
    gzip or not); keeps each span with its resource's attributes."""

    def __init__(self, address: str) -> None:
        #: (resource attributes, span) of every span received.
        self.spans: list[tuple[dict[str, Any], Span]] = []
        self.refused: list[str] = []
        spans, refused = self.spans, self.refused

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    refused.append(f"{self.path} {self.headers.get('Content-Type')}")
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    resource = {a.key: value_of(a) for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        spans.extend((resource, span) for span in scope_spans.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((address, 0), Handler)
        self.endpoint = f"http://{address}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_trace(self, trace_id: bytes) -> list[tuple[dict[str, Any], Span]]:
        return [(r, s) for r, s in list(self.spans) if s.trace_id == trace_id]


def attributes(span: Span) -> dict[str, Any]:
    return {a.key: value_of(a) for a in span.attributes}


def test_one_download_is_one_trace_from_backend_api_to_the_provider(engine: docker.DockerClient) -> None:
    tag = os.environ.get("IMAGE_TAG") or yaml.safe_load((render.UMBRELLA / "Chart.yaml").read_text())["appVersion"]
    image = {"image": {"tag": tag}}

    def values(endpoint: str) -> dict[str, Any]:
        return {"global": {"otel": {"endpoint": endpoint}}, "backend-api": image, "data-api": image,
                "logProvider": image, "healthCheck": image}

    # The receiver's address is the rehearsal network's gateway, known once the rehearsal made its
    # network: rendered first with a stand-in endpoint, then again with the receiver's.
    objects = sources.release_objects("dev", values("http://receiver.invalid:4318"))
    rehearsal = Rehearsal(objects, source="dev-otel", provider=sources.provider_mode(objects), client=engine)
    receiver = None
    try:
        network = rehearsal.kubelet.network
        network.reload()
        receiver = OtlpReceiver(network.attrs["IPAM"]["Config"][0]["Gateway"])
        objects = sources.release_objects("dev", values(receiver.endpoint))
        rehearsal.objects, rehearsal.workloads = objects, podspec.workloads(objects)
        rehearsal.hooks("pre-install")
        rehearsal.install()
        backend, = rehearsal._component("backend-api")
        provider, = rehearsal._component("log-provider")
        answer = requests.get(rehearsal._url(backend, "/download_external_logs?limit=2"),
                              headers={"x-request-id": REQUEST_ID}, timeout=30)
        assert answer.status_code == 200 and len(answer.text.splitlines()) == 2, answer.text[:300]
        assert answer.headers["x-request-id"] == REQUEST_ID

        def root() -> Span | None:
            return next((s for r, s in list(receiver.spans) if r.get("service.name") == "backend-api"
                         and s.name == "GET /download_external_logs" and attributes(s).get("request_id") == REQUEST_ID),
                        None)

        def complete() -> bool:
            found = root()
            return found is not None and {"backend-api", "log-provider"} <= {
                r.get("service.name") for r, _ in receiver.of_trace(found.trace_id)}

        deadline = time.monotonic() + ARRIVAL_BOUND_SECONDS
        while time.monotonic() < deadline and not complete():
            time.sleep(0.2)
        assert not receiver.refused, receiver.refused
        server = root()
        assert server is not None, (f"no backend-api request span with request_id {REQUEST_ID} within "
                                    f"{ARRIVAL_BOUND_SECONDS}s; received {[(r.get('service.name'), s.name) for r, s in receiver.spans]}"
                                    f"\n  backend-api log:\n    {backend.logs('backend-api')}")
        trace = receiver.of_trace(server.trace_id)
        print("\n" + "\n".join(f"dev-otel: span {r['service.name']} {s.name!r} span {s.span_id.hex()} "
                               f"parent {s.parent_span_id.hex() or '-'} {r.get('k8s.pod.name')}" for r, s in trace))
    finally:
        rehearsal.kubelet.close()
        if receiver:
            receiver.server.shutdown()

    # One trace, from the two processes of the call, nothing else.
    assert {r["service.name"] for r, _ in trace} == {"backend-api", "log-provider"}, trace
    by_name = {}
    for resource, span in trace:
        by_name.setdefault((resource["service.name"], span.name), []).append((resource, span))
    # No traceparent from this caller: backend-api's request span is the root.
    assert server.parent_span_id == b"" and server.kind == Span.SPAN_KIND_SERVER
    (_, call), = by_name[("backend-api", "provider call")]
    assert call.parent_span_id == server.span_id
    (_, attempt), = by_name[("backend-api", "provider attempt")]
    assert attempt.parent_span_id == call.span_id and attempt.kind == Span.SPAN_KIND_CLIENT
    # (As text: the services record these two fields after the span starts.)
    assert str(attributes(attempt)["attempt"]) == "1" and str(attributes(attempt)["http.response.status_code"]) == "200"
    # The provider's request span: under the attempt that reached it (its traceparent), in the
    # other process, with the request id backend-api sent on.
    (provider_resource, provider_span), = by_name[("log-provider", "GET /v1/logs")]
    assert provider_span.parent_span_id == attempt.span_id and provider_span.kind == Span.SPAN_KIND_SERVER
    assert attributes(provider_span)["request_id"] == REQUEST_ID
    # Each resource as the chart renders it: the pod's name and namespace, the environment.
    for resource, span in trace:
        pod = backend if resource["service.name"] == "backend-api" else provider
        assert resource["k8s.pod.name"] == pod.name and resource["k8s.namespace.name"] == "abn-stack-dev", resource
        assert resource["deployment.environment.name"] == "dev" == resource["deployment.environment"], resource
