//! Private serde shapes of the Kubernetes objects: only the fields the model needs,
//! every field optional, unknown fields ignored, `null` read as absent.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use netsleuth_model::kubernetes::IntOrString;

/// `null` or absent → `T::default()`: Go clients write `null` for empty lists and maps.
pub(super) fn nd<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A scalar read as text: strings as they are, numbers and booleans written out. Labels,
/// annotations and ConfigMap values must be strings, but hand-written YAML often has
/// `replicas: 3` or `enabled: true`; those mean the text the user typed. A float cannot
/// be given back as typed (`1.10` was read as 1.1), so it is flagged for a warning.
pub(super) struct Loose(pub(super) String, pub(super) bool);

struct LooseVisitor;

impl Visitor<'_> for LooseVisitor {
    type Value = Loose;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose(v.to_string(), false))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Loose, E> {
        Ok(Loose(v, false))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose, E> {
        Ok(Loose(v.to_string(), false))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose(v.to_string(), false))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose(v.to_string(), false))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
        // `{:?}` keeps the `.0` of `1.0`.
        Ok(Loose(format!("{v:?}"), true))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose(String::new(), false))
    }
    fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose(String::new(), false))
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// A string field that hand-written YAML may give as a number (`name: 2024`).
pub(super) fn loose<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Loose::deserialize(d)?.0)
}

/// A string → text map (`labels`, `annotations`, `data`, `selector`), `null` = empty,
/// with the keys whose value was a float (see [`Loose`]).
#[derive(Default)]
pub(super) struct LooseMap {
    pub(super) map: BTreeMap<String, String>,
    pub(super) floats: Vec<String>,
}

