//! A bare hyper HTTP/1.1 server answering `hello` to every request: no router, no middleware,
//! no metrics. `bench/run.sh` drives it with the same load as backend-api's `/health_check`, so
//! the ratio between the two shows what the service stack costs on top of the HTTP stack.
//!
//! Usage: `hello-hyper [ADDR]` (or `LISTEN_ADDR`; default 127.0.0.1:5900).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const DEFAULT_ADDR: &str = "127.0.0.1:5900";

#[tokio::main]
async fn main() {
    let raw = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("LISTEN_ADDR").ok())
        .unwrap_or_else(|| DEFAULT_ADDR.to_string());
    let addr: SocketAddr = raw.parse().unwrap_or_else(|_| {
        eprintln!("hello-hyper: LISTEN_ADDR is not a socket address: {raw:?}");
        std::process::exit(2);
    });
    let listener = TcpListener::bind(addr).await.unwrap_or_else(|err| {
        eprintln!("hello-hyper: cannot listen on {addr}: {err}");
        std::process::exit(1);
    });
    // The bound address, not the asked one: the bench starts it on port 0 and reads this line.
    let bound = listener.local_addr().unwrap_or(addr);
    eprintln!("hello-hyper listening on {bound}");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Same socket option as the platform's accept loop, so the comparison is fair.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}
