//! Names of everything a lab creates. Every lab has an id `nsl-<6 hex>`; its namespaces
//! are `<id>-<host>`, its WireGuard interfaces `<id>-w<n>` (wireguard-go's sockets are global).

use crate::error::{LabError, Result};

/// Every lab id starts with this.
pub const ID_PREFIX: &str = "nsl-";
/// Longest Linux interface name (IFNAMSIZ − 1).
pub const MAX_IFNAME: usize = 15;
/// Longest scenario host name (namespace names are `<id>-<host>`).
pub const MAX_HOST_NAME: usize = 24;

/// A fresh random lab id, `nsl-` and 6 hex digits.
pub(crate) fn new_lab_id() -> Result<String> {
    let mut bytes = [0u8; 3];
    getrandom::fill(&mut bytes)
        .map_err(|e| LabError::io("cannot read random bytes", std::io::Error::other(e.to_string())))?;
    Ok(format!("{ID_PREFIX}{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2]))
}

/// Whether `s` has the shape of a lab id.
pub fn is_lab_id(s: &str) -> bool {
    s.strip_prefix(ID_PREFIX)
        .is_some_and(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The namespace of `host` in lab `id`.
pub(crate) fn netns_name(id: &str, host: &str) -> String {
    format!("{id}-{host}")
}

/// The lab id of a namespace or interface name made by a lab (`nsl-1a2b3c-...`).
pub fn lab_id_of(name: &str) -> Option<&str> {
    let id = name.get(..ID_PREFIX.len() + 6)?;
    (is_lab_id(id) && name.as_bytes().get(id.len()) == Some(&b'-')).then_some(id)
}

/// The WireGuard interface name of the `index`-th WireGuard service of lab `id`: unique
/// across labs, because wireguard-go puts its control socket in one global folder.
pub(crate) fn wg_ifname(id: &str, index: usize) -> String {
    format!("{id}-w{index}")
}

/// Most WireGuard interfaces a lab may have (keeps `<id>-w<n>` within 15 characters).
pub const MAX_WG_INTERFACES: usize = 100;

/// A valid lab interface name: 1–15 letters, digits, `-` and `_`. Linux also allows `.`,
/// but a dot would split sysctl keys (`net.ipv4.conf.<dev>.rp_filter`) in the wrong place.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_IFNAME && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// A valid scenario or host name: lowercase letters, digits and `-`, starting with a letter
/// or digit.
pub fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let id = new_lab_id().expect("random");
        assert!(is_lab_id(&id), "{id}");
        assert_ne!(id, new_lab_id().expect("random"), "two ids in a row differ (1 in 16 M chance)");
        assert!(!is_lab_id("nsl-12345"));
        assert!(!is_lab_id("nsl-12345G"));
        assert!(!is_lab_id("nsx-123456"));
        assert_eq!(lab_id_of("nsl-a1b2c3-node-1"), Some("nsl-a1b2c3"));
        assert_eq!(lab_id_of("nsl-a1b2c3"), None);
        assert_eq!(lab_id_of("nsl-a1b2c3x"), None);
        assert_eq!(lab_id_of("nsh2-fw"), None);
        let wg = wg_ifname("nsl-a1b2c3", MAX_WG_INTERFACES - 1);
        assert!(valid_ifname(&wg) && wg.len() <= MAX_IFNAME, "{wg}");
        assert!(valid_ifname("eth0") && valid_ifname("veth-a") && valid_ifname("p_1"));
        assert!(!valid_ifname("a b") && !valid_ifname("..") && !valid_ifname("eth0.10") && !valid_ifname(""));
        assert!(!valid_ifname("sixteen-chars-xx"));
        assert!(valid_name("node-1", MAX_HOST_NAME) && !valid_name("-x", 8) && !valid_name("Node", 8));
    }
}
