//! Parser of `kubectl get … -o json|yaml` output (Lists, typed lists, single objects,
//! multi-document YAML, kinds mixed) into the Kubernetes part of the model.
//!
//! Rules for untrusted input: JSON or YAML is decided by the first non-blank character
//! (`{` / `[` is JSON). JSON lists are read item by item from raw slices, so a list of
//! 150,000 pods never becomes one big tree; each item is deserialized only into the fields
//! the model keeps. YAML documents are parsed under budgets (alias replays, nesting, size)
//! so a billion-laughs file fails in milliseconds. An item that does not convert is a
//! warning and the rest of the file goes on; a file that is not JSON/YAML at all is a
//! `ParseError` with line and column. Secrets are redacted before anything is stored, and
//! error messages never quote a value (see `redact::scrub_error_message`).

mod convert;
mod de;
mod pipeline;
mod yaml;

use std::sync::OnceLock;

use serde::de::{DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use netsleuth_model::kubernetes::{Cluster, WorkloadKind};
use netsleuth_model::Location;

use crate::redact::scrub_error_message;
use crate::{ParseContext, ParseError, Source};
use convert::Conv;

/// Lists inside lists deeper than this are not followed (a List of Lists is already odd).
const MAX_LIST_NESTING: usize = 4;

/// At most this many threads convert a big list.
const MAX_THREADS: usize = 8;

/// A `kubectl get -o json|yaml` output: a List, a single object, or multi-document YAML,
/// any kinds mixed. Objects are added to `cluster`; a bad item is a warning in `ctx`.
pub fn parse(src: &Source<'_>, cluster: &mut Cluster, ctx: &mut ParseContext) -> Result<(), ParseError> {
    let text = src.text.strip_prefix('\u{feff}').unwrap_or(src.text);
    let lines = LineIndex { text, checkpoints: OnceLock::new() };
    let mut p = Parser { src, text, lines: &lines, cluster, ctx, objects: 0 };
    let looks_json = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
    let yaml_name = src.path.ends_with(".yaml") || src.path.ends_with(".yml");
    if looks_json {
        match p.json() {
            Ok(()) => {}
            // JSON is YAML: a `.yaml` file starting with a flow mapping (`{a: 1}`) is YAML.
            // The file is named YAML: if it is not YAML either, the YAML error is the one
            // its author can act on.
            Err(_) if yaml_name => p.yaml()?,
            Err(e) => return Err(e),
        }
    } else {
        p.yaml()?;
    }
    if p.objects == 0 {
        p.ctx.warn(Location::file(src.path), "no Kubernetes objects in this file");
    }
    Ok(())
}

/// One object to convert: a raw JSON slice of the file, or a YAML document's value.
#[derive(Clone, Copy)]
enum Item<'a> {
    Json(&'a RawValue),
    Yaml(&'a serde_json::Value),
}

/// What kind of object an item is, as far as the model cares.
enum Typed {
    Namespace,
    Node,
    Pod,
    Service,
    EndpointSlice,
    NetworkPolicy,
    ConfigMap,
    Secret,
    Workload(WorkloadKind),
    Hpa,
    Pdb,
    PeerAuthentication,
    Sidecar,
    ServiceEntry,
}

/// Classifies `kind` of API group `group` (None when the object has no apiVersion):
/// a known kind of another group (a Calico `NetworkPolicy`) is not the typed one.
fn classify(kind: &str, group: Option<&str>) -> Option<Typed> {
    let (typed, groups): (Typed, &[&str]) = match kind {
        "Namespace" => (Typed::Namespace, &[""]),
        "Node" => (Typed::Node, &[""]),
        "Pod" => (Typed::Pod, &[""]),
        "Service" => (Typed::Service, &[""]),
        "ConfigMap" => (Typed::ConfigMap, &[""]),
        "Secret" => (Typed::Secret, &[""]),
        "EndpointSlice" => (Typed::EndpointSlice, &["discovery.k8s.io"]),
        "NetworkPolicy" => (Typed::NetworkPolicy, &["networking.k8s.io", "extensions"]),
        "Deployment" => (Typed::Workload(WorkloadKind::Deployment), &["apps", "extensions"]),
        "DaemonSet" => (Typed::Workload(WorkloadKind::DaemonSet), &["apps", "extensions"]),
        "StatefulSet" => (Typed::Workload(WorkloadKind::StatefulSet), &["apps"]),
        "HorizontalPodAutoscaler" => (Typed::Hpa, &["autoscaling"]),
        "PodDisruptionBudget" => (Typed::Pdb, &["policy"]),
        "PeerAuthentication" => (Typed::PeerAuthentication, &["security.istio.io"]),
        "Sidecar" => (Typed::Sidecar, &["networking.istio.io"]),
        "ServiceEntry" => (Typed::ServiceEntry, &["networking.istio.io"]),
        _ => return None,
    };
    match group {
        Some(g) if !groups.contains(&g) => None,
        _ => Some(typed),
    }
}

/// The API group of an apiVersion: `apps/v1` → `apps`, `v1` → `` (core).
fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

struct Parser<'s, 'c> {
    src: &'s Source<'s>,
    /// The source text without a byte-order mark.
    text: &'s str,
    lines: &'c LineIndex<'s>,
    cluster: &'c mut Cluster,
    ctx: &'c mut ParseContext,
    /// Objects seen (typed or skipped).
    objects: usize,
}

/// Line and column of a byte offset of the text, for warnings about items. Built on the
/// first such warning and shared by threads; it keeps one newline count per 64 KiB, so
/// even a 1 GB file costs little memory.
struct LineIndex<'s> {
    text: &'s str,
    checkpoints: OnceLock<Vec<usize>>,
}

impl LineIndex<'_> {
    const STEP: usize = 1 << 16;

    /// 1-based line and (byte) column of `offset`.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let bytes = self.text.as_bytes();
        let offset = offset.min(bytes.len());
        let newlines = |b: &[u8]| b.iter().filter(|c| **c == b'\n').count();
        let checkpoints = self.checkpoints.get_or_init(|| {
            let mut seen = 0;
            bytes
                .chunks(Self::STEP)
                .map(|chunk| {
                    let before = seen;
                    seen += newlines(chunk);
                    before
                })
                .collect()
        });
        let k = offset / Self::STEP;
        let base = checkpoints.get(k).copied().unwrap_or(0);
        let line = base + newlines(bytes.get(k * Self::STEP..offset).unwrap_or(&[])) + 1;
        let line_start = bytes.get(..offset).and_then(|b| b.iter().rposition(|c| *c == b'\n')).map_or(0, |p| p + 1);
        (line, offset - line_start + 1)
    }
}

