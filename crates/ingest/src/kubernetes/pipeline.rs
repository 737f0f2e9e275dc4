//! Big JSON lists (150,000 pods): one thread scans the file and hands the items out in
//! batches while the other threads convert them, then it converts too; parts are joined
//! in item order, so the result is exactly that of converting item by item.
//!
//! A typed list (`PodList`) may give its items their kind, but kubectl writes the list's
//! `kind` after `items`: a batch with an item lacking a kind waits until the scan is done.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use netsleuth_model::kubernetes::Cluster;

use super::{append_cluster, fast_peek, peek_object, Item, LineIndex, Parser, Peeked};
use crate::{ParseContext, ParseError, Redactor, Source};

/// Files smaller than this are converted on the calling thread.
pub(super) const PIPELINE_MIN_BYTES: usize = 4 << 20;

/// Items per batch: big enough to make the hand-over cheap, small enough to share work.
const BATCH: usize = 256;

/// The kind of the list being scanned, once known: the kind items inherit (None for an
/// untyped `List`) and the list's apiVersion.
#[derive(Clone, Debug, Default)]
struct ListKind {
    item_kind: Option<String>,
    api: Option<String>,
}

impl ListKind {
    fn new(kind: Option<&str>, api: Option<&str>) -> ListKind {
        ListKind {
            item_kind: kind.and_then(|k| k.strip_suffix("List")).filter(|k| !k.is_empty()).map(str::to_string),
            api: api.map(str::to_string),
        }
    }
}

/// Items `start..start + items.len()` of the list.
struct Batch<'s> {
    start: usize,
    items: Vec<&'s RawValue>,
    /// The list's kind, when `kind` and `apiVersion` came before `items`.
    known: Option<ListKind>,
}

/// What converting a batch gave.
struct Part {
    start: usize,
    cluster: Cluster,
    ctx: ParseContext,
    objects: usize,
}

enum Done<'s> {
    Part(Box<Part>),
    /// Waits for the list's kind.
    Deferred(Batch<'s>),
}

/// What is shared by every thread: the file and the redaction key.
#[derive(Clone, Copy)]
struct Shared<'s, 'r> {
    src: &'s Source<'s>,
    text: &'s str,
    lines: &'r LineIndex<'s>,
    redactor: &'r Redactor,
}

