//! The two ends of a trace as the command line writes them: `pod:NS/NAME`, `host:NAME` or
//! an IP for the source; `IP[:PORT[/PROTO]]`, `svc:NS/NAME[:PORT]`, `pod:NS/NAME[:PORT[/PROTO]]`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::TraceError;

/// Where the packet starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Pod { namespace: String, name: String },
    Host(String),
    Ip(IpAddr),
}

/// L4 protocol of the traced packet. Without a port the packet is an ICMP echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    /// IP protocol 50 (IPsec ESP without UDP encapsulation); only for tunnel underlays.
    Esp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
            Protocol::Icmp => "icmp",
            Protocol::Esp => "esp",
        }
    }

    /// Kubernetes spelling (`TCP`), for Services and NetworkPolicies.
    pub fn k8s(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
            Protocol::Icmp => "ICMP",
            Protocol::Esp => "ESP",
        }
    }

    fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            "icmp" => Some(Protocol::Icmp),
            _ => None,
        }
    }
}

/// Port of a Service: a number or the port's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePortRef {
    Number(u16),
    Name(String),
}

/// Where the packet goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Ip {
        addr: IpAddr,
        port: Option<u16>,
        protocol: Protocol,
    },
    Service {
        namespace: String,
        name: String,
        port: Option<ServicePortRef>,
        protocol: Option<Protocol>,
    },
    Pod {
        namespace: String,
        name: String,
        port: Option<u16>,
        protocol: Protocol,
    },
    /// `host:NAME[:PORT[/PROTO]]`: a host folder of the bundle, at its primary address.
    Host {
        name: String,
        port: Option<u16>,
        protocol: Protocol,
    },
}

fn syntax(what: &'static str, input: &str, why: impl Into<String>) -> TraceError {
    TraceError::Syntax { what, input: input.to_string(), why: why.into() }
}

fn ns_name(what: &'static str, input: &str, s: &str) -> Result<(String, String), TraceError> {
    let (ns, name) = s.split_once('/').ok_or_else(|| syntax(what, input, "expected NAMESPACE/NAME"))?;
    if ns.is_empty() || name.is_empty() || name.contains('/') {
        return Err(syntax(what, input, "expected NAMESPACE/NAME"));
    }
    Ok((ns.to_string(), name.to_string()))
}

impl FromStr for Endpoint {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Endpoint, TraceError> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("pod:") {
            let (namespace, name) = ns_name("source", s, rest)?;
            return Ok(Endpoint::Pod { namespace, name });
        }
        if let Some(rest) = s.strip_prefix("host:") {
            if rest.is_empty() {
                return Err(syntax("source", s, "expected host:NAME"));
            }
            return Ok(Endpoint::Host(rest.to_string()));
        }
        s.parse::<IpAddr>()
            .map(Endpoint::Ip)
            .map_err(|_| syntax("source", s, "expected pod:NAMESPACE/NAME, host:NAME or an IP address"))
    }
}

/// `PORT[/PROTO]` → (port, protocol; TCP by default).
fn port_proto(what: &'static str, input: &str, s: &str) -> Result<(u16, Protocol), TraceError> {
    let (port, proto) = match s.split_once('/') {
        Some((p, proto)) => {
            let proto = Protocol::parse(proto)
                .ok_or_else(|| syntax(what, input, format!("unknown protocol {proto:?} (tcp, udp, sctp)")))?;
            (p, proto)
        }
        None => (s, Protocol::Tcp),
    };
    let port: u16 = port.parse().map_err(|_| syntax(what, input, format!("bad port {port:?}")))?;
    if port == 0 {
        return Err(syntax(what, input, "port 0"));
    }
    if proto == Protocol::Icmp {
        return Err(syntax(what, input, "ICMP has no ports"));
    }
    Ok((port, proto))
}

