//! Parser of CNI network configuration files (/etc/cni/net.d): a `.conflist` with a
//! `plugins` array or a single-plugin `.conf`, reduced to plugin types, MTUs and IPAM ranges.
//!
//! Where the MTU or IPAM sit inside flannel's `delegate` (the config flannel hands to the
//! bridge plugin), they are read from there when the plugin itself has none.

use std::str::FromStr;

use ipnet::IpNet;
use netsleuth_model::host::{CniConfig, CniIpam, CniPlugin};
use netsleuth_model::Location;
use serde_json::{Map, Value};

use crate::{ParseContext, ParseError, Source};

type Object = Map<String, Value>;

/// A file of /etc/cni/net.d (`.conf`, `.conflist`, `.json`).
pub fn parse(src: &Source<'_>, ctx: &mut ParseContext) -> Result<CniConfig, ParseError> {
    if src.text.trim().is_empty() {
        return Err(src.error_at(1, None, "empty file: expected a CNI network configuration (JSON object)"));
    }
    let value: Value = serde_json::from_str(src.text).map_err(|e| ParseError::from_json(src.path, &e))?;
    let Some(root) = value.as_object() else {
        return Err(src.error_at(1, Some(1), "top level is not a JSON object: expected a CNI network configuration"));
    };
    let mut plugins = Vec::new();
    match root.get("plugins") {
        Some(Value::Array(list)) => {
            for (i, p) in list.iter().enumerate() {
                let loc = src.pointer(format!("/plugins/{i}"));
                match p.as_object() {
                    Some(obj) => plugins.extend(plugin(obj, loc, ctx)),
                    None => ctx.warn(loc, "plugin entry is not an object; skipped"),
                }
            }
        }
        Some(_) => return Err(src.error("`plugins` is not an array: expected a CNI configuration list")),
        None if root.contains_key("type") => plugins.extend(plugin(root, src.pointer(""), ctx)),
        None => {
            return Err(src
                .error("neither `plugins` (a .conflist) nor `type` (a single-plugin .conf): not a CNI configuration"))
        }
    }
    let text = |k: &str| root.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(CniConfig {
        file: src.path.to_string(),
        name: text("name"),
        cni_version: text("cniVersion"),
        plugins,
        origin: src.pointer(""),
    })
}

fn plugin(obj: &Object, loc: Location, ctx: &mut ParseContext) -> Option<CniPlugin> {
    let Some(plugin_type) = obj.get("type").and_then(Value::as_str) else {
        ctx.warn(loc.child("/type"), "plugin has no `type` string; skipped");
        return None;
    };
    let delegate = obj.get("delegate").and_then(Value::as_object);
    let mtu = match obj.get("mtu") {
        Some(v) => mtu(v, &loc.child("/mtu"), ctx),
        None => delegate.and_then(|d| d.get("mtu")).and_then(|v| mtu(v, &loc.child("/delegate/mtu"), ctx)),
    };
    let ipam = match (obj.get("ipam"), delegate.and_then(|d| d.get("ipam"))) {
        (Some(v), _) => ipam(v, &loc.child("/ipam"), ctx),
        (None, Some(v)) => ipam(v, &loc.child("/delegate/ipam"), ctx),
        (None, None) => None,
    };
    Some(CniPlugin { plugin_type: plugin_type.to_string(), mtu, ipam, origin: loc })
}

fn mtu(v: &Value, loc: &Location, ctx: &mut ParseContext) -> Option<u32> {
    // Some installers template the MTU as a string; an unrendered placeholder
    // (`__CNI_MTU__`) is worth a warning.
    let parsed = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    if parsed.is_none() {
        ctx.warn(loc.clone(), format!("mtu {} is not a number; ignored", short(v)));
    }
    parsed
}

fn ipam(v: &Value, loc: &Location, ctx: &mut ParseContext) -> Option<CniIpam> {
    let Some(obj) = v.as_object() else {
        ctx.warn(loc.clone(), "`ipam` is not an object; ignored");
        return None;
    };
    let mut subnets = Vec::new();
    if let Some(s) = obj.get("subnet") {
        subnet(s, &loc.child("/subnet"), &mut subnets, ctx);
    }
    // host-local: `ranges` is a list of range sets, each a list of `{subnet, ...}`.
    if let Some(ranges) = obj.get("ranges") {
        match ranges.as_array() {
            Some(sets) => {
                for (i, set) in sets.iter().enumerate() {
                    let Some(set) = set.as_array() else {
                        ctx.warn(loc.child(&format!("/ranges/{i}")), "range set is not an array; ignored");
                        continue;
                    };
                    for (j, range) in set.iter().enumerate() {
                        let rloc = loc.child(&format!("/ranges/{i}/{j}/subnet"));
                        match range.get("subnet") {
                            Some(s) => subnet(s, &rloc, &mut subnets, ctx),
                            None => ctx.warn(rloc, "range has no `subnet`; ignored"),
                        }
                    }
                }
            }
            None => ctx.warn(loc.child("/ranges"), "`ranges` is not an array; ignored"),
        }
    }
    // calico-ipam: pools by CIDR or by IPPool name.
    for key in ["ipv4_pools", "ipv6_pools"] {
        let Some(pools) = obj.get(key) else {
            continue;
        };
        let Some(pools) = pools.as_array() else {
            ctx.warn(loc.child(&format!("/{key}")), format!("`{key}` is not an array; ignored"));
            continue;
        };
        for (i, p) in pools.iter().enumerate() {
            let ploc = loc.child(&format!("/{key}/{i}"));
            match p.as_str() {
                Some(s) if IpNet::from_str(s).is_ok() => subnet(p, &ploc, &mut subnets, ctx),
                Some(_) => ctx.warn(
                    ploc,
                    format!(
                        "pool {} is an IPPool name, whose CIDR is not in this file; not counted as a subnet",
                        short(p)
                    ),
                ),
                None => ctx.warn(ploc, "pool is not a string; ignored"),
            }
        }
    }
    Some(CniIpam { ipam_type: obj.get("type").and_then(Value::as_str).map(str::to_string), subnets })
}

fn subnet(v: &Value, loc: &Location, out: &mut Vec<IpNet>, ctx: &mut ParseContext) {
    match v.as_str() {
        // Calico's host-local mode: the node's podCIDR, only known to the cluster.
        Some("usePodCidr" | "usePodCidrIPv6") => {}
        Some(s) => match IpNet::from_str(s) {
            Ok(net) => out.push(net),
            Err(_) => ctx.warn(loc.clone(), format!("subnet {} is not a CIDR; ignored", short(v))),
        },
        None => ctx.warn(loc.clone(), format!("subnet {} is not a string; ignored", short(v))),
    }
}

/// A JSON value for a message, cut to 60 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s,
    }
}
