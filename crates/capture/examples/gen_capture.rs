//! Writes a large synthetic Ethernet pcap of mixed traffic for the `netsleuth pcap` benchmark
//! (scripts/bench-pcap.sh): TCP bulk flows with some retransmissions, DNS, ICMP, WireGuard, VXLAN.
//!
//! Usage: `cargo run --release -p netsleuth-capture --example gen_capture -- OUT.pcap [MIB]`
//! (default 1024 MiB). Deterministic: the same size gives the same file.

use std::io::{BufWriter, Write};

/// xorshift64*: deterministic and dependency-free; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Flow {
    client: [u8; 4],
    server: [u8; 4],
    cport: u16,
    sport: u16,
    cseq: u32,
    sseq: u32,
    sent: u32,
    limit: u32,
    vxlan: bool,
    /// A segment (seq) to send again later: a retransmission.
    pending_retrans: Option<u32>,
}

struct Writer<W: Write> {
    out: W,
    /// Microseconds since the epoch.
    now_us: u64,
    written: u64,
    frame: Vec<u8>,
}

impl<W: Write> Writer<W> {
    fn record(&mut self) -> std::io::Result<()> {
        self.now_us += 7;
        let len = u32::try_from(self.frame.len()).unwrap_or(u32::MAX);
        let sec = u32::try_from(self.now_us / 1_000_000).unwrap_or(u32::MAX);
        let usec = (self.now_us % 1_000_000) as u32;
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&sec.to_le_bytes());
        hdr[4..8].copy_from_slice(&usec.to_le_bytes());
        hdr[8..12].copy_from_slice(&len.to_le_bytes());
        hdr[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&hdr)?;
        self.out.write_all(&self.frame)?;
        self.written += 16 + u64::from(len);
        Ok(())
    }
}

fn eth(f: &mut Vec<u8>) {
    f.clear();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
}

fn ipv4(f: &mut Vec<u8>, proto: u8, src: [u8; 4], dst: [u8; 4], l4_len: usize, df: bool) {
    let total = u16::try_from(20 + l4_len).unwrap_or(u16::MAX);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, if df { 0x40 } else { 0 }, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
}

fn udp_hdr(f: &mut Vec<u8>, sport: u16, dport: u16, payload: usize) {
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&u16::try_from(8 + payload).unwrap_or(u16::MAX).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
}

/// Appends a TCP segment (IP + TCP + payload) to `f`.
#[allow(clippy::too_many_arguments)]
fn tcp_seg(f: &mut Vec<u8>, src: [u8; 4], dst: [u8; 4], ports: (u16, u16), seq: u32, ack: u32, flags: u8, len: usize) {
    let opts: &[u8] = if flags & 0x02 != 0 { &[2, 4, 0x05, 0xb4, 1, 3, 3, 7] } else { &[] };
    let hlen = 20 + opts.len();
    ipv4(f, 6, src, dst, hlen + len, true);
    f.extend_from_slice(&ports.0.to_be_bytes());
    f.extend_from_slice(&ports.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[((hlen / 4) as u8) << 4, flags, 0x01, 0xf5, 0, 0, 0, 0]);
    f.extend_from_slice(opts);
    f.resize(f.len() + len, 0x61);
}

impl Flow {
    fn new(rng: &mut Rng, id: u64) -> Flow {
        Flow {
            client: [10, 1, (id >> 8) as u8, id as u8],
            server: [10, 2, 0, (rng.below(50) + 1) as u8],
            cport: 32768 + (rng.below(28000) as u16),
            sport: [443, 8080, 5432, 6379][rng.below(4) as usize],
            cseq: rng.next() as u32,
            sseq: rng.next() as u32,
            sent: 0,
            limit: 20 + rng.below(400) as u32,
            vxlan: rng.below(5) == 0,
            pending_retrans: None,
        }
    }
}

/// Writes one TCP packet of `flow` (wrapped in VXLAN for VXLAN flows) and returns whether the flow ended.
fn tcp_step<W: Write>(w: &mut Writer<W>, rng: &mut Rng, fl: &mut Flow) -> std::io::Result<bool> {
    let c2s = (fl.cport, fl.sport);
    let s2c = (fl.sport, fl.cport);
    let mut inner = Vec::with_capacity(1600);
    let mut done = false;
    if fl.sent == 0 {
        tcp_seg(&mut inner, fl.client, fl.server, c2s, fl.cseq, 0, 0x02, 0);
        fl.cseq = fl.cseq.wrapping_add(1);
    } else if fl.sent == 1 {
        tcp_seg(&mut inner, fl.server, fl.client, s2c, fl.sseq, fl.cseq, 0x12, 0);
        fl.sseq = fl.sseq.wrapping_add(1);
    } else if fl.sent >= fl.limit {
        tcp_seg(&mut inner, fl.server, fl.client, s2c, fl.sseq, fl.cseq, 0x11, 0);
        done = true;
    } else if let (Some(seq), true) = (fl.pending_retrans, rng.below(8) == 0) {
        tcp_seg(&mut inner, fl.server, fl.client, s2c, seq, fl.cseq, 0x18, 1448);
        fl.pending_retrans = None;
    } else if fl.sent.is_multiple_of(3) {
        tcp_seg(&mut inner, fl.client, fl.server, c2s, fl.cseq, fl.sseq, 0x10, 0);
    } else {
        tcp_seg(&mut inner, fl.server, fl.client, s2c, fl.sseq, fl.cseq, 0x18, 1448);
        if fl.pending_retrans.is_none() && rng.below(200) == 0 {
            fl.pending_retrans = Some(fl.sseq);
        }
        fl.sseq = fl.sseq.wrapping_add(1448);
    }
    fl.sent += 1;
    eth(&mut w.frame);
    if fl.vxlan {
        // Outer IP/UDP 4789, VXLAN header with the I flag, inner Ethernet.
        let payload = 8 + 14 + inner.len();
        ipv4(&mut w.frame, 17, [192, 168, 0, 1], [192, 168, 0, 2], 8 + payload, false);
        udp_hdr(&mut w.frame, 40000 + (fl.cport % 1000), 4789, payload);
        w.frame.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 1, 0]);
        w.frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 4, 0x02, 0, 0, 0, 0, 3, 0x08, 0x00]);
    }
    w.frame.extend_from_slice(&inner);
    w.record()?;
    Ok(done)
}

