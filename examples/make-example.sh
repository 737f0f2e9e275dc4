#!/usr/bin/env bash
# Builds examples/gateway-incident/ from REAL command outputs: a small lab of network
# namespaces (two Kubernetes-like nodes with a VXLAN overlay and pods, a WireGuard gateway
# with two remote sites, an underlay switch), with faults injected on purpose, then captures
# `ip -j`, `sysctl -a`, `wg show all dump`, `nft -j list ruleset`, `iptables-save -c` from
# each namespace. Kubernetes objects are written in `kubectl get -o json` shape (there is no
# API server here). Needs root, iproute2, wireguard-go, wireguard-tools, nftables, iptables.
#
# Faults in the example (what `netsleuth analyze` should report):
#   node-1: pod veth/bridge MTU 1500 over a 1450 VXLAN overlay      (OVL-001)
#   node-1: resolv.conf nameserver 127.0.0.53 + CoreDNS forward . /etc/resolv.conf (DNS-003)
#   node-1/node-2: different cniVersion                             (CNI-001)
#   gw-1:   net.ipv4.ip_forward = 0                                  (NODE-001)
#   gw-1:   AllowedIPs 10.20.0.0/16 and 10.20.5.0/24 on two peers    (TUN-001)
#   gw-1:   peer site-b never completes a handshake (UDP 51820 dropped at site-b) (TUN-005)
#   k8s:    default-deny egress without DNS in namespace shop        (POL-001)
#   k8s:    privileged single-replica WireGuard gateway, key in a ConfigMap (POD-*)
#   k8s:    Istio-injected pods send to the VPN range through the sidecar (MESH-001)
#   node-1: FORWARD policy DROP accepts only pod-sourced and reply traffic: new
#           connections from the VPN range to node-1's pods are dropped (NODE-003)
#   vpc-router/onprem-router: no common IKE proposal, ESP DH groups differ, PSKs differ
#           (TUN-010, TUN-011/TUN-015, TUN-014)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/gateway-incident}
p="nsex$$"            # unique prefix: parallel runs don't collide
ns() { echo "$p-$1"; }

cleanup() {
  for n in $(ip netns list | awk '{print $1}' | grep "^$p-" || true); do
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  done
  sleep 0.3
  for n in $(ip netns list | awk '{print $1}' | grep "^$p-" || true); do ip netns del "$n" 2>/dev/null || true; done
  rm -f /var/run/wireguard/wgex-*.sock
}
trap cleanup EXIT

for n in sw node-1 node-2 pod-web pod-cart gw-1 site-a site-b vpc-router onprem-router; do ip netns add "$(ns $n)"; done
x() { local n=$1; shift; ip netns exec "$(ns $n)" "$@"; }
for n in sw node-1 node-2 pod-web pod-cart gw-1 site-a site-b vpc-router onprem-router; do x $n ip link set lo up; done

# Underlay: a switch namespace with a bridge, one uplink per host.
x sw ip link add br0 type bridge
x sw ip link set br0 up
i=0
for n in node-1 node-2 gw-1 site-a site-b vpc-router onprem-router; do
  i=$((i+1))
  ip link add "up$$$i" type veth peer name eth0 netns "$(ns $n)"
  ip link set "up$$$i" netns "$(ns sw)"
  x sw ip link set "up$$$i" master br0 up
  x $n ip link set eth0 up
done
x node-1 ip addr add 198.51.100.11/24 dev eth0
x node-2 ip addr add 198.51.100.12/24 dev eth0
x gw-1   ip addr add 198.51.100.20/24 dev eth0
x site-a ip addr add 198.51.100.101/24 dev eth0
x site-b ip addr add 198.51.100.102/24 dev eth0
x vpc-router ip addr add 198.51.100.30/24 dev eth0
x onprem-router ip addr add 198.51.100.40/24 dev eth0
x vpc-router sysctl -qw net.ipv4.ip_forward=1
x onprem-router sysctl -qw net.ipv4.ip_forward=1
for n in node-1 node-2 site-a site-b; do x $n ip route add default via 198.51.100.20; done

# Overlay between the nodes: VXLAN at 1450 (= 1500 - 50).
x node-1 ip link add vxlan0 type vxlan id 1 dev eth0 dstport 8472 local 198.51.100.11 nolearning
x node-2 ip link add vxlan0 type vxlan id 1 dev eth0 dstport 8472 local 198.51.100.12 nolearning
for n in node-1 node-2; do x $n ip link set vxlan0 mtu 1450 up; done
x node-1 ip addr add 10.244.1.0/32 dev vxlan0
x node-2 ip addr add 10.244.2.0/32 dev vxlan0
x node-1 ip route add 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink
x node-2 ip route add 10.244.1.0/24 via 10.244.1.0 dev vxlan0 onlink
x node-1 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.12
x node-2 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.11