impl FromStr for Destination {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Destination, TraceError> {
        let s = s.trim();
        let what = "destination";
        if let Some(rest) = s.strip_prefix("svc:") {
            let (target, port) = match rest.split_once(':') {
                Some((t, p)) => (t, Some(p)),
                None => (rest, None),
            };
            let (namespace, name) = ns_name(what, s, target)?;
            let (port, protocol) = match port {
                None => (None, None),
                Some(p) => {
                    let (p, proto) = match p.split_once('/') {
                        Some((p, proto)) => (
                            p,
                            Some(
                                Protocol::parse(proto)
                                    .ok_or_else(|| syntax(what, s, format!("unknown protocol {proto:?}")))?,
                            ),
                        ),
                        None => (p, None),
                    };
                    if p.is_empty() {
                        return Err(syntax(what, s, "empty port"));
                    }
                    let port = match p.parse::<u16>() {
                        Ok(n) => ServicePortRef::Number(n),
                        Err(_) => ServicePortRef::Name(p.to_string()),
                    };
                    (Some(port), proto)
                }
            };
            return Ok(Destination::Service { namespace, name, port, protocol });
        }
        if let Some(rest) = s.strip_prefix("pod:") {
            let (target, pp) = match rest.split_once(':') {
                Some((t, p)) => (t, Some(p)),
                None => (rest, None),
            };
            let (namespace, name) = ns_name(what, s, target)?;
            let (port, protocol) = match pp {
                Some(pp) => port_proto(what, s, pp).map(|(p, proto)| (Some(p), proto))?,
                None => (None, Protocol::Icmp),
            };
            return Ok(Destination::Pod { namespace, name, port, protocol });
        }
        if let Some(rest) = s.strip_prefix("host:") {
            let (name, pp) = match rest.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (rest, None),
            };
            if name.is_empty() || name.contains('/') {
                return Err(syntax(what, s, "expected host:NAME[:PORT[/PROTO]]"));
            }
            let (port, protocol) = match pp {
                Some(pp) => port_proto(what, s, pp).map(|(p, proto)| (Some(p), proto))?,
                None => (None, Protocol::Icmp),
            };
            return Ok(Destination::Host { name: name.to_string(), port, protocol });
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Destination::Ip { addr, port: None, protocol: Protocol::Icmp });
        }
        // `IP:PORT[/PROTO]` or `[IPv6]:PORT[/PROTO]`.
        let (host, pp) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| syntax(what, s, "missing ]"))?;
            let pp = after.strip_prefix(':').ok_or_else(|| syntax(what, s, "expected [IPv6]:PORT"))?;
            (h, pp)
        } else {
            s.split_once(':').ok_or_else(|| {
                syntax(what, s, "expected IP[:PORT[/PROTO]], svc:NAMESPACE/NAME[:PORT] or pod:NAMESPACE/NAME")
            })?
        };
        let addr: IpAddr = host.parse().map_err(|_| syntax(what, s, format!("bad IP address {host:?}")))?;
        let (port, protocol) = port_proto(what, s, pp)?;
        Ok(Destination::Ip { addr, port: Some(port), protocol })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Pod { namespace, name } => write!(f, "pod:{namespace}/{name}"),
            Endpoint::Host(h) => write!(f, "host:{h}"),
            Endpoint::Ip(a) => write!(f, "{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            "pod:shop/web-1".parse::<Endpoint>().unwrap(),
            Endpoint::Pod { namespace: "shop".into(), name: "web-1".into() }
        );
        assert_eq!("host:gw-1".parse::<Endpoint>().unwrap(), Endpoint::Host("gw-1".into()));
        assert_eq!("fd00::1".parse::<Endpoint>().unwrap(), Endpoint::Ip("fd00::1".parse().unwrap()));
        assert!(matches!("pod:shop".parse::<Endpoint>(), Err(TraceError::Syntax { .. })));
        assert!(matches!("web".parse::<Endpoint>(), Err(TraceError::Syntax { .. })));
    }

    #[test]
    fn destinations() {
        assert_eq!(
            "10.20.1.10:5001/udp".parse::<Destination>().unwrap(),
            Destination::Ip { addr: "10.20.1.10".parse().unwrap(), port: Some(5001), protocol: Protocol::Udp }
        );
        assert_eq!(
            "10.20.1.10:443".parse::<Destination>().unwrap(),
            Destination::Ip { addr: "10.20.1.10".parse().unwrap(), port: Some(443), protocol: Protocol::Tcp }
        );
        assert_eq!(
            "[fd00::2]:53/udp".parse::<Destination>().unwrap(),
            Destination::Ip { addr: "fd00::2".parse().unwrap(), port: Some(53), protocol: Protocol::Udp }
        );
        assert_eq!(
            "10.20.1.10".parse::<Destination>().unwrap(),
            Destination::Ip { addr: "10.20.1.10".parse().unwrap(), port: None, protocol: Protocol::Icmp }
        );
        assert_eq!(
            "svc:kube-system/kube-dns:dns-tcp".parse::<Destination>().unwrap(),
            Destination::Service {
                namespace: "kube-system".into(),
                name: "kube-dns".into(),
                port: Some(ServicePortRef::Name("dns-tcp".into())),
                protocol: None
            }
        );
        assert_eq!(
            "pod:shop/cart:9090".parse::<Destination>().unwrap(),
            Destination::Pod {
                namespace: "shop".into(),
                name: "cart".into(),
                port: Some(9090),
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(
            "host:node-1:22".parse::<Destination>().unwrap(),
            Destination::Host { name: "node-1".into(), port: Some(22), protocol: Protocol::Tcp }
        );
        assert_eq!(
            "host:gw".parse::<Destination>().unwrap(),
            Destination::Host { name: "gw".into(), port: None, protocol: Protocol::Icmp }
        );
        for bad in [
            "10.0.0.1:0",
            "10.0.0.1:70000",
            "10.0.0.1:80/gre",
            "svc:a",
            "1.2.3:80",
            "[fd00::1]80",
            "host:",
            "host:a/b",
            "host:a:x",
        ] {
            assert!(bad.parse::<Destination>().is_err(), "{bad} must not parse");
        }
    }
}
