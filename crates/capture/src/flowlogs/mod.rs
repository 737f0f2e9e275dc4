//! AWS VPC flow logs: parsing and analyses (to be implemented).
