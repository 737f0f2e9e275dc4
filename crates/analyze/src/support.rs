//! Shared queries over the model used by several rules: which workloads are VPN
//! gateways, which CIDRs lie behind tunnels, CIDR arithmetic.

use ipnet::IpNet;

/// Whether two networks share at least one address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Number of addresses in a network (saturating at u128::MAX for /0 IPv6).
pub fn size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_and_size() {
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "10.1.0.0/16".parse().unwrap();
        let c: IpNet = "192.168.0.0/16".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
        assert_eq!(size(&b), 65536);
    }
}
