//! Fuzz entry points, one per netsleuth-ingest parser: arbitrary bytes (as lossy UTF-8) go
//! through `Source` + `ParseContext::default()`, and besides "no panic" each checks that
//! errors point inside the input and that secrets in the input never reach the output.
#![forbid(unsafe_code)]

use netsleuth_ingest::{aws, firewall, host, ipsec, kubernetes, ParseContext, ParseError, Source};
use netsleuth_model::{Location, Network};

/// A fuzz entry point: takes the raw input bytes.
pub type Target = fn(&[u8]);

/// Every target, by the name `cargo fuzz run` knows it by.
pub const TARGETS: &[(&str, Target)] = &[
    ("ip_link", ip_link),
    ("ip_addr", ip_addr),
    ("ip_route", ip_route),
    ("ip_rule", ip_rule),
    ("sysctl", sysctl),
    ("resolv", resolv),
    ("conntrack_stats", conntrack_stats),
    ("conntrack_count", conntrack_count),
    ("cni", cni),
    ("wg_dump", wg_dump),
    ("wg_config", wg_config),
    ("nft", nft),
    ("iptables", iptables),
    ("swanctl_conf", swanctl_conf),
    ("swanctl_sas", swanctl_sas),
    ("kubernetes_json", kubernetes_json),
    ("kubernetes_yaml", kubernetes_yaml),
    ("aws", aws),
    ("bundle", bundle),
    ("analyze_kubernetes", analyze_kubernetes),
];

/// Highest line number any reading of `text` can have (a YAML reader may count a lone
/// `\r` as a line break; JSON readers count only `\n`).
fn max_line(text: &str) -> usize {
    text.bytes().filter(|b| *b == b'\n' || *b == b'\r').count() + 1
}

/// A parse error must name the file it came from and a position inside it.
fn check_error(src: &Source<'_>, e: &ParseError) {
    assert_eq!(e.path, src.path, "error names another file: {e}");
    if let Some(line) = e.line {
        let max = max_line(src.text);
        assert!(line >= 1 && line <= max, "line {line} outside the input ({} lines): {e}", max_line(src.text));
    }
    if let Some(column) = e.column {
        assert!(column >= 1, "column 0: {e}");
    }
}

fn check_location(src: &Source<'_>, loc: &Location) {
    match loc {
        Location::File { path, line, .. } => {
            assert_eq!(path, src.path, "issue names another file");
            if let Some(l) = line {
                assert!(*l >= 1 && (*l as usize) <= max_line(src.text), "issue line {l} outside the input");
            }
        }
        Location::Json { path, pointer } => {
            assert_eq!(path, src.path, "issue names another file");
            assert!(pointer.is_empty() || pointer.starts_with('/'), "bad JSON pointer {pointer:?}");
        }
        _ => {}
    }
}

/// Checks the result and the context's issues; returns the value for more checks.
fn checked<T>(src: &Source<'_>, ctx: &ParseContext, r: Result<T, ParseError>) -> Option<T> {
    for issue in &ctx.issues {
        check_location(src, &issue.location);
    }
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            check_error(src, &e);
            None
        }
    }
}

/// Whether `v` is distinctive enough to be looked for in an output: at least 8 ASCII
/// letters or digits.
fn distinctive(v: &str) -> bool {
    v.chars().filter(char::is_ascii_alphanumeric).count() >= 8
}

/// Tokens of the input that may be a secret value: words between separators, `key =
/// value` values and quoted strings.
fn candidate_tokens(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || "\"'=,:;{}[]()".contains(c)).filter(|t| t.len() >= 8).collect();
    for line in text.lines() {
        if let Some((_, v)) = line.split_once('=') {
            out.push(v.trim().trim_matches('"'));
        }
        out.extend(line.split('"').skip(1).step_by(2));
    }
    out.retain(|t| t.len() >= 8);
    out.sort_unstable();
    out.dedup();
    out
}

/// Input tokens the parser itself redacted: their fingerprint, or that of their base64
/// decoding, is among `ctx.redactions`.
fn redacted_tokens(text: &str, ctx: &ParseContext) -> Vec<String> {
    use base64::Engine;
    if ctx.redactions.is_empty() {
        return Vec::new();
    }
    let fps: std::collections::HashSet<&str> = ctx.redactions.iter().map(|r| r.secret.fingerprint.as_str()).collect();
    candidate_tokens(text)
        .into_iter()
        .filter(|tok| {
            fps.contains(ctx.redactor.fingerprint(tok).as_str())
                || base64::engine::general_purpose::STANDARD
                    .decode(tok)
                    .is_ok_and(|d| fps.contains(ctx.redactor.fingerprint_bytes(&d).as_str()))
        })
        .map(str::to_string)
        .collect()
}