impl<'s> Parser<'s, '_> {
    fn json_error(&self, e: &serde_json::Error) -> ParseError {
        let mut err = ParseError::from_json(self.src.path, e);
        err.message = scrub_error_message(&err.message);
        err
    }

    fn json(&mut self) -> Result<(), ParseError> {
        let text = self.text;
        if text.trim_start().starts_with('[') {
            // A bare array of objects (hand-made); pointers are `/N`.
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| self.json_error(&e))?;
            for (i, raw) in items.into_iter().enumerate() {
                self.object(Item::Json(raw), format!("/{i}"), None, 0);
            }
            return Ok(());
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        let is_list = if threads > 1 && text.len() >= pipeline::PIPELINE_MIN_BYTES {
            pipeline::parse_list(self, threads)?
        } else {
            let head: ListHead<'_> = serde_json::from_str(text).map_err(|e| self.json_error(&e))?;
            match head.items {
                Some(items) if head.kind.as_deref().is_none_or(|k| k.ends_with("List")) => {
                    let (kind, api) = (head.kind.as_deref(), head.api_version.as_deref());
                    self.list_items(items.into_iter().map(Item::Json), "", kind, api, 0);
                    true
                }
                _ => false,
            }
        };
        if !is_list {
            let raw: &RawValue = serde_json::from_str(text).map_err(|e| self.json_error(&e))?;
            self.object(Item::Json(raw), String::new(), None, 0);
        }
        Ok(())
    }

    fn yaml(&mut self) -> Result<(), ParseError> {
        let docs = yaml::split_documents(self.text);
        let multi = docs.len() > 1;
        let mut values = Vec::with_capacity(docs.len());
        // Parse every document first: a syntax error anywhere makes the file invalid,
        // and nothing of it is added.
        for doc in &docs {
            if !doc.has_content {
                values.push(serde_json::Value::Null);
                continue;
            }
            let v: serde_json::Value = serde_saphyr::from_str_with_options(&doc.text, yaml::options(doc.text.len()))
                .map_err(|e| {
                    let (msg, line, column) = yaml::error_parts(&e);
                    let (line, column) = match line {
                        Some(l) => yaml::clamp_position(&doc.text, l, column),
                        None => (1, column),
                    };
                    let line = line + doc.first_line - 1;
                    self.src.error_at(line, column, format!("invalid YAML: {}", scrub_error_message(&msg)))
                })?;
            values.push(v);
        }
        let non_objects = values.iter().filter(|v| !v.is_null() && !v.is_object() && !v.is_array()).count();
        if non_objects > 0 && non_objects == values.iter().filter(|v| !v.is_null()).count() {
            return Err(self.src.error_at(
                docs.first().map_or(1, |d| d.first_line),
                None,
                "not Kubernetes objects: the YAML documents are plain scalars",
            ));
        }
        for (i, v) in values.iter().enumerate() {
            let base = if multi { format!("/{i}") } else { String::new() };
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::Array(items) => {
                    for (j, item) in items.iter().enumerate() {
                        self.object(Item::Yaml(item), format!("{base}/{j}"), None, 0);
                    }
                }
                _ => self.object(Item::Yaml(v), base, None, 0),
            }
        }
        Ok(())
    }

    /// Items of a List at `base`; a typed list (`PodList`) gives its kind to items
    /// that lack one.
    fn list_items<'i>(
        &mut self,
        items: impl Iterator<Item = Item<'i>>,
        base: &str,
        list_kind: Option<&str>,
        list_api: Option<&str>,
        depth: usize,
    ) {
        let item_kind = list_kind.and_then(|k| k.strip_suffix("List")).filter(|k| !k.is_empty());
        let inherited = item_kind.map(|k| (k, list_api));
        for (i, item) in items.enumerate() {
            self.object(item, format!("{base}/items/{i}"), inherited, depth);
        }
    }

    /// Converts one object at `pointer` (or recurses into a nested List).
    fn object(&mut self, item: Item<'_>, pointer: String, inherited: Option<(&str, Option<&str>)>, depth: usize) {
        // An item's own kind first; items of a typed list (`PodList`) without one are of
        // the list's kind (a kind not among the leading keys is not looked for then).
        let inherit = || inherited.map(|(k, api)| (k.to_string(), api.map(str::to_string)));
        let (kind, api): (String, Option<String>) = match item {
            Item::Json(raw) => match fast_peek(raw.get()) {
                Some((k, a)) => (k.to_string(), a.map(str::to_string)),
                None => match inherit() {
                    Some(own) => own,
                    None => match peek_object(raw.get()) {
                        Peeked::Object { kind, api } => (kind.unwrap_or_default(), api),
                        Peeked::NotObject => {
                            return self.not_an_object(&pointer, raw.get().trim_start().chars().next())
                        }
                    },
                },
            },
            Item::Yaml(v) => match v.as_object() {
                Some(m) => match (m.get("kind").and_then(|k| k.as_str()), inherit()) {
                    (Some(k), _) => (k.to_string(), m.get("apiVersion").and_then(|a| a.as_str()).map(str::to_string)),
                    (None, Some(own)) => own,
                    (None, None) => (String::new(), None),
                },
                None => return self.not_an_object(&pointer, None),
            },
        };
        self.object_of_kind(item, pointer, kind, api, depth);
    }

    /// Converts one object whose kind is known (or recurses into a nested List).
    fn object_of_kind(&mut self, item: Item<'_>, pointer: String, kind: String, api: Option<String>, depth: usize) {
        if kind.is_empty() {
            let loc = self.src.pointer(pointer);
            self.ctx.warn(loc, "object without a kind; ignored");
            return;
        }
        if kind.ends_with("List") && depth < MAX_LIST_NESTING {
            self.nested_list(item, &pointer, &kind, api.as_deref(), depth);
            return;
        }
        self.objects += 1;
        let group = api.as_deref().map(api_group);
        let Some(typed) = classify(&kind, group) else {
            let key = match group {
                Some(g) if !g.is_empty() && classify(&kind, None).is_some() => format!("{kind}.{g}"),
                _ => kind,
            };
            *self.cluster.skipped_kinds.entry(key).or_insert(0) += 1;
            return;
        };
        if let Err(message) = self.convert(typed, item, self.src.pointer(pointer.as_str())) {
            let loc = self.src.pointer(pointer);
            self.ctx.warn(loc, format!("{kind} not read: {message}"));
        }
    }

    fn not_an_object(&mut self, pointer: &str, first: Option<char>) {
        let what = match first {
            Some('"') => "a string",
            Some('[') => "an array",
            Some(_) => "a scalar",
            None => "not a map",
        };
        let loc = self.src.pointer(pointer);
        self.ctx.warn(loc, format!("item is {what}, not a Kubernetes object; ignored"));
    }

    fn nested_list(&mut self, item: Item<'_>, pointer: &str, kind: &str, api: Option<&str>, depth: usize) {
        match item {
            Item::Json(raw) => match serde_json::from_str::<ListHead<'_>>(raw.get()) {
                Ok(head) => {
                    let items = head.items.unwrap_or_default();
                    self.list_items(items.into_iter().map(Item::Json), pointer, Some(kind), api, depth + 1);
                }
                Err(e) => {
                    let msg = self.item_json_error(raw, &e);
                    let loc = self.src.pointer(pointer);
                    self.ctx.warn(loc, format!("{kind} not read: {msg}"));
                }
            },
            Item::Yaml(v) => {
                let items = v.get("items").and_then(|i| i.as_array()).map(|a| a.as_slice()).unwrap_or_default();
                self.list_items(items.iter().map(Item::Yaml), pointer, Some(kind), api, depth + 1);
            }
        }
    }

    /// Deserializes an item into a private serde shape.
    fn typed<T: DeserializeOwned>(&mut self, item: Item<'_>) -> Result<T, String> {
        match item {
            Item::Json(raw) => serde_json::from_str(raw.get()).map_err(|e| self.item_json_error(raw, &e)),
            Item::Yaml(v) => T::deserialize(v).map_err(|e| scrub_error_message(&e.to_string())),
        }
    }

    /// A serde error inside a raw item, with its line and column in the whole file.
    fn item_json_error(&mut self, raw: &RawValue, e: &serde_json::Error) -> String {
        let mut msg = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        if let Some(s) = msg.strip_suffix(&suffix) {
            msg = s.to_string();
        }
        let msg = scrub_error_message(&msg);
        // The raw item is a slice of the file text: its offset gives the position.
        let offset = (raw.get().as_ptr() as usize).checked_sub(self.text.as_ptr() as usize);
        match offset.filter(|o| *o <= self.text.len()) {
            Some(offset) if e.line() > 0 => {
                let (line, col) = self.lines.line_col(offset);
                let (line, col) = if e.line() == 1 {
                    (line, col + e.column().saturating_sub(1))
                } else {
                    (line + e.line() - 1, e.column())
                };
                format!("line {line}, column {col}: {msg}")
            }
            _ => msg,
        }
    }

    fn convert(&mut self, typed: Typed, item: Item<'_>, origin: Location) -> Result<(), String> {
        // Deserialize before borrowing the context for conversion.
        macro_rules! run {
            ($de:ty, $f:path, $field:ident) => {{
                let d: $de = self.typed(item)?;
                let mut c = Conv { ctx: &mut *self.ctx, origin };
                let v = $f(&mut c, d)?;
                self.cluster.$field.push(v);
            }};
        }
        match typed {
            Typed::Namespace => run!(de::NamespaceDe, convert::namespace, namespaces),
            Typed::Node => run!(de::NodeDe, convert::node, nodes),
            Typed::Pod => run!(de::PodDe, convert::pod, pods),
            Typed::Service => run!(de::ServiceDe, convert::service, services),
            Typed::EndpointSlice => run!(de::EndpointSliceDe, convert::endpoint_slice, endpoint_slices),
            Typed::NetworkPolicy => run!(de::NetworkPolicyDe, convert::network_policy, network_policies),
            Typed::ConfigMap => run!(de::ConfigMapDe, convert::config_map, config_maps),
            Typed::Secret => run!(de::SecretDe, convert::secret, secrets),
            Typed::Hpa => run!(de::HpaDe, convert::hpa, hpas),
            Typed::Pdb => run!(de::PdbDe, convert::pdb, pdbs),
            Typed::PeerAuthentication => {
                run!(de::PeerAuthenticationDe, convert::peer_authentication, peer_authentications)
            }
            Typed::Sidecar => run!(de::SidecarDe, convert::sidecar, sidecars),
            Typed::ServiceEntry => run!(de::ServiceEntryDe, convert::service_entry, service_entries),
            Typed::Workload(kind) => {
                let d: de::WorkloadDe = self.typed(item)?;
                let mut c = Conv { ctx: &mut *self.ctx, origin };
                let w = convert::workload(&mut c, kind, d)?;
                self.cluster.workloads.push(w);
            }
        }
        Ok(())
    }
}

