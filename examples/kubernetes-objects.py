#!/usr/bin/env python3
"""Writes the example cluster's objects in `kubectl get <kinds> -A -o json` shape.

There is no API server in this environment, so the objects are built here with the fields,
nesting and metadata that real kubectl output has (uid, resourceVersion, creationTimestamp,
managedFields omitted as kubectl does with --show-managed-fields=false, status blocks).
Usage: kubernetes-objects.py OUTDIR WIREGUARD_PRIVATE_KEY
"""
import json, sys, uuid, hashlib

out, wg_key = sys.argv[1], sys.argv[2]
TS = "2026-11-20T08:14:03Z"

def uid(name):
    return str(uuid.UUID(hashlib.md5(name.encode()).hexdigest()))

def meta(name, ns=None, labels=None, annotations=None, owner=None):
    m = {"creationTimestamp": TS, "name": name, "resourceVersion": str(int(hashlib.md5(name.encode()).hexdigest()[:6], 16)), "uid": uid(name)}
    if ns: m["namespace"] = ns
    if labels: m["labels"] = labels
    if annotations: m["annotations"] = annotations
    if owner: m["ownerReferences"] = [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True, "kind": owner[0], "name": owner[1], "uid": uid(owner[1])}]
    return m

def lst(items):
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}

def container(name, image, ports=(), **extra):
    c = {"image": image, "imagePullPolicy": "IfNotPresent", "name": name, "resources": {},
         "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    if ports: c["ports"] = [dict(p) for p in ports]
    c.update(extra)
    return c

def pod(name, ns, node, ip, labels, containers, annotations=None, owner=None, host_network=False, dns_policy="ClusterFirst"):
    spec = {"containers": containers, "dnsPolicy": dns_policy, "enableServiceLinks": True, "nodeName": node,
            "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {}, "serviceAccount": "default",
            "serviceAccountName": "default", "terminationGracePeriodSeconds": 30}
    if host_network: spec["hostNetwork"] = True
    host_ip = {"node-1": "198.51.100.11", "node-2": "198.51.100.12"}[node]
    status = {"conditions": [{"lastProbeTime": None, "lastTransitionTime": TS, "status": "True", "type": t} for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
              "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
              "qosClass": "BestEffort", "startTime": TS}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, ns, labels, annotations, owner), "spec": spec, "status": status}

def node(name, ip, cidr):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": meta(name, labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m6i.large"},
                             annotations={"flannel.alpha.coreos.com/backend-type": "vxlan", "flannel.alpha.coreos.com/public-ip": ip}),
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"address": ip, "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
                       "conditions": [{"lastHeartbeatTime": TS, "lastTransitionTime": TS, "message": "kubelet is posting ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"}],
                       "nodeInfo": {"containerRuntimeVersion": "containerd://1.7.22", "kubeletVersion": "v1.33.2", "osImage": "Debian GNU/Linux 12 (bookworm)"}}}

def ns(name, labels=None):
    l = {"kubernetes.io/metadata.name": name}
    l.update(labels or {})
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name, labels=l), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

istio_status = json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"], "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istiod-ca-cert"], "imagePullSecrets": None, "revision": "default"})
def sidecar():
    return container("istio-proxy", "docker.io/istio/proxyv2:1.24.2", [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
                     args=["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                     readinessProbe={"failureThreshold": 4, "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"}, "periodSeconds": 15})

cluster = [
    node("node-1", "198.51.100.11", "10.244.1.0/24"),
    node("node-2", "198.51.100.12", "10.244.2.0/24"),
    ns("kube-system"), ns("shop", {"istio-injection": "enabled"}), ns("vpn"), ns("istio-system"),
]

corefile = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""
dns_ports = [{"containerPort": 53, "name": "dns", "protocol": "UDP"}, {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}, {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}]
kube_system = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("coredns", "kube-system"), "data": {"Corefile": corefile}},
    {"apiVersion": "v1", "kind": "Service", "metadata": meta("kube-dns", "kube-system", {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}),
     "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
              "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}, {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}],
              "selector": {"k8s-app": "kube-dns"}, "sessionAffinity": "None", "type": "ClusterIP"}, "status": {"loadBalancer": {}}},
    pod("coredns-7db6d8ff4d-x2k9p", "kube-system", "node-1", "10.244.1.2", {"k8s-app": "kube-dns", "pod-template-hash": "7db6d8ff4d"},
        [container("coredns", "registry.k8s.io/coredns/coredns:v1.11.3", dns_ports, args=["-conf", "/etc/coredns/Corefile"],
                   readinessProbe={"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}, "periodSeconds": 10})],
        owner=("ReplicaSet", "coredns-7db6d8ff4d"), dns_policy="Default"),
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
     "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": True, "serving": True, "terminating": False}, "nodeName": "node-1",
                    "targetRef": {"kind": "Pod", "name": "coredns-7db6d8ff4d-x2k9p", "namespace": "kube-system", "uid": uid("coredns-7db6d8ff4d-x2k9p")}}],
     "metadata": meta("kube-dns-q7x2z", "kube-system", {"k8s-app": "kube-dns", "kubernetes.io/service-name": "kube-dns", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}),
     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
]

