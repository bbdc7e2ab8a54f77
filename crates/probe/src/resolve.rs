//! A host name to IPv4 addresses, the way a pod's resolver does it: `/etc/resolv.conf`'s
//! nameservers, the name as given and then with each `search` domain, one `A` query over UDP
//! each, addresses in the order the server gave them (Docker's and the cluster's DNS rotate them
//! across the replicas behind a name). glibc's getaddrinfo cannot: a static binary on `scratch`
//! has no NSS modules. IP literals and `localhost` need no lookup; there is no cache, so every run
//! asks again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// What a resolv.conf says: nameservers and search domains (other options are ignored).
#[derive(Debug, Default, PartialEq)]
pub struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> Self {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        conf.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                // The last search (or domain) line wins, as in resolv.conf(5).
                Some("search") | Some("domain") => {
                    conf.search = words.map(str::to_string).collect()
                }
                _ => {}
            }
        }
        conf
    }
}

/// The addresses of `host`, within `timeout` in all.
pub fn lookup(host: &str, conf: &ResolvConf, timeout: Duration) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(vec![ip]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    }
    if conf.nameservers.is_empty() {
        return Err(format!(
            "cannot look up {host}: no nameserver in {RESOLV_CONF}"
        ));
    }
    let deadline = Instant::now() + timeout;
    let mut candidates = vec![host.trim_end_matches('.').to_string()];
    if !host.ends_with('.') {
        candidates.extend(conf.search.iter().map(|domain| format!("{host}.{domain}")));
    }
    let mut last_error = format!("{host}: no address");
    for candidate in &candidates {
        for server in &conf.nameservers {
            match query(candidate, *server, deadline) {
                Ok(addrs) if !addrs.is_empty() => return Ok(addrs),
                Ok(_) => last_error = format!("{host}: no address"),
                Err(e) => last_error = format!("{host}: {e}"),
            }
        }
    }
    Err(last_error)
}

/// One `A` query for `name` to `server`: the addresses of the answer, in its order.
fn query(name: &str, server: SocketAddr, deadline: Instant) -> Result<Vec<IpAddr>, String> {
    let fqdn = Name::from_ascii(format!("{name}.")).map_err(|e| format!("not a host name: {e}"))?;
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.add_query(Query::query(fqdn, RecordType::A));
    let bytes = request.to_vec().map_err(|e| e.to_string())?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("a wildcard address");
    let socket = UdpSocket::bind(bind).map_err(|e| format!("DNS socket: {e}"))?;
    socket
        .connect(server)
        .map_err(|e| format!("DNS server {server}: {e}"))?;
    socket
        .send(&bytes)
        .map_err(|e| format!("DNS server {server}: {e}"))?;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer from the DNS server {server} in time"));
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let size = match socket.recv(&mut buffer) {
            Ok(size) => size,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no answer from the DNS server {server} in time"))
            }
            Err(e) => return Err(format!("DNS server {server}: {e}")),
        };
        let Ok(answer) = Message::from_vec(&buffer[..size]) else {
            continue; // not a DNS message: keep waiting for ours
        };
        if answer.metadata.id != request.metadata.id {
            continue; // a late answer to someone else's question
        }
        return match answer.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(answer
                .answers
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                })
                .collect()),
            code => Err(format!("DNS server {server} answered {code}")),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::MessageType;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::Record;

    #[test]
    fn resolv_conf_as_docker_and_kubernetes_write_it() {
        let conf = ResolvConf::parse(
            "# generated\nsearch ns.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 127.0.0.11\noptions ndots:0\n",
        );
        assert_eq!(conf.nameservers, vec!["127.0.0.11:53".parse().unwrap()]);
        assert_eq!(
            conf.search,
            ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"]
        );
    }

    #[test]
    fn literals_and_localhost_need_no_server() {
        let none = ResolvConf::default();
        let t = Duration::from_secs(1);
        assert_eq!(
            lookup("10.1.2.3", &none, t).unwrap(),
            ["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            lookup("[::1]", &none, t).unwrap(),
            ["::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            lookup("localhost", &none, t).unwrap(),
            [IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        assert!(lookup("data-api", &none, t)
            .unwrap_err()
            .contains("no nameserver"));
    }

    /// A DNS server on loopback: `svc.ns` has two addresses (in that order), anything else none.
    fn server() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || loop {
            let mut buffer = [0u8; 4096];
            let (size, from) = socket.recv_from(&mut buffer).unwrap();
            let request = Message::from_vec(&buffer[..size]).unwrap();
            let query = request.queries[0].clone();
            let mut answer = Message::new(
                request.metadata.id,
                MessageType::Response,
                request.metadata.op_code,
            );
            if query.name().to_ascii() == "svc.ns." {
                for ip in [[10, 0, 0, 2], [10, 0, 0, 1]] {
                    answer.add_answer(Record::from_rdata(
                        query.name().clone(),
                        600,
                        RData::A(A::from(Ipv4Addr::from(ip))),
                    ));
                }
            } else {
                answer.metadata.response_code = ResponseCode::NXDomain;
            }
            answer.add_query(query);
            socket.send_to(&answer.to_vec().unwrap(), from).unwrap();
        });
        addr
    }

    #[test]
    fn a_name_through_the_search_list_keeps_the_servers_order() {
        let conf = ResolvConf {
            nameservers: vec![server()],
            search: vec!["ns".to_string()],
        };
        let t = Duration::from_secs(5);
        let want: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        assert_eq!(lookup("svc", &conf, t).unwrap(), want);
        assert_eq!(lookup("svc.ns.", &conf, t).unwrap(), want);
        assert_eq!(lookup("other", &conf, t).unwrap_err(), "other: no address");
    }
}
