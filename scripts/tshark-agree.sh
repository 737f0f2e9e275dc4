#!/usr/bin/env bash
# Checks that `netsleuth pcap` counts what tshark counts, capture by capture: TCP
# retransmissions, duplicate ACKs and zero windows (tcp.analysis.*), DNS queries/answers over
# UDP and TCP, DNS queries without an answer, ICMP too-big, WireGuard, IKE, ESP, IP fragments.
# Exits 1 on any difference, 2 on a usage or tool error.
#
# Usage: scripts/tshark-agree.sh [CAPTURE...]
#   default: every capture in tests/fixtures/captures (plus any given on the command line)
#   env: NETSLEUTH  the binary to test (default: target/release/netsleuth, built if missing)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v tshark >/dev/null || { echo "tshark-agree: tshark not found (apt-get install tshark)" >&2; exit 2; }
BIN=${NETSLEUTH:-$ROOT/target/release/netsleuth}
if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build -q --release -p netsleuth) || exit 2
fi
FILES=()
for f in "$ROOT"/tests/fixtures/captures/*; do FILES+=("$f"); done
FILES+=("$@")

# name ; tshark display filter ; netsleuth counts key
CHECKS=(
    "retransmissions;tcp.analysis.retransmission;tcp_retransmissions"
    "duplicate ACKs;tcp.analysis.duplicate_ack;tcp_duplicate_acks"
    "zero windows;tcp.analysis.zero_window;tcp_zero_windows"
    "DNS queries (UDP);dns.flags.response == 0 && udp.port == 53;dns_queries"
    "DNS responses (UDP);dns.flags.response == 1 && udp.port == 53;dns_responses"
    "ICMP too-big;(icmp.type == 3 && icmp.code == 4) || icmpv6.type == 2;icmp_too_big"
    "WireGuard initiations;wg.type == 1;wireguard_initiations"
    "WireGuard responses;wg.type == 2;wireguard_responses"
    "WireGuard cookie replies;wg.type == 3;wireguard_cookie_replies"
    "WireGuard transport;wg.type == 4;wireguard_transport"
    "IKE messages;isakmp;ike_messages"
    "ESP packets;esp;esp_packets"
    "IP fragments;(ip.flags.mf == 1 || ip.frag_offset > 0 || ipv6.fraghdr) && !(icmp.type == 3 || icmpv6.type == 2);ip_fragments"
    "packets;frame;packets"
)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
status=0
for f in "${FILES[@]}"; do
    [ -f "$f" ] || { echo "tshark-agree: no such file: $f" >&2; exit 2; }
    name=$(basename "$f")
    # netsleuth exits 1 when it has findings: that is not an error here.
    "$BIN" pcap "$f" --format json >"$TMP/ns.json" || [ $? -eq 1 ] || { echo "tshark-agree: netsleuth failed on $f" >&2; exit 2; }
    filters=()
    for c in "${CHECKS[@]}"; do IFS=';' read -r _ flt _ <<<"$c"; filters+=("$flt"); done
    spec="io,stat,0,$(IFS=,; echo "${filters[*]}")"
    tshark -n -q -r "$f" -z "$spec" >"$TMP/io.txt" 2>/dev/null || { echo "tshark-agree: tshark failed on $f" >&2; exit 2; }
    # DNS over TCP: one frame may carry several messages; count the messages. And DNS queries
    # without a response (tshark: dns.response_in missing on a query).
    tshark -n -r "$f" -Y "dns && tcp.port == 53" -T fields -e dns.flags.response >"$TMP/dnstcp.txt" 2>/dev/null || true
    tshark -2 -n -r "$f" -Y "dns.flags.response == 0 && !dns.response_in" -T fields -e dns.count.queries \
        >"$TMP/unanswered.txt" 2>/dev/null || true
    python3 - "$name" "$TMP" "${CHECKS[@]}" <<'PY' || status=1
import json, sys
name, tmp, checks = sys.argv[1], sys.argv[2], [c.split(";") for c in sys.argv[3:]]
counts = json.load(open(f"{tmp}/ns.json"))["captures"][0]["counts"]
row = next(l for l in open(f"{tmp}/io.txt") if "<>" in l)
cells = [c.strip() for c in row.split("|")[2:] if c.strip()]
frames = [int(x) for x in cells[0::2]]
values = [v for line in open(f"{tmp}/dnstcp.txt") for v in line.strip().split(",") if v]
theirs = {key: frames[i] for i, (_, _, key) in enumerate(checks)}
theirs["dns_tcp_queries"] = values.count("0")
theirs["dns_tcp_responses"] = values.count("1")
labels = {key: label for label, _, key in checks}
labels.update(dns_tcp_queries="DNS queries (TCP messages)", dns_tcp_responses="DNS responses (TCP messages)")
bad = [(labels[k], counts.get(k), v) for k, v in theirs.items() if counts.get(k) != v]
# Unanswered: netsleuth's PCAP-005 evidence counts queries without any response (per id);
# tshark's dns.response_in marks the same. Compare the totals from the findings' titles.
unanswered_tshark = sum(1 for l in open(f"{tmp}/unanswered.txt") if l.strip())
report = json.load(open(f"{tmp}/ns.json"))
unanswered_ours = sum(int(f["title"].split()[0]) for f in report["findings"] if f["rule"] == "PCAP-005")
if unanswered_ours != unanswered_tshark:
    bad.append(("DNS queries without answer", unanswered_ours, unanswered_tshark))
if bad:
    for label, ours, t in bad:
        print(f"DIFF {name}: {label}: netsleuth {ours}, tshark {t}")
    sys.exit(1)
print(f"ok   {name}: " + ", ".join(f"{labels[k]} {v}" for k, v in theirs.items() if v and k != "packets")
      + f" ({theirs['packets']} packets)")
PY
done
exit $status