app_ann = {"sidecar.istio.io/status": istio_status, "kubectl.kubernetes.io/default-container": "web"}
shop = [
    pod("web-7d4b9c", "shop", "node-1", "10.244.1.10", {"app": "web", "tier": "frontend"},
        [container("web", "ghcr.io/example/shop-web:2.3.1", [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]), sidecar()],
        annotations=dict(app_ann), owner=("ReplicaSet", "web-7d4b9c")),
    pod("cart-5f6d8b", "shop", "node-2", "10.244.2.20", {"app": "cart", "tier": "backend"},
        [container("cart", "ghcr.io/example/shop-cart:1.9.0", [{"containerPort": 9090, "name": "grpc", "protocol": "TCP"}]), sidecar()],
        annotations={"sidecar.istio.io/status": istio_status}, owner=("ReplicaSet", "cart-5f6d8b")),
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("default-deny-egress", "shop"),
     "spec": {"podSelector": {}, "policyTypes": ["Egress"]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("allow-onprem-erp", "shop"),
     "spec": {"podSelector": {"matchLabels": {"tier": "backend"}}, "policyTypes": ["Egress"],
              "egress": [{"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"port": 443, "protocol": "TCP"}]},
                         {"to": [{"podSelector": {"matchLabels": {"tier": "frontend"}}}]}]}},
]

wg_conf = f"""[Interface]
Address = 10.99.0.1/24
ListenPort = 51820
PrivateKey = {wg_key}

[Peer]
PublicKey = site-a-public-key-is-published-here
AllowedIPs = 10.20.0.0/16
Endpoint = 198.51.100.101:51820
"""
gw_labels = {"app.kubernetes.io/name": "wg-gateway", "app.kubernetes.io/component": "vpn"}
gw_container = container("wireguard", "lscr.io/linuxserver/wireguard:1.0.20250521", [{"containerPort": 51820, "name": "wg", "protocol": "UDP"}],
                         securityContext={"privileged": True, "capabilities": {"add": ["NET_ADMIN", "SYS_MODULE"]}},
                         volumeMounts=[{"mountPath": "/config/wg_confs", "name": "wg-conf"}])
vpn = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("wg-gateway-config", "vpn", gw_labels), "data": {"wg0.conf": wg_conf}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("wg-gateway", "vpn", gw_labels, {"deployment.kubernetes.io/revision": "3"}),
     "spec": {"progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10, "selector": {"matchLabels": gw_labels},
              "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
              "template": {"metadata": {"labels": gw_labels},
                           "spec": {"containers": [gw_container], "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                                    "volumes": [{"configMap": {"defaultMode": 420, "name": "wg-gateway-config"}, "name": "wg-conf"}]}}},
     "status": {"availableReplicas": 1, "observedGeneration": 3, "readyReplicas": 1, "replicas": 1, "updatedReplicas": 1}},
    pod("wg-gateway-6c9f7d8b5-kq2lm", "vpn", "node-1", "10.244.1.30", dict(gw_labels, **{"pod-template-hash": "6c9f7d8b5"}), [gw_container], owner=("ReplicaSet", "wg-gateway-6c9f7d8b5")),
    {"apiVersion": "v1", "kind": "Service", "metadata": meta("wg-gateway", "vpn", gw_labels),
     "spec": {"clusterIP": "10.96.44.12", "clusterIPs": ["10.96.44.12"], "externalTrafficPolicy": "Cluster", "ports": [{"name": "wg", "nodePort": 31820, "port": 51820, "protocol": "UDP", "targetPort": "wg"}],
              "selector": gw_labels, "type": "NodePort"}, "status": {"loadBalancer": {}}},
]

for fname, items in (("cluster.json", cluster), ("kube-system.json", kube_system), ("shop.json", shop), ("vpn.json", vpn)):
    with open(f"{out}/{fname}", "w") as f:
        json.dump(lst(items), f, indent=4)
        f.write("\n")