pub(super) fn loose_map<'de, D: Deserializer<'de>>(d: D) -> Result<LooseMap, D::Error> {
    struct MapVisitor;
    impl<'de> Visitor<'de> for MapVisitor {
        type Value = LooseMap;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(LooseMap::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(LooseMap::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = LooseMap::default();
            while let Some((k, v)) = map.next_entry::<Loose, Loose>()? {
                if v.1 {
                    out.floats.push(k.0.clone());
                }
                out.map.insert(k.0, v.0);
            }
            Ok(out)
        }
    }
    d.deserialize_any(MapVisitor)
}

/// `targetPort`, `port`, `minAvailable`: an int or a (named / percent) string.
pub(super) struct IntOrStr(pub(super) IntOrString);

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IntOrStr, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr(IntOrString::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                i64::try_from(v).map(|v| IntOrStr(IntOrString::Int(v))).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr(IntOrString::String(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// Accepts anything, remembering only that something (not `null`) was there: probes.
#[derive(Default)]
pub(super) struct Present(pub(super) bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Present, D::Error> {
        Ok(Present(Option::<IgnoredAny>::deserialize(d)?.is_some()))
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MetaDe {
    #[serde(deserialize_with = "loose")]
    pub(super) name: String,
    #[serde(deserialize_with = "loose")]
    pub(super) namespace: String,
    #[serde(deserialize_with = "loose_map")]
    pub(super) labels: LooseMap,
    #[serde(deserialize_with = "loose_map")]
    pub(super) annotations: LooseMap,
    pub(super) uid: Option<String>,
    #[serde(deserialize_with = "nd")]
    pub(super) owner_references: Vec<OwnerRefDe>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OwnerRefDe {
    #[serde(deserialize_with = "nd")]
    pub(super) kind: String,
    #[serde(deserialize_with = "nd")]
    pub(super) name: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct SelectorDe {
    #[serde(deserialize_with = "loose_map")]
    pub(super) match_labels: LooseMap,
    #[serde(deserialize_with = "nd")]
    pub(super) match_expressions: Vec<RequirementDe>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RequirementDe {
    #[serde(deserialize_with = "nd")]
    pub(super) key: String,
    #[serde(deserialize_with = "nd")]
    pub(super) operator: String,
    #[serde(deserialize_with = "nd")]
    pub(super) values: Vec<String>,
}

// ---- core/v1 ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NamespaceDe {
    pub(super) metadata: MetaDe,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NodeDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: NodeSpecDe,
    pub(super) status: NodeStatusDe,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NodeSpecDe {
    #[serde(rename = "podCIDR")]
    pub(super) pod_cidr: Option<String>,
    #[serde(rename = "podCIDRs", deserialize_with = "nd")]
    pub(super) pod_cidrs: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NodeStatusDe {
    #[serde(deserialize_with = "nd")]
    pub(super) addresses: Vec<NodeAddressDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) conditions: Vec<ConditionDe>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NodeAddressDe {
    #[serde(rename = "type", deserialize_with = "nd")]
    pub(super) kind: String,
    #[serde(deserialize_with = "nd")]
    pub(super) address: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ConditionDe {
    #[serde(rename = "type", deserialize_with = "nd")]
    pub(super) kind: String,
    #[serde(deserialize_with = "nd")]
    pub(super) status: String,
    pub(super) reason: Option<String>,
    pub(super) message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PodDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: PodSpecDe,
    pub(super) status: PodStatusDe,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PodSpecDe {
    pub(super) node_name: Option<String>,
    pub(super) host_network: Option<bool>,
    pub(super) dns_policy: Option<String>,
    pub(super) service_account_name: Option<String>,
    /// Deprecated alias of `serviceAccountName`, still written by the API server.
    pub(super) service_account: Option<String>,
    #[serde(deserialize_with = "nd")]
    pub(super) containers: Vec<ContainerDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) init_containers: Vec<ContainerDe>,
    pub(super) security_context: Option<PodSecurityContextDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PodSecurityContextDe {
    pub(super) run_as_non_root: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ContainerDe {
    #[serde(deserialize_with = "nd")]
    pub(super) name: String,
    pub(super) image: Option<String>,
    #[serde(deserialize_with = "nd")]
    pub(super) ports: Vec<ContainerPortDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) env: Vec<EnvDe>,
    pub(super) security_context: Option<SecurityContextDe>,
    pub(super) readiness_probe: Present,
    pub(super) liveness_probe: Present,
    #[serde(deserialize_with = "nd")]
    pub(super) command: Vec<Loose>,
    #[serde(deserialize_with = "nd")]
    pub(super) args: Vec<Loose>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ContainerPortDe {
    pub(super) name: Option<String>,
    pub(super) container_port: Option<u16>,
    pub(super) protocol: Option<String>,
    pub(super) host_port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EnvDe {
    #[serde(deserialize_with = "nd")]
    pub(super) name: String,
    pub(super) value: Option<Loose>,
    pub(super) value_from: Option<ValueFromDe>,
}

/// `env[].valueFrom`: which source is used (the model keeps only its kind).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ValueFromDe {
    pub(super) secret_key_ref: Present,
    pub(super) config_map_key_ref: Present,
    pub(super) field_ref: Present,
    pub(super) resource_field_ref: Present,
}

impl ValueFromDe {
    pub(super) fn kind(&self) -> Option<&'static str> {
        [
            (self.secret_key_ref.0, "secretKeyRef"),
            (self.config_map_key_ref.0, "configMapKeyRef"),
            (self.field_ref.0, "fieldRef"),
            (self.resource_field_ref.0, "resourceFieldRef"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct SecurityContextDe {
    pub(super) privileged: Option<bool>,
    pub(super) capabilities: Option<CapabilitiesDe>,
    pub(super) run_as_non_root: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CapabilitiesDe {
    #[serde(deserialize_with = "nd")]
    pub(super) add: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PodStatusDe {
    pub(super) phase: Option<String>,
    #[serde(rename = "podIP")]
    pub(super) pod_ip: Option<String>,
    #[serde(rename = "podIPs", deserialize_with = "nd")]
    pub(super) pod_ips: Vec<PodIpDe>,
    #[serde(rename = "hostIP")]
    pub(super) host_ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PodIpDe {
    #[serde(deserialize_with = "nd")]
    pub(super) ip: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ServiceDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: ServiceSpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServiceSpecDe {
    #[serde(rename = "type")]
    pub(super) service_type: Option<String>,
    #[serde(rename = "clusterIP")]
    pub(super) cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs", deserialize_with = "nd")]
    pub(super) cluster_ips: Vec<String>,
    #[serde(deserialize_with = "loose_map")]
    pub(super) selector: LooseMap,
    #[serde(deserialize_with = "nd")]
    pub(super) ports: Vec<ServicePortDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServicePortDe {
    pub(super) name: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) target_port: Option<IntOrStr>,
    pub(super) node_port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ConfigMapDe {
    pub(super) metadata: MetaDe,
    #[serde(deserialize_with = "loose_map")]
    pub(super) data: LooseMap,
}

/// Secret values are read as JSON values (never into typed fields whose errors would
/// quote them) and only ever fingerprinted.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct SecretDe {
    pub(super) metadata: MetaDe,
    #[serde(rename = "type")]
    pub(super) secret_type: Option<String>,
    #[serde(deserialize_with = "nd")]
    pub(super) data: BTreeMap<String, serde_json::Value>,
    #[serde(deserialize_with = "nd")]
    pub(super) string_data: BTreeMap<String, serde_json::Value>,
}

// ---- discovery.k8s.io, networking.k8s.io ----

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EndpointSliceDe {
    pub(super) metadata: MetaDe,
    pub(super) address_type: Option<String>,
    #[serde(deserialize_with = "nd")]
    pub(super) endpoints: Vec<EndpointDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) ports: Vec<EndpointPortDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EndpointDe {
    #[serde(deserialize_with = "nd")]
    pub(super) addresses: Vec<String>,
    pub(super) conditions: Option<EndpointConditionsDe>,
    pub(super) node_name: Option<String>,
    pub(super) target_ref: Option<TargetRefDe>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct EndpointConditionsDe {
    pub(super) ready: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TargetRefDe {
    #[serde(deserialize_with = "nd")]
    pub(super) kind: String,
    #[serde(deserialize_with = "nd")]
    pub(super) namespace: String,
    #[serde(deserialize_with = "nd")]
    pub(super) name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct EndpointPortDe {
    pub(super) name: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) protocol: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NetworkPolicyDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: NetworkPolicySpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct NetworkPolicySpecDe {
    pub(super) pod_selector: Option<SelectorDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) policy_types: Vec<String>,
    /// `None` when absent: an absent `egress` does not add the Egress policy type.
    pub(super) ingress: Option<Vec<NetworkPolicyRuleDe>>,
    pub(super) egress: Option<Vec<NetworkPolicyRuleDe>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct NetworkPolicyRuleDe {
    #[serde(deserialize_with = "nd")]
    pub(super) from: Vec<PeerDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) to: Vec<PeerDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) ports: Vec<NetworkPolicyPortDe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PeerDe {
    pub(super) pod_selector: Option<SelectorDe>,
    pub(super) namespace_selector: Option<SelectorDe>,
    pub(super) ip_block: Option<IpBlockDe>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct IpBlockDe {
    #[serde(deserialize_with = "nd")]
    pub(super) cidr: String,
    #[serde(deserialize_with = "nd")]
    pub(super) except: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct NetworkPolicyPortDe {
    pub(super) protocol: Option<String>,
    pub(super) port: Option<IntOrStr>,
    pub(super) end_port: Option<u16>,
}

// ---- apps, autoscaling, policy ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WorkloadDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: WorkloadSpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WorkloadSpecDe {
    pub(super) replicas: Option<i32>,
    pub(super) selector: Option<SelectorDe>,
    pub(super) template: PodTemplateDe,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PodTemplateDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: PodSpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct HpaDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: HpaSpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct HpaSpecDe {
    pub(super) scale_target_ref: Option<OwnerRefDe>,
    pub(super) min_replicas: Option<i32>,
    pub(super) max_replicas: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PdbDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: PdbSpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PdbSpecDe {
    pub(super) selector: Option<SelectorDe>,
    pub(super) min_available: Option<IntOrStr>,
    pub(super) max_unavailable: Option<IntOrStr>,
}

// ---- Istio ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PeerAuthenticationDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: PeerAuthenticationSpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PeerAuthenticationSpecDe {
    pub(super) selector: Option<SelectorDe>,
    pub(super) mtls: Option<MtlsDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) port_level_mtls: BTreeMap<String, MtlsDe>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct MtlsDe {
    pub(super) mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SidecarDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: SidecarSpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct SidecarSpecDe {
    pub(super) workload_selector: Option<WorkloadSelectorDe>,
    #[serde(deserialize_with = "nd")]
    pub(super) egress: Vec<SidecarEgressDe>,
    pub(super) outbound_traffic_policy: Option<MtlsDe>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WorkloadSelectorDe {
    #[serde(deserialize_with = "loose_map")]
    pub(super) labels: LooseMap,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SidecarEgressDe {
    #[serde(deserialize_with = "nd")]
    pub(super) hosts: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ServiceEntryDe {
    pub(super) metadata: MetaDe,
    pub(super) spec: ServiceEntrySpecDe,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ServiceEntrySpecDe {
    #[serde(deserialize_with = "nd")]
    pub(super) hosts: Vec<String>,
    #[serde(deserialize_with = "nd")]
    pub(super) addresses: Vec<String>,
    #[serde(deserialize_with = "nd")]
    pub(super) ports: Vec<ServiceEntryPortDe>,
    pub(super) location: Option<String>,
    pub(super) resolution: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ServiceEntryPortDe {
    pub(super) number: Option<u16>,
    #[serde(deserialize_with = "nd")]
    pub(super) protocol: String,
}