/// Moves every object of `part` to the end of `into`. Destructured without `..` so a new
/// field of `Cluster` cannot be forgotten here.
fn append_cluster(into: &mut Cluster, part: Cluster) {
    let Cluster {
        namespaces,
        nodes,
        pods,
        services,
        endpoint_slices,
        network_policies,
        config_maps,
        secrets,
        workloads,
        hpas,
        pdbs,
        peer_authentications,
        sidecars,
        service_entries,
        skipped_kinds,
    } = part;
    into.namespaces.extend(namespaces);
    into.nodes.extend(nodes);
    into.pods.extend(pods);
    into.services.extend(services);
    into.endpoint_slices.extend(endpoint_slices);
    into.network_policies.extend(network_policies);
    into.config_maps.extend(config_maps);
    into.secrets.extend(secrets);
    into.workloads.extend(workloads);
    into.hpas.extend(hpas);
    into.pdbs.extend(pdbs);
    into.peer_authentications.extend(peer_authentications);
    into.sidecars.extend(sidecars);
    into.service_entries.extend(service_entries);
    for (kind, n) in skipped_kinds {
        *into.skipped_kinds.entry(kind).or_insert(0) += n;
    }
}

/// The head of a JSON document: kind, apiVersion and, when it is a list, its items as
/// raw slices. `items` that is not an array is ignored (then it is no list).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListHead<'a> {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(borrow, default, deserialize_with = "raw_items")]
    items: Option<Vec<&'a RawValue>>,
}

