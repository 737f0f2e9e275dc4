//! Reachability matrices (to be implemented).