/// ROT13 on letters and +5 on digits: same length, same character classes (a base64 key
/// stays base64), different value.
fn rotate(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            'a'..='z' => char::from(b'a' + (c as u8 - b'a' + 13) % 26),
            'A'..='Z' => char::from(b'A' + (c as u8 - b'A' + 13) % 26),
            '0'..='9' => char::from(b'0' + (c as u8 - b'0' + 5) % 10),
            _ => c,
        })
        .collect()
}

/// Parses a text and renders everything the parser produced (result, model, issues) with
/// Debug: what a leaked secret would show up in.
type Render<'f> = &'f dyn Fn(&Source<'_>, &mut ParseContext) -> String;

/// Differential secret check. For each candidate secret (occurring once in the input and
/// distinctive), the input is parsed again with only that value changed (`rotate`); if
/// the changed value shows up in the output, the parser copied the secret into it. The
/// second parse is what makes this exact: a value that merely coincides with the text of
/// an error message ("PrivateKey = any [Interface]") does not follow the change.
///
/// `known` are secrets by position or key name (WireGuard keys): they must never be
/// copied, whatever the parser thinks of them. `redacted` are tokens the parser redacted;
/// they count only if the parser also redacts their changed form (a pattern-detected
/// secret, such as a JWT-looking `eyJ...` env value, may stop looking like one when
/// changed, and is then rightly kept as plain text).
fn assert_secrets_not_copied(
    what: &str,
    src: &Source<'_>,
    rendered: &str,
    known: Vec<String>,
    redacted: Vec<String>,
    render: Render<'_>,
) {
    use base64::Engine;
    let mut candidates: Vec<(String, bool)> =
        known.into_iter().map(|s| (s, false)).chain(redacted.into_iter().map(|s| (s, true))).collect();
    candidates.sort_unstable();
    candidates.dedup_by(|a, b| a.0 == b.0);
    for (secret, must_stay_redacted) in candidates {
        if !distinctive(&secret) || src.text.matches(secret.as_str()).count() != 1 {
            continue;
        }
        let changed = rotate(&secret);
        if src.text.contains(&changed) || rendered.contains(&changed) {
            continue;
        }
        let text = src.text.replacen(secret.as_str(), &changed, 1);
        let mut ctx = ParseContext::default();
        let out = render(&Source::new(src.path, &text), &mut ctx);
        if must_stay_redacted && !redacted_tokens(&text, &ctx).contains(&changed) {
            continue;
        }
        assert!(!out.contains(&changed), "{what}: secret {secret:?} is copied into the output");
        // A base64 secret (Kubernetes Secret data) must not leak decoded either.
        if let Ok(plain) = base64::engine::general_purpose::STANDARD.decode(&changed) {
            if let Ok(plain) = String::from_utf8(plain) {
                if distinctive(&plain) && !text.contains(&plain) && !rendered.contains(&plain) {
                    assert!(!out.contains(&plain), "{what}: decoded secret of {secret:?} is copied into the output");
                }
            }
        }
    }
}

/// `Key = value` values of `keys` (case-insensitive), quotes stripped (wg-quick configs
/// have no quoting or multi-line values, so a line is an assignment or not).
fn assigned_values<'a>(text: &'a str, keys: &'a [&'a str]) -> impl Iterator<Item = String> + 'a {
    text.lines().filter_map(move |line| {
        let (k, v) = line.split_once('=')?;
        let k = k.trim();
        keys.iter().any(|want| k.eq_ignore_ascii_case(want)).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn with_source(path: &str, data: &[u8], f: impl FnOnce(&Source<'_>, &mut ParseContext)) {
    let text = String::from_utf8_lossy(data);
    let src = Source::new(path, &text);
    let mut ctx = ParseContext::default();
    f(&src, &mut ctx);
}

pub fn ip_link(data: &[u8]) {
    with_source("hosts/h/ip-link.json", data, |src, ctx| {
        let r = host::ip::parse_links(src, ctx);
        checked(src, ctx, r);
    });
}

/// Addresses, then the merge with links parsed from the same text (both are arrays of
/// interfaces; the merge must cope with any pair).
pub fn ip_addr(data: &[u8]) {
    with_source("hosts/h/ip-addr.json", data, |src, ctx| {
        let addrs = host::ip::parse_addrs(src, ctx);
        let addrs = checked(src, ctx, addrs);
        let links = host::ip::parse_links(src, ctx);
        if let (Some(a), Some(l)) = (addrs, checked(src, ctx, links)) {
            let _ = host::ip::merge_interfaces(l, a);
        }
    });
}

/// Routes, then lookups of a few addresses through the model's route table.
pub fn ip_route(data: &[u8]) {
    with_source("hosts/h/ip-route.json", data, |src, ctx| {
        let r = host::ip::parse_routes(src, ctx);
        if let Some(routes) = checked(src, ctx, r) {
            let table = netsleuth_model::host::RouteTable { routes };
            for dst in ["10.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1"] {
                if let Ok(ip) = dst.parse() {
                    let _ = table.lookup(ip);
                }
            }
        }
    });
}

pub fn ip_rule(data: &[u8]) {
    with_source("hosts/h/ip-rule.json", data, |src, ctx| {
        let r = host::ip::parse_rules(src, ctx);
        checked(src, ctx, r);
    });
}

pub fn sysctl(data: &[u8]) {
    with_source("hosts/h/sysctl.txt", data, |src, ctx| {
        let r = host::sysctl::parse(src, ctx);
        if let Some(s) = checked(src, ctx, r) {
            let _ = s.get_i64("net.netfilter.nf_conntrack_max");
        }
    });
}

pub fn resolv(data: &[u8]) {
    with_source("hosts/h/resolv.conf", data, |src, ctx| {
        let r = host::resolv::parse(src, ctx);
        checked(src, ctx, r);
    });
}

pub fn conntrack_stats(data: &[u8]) {
    with_source("hosts/h/conntrack-stats.txt", data, |src, ctx| {
        let r = host::conntrack::parse_stats(src, ctx);
        checked(src, ctx, r);
    });
}

pub fn conntrack_count(data: &[u8]) {
    with_source("hosts/h/conntrack-count.txt", data, |src, ctx| {
        let r = host::conntrack::parse_count(src, ctx);
        checked(src, ctx, r);
    });
}

pub fn cni(data: &[u8]) {
    with_source("hosts/h/cni/10-calico.conflist", data, |src, ctx| {
        let r = host::cni::parse(src, ctx);
        checked(src, ctx, r);
    });
}

/// `wg show all dump`: field 2 of an interface line is its private key, field 3 of a
/// peer line its preshared key.
fn wg_dump_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.len() {
                5 => f.get(1).map(|s| s.to_string()),
                9 => f.get(2).filter(|s| **s != "(none)").map(|s| s.to_string()),
                _ => None,
            }
        })
        .collect()
}

