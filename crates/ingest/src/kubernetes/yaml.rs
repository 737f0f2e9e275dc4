//! Multi-document YAML: splits the stream at `---` / `...` markers (which YAML forbids
//! inside a document) and parses each document under tight serde-saphyr budgets.

use serde_saphyr::budget::Budget;
use serde_saphyr::options::{AliasLimits, DuplicateKeyPolicy};
use serde_saphyr::Options;

/// One document of a YAML stream.
#[derive(Debug)]
pub(super) struct YamlDoc {
    /// 1-based line of the file where the document's text starts.
    pub(super) first_line: usize,
    /// The document text; a marker line's remainder (`--- {…}`) is kept with the marker
    /// blanked out so columns stay true.
    pub(super) text: String,
    /// Whether the document has content besides comments, blank lines and directives.
    pub(super) has_content: bool,
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Splits a YAML stream into documents as a YAML parser counts them: each `---` opens one
/// (even an empty one); text before the first `---` is a document only if it has content.
pub(super) fn split_documents(text: &str) -> Vec<YamlDoc> {
    let mut docs = Vec::new();
    let mut cur: Option<YamlDoc> = Some(YamlDoc { first_line: 1, text: String::new(), has_content: false });
    let mut opened_by_marker = false;
    for (idx, raw_line) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if is_marker(line, "---") {
            if let Some(d) = cur.take() {
                if d.has_content || opened_by_marker {
                    docs.push(d);
                }
            }
            let rest = line.get(3..).unwrap_or("");
            let mut doc = YamlDoc { first_line: line_no, text: String::with_capacity(64), has_content: false };
            doc.text.push_str("   ");
            doc.text.push_str(rest);
            doc.text.push('\n');
            doc.has_content = has_content(rest);
            cur = Some(doc);
            opened_by_marker = true;
            continue;
        }
        if is_marker(line, "...") {
            if let Some(d) = cur.take() {
                if d.has_content || opened_by_marker {
                    docs.push(d);
                }
            }
            // Text after `...` is a new (bare) document only if it has content.
            cur = Some(YamlDoc { first_line: line_no + 1, text: String::new(), has_content: false });
            opened_by_marker = false;
            continue;
        }
        let doc = cur.get_or_insert_with(|| YamlDoc { first_line: line_no, text: String::new(), has_content: false });
        if line.starts_with('%') {
            // A directive belongs before a document; keep the line count, drop the line.
            doc.text.push('\n');
            continue;
        }
        doc.has_content |= has_content(line);
        doc.text.push_str(line);
        doc.text.push('\n');
    }
    if let Some(d) = cur.take() {
        if d.has_content || opened_by_marker {
            docs.push(d);
        }
    }
    docs
}

fn has_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// Options for one document of `len` bytes. Budgets grow with the size of the text (a
/// real document needs at least a byte per event), while alias replays (the billion
/// laughs) and nesting are capped outright; snippets are off because they would copy
/// document text, possibly secrets, into error messages.
pub(super) fn options(len: usize) -> Options {
    let proportional = len.saturating_mul(4).saturating_add(50_000);
    Options {
        budget: Some(Budget {
            max_reader_input_bytes: None,
            max_events: proportional,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: MAX_DEPTH,
            max_documents: 4,
            max_nodes: proportional,
            max_total_scalar_bytes: len.saturating_mul(4).saturating_add(1 << 20),
            max_merge_keys: 10_000,
            ..Budget::default()
        }),
        alias_limits: AliasLimits {
            max_total_replayed_events: 1_000_000,
            max_replay_stack_depth: 32,
            max_alias_expansions_per_anchor: 10_000,
        },
        duplicate_keys: DuplicateKeyPolicy::LastWins,
        // YAML 1.2 booleans only: `name: y` or `value: on` are the strings Kubernetes
        // reads them as (it keeps the text for string fields), not booleans.
        strict_booleans: true,
        with_snippet: false,
        crop_radius: 0,
        ..Options::default()
    }
}

/// Deepest nesting accepted (Kubernetes objects nest about 15 levels; serde_json stops
/// JSON at 128 too).
pub(super) const MAX_DEPTH: usize = 128;

/// An error of serde-saphyr as (message without position, line, column) relative to the
/// document text.
pub(super) fn error_parts(err: &serde_saphyr::Error) -> (String, Option<usize>, Option<usize>) {
    let err = err.without_snippet();
    let mut msg = match err {
        serde_saphyr::Error::Budget { breach, .. } => format!(
            "the document expands beyond the parse budget ({breach:?}); aliases or nesting out of proportion \
             to the file's size (a YAML bomb?)"
        ),
        other => other.to_string(),
    };
    let loc = err.location();
    if let Some(l) = loc {
        let suffix = format!(" at line {}, column {}", l.line(), l.column());
        if let Some(stripped) = msg.strip_suffix(&suffix) {
            msg = stripped.to_string();
        }
    }
    let line = loc.and_then(|l| usize::try_from(l.line()).ok()).filter(|l| *l > 0);
    let column = loc.and_then(|l| usize::try_from(l.column()).ok()).filter(|c| *c > 0);
    (msg, line, column)
}

/// Keeps an error position inside `text`: the YAML scanner reports an error found at the
/// end of input (an unclosed quote, a key without value on the last line) one line past the
/// last line, which would point the user at a line the file does not have. Trailing blank
/// lines are not candidates: the culprit is the last line with content.
pub(super) fn clamp_position(text: &str, line: usize, column: Option<usize>) -> (usize, Option<usize>) {
    let body = text.trim_end();
    let lines = body.split('\n').count().max(1);
    if line <= lines {
        return (line, column);
    }
    let last_len = body.rsplit('\n').next().map_or(0, |l| l.chars().count());
    (lines, Some(last_len + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_past_the_end_are_clamped_to_the_last_line() {
        assert_eq!(clamp_position("a:\ne", 3, Some(1)), (2, Some(2)));
        assert_eq!(clamp_position("kind: Pod\nmetadata:\n  name: x\nb\n", 6, None), (4, Some(2)));
        assert_eq!(clamp_position("a: 1\nb: 2\n", 2, Some(3)), (2, Some(3)));
        assert_eq!(clamp_position("", 2, None), (1, Some(1)));
        assert_eq!(clamp_position("a:\ne\n\n", 3, Some(1)), (2, Some(2)));
    }

    #[test]
    fn splits_like_a_yaml_parser() {
        let docs = split_documents("# header\n---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].first_line, 2);
        assert!(docs[0].has_content && !docs[1].has_content && docs[2].has_content);
        assert_eq!(docs[2].first_line, 6);
        let bare = split_documents("a: 1\n---\nb: 2\n");
        assert_eq!(bare.len(), 2);
        assert_eq!(bare[0].first_line, 1);
        assert_eq!(split_documents("").len(), 0);
        assert!(split_documents("--- {a: 1}\n")[0].text.starts_with("    {a: 1}\n"));
        // `----` and `---x` are content, not markers.
        assert_eq!(split_documents("a: |\n  ----\n").len(), 1);
    }
}
