//! The flow-log rule catalog (`FLOW-*`): what each finding means and what to change.
//! `netsleuth rules` lists it next to the capture rules.

use netsleuth_model::{Layer, Severity};

use crate::CaptureRule;

/// Malformed, truncated or unparsable flow-log input.
pub const FLOW_INPUT: &str = "FLOW-001";
/// SKIPDATA records: flow records were lost.
pub const FLOW_SKIPDATA: &str = "FLOW-002";
/// Rejected VPN traffic (IKE 500, NAT-T 4500, WireGuard 51820 or configured ports).
pub const FLOW_VPN: &str = "FLOW-003";
/// Rejected ESP (IP protocol 50).
pub const FLOW_ESP: &str = "FLOW-004";
/// Rejected VXLAN (UDP 4789/8472).
pub const FLOW_VXLAN: &str = "FLOW-005";
/// Rejected DNS (UDP/TCP 53).
pub const FLOW_DNS: &str = "FLOW-006";
/// Rejected BGP (TCP 179).
pub const FLOW_BGP: &str = "FLOW-007";
/// Asymmetric flow: accepted one way, the reply rejected.
pub const FLOW_ASYMMETRIC: &str = "FLOW-008";
/// Rejected traffic summary (top rejected flows).
pub const FLOW_REJECTS: &str = "FLOW-009";
/// NODATA records (informational: no traffic in the window).
pub const FLOW_NODATA: &str = "FLOW-010";

/// The flow-log rules, in id order.
pub const RULES: &[CaptureRule] = &[
    CaptureRule {
        id: FLOW_INPUT,
        layer: Layer::Ingest,
        severity: Severity::Medium,
        title: "Flow-log file problem (malformed lines, truncated gzip, unknown format)",
        rationale: "Records that could not be read are missing from every count; the finding names the first \
                    bad line and how many there were.",
        fix: "Download the file again (S3 objects are complete gzip members); for CloudWatch exports without a \
              header give the format with `--format-fields`.",
    },
    CaptureRule {
        id: FLOW_SKIPDATA,
        layer: Layer::Cloud,
        severity: Severity::Medium,
        title: "Flow-log records skipped (SKIPDATA)",
        rationale: "AWS could not record some flows in the aggregation window (internal capacity or error); \
                    absent evidence is not a pass.",
        fix: "Treat counts for that interface and window as lower bounds; capture on the instance or re-check \
              a later window.",
    },
    CaptureRule {
        id: FLOW_VPN,
        layer: Layer::Cloud,
        severity: Severity::High,
        title: "VPN traffic rejected (UDP 500/4500/51820)",
        rationale: "IKE (500), IPsec NAT-T (4500) or WireGuard (51820) packets are rejected by a security group \
                    or network ACL, so the tunnel never comes up or drops after rekey.",
        fix: "Allow the UDP port from the peer's public address in the instance's security group and in both \
              directions of the subnet's network ACL (NACLs are stateless).",
    },
    CaptureRule {
        id: FLOW_ESP,
        layer: Layer::Cloud,
        severity: Severity::High,
        title: "ESP (IP protocol 50) rejected",
        rationale: "IPsec without NAT-T carries its payload as ESP; a security group or NACL that only allows \
                    TCP/UDP rejects it, so IKE succeeds but no traffic passes.",
        fix: "Allow protocol 50 from the peer in the security group and NACL, or force NAT-T \
              (`encap = yes` in swanctl.conf) so ESP travels in UDP 4500.",
    },
    CaptureRule {
        id: FLOW_VXLAN,
        layer: Layer::Cloud,
        severity: Severity::High,
        title: "VXLAN overlay traffic rejected (UDP 4789/8472)",
        rationale: "Pod-to-pod traffic across nodes travels in VXLAN (Flannel 8472, Calico/Cilium 4789); \
                    rejected VXLAN means cross-node pod traffic fails while same-node traffic works.",
        fix: "Allow the VXLAN UDP port between the node security groups (a self-referencing rule) and in the \
              subnet NACLs.",
    },
    CaptureRule {
        id: FLOW_DNS,
        layer: Layer::Cloud,
        severity: Severity::High,
        title: "DNS traffic rejected (UDP/TCP 53)",
        rationale: "Queries or answers to port 53 are rejected; lookups time out after 5 s and fall back to \
                    the next server or fail.",
        fix: "Allow UDP and TCP 53 to the resolver (and ephemeral ports back in the NACL); for CoreDNS allow \
              53 between node security groups.",
    },
    CaptureRule {
        id: FLOW_BGP,
        layer: Layer::Cloud,
        severity: Severity::High,
        title: "BGP (TCP 179) rejected",
        rationale: "BGP sessions (Calico, MetalLB, Cilium BGP, transit routers) cannot establish, so routes \
                    are never advertised.",
        fix: "Allow TCP 179 between the BGP peers in the security groups and NACLs.",
    },
    CaptureRule {
        id: FLOW_ASYMMETRIC,
        layer: Layer::Cloud,
        severity: Severity::High,
        title: "Asymmetric flow: accepted one way, reply rejected (stateless NACL)",
        rationale: "Security groups are stateful and always admit replies; a reply that is rejected while the \
                    request was accepted points at a network ACL without the return rule (often the \
                    ephemeral port range 1024-65535).",
        fix: "Add an inbound/outbound NACL rule for the reply traffic (ephemeral ports 1024-65535 from the \
              peer) on the subnet whose ACL rejects it.",
    },
    CaptureRule {
        id: FLOW_REJECTS,
        layer: Layer::Cloud,
        severity: Severity::Low,
        title: "Rejected traffic (top rejected flows)",
        rationale: "Summary of everything a security group or NACL rejected, largest first; scanners and \
                    misconfigured clients show up here too.",
        fix: "Check whether the top rejected flows are expected; if not, open the port in the security group \
              or NACL named by the interface.",
    },
    CaptureRule {
        id: FLOW_NODATA,
        layer: Layer::Cloud,
        severity: Severity::Info,
        title: "Flow-log windows without traffic (NODATA)",
        rationale: "No traffic reached the interface in these windows; expected for idle interfaces, \
                    suspicious for one that should carry the failing flow.",
        fix: "If traffic was expected, check routing to the interface (route tables, target groups).",
    },
];