# Pods: node-1's bridge and pod veth keep MTU 1500 (the fault); node-2 is right (1450).
pod() { # node pod ip mtu
  local node=$1 pod=$2 ip=$3 mtu=$4
  local v="veth${pod#pod-}"
  x $node ip link add cni0 type bridge 2>/dev/null || true
  x $node ip link set cni0 mtu "$mtu" up
  x $node ip addr add "${ip%.*}.1/24" dev cni0 2>/dev/null || true
  ip link add "$v" netns "$(ns $node)" mtu "$mtu" type veth peer name eth0 netns "$(ns $pod)" mtu "$mtu"
  x $node ip link set "$v" master cni0 up
  x $pod ip link set eth0 up
  x $pod ip addr add "$ip/24" dev eth0
  x $pod ip route add default via "${ip%.*}.1"
}
pod node-1 pod-web 10.244.1.10 1500
pod node-2 pod-cart 10.244.2.20 1450
for n in node-1 node-2; do x $n sysctl -qw net.ipv4.ip_forward=1; done

# Gateway to the remote sites over WireGuard; ip_forward left at 0 (the fault).
x gw-1 sysctl -qw net.ipv4.ip_forward=0
x gw-1 ip route add 10.244.1.0/24 via 198.51.100.11
x gw-1 ip route add 10.244.2.0/24 via 198.51.100.12
tmp=$(mktemp -d)
for s in gw site-a site-b; do wg genkey > "$tmp/$s.key"; wg pubkey < "$tmp/$s.key" > "$tmp/$s.pub"; done
wg genpsk > "$tmp/psk"
wgup() { # host ifname addr
  x $1 env WG_PROCESS_FOREGROUND=1 wireguard-go "$2" >/dev/null 2>&1 &
  local t; for t in $(seq 50); do [ -S "/var/run/wireguard/$2.sock" ] && break; sleep 0.1; done
  x $1 ip link set "$2" mtu 1420
  x $1 ip addr add "$3" dev "$2"
}
# wireguard-go control sockets are global (/var/run/wireguard): names unique to this lab.
WG_GW=wgex-gw1; WG_A=wgex-sitea; WG_B=wgex-siteb
wgup gw-1 "$WG_GW" 10.99.0.1/24
wgup site-a "$WG_A" 10.99.0.2/24
wgup site-b "$WG_B" 10.99.0.3/24
x gw-1 wg set "$WG_GW" private-key "$tmp/gw.key" listen-port 51820 \
  peer "$(cat $tmp/site-a.pub)" preshared-key "$tmp/psk" endpoint 198.51.100.101:51820 allowed-ips 10.99.0.2/32,10.20.0.0/16 persistent-keepalive 25 \
  peer "$(cat $tmp/site-b.pub)" endpoint 198.51.100.102:51820 allowed-ips 10.99.0.3/32,10.20.5.0/24
x site-a wg set "$WG_A" private-key "$tmp/site-a.key" listen-port 51820 \
  peer "$(cat $tmp/gw.pub)" preshared-key "$tmp/psk" endpoint 198.51.100.20:51820 allowed-ips 10.99.0.1/32,10.244.0.0/16
x site-b wg set "$WG_B" private-key "$tmp/site-b.key" listen-port 51820 \
  peer "$(cat $tmp/gw.pub)" endpoint 198.51.100.20:51820 allowed-ips 10.99.0.1/32,10.244.0.0/16
x gw-1 ip link set "$WG_GW" up; x site-a ip link set "$WG_A" up; x site-b ip link set "$WG_B" up
x gw-1 ip route add 10.20.0.0/16 dev "$WG_GW"
# site-b's firewall drops WireGuard: its handshake never completes.
x site-b nft -f - <<'NFT'
table inet filter {
  chain input { type filter hook input priority 0; policy accept;
    udp dport 51820 counter drop
  }
}
NFT
# Node firewall: FORWARD policy drop with an accept for the pod CIDR (healthy).
x node-1 iptables -P FORWARD DROP
x node-1 iptables -A FORWARD -s 10.244.0.0/16 -m comment --comment "pod egress" -j ACCEPT
x node-1 iptables -A FORWARD -d 10.244.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
# Bounded traffic inside the lab only: one ping per WireGuard peer (handshakes).
# site-a must complete its handshake (the healthy peer): retry, at most 20 times.
for t in $(seq 20); do
  x gw-1 ping -c 1 -W 1 10.99.0.2 >/dev/null 2>&1 && \
    x gw-1 wg show "$WG_GW" latest-handshakes | grep -q "$(cat $tmp/site-a.pub)[[:space:]]*[1-9]" && break
  sleep 0.5
done
x gw-1 ping -c 1 -W 2 10.99.0.3 >/dev/null || true
x node-1 ping -c 1 -W 2 10.244.2.20 >/dev/null || true

