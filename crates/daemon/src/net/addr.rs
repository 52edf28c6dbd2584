//! Addresses as the originals take them: `[host:]port` specs with service
//! names, binding every interface, IPv4-mapped peers shown as IPv4.

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpListener;

/// Shows an IPv4-mapped IPv6 peer as the IPv4 address it is.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// A port number or a TCP service name (`http-alt`), like getaddrinfo.
pub fn parse_port(s: &str) -> Option<u16> {
    if let Ok(n) = s.parse::<u16>() {
        return Some(n);
    }
    if s.is_empty()
        || s.bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return None;
    }
    crate::sys::port_by_name(s)
}

/// Splits `[host:]port` (`:8000`, `127.0.0.1:8001`, `[::1]:80`, `8080`);
/// a bare port gets `default_host`, an empty host means every interface.
pub fn split_addr<'a>(spec: &'a str, default_host: &'a str) -> Option<(&'a str, u16)> {
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || (h.starts_with('[') && h.ends_with(']')) => (h, p),
        Some(_) => return None,
        None => (default_host, spec),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, parse_port(port)?))
}

/// Binds `[host:]port`; an empty host listens on every interface (IPv6
/// and IPv4 when the system has IPv6).
pub async fn bind(spec: &str, default_host: &str) -> io::Result<TcpListener> {
    let Some((host, port)) = split_addr(spec, default_host) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a port or host:port: '{spec}'"),
        ));
    };
    if host.is_empty() {
        return match TcpListener::bind(("::", port)).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
        };
    }
    TcpListener::bind((host, port)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_like_the_originals() {
        assert_eq!(split_addr(":8000", "127.0.0.1"), Some(("", 8000)));
        assert_eq!(split_addr("8085", "127.0.0.1"), Some(("127.0.0.1", 8085)));
        assert_eq!(split_addr("0.0.0.0:1", "x"), Some(("0.0.0.0", 1)));
        assert_eq!(split_addr("[::1]:80", "x"), Some(("::1", 80)));
        assert_eq!(split_addr("host:notaport", "x"), None);
        assert_eq!(split_addr("::1:80", "x"), None);
    }

    #[test]
    fn ports_by_number_or_service_name() {
        assert_eq!(parse_port("8080"), Some(8080));
        assert_eq!(parse_port("nonsense-service-name"), None);
        assert_eq!(parse_port("70000"), None);
        if std::path::Path::new("/etc/services").exists() {
            assert_eq!(parse_port("http"), Some(80));
        }
    }

    #[test]
    fn mapped_peers_show_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5".parse().unwrap();
        assert_eq!(canonical(mapped).to_string(), "127.0.0.1:5");
        let v6: SocketAddr = "[::1]:5".parse().unwrap();
        assert_eq!(canonical(v6).to_string(), "[::1]:5");
    }
}
