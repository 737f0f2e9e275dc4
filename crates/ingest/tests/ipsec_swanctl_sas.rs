//! `swanctl --list-sas` parser on outputs of two real charon daemons (moon, sun; see
//! tests/fixtures/README.firewall-ipsec.md) and on broken input.

use netsleuth_ingest::ipsec::swanctl_sas;
use netsleuth_ingest::{ParseContext, Redactor, Source};
use netsleuth_model::ipsec::IkeSa;
use netsleuth_model::Location;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/ipsec/live/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ctx() -> ParseContext {
    ParseContext::new(Redactor::from_salt("test"))
}

fn parse_fixture(name: &str) -> Vec<IkeSa> {
    let text = fixture(name);
    let mut ctx = ctx();
    let sas = swanctl_sas::parse(&Source::new(&format!("hosts/moon/{name}"), &text), &mut ctx).expect("parses");
    assert!(ctx.issues.is_empty(), "{:?}", ctx.issues);
    sas
}

fn sa<'a>(sas: &'a [IkeSa], name: &str) -> &'a IkeSa {
    sas.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no IKE_SA {name}"))
}

fn is_spi(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| s.len() == 8 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

#[test]
fn established_tunnel_with_child_ts_and_byte_counters() {
    let sas = parse_fixture("moon-list-sas.txt");
    assert_eq!(sas.len(), 2);
    let site = sa(&sas, "site");
    assert_eq!(site.state, "ESTABLISHED");
    assert_eq!(site.version, Some(2));
    assert_eq!(site.unique_id, Some(2));
    assert_eq!(site.local_id.as_deref(), Some("moon.example.net"));
    assert_eq!(site.local_host.as_deref(), Some("198.51.100.1"));
    assert_eq!(site.remote_id.as_deref(), Some("sun.example.net"));
    assert_eq!(site.remote_host.as_deref(), Some("198.51.100.2"));
    assert_eq!(site.algorithms.as_deref(), Some("AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"));
    assert!(site.established_secs.is_some_and(|s| s < 60), "{:?}", site.established_secs);
    // rekey_time 4h minus up to 10% jitter, minus the seconds since establishment.
    assert!(site.rekey_in_secs.is_some_and(|s| (12_900..=14_400).contains(&s)), "{:?}", site.rekey_in_secs);
    // The `gw` child failed with TS_UNACCEPTABLE (its TS contains the IKE peer), so only `net`.
    assert_eq!(site.children.len(), 1);
    let net = &site.children[0];
    assert_eq!(net.name, "net");
    assert_eq!(net.unique_id, Some(1));
    assert_eq!(net.state, "INSTALLED");
    assert_eq!(net.mode.as_deref(), Some("TUNNEL"));
    // kernel-libipsec always encapsulates ESP in UDP.
    assert!(net.udp_encap);
    assert_eq!(net.protocol.as_deref(), Some("ESP"));
    assert_eq!(net.algorithms.as_deref(), Some("AES_CBC-128/HMAC_SHA2_256_128"));
    assert!(is_spi(&net.spi_in) && is_spi(&net.spi_out), "{:?} {:?}", net.spi_in, net.spi_out);
    assert_ne!(net.spi_in, net.spi_out);
    // 3 UDP datagrams of 47 bytes out, 3 ICMP port-unreachable replies of 75 bytes in.
    assert_eq!((net.bytes_out, net.packets_out), (Some(141), Some(3)));
    assert_eq!((net.bytes_in, net.packets_in), (Some(225), Some(3)));
    assert_eq!(net.local_ts, ["10.1.0.0/16"]);
    assert_eq!(net.remote_ts, ["10.2.0.0/16"]);
    let text = fixture("moon-list-sas.txt");
    let header_line = text.lines().position(|l| l.starts_with("site: #")).unwrap() + 1;
    assert_eq!(site.origin, Location::line("hosts/moon/moon-list-sas.txt", u32::try_from(header_line).unwrap()));
    assert_eq!(net.origin, Location::line("hosts/moon/moon-list-sas.txt", u32::try_from(header_line + 5).unwrap()));

    let udp = sa(&sas, "site-udp");
    assert_eq!(udp.children[0].name, "udp-net");
    assert_eq!(udp.children[0].algorithms.as_deref(), Some("AES_CBC-128/HMAC_SHA1_96"));
    assert_eq!(udp.children[0].bytes_in, Some(0));
}

#[test]
fn both_ends_see_the_same_sa_mirrored() {
    let moon = parse_fixture("moon-list-sas.txt");
    let sun = parse_fixture("sun-list-sas.txt");
    let (m, s) = (&sa(&moon, "site").children[0], &sa(&sun, "site").children[0]);
    assert_eq!(m.spi_in, s.spi_out);
    assert_eq!(m.spi_out, s.spi_in);
    assert_eq!(m.bytes_out, s.bytes_in);
    assert_eq!(m.local_ts, s.remote_ts);
    assert_eq!(sa(&sun, "site").local_id.as_deref(), Some("sun.example.net"));
}

#[test]
fn connecting_sa_has_fewer_lines() {
    let sas = parse_fixture("moon-list-sas-connecting.txt");
    let un = sa(&sas, "unreachable");
    assert_eq!(un.state, "CONNECTING");
    assert_eq!(un.remote_host.as_deref(), Some("198.51.100.3"));
    assert_eq!(un.remote_id.as_deref(), Some("%any"));
    assert_eq!((un.algorithms.as_ref(), un.established_secs), (None, None));
    assert!(un.children.is_empty());
    // The established SAs are still listed after it.
    assert_eq!(sa(&sas, "site").state, "ESTABLISHED");
}

#[test]
fn proposal_mismatch_leaves_no_sa() {
    // NO_PROPOSAL_CHOSEN: the initiator deletes the IKE_SA, list-sas prints nothing.
    assert!(fixture("moon-list-sas-mismatch.txt").is_empty());
    assert!(parse_fixture("moon-list-sas-mismatch.txt").is_empty());
    assert!(parse_fixture("sun-list-sas-mismatch.txt").is_empty());
    assert!(fixture("moon-initiate-mismatch.txt").contains("NO_PROPOSAL_CHOSEN"));
}

#[test]
fn swanctl_noise_is_a_warning_and_extra_fields_are_read() {
    // What a capture made with 2>&1 looks like, plus fields this host's swanctl did not
    // print (virtual IPs, EAP identity, marks, reauth, CPI), in list_sas.c's formats.
    let text = r"plugin 'openssl': failed to load - openssl_plugin_create not found and no plugin file available
rw: #7, ESTABLISHED, IKEv2, 0123456789abcdef_i 1111111111111111_r*
  local  'C=CH, O=strongSwan, CN=moon.strongswan.org' @ 192.168.0.1[4500] [10.3.0.1]
  remote 'carol@strongswan.org' @ 192.168.0.100[4500] EAP: 'carol' [10.3.0.2]
  AES_GCM_16-256/PRF_HMAC_SHA2_384/ECP_384
  established 100s ago, rekeying in 3500s, reauth in 9000s
  queued:  CHILD_REKEY
  some future line: with data
  net: #9, reqid 4, INSTALLED, TUNNEL, ESP:AES_GCM_16-256/ECP_384/ESN
    installed 100s ago, rekeying in 3000s, expires in 3500s
    in  c1d2e3f4/1234 (0x00000001/0xffffffff), 1234567 bytes,  9876 packets,     1s ago
    out cafebabe (0x00000002/0xffffffff),      0 bytes,     0 packets
    local  10.1.0.0/16 10.5.0.0/16
    remote 10.3.0.2/32
";
    let mut ctx = ctx();
    let sas = swanctl_sas::parse(&Source::new("h/swanctl-list-sas.txt", text), &mut ctx).unwrap();
    assert_eq!(ctx.issues.len(), 1);
    assert_eq!(ctx.issues[0].location, Location::line("h/swanctl-list-sas.txt", 1));
    let rw = &sas[0];
    assert_eq!(rw.local_id.as_deref(), Some("C=CH, O=strongSwan, CN=moon.strongswan.org"));
    assert_eq!(rw.local_host.as_deref(), Some("192.168.0.1"));
    assert_eq!(rw.remote_id.as_deref(), Some("carol@strongswan.org"));
    assert_eq!(rw.remote_host.as_deref(), Some("192.168.0.100"));
    assert_eq!((rw.established_secs, rw.rekey_in_secs), (Some(100), Some(3500)));
    let c = &rw.children[0];
    assert!(!c.udp_encap);
    assert_eq!(c.mode.as_deref(), Some("TUNNEL"));
    assert_eq!(c.spi_in.as_deref(), Some("c1d2e3f4"));
    assert_eq!(c.spi_out.as_deref(), Some("cafebabe"));
    assert_eq!((c.bytes_in, c.packets_in), (Some(1_234_567), Some(9876)));
    assert_eq!(c.local_ts, ["10.1.0.0/16", "10.5.0.0/16"]);
}

#[test]
fn malformed_headers_and_garbage_are_errors_with_line() {
    let cases: [(&str, usize, &str); 5] = [
        ("site: #1, ESTABLISHED\n", 1, "malformed IKE_SA header"),
        ("garbage here\n", 1, "expected an IKE_SA header"),
        ("\u{0}\u{1}\u{2}\n", 1, "expected an IKE_SA header"),
        ("  local  'x' @ 1.2.3.4[500]\n", 1, "before any IKE_SA header"),
        ("site: #1, ESTABLISHED, IKEv2, a_i* b_r\n  net: #1, reqid 1, INSTALLED\n", 2, "malformed CHILD_SA header"),
    ];
    for (text, line, what) in cases {
        let err = swanctl_sas::parse(&Source::new("hosts/gw/swanctl-list-sas.txt", text), &mut ctx()).unwrap_err();
        assert_eq!(err.path, "hosts/gw/swanctl-list-sas.txt");
        assert_eq!(err.line, Some(line), "{text:?}: {err}");
        assert!(err.message.contains(what), "{text:?}: {err}");
    }
    let err = swanctl_sas::parse(&Source::new("x", "site: #1, established, IKEv2, a b\n"), &mut ctx()).unwrap_err();
    assert!(err.message.contains("state"), "{err}");
}
