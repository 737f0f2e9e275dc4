//! Streaming JSON writers: a `kubectl get -o json` List and a JSON object of arrays,
//! written item by item so 150,000 pods never exist in memory at once.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{PrettyFormatter, Serializer};
use serde_json::Value;

/// Writes JSON values one at a time, either compact or indented like kubectl (4 spaces).
#[derive(Debug)]
pub(crate) struct Emitter<W: Write> {
    out: W,
    pretty: bool,
    buf: Vec<u8>,
}

impl<W: Write> Emitter<W> {
    pub(crate) fn new(out: W, pretty: bool) -> Emitter<W> {
        Emitter { out, pretty, buf: Vec::with_capacity(16 * 1024) }
    }

    pub(crate) fn raw(&mut self, s: &str) -> io::Result<()> {
        self.out.write_all(s.as_bytes())
    }

    /// Newline plus `depth` indentation levels (pretty), nothing (compact).
    pub(crate) fn newline(&mut self, depth: usize) -> io::Result<()> {
        if self.pretty {
            self.out.write_all(b"\n")?;
            for _ in 0..depth {
                self.out.write_all(b"    ")?;
            }
        }
        Ok(())
    }

    /// `"key": ` (pretty) or `"key":` (compact).
    pub(crate) fn key(&mut self, key: &str) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, key)?;
        self.out.write_all(if self.pretty { b": " } else { b":" })
    }

    /// One value whose first line is already positioned at `depth`.
    pub(crate) fn value(&mut self, v: &Value, depth: usize) -> io::Result<()> {
        if !self.pretty {
            return serde_json::to_writer(&mut self.out, v).map_err(io::Error::from);
        }
        self.buf.clear();
        let mut ser = Serializer::with_formatter(&mut self.buf, PrettyFormatter::with_indent(b"    "));
        v.serialize(&mut ser)?;
        // JSON strings escape newlines, so every raw '\n' is a line break of the layout
        // and can take the extra indentation of the nesting depth.
        let mut start = 0;
        for (i, b) in self.buf.iter().enumerate() {
            if *b == b'\n' {
                self.out.write_all(self.buf.get(start..=i).unwrap_or_default())?;
                for _ in 0..depth {
                    self.out.write_all(b"    ")?;
                }
                start = i + 1;
            }
        }
        self.out.write_all(self.buf.get(start..).unwrap_or_default())
    }

    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

/// An array being written inside an object at `depth` (its items sit at `depth + 1`).
#[derive(Debug)]
pub(crate) struct ArrayWriter {
    depth: usize,
    count: u64,
}

impl ArrayWriter {
    /// Writes `[`; the key (if any) must already be written.
    pub(crate) fn open<W: Write>(e: &mut Emitter<W>, depth: usize) -> io::Result<ArrayWriter> {
        e.raw("[")?;
        Ok(ArrayWriter { depth, count: 0 })
    }

    pub(crate) fn item<W: Write>(&mut self, e: &mut Emitter<W>, v: &Value) -> io::Result<()> {
        if self.count > 0 {
            e.raw(",")?;
        }
        e.newline(self.depth + 1)?;
        e.value(v, self.depth + 1)?;
        self.count += 1;
        Ok(())
    }

    /// Writes `]` and returns how many items the array got.
    pub(crate) fn close<W: Write>(self, e: &mut Emitter<W>) -> io::Result<u64> {
        if self.count > 0 {
            e.newline(self.depth)?;
        }
        e.raw("]")?;
        Ok(self.count)
    }
}

/// A `kubectl get -o json` List document: `{"apiVersion": "v1", "items": [...], "kind": "List", ...}`.
#[derive(Debug)]
pub(crate) struct ListWriter<W: Write> {
    e: Emitter<W>,
    items: ArrayWriter,
}

impl<W: Write> ListWriter<W> {
    pub(crate) fn new(out: W, pretty: bool) -> io::Result<ListWriter<W>> {
        let mut e = Emitter::new(out, pretty);
        e.raw("{")?;
        e.newline(1)?;
        e.key("apiVersion")?;
        e.raw("\"v1\",")?;
        e.newline(1)?;
        e.key("items")?;
        let items = ArrayWriter::open(&mut e, 1)?;
        Ok(ListWriter { e, items })
    }

    pub(crate) fn item(&mut self, v: &Value) -> io::Result<()> {
        self.items.item(&mut self.e, v)
    }

    /// Closes the document and returns the writer and the item count.
    pub(crate) fn finish(self) -> io::Result<(W, u64)> {
        let ListWriter { mut e, items } = self;
        let n = items.close(&mut e)?;
        e.raw(",")?;
        e.newline(1)?;
        e.key("kind")?;
        e.raw("\"List\",")?;
        e.newline(1)?;
        e.key("metadata")?;
        e.raw("{")?;
        e.newline(2)?;
        e.key("resourceVersion")?;
        e.raw("\"\"")?;
        e.newline(1)?;
        e.raw("}")?;
        e.newline(0)?;
        e.raw("}\n")?;
        Ok((e.into_inner(), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(pretty: bool, items: &[Value]) -> String {
        let mut w = ListWriter::new(Vec::new(), pretty).unwrap();
        for i in items {
            w.item(i).unwrap();
        }
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, items.len() as u64);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn list_round_trips_pretty_and_compact() {
        let items = vec![json!({"kind": "Pod", "metadata": {"name": "a\nb"}}), json!({"kind": "Pod", "x": [1, 2]})];
        for pretty in [true, false] {
            let text = list(pretty, &items);
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["kind"], "List");
            assert_eq!(v["items"].as_array().unwrap(), &items);
            assert_eq!(text.contains("\n        {\n            \"kind\": \"Pod\""), pretty, "{text}");
        }
    }

    #[test]
    fn empty_list_is_valid() {
        let text = list(true, &[]);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["items"].as_array().map(Vec::len), Some(0));
    }
}
