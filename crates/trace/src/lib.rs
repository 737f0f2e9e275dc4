//! Offline path analyses over the network model: `trace` follows one packet hop by hop
//! across every layer; `reach` computes pod-to-pod reachability matrices.
#![forbid(unsafe_code)]

pub mod path;
pub mod reach;