pub fn wg_dump(data: &[u8]) {
    let render: Render<'_> = &|src, ctx| {
        let r = host::wireguard::parse_dump(src, ctx);
        format!("{r:?} {:?}", ctx.issues)
    };
    with_source("hosts/h/wg-dump.txt", data, |src, ctx| {
        let r = host::wireguard::parse_dump(src, ctx);
        let rendered = format!("{r:?} {:?}", ctx.issues);
        let redacted = redacted_tokens(src.text, ctx);
        if let Some(ifaces) = checked(src, ctx, r) {
            let _ = host::wireguard::merge(ifaces.clone(), ifaces);
        }
        assert_secrets_not_copied("wg dump", src, &rendered, wg_dump_keys(src.text), redacted, render);
    });
}

pub fn wg_config(data: &[u8]) {
    let render: Render<'_> = &|src, ctx| {
        let r = host::wireguard::parse_config(src, "wg0", ctx);
        format!("{r:?} {:?}", ctx.issues)
    };
    with_source("hosts/h/wireguard/wg0.conf", data, |src, ctx| {
        let r = host::wireguard::parse_config(src, "wg0", ctx);
        let rendered = format!("{r:?} {:?}", ctx.issues);
        let known: Vec<String> = assigned_values(src.text, &["PrivateKey", "PresharedKey"]).collect();
        let redacted = redacted_tokens(src.text, ctx);
        checked(src, ctx, r);
        assert_secrets_not_copied("wg config", src, &rendered, known, redacted, render);
    });
}

pub fn nft(data: &[u8]) {
    with_source("hosts/h/nft.json", data, |src, ctx| {
        let r = firewall::nft::parse(src, ctx);
        checked(src, ctx, r);
    });
}

