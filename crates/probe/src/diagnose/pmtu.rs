//! Path MTU probe: DF-bit binary search (to be implemented).