fn raw_items<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<&'de RawValue>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<&'de RawValue>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of items")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                out.push(item);
            }
            Ok(Some(out))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// What a look at an item's keys found.
enum Peeked {
    NotObject,
    Object { kind: Option<String>, api: Option<String> },
}

/// Reads an object's `kind` and `apiVersion` wherever they are among its keys, stopping
/// as soon as both are known (the rest of the object is not scanned).
fn peek_object(raw: &str) -> Peeked {
    #[derive(Default)]
    struct State {
        object: bool,
        kind: Option<String>,
        api: Option<String>,
    }
    struct V<'a>(&'a mut State);
    impl<'de> Visitor<'de> for V<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            self.0.object = true;
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "kind" => self.0.kind = map.next_value::<serde_json::Value>()?.as_str().map(str::to_string),
                    "apiVersion" => self.0.api = map.next_value::<serde_json::Value>()?.as_str().map(str::to_string),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                if self.0.kind.is_some() && self.0.api.is_some() {
                    // Stopping here makes the deserializer report the unread rest as an
                    // error, which is ignored: the typed read checks the whole item.
                    return Ok(());
                }
            }
            Ok(())
        }
    }
    let mut state = State::default();
    let mut de = serde_json::Deserializer::from_str(raw);
    let _ = de.deserialize_map(V(&mut state));
    if state.object {
        Peeked::Object { kind: state.kind, api: state.api }
    } else {
        Peeked::NotObject
    }
}