/// The first byte picks the family (`ip` or `ip6`), the rest is the file.
pub fn iptables(data: &[u8]) {
    let (family, path, rest) = match data.split_first() {
        Some((b, rest)) if b % 2 == 1 => ("ip6", "hosts/h/ip6tables-save.txt", rest),
        Some((_, rest)) => ("ip", "hosts/h/iptables-save.txt", rest),
        None => ("ip", "hosts/h/iptables-save.txt", data),
    };
    with_source(path, rest, |src, ctx| {
        let r = firewall::iptables::parse(src, family, ctx);
        checked(src, ctx, r);
    });
}

pub fn swanctl_conf(data: &[u8]) {
    let render: Render<'_> = &|src, ctx| {
        let r = ipsec::swanctl_conf::parse(src, ctx);
        format!("{r:?} {:?}", ctx.issues)
    };
    with_source("hosts/h/swanctl/swanctl.conf", data, |src, ctx| {
        let r = ipsec::swanctl_conf::parse(src, ctx);
        let rendered = format!("{r:?} {:?}", ctx.issues);
        let secrets = redacted_tokens(src.text, ctx);
        checked(src, ctx, r);
        assert_secrets_not_copied("swanctl.conf", src, &rendered, Vec::new(), secrets, render);
    });
}

pub fn swanctl_sas(data: &[u8]) {
    with_source("hosts/h/swanctl-list-sas.txt", data, |src, ctx| {
        let r = ipsec::swanctl_sas::parse(src, ctx);
        checked(src, ctx, r);
    });
}

fn kubernetes_at(path: &str, data: &[u8]) {
    let render: Render<'_> = &|src, ctx| {
        let mut cluster = netsleuth_model::kubernetes::Cluster::default();
        let r = kubernetes::parse(src, &mut cluster, ctx);
        format!("{r:?} {cluster:?} {:?}", ctx.issues)
    };
    with_source(path, data, |src, ctx| {
        let mut cluster = netsleuth_model::kubernetes::Cluster::default();
        let r = kubernetes::parse(src, &mut cluster, ctx);
        let rendered = format!("{r:?} {cluster:?} {:?}", ctx.issues);
        let secrets = redacted_tokens(src.text, ctx);
        checked(src, ctx, r);
        let _ = cluster.namespace_labels("default");
        assert_secrets_not_copied("kubernetes", src, &rendered, Vec::new(), secrets, render);
    });
}

pub fn kubernetes_json(data: &[u8]) {
    kubernetes_at("kubernetes/objects.json", data);
}

pub fn kubernetes_yaml(data: &[u8]) {
    kubernetes_at("kubernetes/objects.yaml", data);
}

/// `describe-<what>` outputs the bundle reader knows, plus one it does not.
pub const AWS_KINDS: &[&str] = &[
    "route-tables",
    "security-groups",
    "network-acls",
    "vpn-connections",
    "subnets",
    "vpcs",
    "instances",
    "transit-gateway-route-tables",
    "flow-logs",
];

/// The first byte picks the describe kind, the rest is the file.
pub fn aws(data: &[u8]) {
    let (what, rest) = match data.split_first() {
        Some((b, rest)) => (AWS_KINDS.get(usize::from(*b) % AWS_KINDS.len()).copied().unwrap_or("vpcs"), rest),
        None => ("vpcs", data),
    };
    let path = format!("cloud/aws/describe-{what}.json");
    let render: Render<'_> = &|src, ctx| {
        let mut model = netsleuth_model::cloud::Aws::default();
        let r = aws::parse(src, what, &mut model, ctx);
        format!("{r:?} {model:?} {:?}", ctx.issues)
    };
    with_source(&path, rest, |src, ctx| {
        let mut model = netsleuth_model::cloud::Aws::default();
        let r = aws::parse(src, what, &mut model, ctx);
        let rendered = format!("{r:?} {model:?} {:?}", ctx.issues);
        let secrets = redacted_tokens(src.text, ctx);
        checked(src, ctx, r);
        assert_secrets_not_copied("aws", src, &rendered, Vec::new(), secrets, render);
    });
}

/// The bundle reader on a folder whose `manifest.json` and `hosts/h/host.json` are the
/// input (the two files the reader parses itself); must never fail or panic.
pub fn bundle(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let host = dir.path().join("hosts").join("h");
    if std::fs::create_dir_all(&host).is_err()
        || std::fs::write(dir.path().join("manifest.json"), data).is_err()
        || std::fs::write(host.join("host.json"), data).is_err()
    {
        return;
    }
    let net = netsleuth_ingest::read_bundle(dir.path(), &netsleuth_ingest::BundleOptions::default());
    assert!(net.is_ok(), "read_bundle failed on a readable folder: {net:?}");
}

