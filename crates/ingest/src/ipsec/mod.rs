//! strongSwan parsers: swanctl.conf (and conf.d) and `swanctl --list-sas`.

pub mod swanctl_conf;
pub mod swanctl_sas;
