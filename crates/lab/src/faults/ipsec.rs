//! The IPsec (strongSwan) faults: IKE ports blocked on the underlay, IKE proposal mismatch,
//! PSK mismatch, non-mirrored traffic selectors. Inject rewrites one side's swanctl.conf (or
//! adds an nftables table) and restarts the tunnel; clear restores it and waits until it is up.
//! `lab collect` reads each charon's swanctl.conf and SAs from the lab's work dir, so the
//! config faults are visible right after inject (the TUN rules compare the two peers' configs).

use std::collections::BTreeMap;

use netsleuth_model::Layer;

use super::{def, FaultSpec, StaticVisibility, HOST};
use crate::error::{LabError, Result};
use crate::ops::Ops;
use crate::strongswan::{self, Overrides};

/// The nftables table of `ike-udp-block` (family inet).
const T_IKE: &str = "nsl_fault_ike_block";

pub(crate) const IKE_UDP_BLOCK: FaultSpec = FaultSpec {
    name: "ike-udp-block",
    layer: Layer::Cloud,
    does: "drops UDP 500 and 4500 to, from and through the host (nftables input, forward, output) and restarts \
           the IPsec tunnel",
    breaks: "IKE (500) and NAT-T / ESP-in-UDP (4500) are dropped on the underlay: the IKE_SA never establishes \
             and nothing crosses the tunnel",
    params: &[HOST],
    primary: None,
    expected_rules: &[],
    static_visibility: StaticVisibility::None,
    diagnosis: "UDP 500/4500 blocked on the underlay between the IPsec peers: IKE_SA stuck in CONNECTING",
    diagnose_causes: &["DIAG-TUN-004", "DIAG-HOP-001@tunnel"],
    diagnose_on_host: &["DIAG-TUN-004"],
};

pub(crate) const IKE_PROPOSAL_MISMATCH: FaultSpec = FaultSpec {
    name: "ike-proposal-mismatch",
    layer: Layer::Tunnel,
    does: "reloads one side with IKE and ESP proposals that share nothing with the peer's, and restarts the tunnel",
    breaks: "the responder answers NO_PROPOSAL_CHOSEN: no IKE_SA, nothing crosses the tunnel",
    params: &[HOST, def("proposals", "the non-matching IKE and ESP proposal", "aes256-sha512-modp3072")],
    primary: Some("proposals"),
    expected_rules: &["TUN-010", "TUN-011"],
    static_visibility: StaticVisibility::Immediate,
    diagnosis: "IKE proposal mismatch between the IPsec peers (NO_PROPOSAL_CHOSEN)",
    diagnose_causes: &["DIAG-TUN-004", "DIAG-HOP-001@tunnel", "TUN-010", "TUN-011"],
    diagnose_on_host: &["DIAG-TUN-004", "TUN-010", "TUN-011"],
};

pub(crate) const IPSEC_PSK_MISMATCH: FaultSpec = FaultSpec {
    name: "ipsec-psk-mismatch",
    layer: Layer::Tunnel,
    does: "reloads one side with a different (random, per run) pre-shared key and restarts the tunnel",
    breaks: "IKE_AUTH fails with AUTHENTICATION_FAILED: no IKE_SA, nothing crosses the tunnel",
    params: &[HOST],
    primary: None,
    expected_rules: &["TUN-014"],
    static_visibility: StaticVisibility::Immediate,
    diagnosis: "IPsec pre-shared key mismatch between the peers (AUTHENTICATION_FAILED)",
    diagnose_causes: &["DIAG-TUN-004", "DIAG-HOP-001@tunnel", "TUN-014"],
    diagnose_on_host: &["DIAG-TUN-004", "TUN-014"],
};

