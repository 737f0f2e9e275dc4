//! The rule catalog, one module per layer. Adding a rule: write it in its layer's module,
//! list it in that module's `RULES`, and add a positive and a negative test.

use crate::rule::Rule;

pub mod cni;
pub mod dns;
pub mod ingest;
pub mod ipsec;
pub mod mesh;
pub mod mtu;
pub mod network;
pub mod node;
pub mod policy;
pub mod wireguard;
pub mod workload;

/// Every module's rules.
pub(crate) const ALL: &[&[Rule]] = &[
    ingest::RULES,
    dns::RULES,
    workload::RULES,
    mesh::RULES,
    policy::RULES,
    node::RULES,
    cni::RULES,
    mtu::RULES,
    network::RULES,
    wireguard::RULES,
    ipsec::RULES,
];