/// Kubernetes objects parsed from the input, then the whole rule catalog over them:
/// rules must cope with any model a parser can produce.
pub fn analyze_kubernetes(data: &[u8]) {
    with_source("kubernetes/objects.json", data, |src, ctx| {
        let mut net = Network::default();
        if kubernetes::parse(src, &mut net.kubernetes, ctx).is_ok() {
            let _ = netsleuth_analyze::analyze(&net, &netsleuth_analyze::AnalyzeOptions::default());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Runs every seed of every target: a regression test on stable Rust, no libFuzzer.
    #[test]
    fn every_seed_runs_through_its_target() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let mut ran = 0;
        for (name, f) in TARGETS {
            let dir = seeds.join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).expect("seed readable");
                f(&data);
                ran += 1;
            }
        }
        assert!(ran >= TARGETS.len(), "only {ran} seeds ran");
    }

    #[test]
    fn oracles_catch_what_they_should() {
        assert_eq!(max_line("a\nb"), 2);
        assert_eq!(max_line(""), 1);
        assert_eq!(rotate("abz-XYZ-019="), "nom-KLM-564=");
        assert!(!distinctive("0\u{fffd}\u{fffd}\u{fffd}"));
        assert!(distinctive("c2VlZC1wcmVzaGFyZWQ="));

        // A parser that copies the value of `key` into its output is caught...
        let text = "key = hunter2-but-longer\n";
        let src = Source::new("f", text);
        let copying: Render<'_> = &|src, _ctx| format!("value was {}", src.text.trim());
        let leak = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_secrets_not_copied(
                "t",
                &src,
                &copying(&src, &mut ParseContext::default()),
                vec!["hunter2-but-longer".into()],
                Vec::new(),
                copying,
            )
        }));
        assert!(leak.is_err());
        // ...one whose fixed message merely contains the same words is not (the wg_config
        // false alarm: `PrivateKey=" [Interface]` vs "key before any [Interface] section").
        let text = "PrivateKey=\" [Interface]\n";
        let src = Source::new("f", text);
        let fixed: Render<'_> = &|_src, _ctx| "key before any [Interface] or [Peer] section".to_string();
        assert_secrets_not_copied(
            "t",
            &src,
            &fixed(&src, &mut ParseContext::default()),
            vec![" [Interface]".into()],
            Vec::new(),
            fixed,
        );

        // A pattern-detected secret whose changed form is no longer detected is skipped
        // (the kubernetes_json false alarm: env value `eyJ1mh0dXn.iS.`).
        let text = "token = eyJhbGciOiJub25l.x\n";
        let src = Source::new("f", text);
        let by_pattern: Render<'_> = &|src, ctx| {
            let v = src.text.trim().trim_start_matches("token = ");
            if v.starts_with("eyJ") {
                ctx.redact(netsleuth_model::RedactionKind::BearerToken, Location::line("f", 1), v);
                "<redacted>".to_string()
            } else {
                v.to_string()
            }
        };
        let mut first = ParseContext::default();
        let rendered = by_pattern(&src, &mut first);
        let redacted = redacted_tokens(text, &first);
        assert_eq!(redacted, vec!["eyJhbGciOiJub25l.x".to_string()]);
        assert_secrets_not_copied("t", &src, &rendered, Vec::new(), redacted, by_pattern);

        // Tokens the parser redacted are found by fingerprint.
        let text = "key = hunter2-but-longer\nname = not-a-secret-at-all\n";
        let mut ctx = ParseContext::default();
        ctx.redact(netsleuth_model::RedactionKind::NamedSecret, Location::line("f", 1), "hunter2-but-longer");
        assert_eq!(redacted_tokens(text, &ctx), vec!["hunter2-but-longer".to_string()]);
        assert_eq!(wg_dump_keys("wg0\tPRIV\tPUB\t1\toff\nwg0\tPUB2\tPSK\te\ta\t0\t0\t0\toff\n"), vec!["PRIV", "PSK"]);
    }

    #[test]
    fn empty_and_garbage_inputs_do_not_panic() {
        for (_, f) in TARGETS {
            f(b"");
            f(b"\xff\xfe\x00{[");
            f(b"[{\"ifname\": 1}]");
        }
    }
}