pub(crate) const IPSEC_TS_NOT_MIRRORED: FaultSpec = FaultSpec {
    name: "ipsec-ts-not-mirrored",
    layer: Layer::Tunnel,
    does: "reloads one side with a remote traffic selector that does not mirror the peer's local one, and \
           restarts the tunnel",
    breaks: "half-up tunnel: the IKE_SA establishes but the CHILD_SA fails with TS_UNACCEPTABLE (or, with a \
             narrowing responder, covers only part of the remote site): the traffic is not tunnelled",
    params: &[HOST, def("remote_ts", "the wrong remote traffic selector(s), comma-separated", "10.10.2.0/24")],
    primary: Some("remote_ts"),
    expected_rules: &["TUN-012"],
    static_visibility: StaticVisibility::Immediate,
    diagnosis: "IPsec traffic selectors not mirrored between the peers (remote_ts does not cover the remote site)",
    diagnose_causes: &["DIAG-TUN-004", "DIAG-HOP-001@tunnel", "DIAG-HOP-002"],
    diagnose_on_host: &["DIAG-TUN-004", "TUN-012"],
};

fn get<'a>(fault: &str, params: &'a BTreeMap<String, String>, k: &str) -> Result<&'a str> {
    params.get(k).map(String::as_str).ok_or_else(|| LabError::fault(fault, format!("parameter {k} is missing")))
}

/// What the fault changes in the swanctl.conf of its host (None: it changes none).
fn overrides(spec: &FaultSpec, params: &BTreeMap<String, String>, host: &str) -> Result<Option<Overrides>> {
    Ok(match spec.name {
        "ike-proposal-mismatch" => {
            let p = get(spec.name, params, "proposals")?;
            if p.is_empty() || p.len() > 128 || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b',')
            {
                return Err(LabError::fault(spec.name, format!("proposals={p:?}: letters, digits, '-', ','")));
            }
            Some(Overrides { proposals: Some(p.to_string()), ..Overrides::default() })
        }
        // A file of its own: the key is made once per run and stays until the lab goes.
        "ipsec-psk-mismatch" => Some(Overrides { psk: Some(format!("ipsec-wrong-{host}")), ..Overrides::default() }),
        "ipsec-ts-not-mirrored" => {
            let v = get(spec.name, params, "remote_ts")?;
            let list: Vec<&str> = v.split(',').collect();
            let ts = strongswan::parse_ts(&list).map_err(|e| LabError::fault(spec.name, format!("remote_ts: {e}")))?;
            Some(Overrides { remote_ts: Some(ts), ..Overrides::default() })
        }
        _ => None,
    })
}

fn is_ipsec(name: &str) -> bool {
    [IKE_UDP_BLOCK.name, IKE_PROPOSAL_MISMATCH.name, IPSEC_PSK_MISMATCH.name, IPSEC_TS_NOT_MIRRORED.name]
        .contains(&name)
}

/// Injects an IPsec fault; None when `spec` is not one of them.
pub(crate) fn inject(
    ops: &Ops<'_>,
    spec: &FaultSpec,
    params: &BTreeMap<String, String>,
    _saved: &mut BTreeMap<String, String>,
) -> Option<Result<()>> {
    is_ipsec(spec.name).then(|| inject_inner(ops, spec, params))
}

/// Clears an IPsec fault; None when `spec` is not one of them.
pub(crate) fn clear(
    ops: &Ops<'_>,
    spec: &FaultSpec,
    params: &BTreeMap<String, String>,
    _saved: &BTreeMap<String, String>,
) -> Option<Result<()>> {
    is_ipsec(spec.name).then(|| clear_inner(ops, spec, params))
}

