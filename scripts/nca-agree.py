#!/usr/bin/env python3
"""Agreement of `netsleuth reach` with IBM's network-config-analyzer (NCA) on a corpus.

Every case folder of the corpus (tests/nca-corpus/NN-name/) is a netsleuth bundle whose
kubernetes/ folder holds cluster.yaml (namespaces and pods) and policies.yaml (the
NetworkPolicies). Both tools read these same files. For every case and every port of the
port list, every ordered pair of distinct endpoints (pods, plus a fixed set of external
addresses for ipBlock rules) gets a verdict from each tool; verdicts that differ are
disagreements. Disagreements listed in the allow-list (tests/nca-corpus/allow-list.tsv,
reasons in docs/nca-agreement.md) are expected; any other one, and any allow-list entry
that no longer matches a disagreement, fails the run.

Usage: scripts/nca-agree.py [--corpus DIR] [--netsleuth BIN] [--nca BIN] [--case GLOB]
                            [--allow-list FILE] [--verbose]
Exit codes: 0 agreement (up to the allow-list), 1 unexplained disagreements or stale
allow-list entries, 2 a tool failed or its output could not be understood.
Stdlib only (NCA itself is the other tool).
"""

import argparse
import fnmatch
import ipaddress
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Checked on every case: numbered and named-port targets of the corpus cluster (80/81 on
# TCP and UDP everywhere; web = 8080 on b, 8081 on c; dns = 5353/UDP on a, 53/UDP on c),
# values inside and outside the endPort ranges of the corpus, and SCTP.
DEFAULT_PORTS = [
    "tcp/80", "tcp/81", "udp/80", "udp/81", "tcp/8080", "tcp/8081", "udp/53", "udp/5353",
    "tcp/53", "tcp/9000", "udp/50", "udp/49", "sctp/80", "tcp/82",
]

# External addresses, as sources and as destinations: inside and outside the ipBlocks of
# the corpus (192.0.2.0/24 except 192.0.2.128/25; 198.51.100.0/24), and one in the pod
# range that belongs to no pod.
EXTERNAL_IPS = ["192.0.2.10", "192.0.2.200", "198.51.100.7", "203.0.113.5", "10.2.0.200"]

LINE = re.compile(r"^(?P<src>\S+) => (?P<dst>\S+) : (?P<conns>.+)$")
CONN_SET = re.compile(r"\{([^{}]*)\}")


class ToolError(Exception):
    pass


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise ToolError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr.strip()}\n{p.stdout[-2000:]}")
    return p.stdout


def parse_ports(spec, where):
    proto, _, num = spec.partition("/")
    proto = proto.upper()
    if proto not in ("TCP", "UDP", "SCTP") or not num.isdigit() or not 0 < int(num) < 65536:
        raise ToolError(f"{where}: bad port {spec!r} (expected tcp/80, udp/53, sctp/80)")
    return proto, int(num)


def case_ports(case_dir):
    """The default ports plus `# ports: tcp/6379 udp/9` lines of policies.yaml."""
    ports = [parse_ports(p, "DEFAULT_PORTS") for p in DEFAULT_PORTS]
    path = os.path.join(case_dir, "kubernetes", "policies.yaml")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("# ports:"):
                ports += [parse_ports(p, f"{path}:{n}") for p in line.split(":", 1)[1].split()]
    return sorted(set(ports))


# ---- NCA -------------------------------------------------------------------------------

def nca_endpoint(text, where):
    """`ns/name[Pod]` → ("pod", "ns/name"); an address range → ("ips", (lo, hi))."""
    m = re.fullmatch(r"([^/\[\]]+/[^/\[\]]+)\[(\w+)\]", text)
    if m:
        if m.group(2) != "Pod":
            raise ToolError(f"{where}: endpoint kind {m.group(2)!r} is not modelled here")
        return ("pod", m.group(1))
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return ("ips", (ipaddress.ip_address(lo), ipaddress.ip_address(hi)))
        net = ipaddress.ip_network(text, strict=False)
        return ("ips", (net.network_address, net.broadcast_address))
    except ValueError as e:
        raise ToolError(f"{where}: cannot read endpoint {text!r}: {e}") from None


def port_ranges(text, where):
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ToolError(f"{where}: cannot read port list {text!r}")
        out.append((int(lo), int(hi or lo)))
    return out