# Capture.
rm -rf "$out"; mkdir -p "$out/hosts" "$out/kubernetes"
cap() { # host role node pod
  local h=$1 d="$out/hosts/$1"; mkdir -p "$d"
  printf '{"role": "%s"%s}\n' "$2" "${3:+, \"node\": \"$3\"}${4:+, \"pod\": \"$4\"}" > "$d/host.json"
  x $h ip -j -d link show > "$d/ip-link.json"
  x $h ip -j addr show > "$d/ip-addr.json"
  x $h ip -j route show table all > "$d/ip-route.json"
  x $h ip -j rule show > "$d/ip-rule.json"
  x $h sysctl -a > "$d/sysctl.txt" 2>/dev/null || true
  x $h nft -j list ruleset > "$d/nft.json"
  x $h iptables-save -c > "$d/iptables-save.txt" 2>/dev/null || true
  [ -s "$d/iptables-save.txt" ] || rm -f "$d/iptables-save.txt"
}
cap node-1 node node-1
cap node-2 node node-2
cap pod-web pod node-1 shop/web-7d4b9c
cap pod-cart pod node-2 shop/cart-5f6d8b
cap gw-1 gateway node-1
# `wg show all dump` would list every wireguard-go interface on the machine (their control
# sockets are global), so dump the gateway's interface and add the interface column as
# `all dump` does.
x gw-1 wg show "$WG_GW" dump | sed "s/^/$WG_GW\t/" > "$out/hosts/gw-1/wg-dump.txt"
cap vpc-router gateway
cap onprem-router gateway

# Files as they are on disk (configuration, not command output).
printf 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n' > "$out/hosts/node-1/resolv.conf"
printf 'nameserver 198.51.100.53\nsearch corp.example\n' > "$out/hosts/node-2/resolv.conf"
for h in pod-web pod-cart; do
  printf 'search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n' > "$out/hosts/$h/resolv.conf"
done
mkdir -p "$out/hosts/node-1/cni" "$out/hosts/node-2/cni"
cni() { # file version mtu
cat > "$1" <<JSON
{
  "name": "cbr0",
  "cniVersion": "$2",
  "plugins": [
    {
      "type": "flannel",
      "delegate": {
        "hairpinMode": true,
        "isDefaultGateway": true,
        "mtu": $3
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}
JSON
}
cni "$out/hosts/node-1/cni/10-flannel.conflist" 1.0.0 1500
cni "$out/hosts/node-2/cni/10-flannel.conflist" 0.3.1 1450

# strongSwan site-to-site configs of the cloud and on-prem routers, as on disk. They
# disagree on proposals (no common DH group) and on the PSK.
mkdir -p "$out/hosts/vpc-router/swanctl" "$out/hosts/onprem-router/swanctl"
cat > "$out/hosts/vpc-router/swanctl/swanctl.conf" <<SWAN
connections {
   onprem {
      version = 2
      local_addrs  = 198.51.100.30
      remote_addrs = 198.51.100.40
      proposals = aes256-sha256-ecp384
      rekey_time = 8h
      dpd_delay = 30s
      local {
         auth = psk
         id = vpc.example.net
      }
      remote {
         auth = psk
         id = onprem.example.net
      }
      children {
         vpc-onprem {
            local_ts  = 10.244.0.0/16
            remote_ts = 10.20.0.0/16
            esp_proposals = aes256gcm16-ecp384
            rekey_time = 1h
            start_action = trap
         }
      }
   }
}
secrets {
   ike-onprem {
      id-1 = vpc.example.net
      id-2 = onprem.example.net
      secret = "$(head -c 18 /dev/urandom | base64)"
   }
}
SWAN
cat > "$out/hosts/onprem-router/swanctl/swanctl.conf" <<SWAN
connections {
   vpc {
      version = 2
      local_addrs  = 198.51.100.40
      remote_addrs = 198.51.100.30
      proposals = aes256-sha256-modp2048
      rekey_time = 8h
      dpd_delay = 30s
      local {
         auth = psk
         id = onprem.example.net
      }
      remote {
         auth = psk
         id = vpc.example.net
      }
      children {
         onprem-vpc {
            local_ts  = 10.20.0.0/16
            remote_ts = 10.244.0.0/16
            esp_proposals = aes256gcm16-modp2048
            rekey_time = 1h
            start_action = trap
         }
      }
   }
}
secrets {
   ike-vpc {
      id-1 = onprem.example.net
      id-2 = vpc.example.net
      secret = "$(head -c 18 /dev/urandom | base64)"
   }
}
SWAN

python3 "$here/kubernetes-objects.py" "$out/kubernetes" "$(cat $tmp/gw.key)"
printf '{"format": "netsleuth-bundle/1", "collected_at": "%s", "cluster": "example-shop", "tool_version": "examples/make-example.sh"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$out/manifest.json"
rm -rf "$tmp"
echo "wrote $out"