/// Parses the top-level JSON object of `p` as a list on `threads` threads. Returns false
/// (and adds nothing) when the object is not a list; the caller then reads it as one
/// object.
pub(super) fn parse_list(p: &mut Parser<'_, '_>, threads: usize) -> Result<bool, ParseError> {
    let redactor = p.ctx.redactor.clone();
    let shared = Shared { src: p.src, text: p.text, lines: p.lines, redactor: &redactor };
    let (tx, rx) = mpsc::channel::<Batch<'_>>();
    let rx = Mutex::new(rx);
    let (head, mut done) = std::thread::scope(|scope| {
        let rx = &rx;
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(move || drain(shared, rx, None))).collect();
        let mut de = serde_json::Deserializer::from_str(shared.text);
        // The seed owns the sender: when the scan ends, the channel closes.
        let head = HeadSeed { tx }.deserialize(&mut de).and_then(|h| de.end().map(|()| h));
        let mut done = drain(shared, rx, None);
        for w in workers {
            done.extend(w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        (head, done)
    });
    let head = head.map_err(|e| p.json_error(&e))?;
    if !head.items || head.kind.as_deref().is_some_and(|k| !k.ends_with("List")) {
        return Ok(false);
    }
    let list = ListKind::new(head.kind.as_deref(), head.api.as_deref());
    let deferred: Vec<Batch<'_>> = done
        .iter_mut()
        .filter_map(|d| match d {
            Done::Deferred(b) => Some(Batch { start: b.start, items: std::mem::take(&mut b.items), known: None }),
            Done::Part(_) => None,
        })
        .collect();
    let mut parts: Vec<Box<Part>> = done
        .into_iter()
        .filter_map(|d| match d {
            Done::Part(part) => Some(part),
            Done::Deferred(_) => None,
        })
        .collect();
    if !deferred.is_empty() {
        let (tx, rx) = mpsc::channel();
        for b in deferred {
            // The receiver is alive: sending cannot fail.
            let _ = tx.send(b);
        }
        drop(tx);
        let rx = Mutex::new(rx);
        let list = &list;
        let more = std::thread::scope(|scope| {
            let rx = &rx;
            let workers: Vec<_> = (1..threads).map(|_| scope.spawn(move || drain(shared, rx, Some(list)))).collect();
            let mut done = drain(shared, rx, Some(list));
            for w in workers {
                done.extend(w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            done
        });
        parts.extend(more.into_iter().filter_map(|d| match d {
            Done::Part(part) => Some(part),
            Done::Deferred(_) => None, // cannot happen with a known list kind
        }));
    }
    parts.sort_by_key(|part| part.start);
    for part in parts {
        append_cluster(p.cluster, part.cluster);
        p.ctx.redactions.extend(part.ctx.redactions);
        p.ctx.issues.extend(part.ctx.issues);
        p.objects += part.objects;
    }
    Ok(true)
}

/// Converts batches until the channel is closed and empty.
fn drain<'s>(shared: Shared<'s, '_>, rx: &Mutex<Receiver<Batch<'s>>>, list: Option<&ListKind>) -> Vec<Done<'s>> {
    let mut out = Vec::new();
    loop {
        // A worker that panicked poisons the lock; the queue itself is still sound.
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(batch) = next else {
            return out;
        };
        out.push(convert(shared, batch, list));
    }
}

fn convert<'s>(shared: Shared<'s, '_>, batch: Batch<'s>, list: Option<&ListKind>) -> Done<'s> {
    let known = list.or(batch.known.as_ref());
    // Without the list's kind, every item must bring its own; what was read is kept so
    // an item is not peeked at twice.
    let mut own: Vec<(String, Option<String>)> = Vec::new();
    if known.is_none() {
        for raw in &batch.items {
            match own_kind(raw.get()) {
                Some(k) => own.push(k),
                None => return Done::Deferred(batch),
            }
        }
    }
    let inherited = known.and_then(|k| k.item_kind.as_deref().map(|ik| (ik, k.api.as_deref())));
    let mut cluster = Cluster::default();
    let mut ctx = ParseContext::new(shared.redactor.clone());
    let mut p = Parser {
        src: shared.src,
        text: shared.text,
        lines: shared.lines,
        cluster: &mut cluster,
        ctx: &mut ctx,
        objects: 0,
    };
    let mut own = own.into_iter();
    for (i, raw) in batch.items.iter().enumerate() {
        let pointer = format!("/items/{}", batch.start + i);
        match own.next() {
            Some((kind, api)) => p.object_of_kind(Item::Json(raw), pointer, kind, api, 0),
            None => p.object(Item::Json(raw), pointer, inherited, 0),
        }
    }
    let objects = p.objects;
    Done::Part(Box::new(Part { start: batch.start, cluster, ctx, objects }))
}

/// The kind and apiVersion of an item that is an object with its own `kind` (then the
/// list's kind is not needed).
fn own_kind(raw: &str) -> Option<(String, Option<String>)> {
    if let Some((kind, api)) = fast_peek(raw) {
        return Some((kind.to_string(), api.map(str::to_string)));
    }
    match peek_object(raw) {
        Peeked::Object { kind: Some(kind), api } if !kind.is_empty() => Some((kind, api)),
        _ => None,
    }
}

/// The top-level object's head, read while its items go out in batches.
struct Head {
    kind: Option<String>,
    api: Option<String>,
    /// Whether `items` was an array.
    items: bool,
}

struct HeadSeed<'s> {
    tx: Sender<Batch<'s>>,
}

impl<'de> DeserializeSeed<'de> for HeadSeed<'de> {
    type Value = Head;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Head, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeadSeed<'de> {
    type Value = Head;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Kubernetes object or list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut head = Head { kind: None, api: None, items: false };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "kind" => head.kind = map.next_value::<serde_json::Value>()?.as_str().map(str::to_string),
                "apiVersion" => head.api = map.next_value::<serde_json::Value>()?.as_str().map(str::to_string),
                "items" => {
                    let known = match (&head.kind, &head.api) {
                        (Some(k), Some(a)) => Some(ListKind::new(Some(k), Some(a))),
                        _ => None,
                    };
                    head.items = map.next_value_seed(ItemsSeed { tx: &self.tx, known })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }
}

/// The `items` array: sent out in batches as it is scanned. Its value is whether it was
/// an array at all.
struct ItemsSeed<'t, 's> {
    tx: &'t Sender<Batch<'s>>,
    known: Option<ListKind>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, 'de> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut start = 0;
        let mut items = Vec::with_capacity(BATCH);
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            items.push(raw);
            if items.len() == BATCH {
                let full = std::mem::replace(&mut items, Vec::with_capacity(BATCH));
                // A closed channel means the converters are gone (a panic, re-raised
                // on join); scanning on is harmless.
                let _ = self.tx.send(Batch { start, items: full, known: self.known.clone() });
                start += BATCH;
            }
        }
        if !items.is_empty() {
            let _ = self.tx.send(Batch { start, items, known: self.known.clone() });
        }
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
}
