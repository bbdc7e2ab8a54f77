//! The platform over real sockets on loopback port 0: HTTP/1 only unless a service serves
//! HTTP/2, idle HTTP/2 connections closed with a GOAWAY while open streams are served to the
//! end, the acceptor hook, and the graceful stop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use platform::acceptor::{Accepting, Acceptor, Connection};
use platform::config::ServerArgs;
use platform::{Http2Settings, Service};
use test_support::{eventually_true, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds every wait of these tests, so a regression fails instead of hanging.
const BOUND: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_millis(300);
const SLOW: Duration = Duration::from_millis(900);

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
const FRAME_HEADERS: u8 = 1;
const FRAME_SETTINGS: u8 = 4;
const FRAME_PING: u8 = 6;
const FRAME_GOAWAY: u8 = 7;

fn service() -> Service {
    Service::new(
        platform::service_info!("socket-test"),
        ServerArgs::local("127.0.0.1:0".parse().unwrap()),
    )
    .route(
        "/slow",
        get(|| async {
            tokio::time::sleep(SLOW).await;
            "done"
        }),
    )
}

fn http2() -> Http2Settings {
    Http2Settings {
        idle_timeout: IDLE,
        ..Http2Settings::default()
    }
}

async fn spawn(service: Service) -> (SocketAddr, TestApp) {
    let app = TestApp::start(service).await;
    (app.addr, app)
}

/// Reads HTTP/2 frames until the server closes the connection, acknowledging its SETTINGS and
/// PINGs as a client does (a graceful shutdown waits for a PING's answer): (type, stream id) of
/// each frame.
async fn frames_until_closed(stream: &mut TcpStream) -> Vec<(u8, u32)> {
    let mut frames = Vec::new();
    let read_all = async {
        loop {
            let mut head = [0u8; 9];
            if stream.read_exact(&mut head).await.is_err() {
                return;
            }
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let (kind, flags) = (head[3], head[4]);
            let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; length];
            if stream.read_exact(&mut payload).await.is_err() {
                return;
            }
            frames.push((kind, stream_id));
            let ack = match (kind, flags & 1) {
                (FRAME_SETTINGS, 0) => Some(vec![0, 0, 0, FRAME_SETTINGS, 1, 0, 0, 0, 0]),
                (FRAME_PING, 0) => {
                    let mut pong = vec![0, 0, 8, FRAME_PING, 1, 0, 0, 0, 0];
                    pong.extend_from_slice(&payload);
                    Some(pong)
                }
                _ => None,
            };
            if let Some(ack) = ack {
                let _ = stream.write_all(&ack).await;
            }
        }
    };
    tokio::time::timeout(BOUND, read_all)
        .await
        .expect("the server closes the connection");
    frames
}

async fn open_http2(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(&SETTINGS).await.unwrap();
    stream
}

#[tokio::test]
async fn idle_http2_connections_get_a_goaway_and_are_closed() {
    let (addr, _shutdown) = spawn(service().http2(http2())).await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(open_http2(addr).await);
    }
    for (i, stream) in idle.iter_mut().enumerate() {
        let frames = frames_until_closed(stream).await;
        assert!(
            frames.iter().any(|(kind, _)| *kind == FRAME_GOAWAY),
            "connection {i}: no GOAWAY in {frames:?}"
        );
    }
    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "still serving");
}

#[tokio::test]
async fn an_open_http2_stream_outlives_the_idle_timeout() {
    let (addr, _shutdown) = spawn(service().http2(http2())).await;
    let mut stream = open_http2(addr).await;
    // HEADERS on stream 1, END_STREAM | END_HEADERS; HPACK: :method GET, :scheme http,
    // :path "/slow" (literal, indexed name), :authority "test" (literal, indexed name).
    let mut block = vec![0x82, 0x86, 0x44, 5];
    block.extend_from_slice(b"/slow");
    block.extend_from_slice(&[0x41, 4]);
    block.extend_from_slice(b"test");
    let mut frame = vec![0, 0, block.len() as u8, FRAME_HEADERS, 0x5, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    stream.write_all(&frame).await.unwrap();

    let frames = frames_until_closed(&mut stream).await;
    let answered = frames
        .iter()
        .position(|&frame| frame == (FRAME_HEADERS, 1))
        .unwrap_or_else(|| panic!("stream 1 was never answered: {frames:?}"));
    let goaway = frames
        .iter()
        .position(|(kind, _)| *kind == FRAME_GOAWAY)
        .unwrap_or_else(|| panic!("no GOAWAY once idle: {frames:?}"));
    assert!(
        answered < goaway,
        "the slow answer came before the connection was let go: {frames:?}"
    );
}

#[tokio::test]
async fn without_http2_a_preface_is_not_answered_in_http2() {
    let (addr, _shutdown) = spawn(service()).await;
    let mut stream = open_http2(addr).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    // An HTTP/2 server's first frame is SETTINGS; an HTTP/1 server answers in text or closes.
    assert!(
        answer.len() < 9 || answer[3] != 4,
        "answered in HTTP/2: {answer:?}"
    );
    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
}

/// Counts connections and passes them on, or refuses every other one.
struct Counting {
    accepted: Arc<AtomicUsize>,
    refuse_odd: bool,
}

impl Acceptor for Counting {
    fn accept(&self, stream: TcpStream) -> Accepting {
        let n = self.accepted.fetch_add(1, Ordering::SeqCst);
        let refuse = self.refuse_odd && n % 2 == 1;
        Box::pin(async move {
            if refuse {
                return Err(std::io::Error::other("refused by the acceptor"));
            }
            Ok(Box::new(stream) as Box<dyn Connection>)
        })
    }
}

async fn get_on_new_connection(addr: SocketAddr) -> reqwest::Result<reqwest::Response> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    client.get(format!("http://{addr}/healthz")).send().await
}

#[tokio::test]
async fn every_connection_goes_through_the_acceptor() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let acceptor = Counting {
        accepted: accepted.clone(),
        refuse_odd: true,
    };
    let (addr, _shutdown) = spawn(service().acceptor(acceptor)).await;
    let first = get_on_new_connection(addr).await.expect("served");
    assert_eq!(first.status(), 200);
    assert!(
        get_on_new_connection(addr).await.is_err(),
        "a refused connection is closed"
    );
    let third = get_on_new_connection(addr)
        .await
        .expect("served after a refusal");
    assert_eq!(third.status(), 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_stop_lets_the_request_in_flight_finish() {
    let (addr, app) = spawn(service()).await;
    let slow = tokio::spawn(async move {
        reqwest::get(format!("http://{addr}/slow"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let client = reqwest::Client::new();
    test_support::wait_for_in_flight(&client, &format!("http://{addr}"), 1).await;
    app.shutdown().trigger();
    let answer = tokio::time::timeout(BOUND, slow).await.unwrap().unwrap();
    assert_eq!(answer, "done");
    eventually_true("the listener closes after the drain", BOUND, || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
}
