//! DNS probe: each resolv.conf nameserver queried separately (to be implemented).
