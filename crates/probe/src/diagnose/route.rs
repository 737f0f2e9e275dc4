//! The kernel's own answer to "how does a packet to TARGET leave?" (`ip -j route get`) and
//! the neighbour (ARP/NDP) state of the next hop (`ip -j neigh`).

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::cmd;

/// The route the kernel picks for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteGet {
    pub(crate) dst: IpAddr,
    /// The gateway; None for a directly connected destination.
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) dev: Option<String>,
    pub(crate) prefsrc: Option<IpAddr>,
    /// `unicast`, `local`, ...: anything but unicast/local is a dead end.
    pub(crate) route_type: String,
    /// The `ip route get` line as shown to the user.
    pub(crate) text: String,
}

impl RouteGet {
    /// The next hop's address: the gateway, or the destination itself when on-link.
    pub(crate) fn next_hop(&self) -> IpAddr {
        self.gateway.unwrap_or(self.dst)
    }
}

/// Why no route came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteError {
    /// The kernel has no usable route: its message (`Network is unreachable`,
    /// `No route to host` for unreachable routes, `Invalid argument` for blackhole, ...).
    NoRoute(String),
    /// `ip` could not be run or printed something unexpected.
    Tool(String),
}

/// `ip -j route get DST`.
pub(crate) fn route_get(dst: IpAddr, timeout: Duration) -> Result<RouteGet, RouteError> {
    let d = dst.to_string();
    let o = cmd::run("ip", &["-j", "route", "get", &d], timeout).map_err(RouteError::Tool)?;
    if !o.ok {
        let msg = o.stderr.trim().trim_start_matches("RTNETLINK answers: ").to_string();
        return Err(RouteError::NoRoute(if msg.is_empty() { "no route".into() } else { msg }));
    }
    parse_route_get(&o.stdout, dst)
        .ok_or_else(|| RouteError::Tool(format!("unexpected output of ip route get: {}", o.stdout.trim())))
}

pub(crate) fn parse_route_get(json: &str, dst: IpAddr) -> Option<RouteGet> {
    let v: Value = serde_json::from_str(json).ok()?;
    let r = v.as_array()?.first()?;
    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let ip = |k: &str| r.get(k).and_then(Value::as_str).and_then(|x| x.parse::<IpAddr>().ok());
    let route_type = s("type").unwrap_or_else(|| "unicast".into());
    let gateway = ip("gateway");
    let dev = s("dev");
    let prefsrc = ip("prefsrc");
    let mut text = format!("{dst}");
    if route_type != "unicast" {
        text = format!("{route_type} {text}");
    }
    if let Some(g) = gateway {
        text.push_str(&format!(" via {g}"));
    }
    if let Some(d) = &dev {
        text.push_str(&format!(" dev {d}"));
    }
    if let Some(p) = prefsrc {
        text.push_str(&format!(" src {p}"));
    }
    Some(RouteGet { dst, gateway, dev, prefsrc, route_type, text })
}

/// The neighbour entry state of `addr` on `dev` (`REACHABLE`, `STALE`, `DELAY`, `PROBE`,
/// `FAILED`, `INCOMPLETE`, `PERMANENT`, ...), with its link-layer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Neighbour {
    pub(crate) state: Vec<String>,
    pub(crate) lladdr: Option<String>,
}

impl Neighbour {
    /// Resolution failed: nobody answered ARP/NDP for the address.
    pub(crate) fn failed(&self) -> bool {
        self.lladdr.is_none() && self.state.iter().any(|s| s == "FAILED" || s == "INCOMPLETE")
    }

    pub(crate) fn describe(&self) -> String {
        match &self.lladdr {
            Some(l) => format!("{} lladdr {l}", self.state.join(",")),
            None => self.state.join(","),
        }
    }
}

pub(crate) fn neighbour(addr: IpAddr, dev: &str, timeout: Duration) -> Result<Option<Neighbour>, String> {
    let a = addr.to_string();
    let o = cmd::run("ip", &["-j", "neigh", "show", &a, "dev", dev], timeout)?;
    if !o.ok {
        return Err(format!("ip neigh show: {}", o.stderr.trim()));
    }
    Ok(parse_neigh(&o.stdout))
}

pub(crate) fn parse_neigh(json: &str) -> Option<Neighbour> {
    let v: Value = serde_json::from_str(json).ok()?;
    let n = v.as_array()?.first()?;
    let state = n
        .get("state")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let lladdr = n.get("lladdr").and_then(Value::as_str).map(str::to_string);
    Some(Neighbour { state, lladdr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_route_get() {
        let dst: IpAddr = "10.20.1.10".parse().expect("ip");
        let r = parse_route_get(
            r#"[{"dst":"10.20.1.10","gateway":"10.244.1.1","dev":"eth0","prefsrc":"10.244.1.10","flags":[],"uid":0,"cache":[]}]"#,
            dst,
        )
        .expect("parses");
        assert_eq!(r.gateway, Some("10.244.1.1".parse().expect("ip")));
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        assert_eq!(r.next_hop().to_string(), "10.244.1.1");
        assert_eq!(r.text, "10.20.1.10 via 10.244.1.1 dev eth0 src 10.244.1.10");
        let r = parse_route_get(r#"[{"type":"local","dst":"127.0.0.1","dev":"lo"}]"#, "127.0.0.1".parse().expect("ip"))
            .expect("parses");
        assert_eq!(r.route_type, "local");
        assert_eq!(r.next_hop().to_string(), "127.0.0.1");
        assert_eq!(parse_route_get("[]", dst), None);
        assert_eq!(parse_route_get("not json", dst), None);
    }

    #[test]
    fn parses_neighbours() {
        let n = parse_neigh(r#"[{"dst":"10.0.0.1","dev":"eth0","lladdr":"aa:bb:cc:dd:ee:ff","state":["REACHABLE"]}]"#)
            .expect("entry");
        assert!(!n.failed());
        assert_eq!(n.describe(), "REACHABLE lladdr aa:bb:cc:dd:ee:ff");
        let n = parse_neigh(r#"[{"dst":"10.0.0.9","dev":"eth0","state":["FAILED"]}]"#).expect("entry");
        assert!(n.failed());
        assert_eq!(parse_neigh("[]"), None);
    }

    #[test]
    fn loopback_route_is_local() {
        match route_get("127.0.0.1".parse().expect("ip"), Duration::from_secs(5)) {
            Ok(r) => assert_eq!(r.route_type, "local"),
            Err(RouteError::Tool(e)) => assert!(e.contains("cannot run"), "{e}"),
            Err(e) => panic!("loopback has a route: {e:?}"),
        }
    }
}