fn inject_inner(ops: &Ops<'_>, spec: &FaultSpec, params: &BTreeMap<String, String>) -> Result<()> {
    let host = get(spec.name, params, "host")?;
    ops.netns(host)?;
    if spec.name == IKE_UDP_BLOCK.name {
        let rules = "udp dport { 500, 4500 } counter drop\n  udp sport { 500, 4500 } counter drop";
        let body: String = ["input", "forward", "output"]
            .iter()
            .map(|h| {
                format!("chain {h} {{\n  type filter hook {h} priority filter - 5; policy accept;\n  {rules}\n}}\n")
            })
            .collect();
        let script = format!("table inet {T_IKE}\ndelete table inet {T_IKE}\ntable inet {T_IKE} {{\n{body}}}\n");
        ops.nft_apply(host, &script)?;
        if !ops.nft_has_table(host, "inet", T_IKE)? {
            return Err(LabError::fault(
                spec.name,
                format!("verification failed: table inet {T_IKE} is not on {host}"),
            ));
        }
    } else {
        if strongswan::service(ops.scenario, host).is_none() {
            return Err(LabError::fault(spec.name, format!("{host} runs no strongswan service")));
        }
        let o = overrides(spec, params, host)?.unwrap_or_default();
        strongswan::configure(ops.state, ops.scenario, host, &o)
            .map_err(|e| LabError::fault(spec.name, format!("reloading {host}: {e}")))?;
        if let Some(ts) = &o.remote_ts {
            let conns = strongswan::swanctl(ops.state, host, &["--list-conns"])?;
            let want = ts.iter().map(|n| n.to_string()).collect::<Vec<_>>();
            if !want.iter().all(|t| conns.contains(t.as_str())) {
                return Err(LabError::fault(
                    spec.name,
                    format!("verification failed: {host} does not list remote_ts {}", want.join(",")),
                ));
            }
        }
    }
    // The old SAs would otherwise carry on (or be re-keyed) with the healthy settings.
    let up = strongswan::restart(ops.state, ops.scenario, false)?;
    // A narrowed selector still establishes (only the rest of the site is cut off); the
    // other faults must keep the tunnel down.
    if up && spec.name != IPSEC_TS_NOT_MIRRORED.name {
        return Err(LabError::fault(spec.name, "verification failed: the tunnel still establishes"));
    }
    Ok(())
}

fn clear_inner(ops: &Ops<'_>, spec: &FaultSpec, params: &BTreeMap<String, String>) -> Result<()> {
    let host = get(spec.name, params, "host")?;
    ops.netns(host)?;
    if spec.name == IKE_UDP_BLOCK.name {
        ops.nft_delete_table(host, "inet", T_IKE)?;
        if ops.nft_has_table(host, "inet", T_IKE)? {
            return Err(LabError::fault(spec.name, format!("verification failed: table inet {T_IKE} still on {host}")));
        }
    } else if strongswan::service(ops.scenario, host).is_some() {
        strongswan::configure(ops.state, ops.scenario, host, &Overrides::default())
            .map_err(|e| LabError::fault(spec.name, format!("restoring {host}: {e}")))?;
    }
    strongswan::restart(ops.state, ops.scenario, true)
        .map_err(|e| LabError::fault(spec.name, format!("verification failed: {e}")))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_follow_the_parameters() {
        let mut p = BTreeMap::new();
        p.insert("proposals".to_string(), "aes256-sha512-modp3072".to_string());
        let o = overrides(&IKE_PROPOSAL_MISMATCH, &p, "cloud-gw").expect("valid").expect("changes the conf");
        assert_eq!(o.proposals.as_deref(), Some("aes256-sha512-modp3072"));
        p.insert("proposals".to_string(), "aes; }".to_string());
        assert!(overrides(&IKE_PROPOSAL_MISMATCH, &p, "cloud-gw").is_err());
        p.insert("remote_ts".to_string(), "10.10.2.0/24,10.11.0.0/16".to_string());
        let o = overrides(&IPSEC_TS_NOT_MIRRORED, &p, "onprem-gw").expect("valid").expect("changes the conf");
        assert_eq!(o.remote_ts.map(|v| v.len()), Some(2));
        p.insert("remote_ts".to_string(), "8.8.8.0/24".to_string());
        assert!(overrides(&IPSEC_TS_NOT_MIRRORED, &p, "onprem-gw").is_err());
        let o = overrides(&IPSEC_PSK_MISMATCH, &p, "cloud-gw").expect("valid").expect("changes the conf");
        assert_eq!(o.psk.as_deref(), Some("ipsec-wrong-cloud-gw"));
        assert!(overrides(&IKE_UDP_BLOCK, &p, "inet").expect("valid").is_none());
        assert!(is_ipsec("ike-udp-block") && !is_ipsec("udp-block"));
    }
}