/// Reads `kind` and `apiVersion` from the leading string-valued keys of a JSON object
/// without parsing it (kubectl writes `{"apiVersion": …, "kind": …, "metadata": …}`).
/// Returns None when it cannot be sure (a nested value or an escape comes first); the
/// caller then parses the object's keys properly.
fn fast_peek(raw: &str) -> Option<(&str, Option<&str>)> {
    let b = raw.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while b.get(*i).is_some_and(|c| c.is_ascii_whitespace()) {
            *i += 1;
        }
    };
    let string = |i: &mut usize| -> Option<&str> {
        if b.get(*i) != Some(&b'"') {
            return None;
        }
        let start = *i + 1;
        let len = b.get(start..)?.iter().position(|c| *c == b'"' || *c == b'\\')?;
        if b.get(start + len) != Some(&b'"') {
            return None; // an escape: leave it to serde
        }
        *i = start + len + 1;
        raw.get(start..start + len)
    };
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let (mut kind, mut api) = (None, None);
    for _ in 0..4 {
        ws(&mut i);
        let key = string(&mut i)?;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        ws(&mut i);
        let value = string(&mut i)?;
        match key {
            "kind" if kind.is_none() => kind = Some(value),
            "apiVersion" if api.is_none() => api = Some(value),
            "kind" | "apiVersion" => return None, // duplicate key: let serde decide
            _ => {}
        }
        if let (Some(k), Some(a)) = (kind, api) {
            return Some((k, Some(a)));
        }
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return kind.map(|k| (k, api)),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_peek_is_sure_or_silent() {
        assert_eq!(fast_peek(r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {}}"#), Some(("Pod", Some("v1"))));
        assert_eq!(fast_peek(r#" { "kind":"Pod","apiVersion":"v1"}"#), Some(("Pod", Some("v1"))));
        assert_eq!(fast_peek(r#"{"kind":"Pod"}"#), Some(("Pod", None)));
        assert_eq!(fast_peek(r#"{"metadata": {"kind": "x"}, "kind": "Pod"}"#), None);
        assert_eq!(fast_peek(r#"{"kind": "P\u006fd", "apiVersion": "v1"}"#), None);
        assert_eq!(fast_peek(r#"{"kind": "Pod", "kind": "Secret", "apiVersion": "v1"}"#), None);
        assert_eq!(fast_peek(r#""kind""#), None);
    }

    #[test]
    fn groups() {
        assert_eq!(api_group("v1"), "");
        assert_eq!(api_group("networking.k8s.io/v1"), "networking.k8s.io");
        assert!(classify("NetworkPolicy", Some("crd.projectcalico.org")).is_none());
        assert!(classify("NetworkPolicy", Some("networking.k8s.io")).is_some());
        assert!(classify("Pod", None).is_some());
    }
}
