//! HTTP abuse checks shared by the services' `tests/abuse.rs`: every service runs the same checks
//! against its own real server on loopback port 0.
//!
//! Everything is raw TCP: the point is to send what a well-behaved client library refuses to
//! send (oversized heads, byte-by-byte heads, garbage, invalid UTF-8). Every wait is bounded, and
//! no check asserts on timing: each only asserts what the server answered or that it closed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any single read waits before a check gives up (a hang is a failure, not a pass).
const READ_BOUND: Duration = Duration::from_secs(20);
/// Largest answer read back; the checks only need the head and an error body.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What came back on a connection.
#[derive(Debug)]
pub struct Answer {
    /// The status of the first response, `None` when the server closed without one.
    pub status: Option<u16>,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The `{"error","code"}` body, asserting that it is one.
    pub fn json_error(&self) -> serde_json::Value {
        assert!(
            self.header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "error answers are JSON: {self:?}"
        );
        let value: serde_json::Value =
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"));
        assert!(value["error"].is_string(), "{value}");
        assert!(value["code"].is_string(), "{value}");
        value
    }
}

/// Sends `request` on a new connection (asking the server to close afterwards is up to the
/// request) and reads the first response, or until the server closes.
pub async fn send(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    // The server may answer and close before all of an oversized request is written.
    let _ = stream.write_all(request).await;
    read_answer(&mut stream).await
}

/// Reads one response: head, then a Content-Length body (or until close).
pub async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            break Some(end + 4);
        }
        match tokio::time::timeout(READ_BOUND, stream.read(&mut buf)).await {
            Err(_) => panic!("no answer within {READ_BOUND:?}: {:?}", lossy(&data)),
            Ok(Ok(0)) | Ok(Err(_)) => break None,
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
        }
        assert!(data.len() <= MAX_ANSWER_BYTES, "answer too large");
    };
    let Some(head_end) = head_end else {
        return Answer {
            status: None,
            head: lossy(&data),
            body: Vec::new(),
        };
    };
    let head = lossy(&data[..head_end]);
    let mut body = data[head_end..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    let mut answer = Answer {
        status,
        head,
        body: Vec::new(),
    };
    let length = answer
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_ANSWER_BYTES);
    while body.len() < length {
        match tokio::time::timeout(READ_BOUND, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    body.truncate(length);
    answer.body = body;
    answer
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

fn lossy(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// `GET path` with `Connection: close`.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
}

/// The service still serves: `/healthz` answers 200.
pub async fn assert_serving(addr: SocketAddr) {
    let answer = get(addr, "/healthz").await;
    assert_eq!(
        answer.status,
        Some(200),
        "the service still serves: {answer:?}"
    );
}

/// A request head larger than `max_header_bytes` is refused with 431, and the service goes on.
pub async fn headers_over_limit_get_431(addr: SocketAddr, max_header_bytes: usize) {
    let filler = "a".repeat(max_header_bytes + 1024);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Filler: {filler}\r\nConnection: close\r\n\r\n"
    );
    let answer = send(addr, request.as_bytes()).await;
    assert_eq!(answer.status, Some(431), "{:?}", answer.head);
    // Many small headers that add up beyond the limit count too.
    let many: String = (0..(max_header_bytes / 40 + 64))
        .map(|i| format!("X-Header-{i}: {}\r\n", "b".repeat(24)))
        .collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{many}Connection: close\r\n\r\n");
    let answer = send(addr, request.as_bytes()).await;
    assert_eq!(answer.status, Some(431), "{:?}", answer.head);
    assert_serving(addr).await;
}

/// A body declared larger than `max_body_bytes` is refused with a JSON 413 before it is read.
pub async fn declared_body_over_limit_gets_413(
    addr: SocketAddr,
    path: &str,
    max_body_bytes: usize,
) {
    let length = max_body_bytes + 1;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    let mut bytes = request.into_bytes();
    bytes.extend(std::iter::repeat_n(b'x', length));
    let answer = send(addr, &bytes).await;
    assert_eq!(answer.status, Some(413), "{:?}", answer.head);
    assert_eq!(answer.json_error()["code"], "body_too_large");
    assert_serving(addr).await;
}

/// A chunked body (no declared length) that grows beyond the limit is refused with a JSON 413
/// on a route that reads its body.
pub async fn chunked_body_over_limit_gets_413(addr: SocketAddr, path: &str, max_body_bytes: usize) {
    let mut bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b' '; 8192];
    for _ in 0..(max_body_bytes / chunk.len() + 2) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(&chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    let answer = send(addr, &bytes).await;
    assert_eq!(answer.status, Some(413), "{:?}", answer.head);
    assert_eq!(answer.json_error()["code"], "body_too_large");
    assert_serving(addr).await;
}

/// A client that sends its head one byte at a time, slower than the header read timeout, is
/// disconnected, while other clients are served meanwhile. `pause` is the gap between bytes;
/// the caller sets a header read timeout a few pauses long.
pub async fn slowloris_is_closed_while_others_are_served(addr: SocketAddr, pause: Duration) {
    let mut slow = TcpStream::connect(addr).await.expect("connects");
    // Long enough that the head is never complete before the server gives up.
    let head: Vec<u8> = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(4096)
    )
    .into_bytes();
    let mut closed = false;
    let mut served_meanwhile = 0;
    for (i, byte) in head.iter().enumerate() {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        // Another client, served while the slow one trickles.
        if i % 4 == 0 {
            assert_serving(addr).await;
            served_meanwhile += 1;
        }
        // The server closing shows up as EOF (or a reset) on a read.
        let mut probe = [0u8; 512];
        match tokio::time::timeout(pause, slow.read(&mut probe)).await {
            Err(_) => {}
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            // A 408 before closing is fine too; the next read sees the close.
            Ok(Ok(_)) => {}
        }
    }
    assert!(
        closed,
        "a client trickling its head byte by byte was never disconnected"
    );
    assert!(served_meanwhile > 0);
    assert_serving(addr).await;
}

