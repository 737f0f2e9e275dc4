//! Hop-by-hop path tracing (to be implemented).