def nca_conns(text, where):
    """`All connections` → None (everything); else {protocol: [(lo, hi)] or None}."""
    text = text.strip()
    if text == "All connections":
        return None
    if text == "No connections":
        return {}
    sets = CONN_SET.findall(text)
    if not sets or CONN_SET.sub("", text).strip(", ") != "":
        raise ToolError(f"{where}: cannot read connections {text!r}")
    allowed = {}
    for s in sets:
        if not s.startswith("protocols:"):
            raise ToolError(f"{where}: unexpected connection set {{{s}}}")
        body = s[len("protocols:"):]
        protos, sep, rest = body.partition(",dst_ports:")
        if sep and not re.fullmatch(r"[\d,\-]+", rest):
            # src_ports, methods, paths...: properties this comparison does not model.
            raise ToolError(f"{where}: unexpected connection property in {{{s}}}")
        ranges = port_ranges(rest, where) if sep else None
        for p in (x.strip() for x in protos.split(",")):
            prev = allowed.get(p, [])
            allowed[p] = None if ranges is None or prev is None else prev + ranges
    return allowed


def conns_allow(conns, proto, port):
    if conns is None:
        return True
    if proto not in conns:
        return False
    ranges = conns[proto]
    return ranges is None or any(lo <= port <= hi for lo, hi in ranges)


def run_nca(nca, case_dir):
    k = os.path.join(case_dir, "kubernetes")
    cluster, policies = os.path.join(k, "cluster.yaml"), os.path.join(k, "policies.yaml")
    # `--nca "python3 -m nca"` works where pip's script directory is not on PATH.
    out = run([*nca.split(), "--connectivity", policies, "--pod_list", cluster, "--ns_list", cluster,
               "--output_format", "txt_no_fw_rules"])
    lines = []
    for n, line in enumerate(out.splitlines(), 1):
        where = f"nca output of {case_dir}, line {n}"
        if not line.strip() or line.startswith(("global:", "Total run time", "Warning")):
            continue
        m = LINE.match(line.strip())
        if not m:
            raise ToolError(f"{where}: cannot read {line!r}")
        lines.append((nca_endpoint(m["src"], where), nca_endpoint(m["dst"], where), nca_conns(m["conns"], where)))
    return lines


def nca_verdict(lines, src, dst, proto, port):
    """Whether NCA allows src → dst (each ("pod", name) or ("ip", address))."""
    def covers(ep, want):
        if want[0] == "pod":
            return ep == want
        return ep[0] == "ips" and ep[1][0].version == want[1].version and ep[1][0] <= want[1] <= ep[1][1]
    return any(covers(s, src) and covers(d, dst) and conns_allow(c, proto, port) for s, d, c in lines)


# ---- netsleuth ---------------------------------------------------------------------------

def run_netsleuth(bin_, case_dir, proto, port):
    sel = ["--from", "all", "--to", "all"]
    for ip in EXTERNAL_IPS:
        sel += ["--from", f"ip:{ip}", "--to", f"ip:{ip}"]
    out = run([bin_, "reach", case_dir, *sel, "--port", f"{port}/{proto.lower()}", "--format", "json"])
    doc = json.loads(out)
    if doc.get("format") != "netsleuth.reach/v1" or doc.get("protocol") != proto or doc.get("port") != port:
        raise ToolError(f"netsleuth output for {case_dir} {proto}/{port} is not the requested matrix")
    return doc


def endpoint(name):
    try:
        return ("ip", ipaddress.ip_address(name))
    except ValueError:
        return ("pod", name)


# ---- allow-list --------------------------------------------------------------------------

def read_allow_list(path):
    """Tab-separated: case, source, target, port (proto/port), netsleuth verdict, reason;
    fields 1-4 are glob patterns. `#` starts a comment line. Verdict `nca-error` (with
    `*` for source, target and port) says NCA refuses the case's input; the case is then
    only checked by netsleuth's own tests."""
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 6 or fields[4] not in ("allow", "deny", "nca-error") or not fields[5].strip():
                raise ToolError(f"{path}:{n}: expected 6 tab-separated fields "
                                "(case, source, target, proto/port, netsleuth allow|deny|nca-error, reason)")
            ours = {"allow": True, "deny": False}.get(fields[4], fields[4])
            entries.append({"line": n, "pat": fields[:4], "ours": ours, "reason": fields[5], "hits": 0})
    return entries