fn dns_msg(f: &mut Vec<u8>, id: u16, response: bool, rcode: u8, name: &str) {
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[if response { 0x81 } else { 0x01 }, if response { 0x80 | rcode } else { 0 }]);
    f.extend_from_slice(&[0, 1, 0, u8::from(response && rcode == 0), 0, 0, 0, 0]);
    for label in name.split('.') {
        f.push(label.len() as u8);
        f.extend_from_slice(label.as_bytes());
    }
    f.extend_from_slice(&[0, 0, 1, 0, 1]);
    if response && rcode == 0 {
        f.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 2, 0, 9]);
    }
}

fn udp_packet<W: Write>(
    w: &mut Writer<W>,
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    payload: &[u8],
) -> std::io::Result<()> {
    eth(&mut w.frame);
    ipv4(&mut w.frame, 17, src, dst, 8 + payload.len(), false);
    udp_hdr(&mut w.frame, ports.0, ports.1, payload.len());
    w.frame.extend_from_slice(payload);
    w.record()
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        let _ = writeln!(std::io::stderr(), "usage: gen_capture OUT.pcap [MIB]");
        std::process::exit(2);
    };
    let mib: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let target = mib.saturating_mul(1 << 20);
    let file = std::fs::File::create(&path)?;
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        now_us: 1_763_870_400_000_000,
        written: 24,
        frame: Vec::new(),
    };
    // pcap header: microseconds, version 2.4, snaplen 262144, Ethernet.
    let mut hdr = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    hdr.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    hdr.extend_from_slice(&262_144u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    w.out.write_all(&hdr)?;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut next_id = 0u64;
    let mut flows: Vec<Flow> = (0..512)
        .map(|_| {
            next_id += 1;
            Flow::new(&mut rng, next_id)
        })
        .collect();
    let mut dns_id = 0u16;
    let mut payload = Vec::with_capacity(512);
    while w.written < target {
        match rng.below(100) {
            0..=2 => {
                // DNS: query and (mostly) its answer; some NXDOMAIN, a few lost.
                dns_id = dns_id.wrapping_add(1);
                let client = [10, 1, 0, (rng.below(200) + 1) as u8];
                let port = 30000 + rng.below(30000) as u16;
                let name =
                    ["api.prod.svc.cluster.local", "db.example.com", "missing.example.com"][rng.below(3) as usize];
                payload.clear();
                dns_msg(&mut payload, dns_id, false, 0, name);
                udp_packet(&mut w, client, [10, 96, 0, 10], (port, 53), &payload)?;
                if rng.below(50) != 0 {
                    payload.clear();
                    let rcode = if name.starts_with("missing") { 3 } else { 0 };
                    dns_msg(&mut payload, dns_id, true, rcode, name);
                    udp_packet(&mut w, [10, 96, 0, 10], client, (53, port), &payload)?;
                }
            }
            3 => {
                // WireGuard: a handshake (initiation + response) or a data packet.
                let peer = rng.below(20) as u8;
                payload.clear();
                if rng.below(10) == 0 {
                    payload.extend_from_slice(&[1, 0, 0, 0, peer, 1, 2, 3]);
                    payload.resize(148, 0x5a);
                    udp_packet(&mut w, [172, 16, 0, 1], [172, 16, 1, peer], (51820, 51820), &payload)?;
                    payload.clear();
                    payload.extend_from_slice(&[2, 0, 0, 0, 9, 9, 9, peer, peer, 1, 2, 3]);
                    payload.resize(92, 0x5b);
                    udp_packet(&mut w, [172, 16, 1, peer], [172, 16, 0, 1], (51820, 51820), &payload)?;
                } else {
                    payload.extend_from_slice(&[4, 0, 0, 0, 9, 9, 9, peer, 0, 0, 0, 0, 0, 0, 0, 1]);
                    payload.resize(16 + 1024, 0x5c);
                    udp_packet(&mut w, [172, 16, 0, 1], [172, 16, 1, peer], (51820, 51820), &payload)?;
                }
            }
            4 if rng.below(20) == 0 => {
                // ICMP fragmentation needed, quoting a TCP segment.
                eth(&mut w.frame);
                ipv4(&mut w.frame, 1, [10, 3, 0, 254], [10, 1, 0, 7], 8 + 28, false);
                w.frame.extend_from_slice(&[3, 4, 0, 0, 0, 0, 0x05, 0x00]);
                let mut quoted = Vec::new();
                ipv4(&mut quoted, 6, [10, 1, 0, 7], [10, 2, 0, 9], 1480, true);
                quoted.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1]);
                w.frame.extend_from_slice(&quoted);
                w.record()?;
            }
            _ => {
                let i = rng.below(flows.len() as u64) as usize;
                if let Some(fl) = flows.get_mut(i) {
                    if tcp_step(&mut w, &mut rng, fl)? {
                        next_id += 1;
                        *fl = Flow::new(&mut rng, next_id);
                    }
                }
            }
        }
    }
    w.out.flush()?;
    writeln!(std::io::stderr(), "wrote {} bytes to {path}", w.written)?;
    Ok(())
}