/// `count` idle connections (connected, nothing sent) do not stop the service from answering,
/// and its memory stays bounded: the resident set grows by less than `max_growth_bytes`.
/// Returns the growth measured (the test process holds both ends, so it is an upper bound).
pub async fn idle_connections_do_not_starve_the_service(
    addr: SocketAddr,
    count: usize,
    max_growth_bytes: u64,
) -> u64 {
    assert_serving(addr).await;
    let before = resident_bytes();
    let mut idle = Vec::with_capacity(count);
    for _ in 0..count {
        idle.push(TcpStream::connect(addr).await.expect("connects"));
    }
    // Each connection is accepted (and its task spawned) before this request is, since the
    // listener accepts in order.
    for _ in 0..5 {
        assert_serving(addr).await;
    }
    let growth = resident_bytes().saturating_sub(before);
    assert!(
        growth < max_growth_bytes,
        "{count} idle connections grew the resident set by {growth} bytes"
    );
    drop(idle);
    assert_serving(addr).await;
    growth
}

/// The resident set of this process, from /proc (0 where it is not available).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Garbage, unknown methods, invalid UTF-8 and broken framing: the server answers an error or
/// closes, never crashes; where the application answers, the answer is a JSON error.
pub async fn malformed_requests_are_refused(addr: SocketAddr) {
    let protocol_garbage: [&[u8]; 10] = [
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: test\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nBad Header Name: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Ctl: a\x00b\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"POST /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n",
        // HTTP/2 preface, then a DATA frame on stream 0 (a connection error).
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd",
    ];
    for request in protocol_garbage {
        let answer = send(addr, request).await;
        if let Some(status) = answer.status {
            assert!(
                (400..500).contains(&status),
                "{:?} answered {status}",
                lossy(request)
            );
        }
        assert_serving(addr).await;
    }

    // What reaches the application gets a JSON error.
    let app_level: [(&[u8], u16); 5] = [
        (
            b"BREW /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
            405,
        ),
        (
            b"DELETE /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
            405,
        ),
        (
            b"GET /%ff%fe%00 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
            404,
        ),
        (
            b"GET /no/such/route/../../etc/passwd HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
            404,
        ),
        (
            b"GET /healthz/%2e%2e/%2e%2e HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
            404,
        ),
    ];
    for (request, expected) in app_level {
        let answer = send(addr, request).await;
        assert_eq!(
            answer.status,
            Some(expected),
            "{:?}: {answer:?}",
            lossy(request)
        );
        answer.json_error();
        assert_serving(addr).await;
    }

    // Pipelined requests on one connection, one of them broken: the good ones before it are
    // answered, the connection then closes.
    let answer = send(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n\x00\x00garbage\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, Some(200), "{answer:?}");
    assert_serving(addr).await;
}

/// The application's JSON errors for `(method, path, content type, body)` requests: each is
/// answered with `status` and a JSON error body, and the service goes on.
pub async fn bad_bodies_get_json_errors(
    addr: SocketAddr,
    cases: &[(&str, &str, &str, &[u8], u16)],
) {
    for (method, path, content_type, body, status) in cases {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let answer = send(addr, &request).await;
        assert_eq!(
            answer.status,
            Some(*status),
            "{method} {path} {content_type} {:?}: {answer:?}",
            lossy(body)
        );
        answer.json_error();
    }
    assert_serving(addr).await;
}

/// Connections that send nothing, or only a prefix of the HTTP/2 preface, are closed after the
/// header read timeout (a service that speaks HTTP/1 only may refuse the prefix at once with a
/// 4xx before closing). The server is started with `MAX_CONNECTIONS = max_connections`: with
/// every slot held by such a connection, a new client is still served once they are closed.
pub async fn silent_connections_are_closed(addr: SocketAddr, max_connections: usize) {
    let mut silent = Vec::with_capacity(max_connections);
    for i in 0..max_connections {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        if i % 2 == 1 {
            stream.write_all(b"PRI * HTTP/2").await.expect("writes");
        }
        silent.push(stream);
    }
    // Every slot is taken; this client waits in the backlog until the silent ones are closed.
    assert_serving(addr).await;
    for (i, stream) in silent.iter_mut().enumerate() {
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(READ_BOUND, stream.read_to_end(&mut answer))
            .await
            .is_ok();
        assert!(closed, "silent connection {i} was not closed");
        assert!(
            answer.is_empty() || (i % 2 == 1 && answer.starts_with(b"HTTP/1.1 4")),
            "silent connection {i} got {:?}",
            lossy(&answer)
        );
    }
}