def explained(entries, key, ours):
    for e in entries:
        if all(fnmatch.fnmatchcase(k, p) for k, p in zip(key, e["pat"])) and e["ours"] == ours:
            e["hits"] += 1
            return e
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=os.path.join(ROOT, "tests", "nca-corpus"))
    ap.add_argument("--netsleuth", default=os.environ.get("NETSLEUTH", os.path.join(ROOT, "target", "debug", "netsleuth")))
    ap.add_argument("--nca", default=os.environ.get("NCA", "nca"))
    ap.add_argument("--case", default="*", help="glob of case folder names")
    ap.add_argument("--allow-list", default=None, help="default: CORPUS/allow-list.tsv")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every disagreement, explained or not")
    a = ap.parse_args()
    allow_path = a.allow_list or os.path.join(a.corpus, "allow-list.tsv")
    try:
        entries = read_allow_list(allow_path)
        cases = sorted(d for d in os.listdir(a.corpus)
                       if re.match(r"\d\d-", d) and fnmatch.fnmatchcase(d, a.case)
                       and os.path.isdir(os.path.join(a.corpus, d)))
        if not cases:
            raise ToolError(f"no case folder matches {a.case!r} in {a.corpus}")
        started = time.monotonic()
        compared = pairs_allowed = 0
        unexplained, expected, skipped = [], [], []
        for case in cases:
            case_dir = os.path.join(a.corpus, case)
            try:
                lines = run_nca(a.nca, case_dir)
            except ToolError as err:
                e = explained(entries, (case, "*", "*", "*"), "nca-error")
                if not e:
                    raise
                skipped.append(f"{case}: NCA refuses the input [allow-list line {e['line']}: {e['reason']}]: "
                               f"{str(err).splitlines()[-1]}")
                continue
            for proto, port in case_ports(case_dir):
                doc = run_netsleuth(a.netsleuth, case_dir, proto, port)
                sources, targets = doc["sources"], doc["targets"]
                for i, s in enumerate(sources):
                    for j, t in enumerate(targets):
                        reason = doc["reasons"][i][j]
                        if s == t or reason == "same-node":
                            # A pod to itself and node-local traffic: NCA does not model them.
                            continue
                        src, dst = endpoint(s), endpoint(t)
                        if src[0] == "ip" and dst[0] == "ip":
                            continue  # no policy applies between two external addresses
                        ours = bool(doc["allowed"][i][j])
                        theirs = nca_verdict(lines, src, dst, proto, port)
                        compared += 1
                        pairs_allowed += ours
                        if ours == theirs:
                            continue
                        key = (case, s, t, f"{proto.lower()}/{port}")
                        text = (f"{case}: {s} -> {t} {proto}/{port}: netsleuth {'allows' if ours else 'denies'} "
                                f"({reason}), nca {'allows' if theirs else 'denies'}")
                        e = explained(entries, key, ours)
                        if e:
                            expected.append(f"{text} [allow-list line {e['line']}: {e['reason']}]")
                        else:
                            unexplained.append(text)
        stale = [e for e in entries if e["hits"] == 0 and fnmatch.fnmatchcase(e["pat"][0], a.case)] if a.case == "*" else []
    except (ToolError, OSError, json.JSONDecodeError, KeyError, IndexError) as e:
        print(f"nca-agree: {e}", file=sys.stderr)
        return 2
    for line in unexplained:
        print(f"DISAGREE {line}")
    if a.verbose:
        for line in expected:
            print(f"expected {line}")
    for line in skipped:
        print(f"skipped {line}")
    for e in stale:
        print(f"STALE allow-list line {e['line']} matches no disagreement: {' '.join(e['pat'])}")
    print(f"nca-agree: {len(cases)} cases ({len(skipped)} refused by NCA), {compared} pair-port verdicts compared ({pairs_allowed} allowed), "
          f"{len(expected) + len(unexplained)} disagreements: {len(expected)} explained by the allow-list, "
          f"{len(unexplained)} unexplained; {len(stale)} stale allow-list entries; "
          f"{time.monotonic() - started:.1f} s")
    return 1 if unexplained or stale else 0


if __name__ == "__main__":
    sys.exit(main())
