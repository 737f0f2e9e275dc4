//! Flow-log record formats: the default version 2 layout and custom layouts named by a
//! header line (`version vpc-id ...`) or by `--format-fields`, turned into fixed field slots.

use std::fmt;

/// The fields of the default format (version 2), in order.
pub const DEFAULT_FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// The fields AWS documents beyond the default ones (versions 3 to 8); a header naming
/// only default and these fields is recognised as a header, and anything else in a header
/// is kept as an ignored column.
pub const EXTRA_FIELDS: &[&str] = &[
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
    "resource-id",
    "encryption-status",
];

/// Whether AWS documents a field of this name.
fn is_known_field(name: &str) -> bool {
    DEFAULT_FIELDS.contains(&name) || EXTRA_FIELDS.contains(&name)
}

/// What the parser does with one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Version,
    InterfaceId,
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Packets,
    Bytes,
    Start,
    End,
    Action,
    LogStatus,
    TcpFlags,
    FlowDirection,
    /// A column the analyses do not use (still counted, so field counts are checked).
    Ignore,
}

impl Slot {
    fn of(name: &str) -> Slot {
        match name {
            "version" => Slot::Version,
            "interface-id" => Slot::InterfaceId,
            "srcaddr" => Slot::SrcAddr,
            "dstaddr" => Slot::DstAddr,
            "srcport" => Slot::SrcPort,
            "dstport" => Slot::DstPort,
            "protocol" => Slot::Protocol,
            "packets" => Slot::Packets,
            "bytes" => Slot::Bytes,
            "start" => Slot::Start,
            "end" => Slot::End,
            "action" => Slot::Action,
            "log-status" => Slot::LogStatus,
            "tcp-flags" => Slot::TcpFlags,
            "flow-direction" => Slot::FlowDirection,
            _ => Slot::Ignore,
        }
    }
}

/// The fields an analysis of rejected flows cannot do without.
pub const REQUIRED_FIELDS: &[&str] = &["srcaddr", "dstaddr", "srcport", "dstport", "protocol", "action"];

/// A record layout: field names in column order and the slot of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    names: Vec<String>,
    slots: Vec<Slot>,
    /// The slots are those of the default format (the parser has a fast path for it).
    default_slots: bool,
    /// Where the layout came from, for messages.
    pub origin: FormatOrigin,
}

/// How a file's layout was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatOrigin {
    /// A header line in the file.
    Header,
    /// No header; the first record looked like the default version 2 format.
    DefaultGuessed,
    /// `--format-fields` from the command line.
    Given,
}

impl fmt::Display for FormatOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatOrigin::Header => "header line",
            FormatOrigin::DefaultGuessed => "default format (no header)",
            FormatOrigin::Given => "--format-fields",
        })
    }
}

/// Why a field list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

impl Format {
    /// The default version 2 layout.
    /// Whether columns decode as in the default format (names may differ in ignored columns).
    pub fn has_default_slots(&self) -> bool {
        self.default_slots
    }

    pub fn default_v2(origin: FormatOrigin) -> Format {
        Format::from_names(DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect(), origin)
    }

    fn from_names(names: Vec<String>, origin: FormatOrigin) -> Format {
        let slots: Vec<Slot> = names.iter().map(|n| Slot::of(n)).collect();
        let default_slots = slots.iter().copied().eq(DEFAULT_FIELDS.iter().map(|n| Slot::of(n)));
        Format { names, slots, default_slots, origin }
    }

    /// Parses a field list as written in a header (`version account-id ...`) or in the
    /// AWS format string (`${version} ${account-id} ...`).
    pub fn parse_fields(spec: &str, origin: FormatOrigin) -> Result<Format, FormatError> {
        let mut names = Vec::new();
        for token in spec.split_ascii_whitespace() {
            let name = token.strip_prefix("${").and_then(|t| t.strip_suffix('}')).unwrap_or(token);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return Err(FormatError(format!(
                    "`{token}` is not a flow-log field name (lowercase letters, digits and `-`, e.g. `srcaddr`)"
                )));
            }
            if names.iter().any(|n| n == name) {
                return Err(FormatError(format!("field `{name}` is named twice")));
            }
            names.push(name.to_string());
        }
        if names.is_empty() {
            return Err(FormatError("the field list is empty".to_string()));
        }
        Ok(Format::from_names(names, origin))
    }

    /// Recognises a header line: every token a field name, at least one of them a field AWS
    /// documents, and none of them a value (numbers, addresses, `-`, `ACCEPT`).
    pub fn parse_header(line: &[u8]) -> Option<Format> {
        let text = std::str::from_utf8(line).ok()?;
        let mut known = 0;
        for token in text.split_ascii_whitespace() {
            let name = token.strip_prefix("${").and_then(|t| t.strip_suffix('}')).unwrap_or(token);
            if is_known_field(name) {
                known += 1;
            } else if !name.starts_with(|c: char| c.is_ascii_lowercase())
                || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                // Values such as `vpc-0abc12`, `eni-...`, `subnet-...` look like names; a
                // header always names at least the fields AWS knows, so require them to be known
                // unless they are clearly not identifiers with hex suffixes.
                || looks_like_resource_id(name)
            {
                return None;
            }
        }
        if known == 0 {
            return None;
        }
        Format::parse_fields(text, FormatOrigin::Header).ok()
    }

    /// Field names in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The number of columns a record must have.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether the layout is exactly the default version 2 format.
    pub fn is_default(&self) -> bool {
        self.names.iter().map(String::as_str).eq(DEFAULT_FIELDS.iter().copied())
    }

    /// Required fields this layout lacks (the analyses of rejected flows need all of them).
    pub fn missing_required(&self) -> Vec<&'static str> {
        REQUIRED_FIELDS.iter().copied().filter(|r| !self.names.iter().any(|n| n == r)).collect()
    }

    /// Whether the layout has a column for `name`.
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Field names not documented by AWS (kept as ignored columns).
    pub fn unknown_fields(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).filter(|n| !is_known_field(n)).collect()
    }

    /// The name of column `i` (0-based), for error messages.
    pub fn name(&self, i: usize) -> &str {
        self.names.get(i).map(String::as_str).unwrap_or("?")
    }

    /// The layout as a one-line description.
    pub fn describe(&self) -> String {
        if self.is_default() {
            format!("default version 2 ({})", self.origin)
        } else {
            format!("custom, {} fields ({})", self.len(), self.origin)
        }
    }
}

/// `vpc-0a1b2c`, `eni-1235b8ca123456789`, `i-0123...`: values of id fields, not names.
fn looks_like_resource_id(token: &str) -> bool {
    match token.split_once('-') {
        Some((_, rest)) => {
            rest.len() >= 8 && rest.bytes().all(|b| b.is_ascii_hexdigit()) && rest.bytes().any(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_is_fourteen_fields() {
        let f = Format::default_v2(FormatOrigin::Given);
        assert_eq!(f.len(), 14);
        assert!(f.is_default());
        assert!(f.missing_required().is_empty());
        assert_eq!(f.slots()[3], Slot::SrcAddr);
        assert_eq!(f.slots()[13], Slot::LogStatus);
    }

    #[test]
    fn header_and_dollar_forms_agree() {
        let a = Format::parse_header(b"version vpc-id srcaddr dstaddr srcport dstport protocol action flow-direction")
            .unwrap();
        let b = Format::parse_fields(
            "${version} ${vpc-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${action} ${flow-direction}",
            FormatOrigin::Header,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.slots()[1], Slot::Ignore);
        assert_eq!(a.slots()[8], Slot::FlowDirection);
    }

    #[test]
    fn records_are_not_headers() {
        assert!(Format::parse_header(
            b"2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
        )
        .is_none());
        assert!(Format::parse_header(b"vpc-0a1b2c3d4e5f60718 subnet-0a1b2c3d4e5f60718 ACCEPT").is_none());
        assert!(Format::parse_header(b"some random words").is_none());
        assert!(Format::parse_header(b"").is_none());
    }

    #[test]
    fn bad_field_lists_are_refused() {
        assert!(Format::parse_fields("", FormatOrigin::Given).is_err());
        assert!(Format::parse_fields("srcaddr srcaddr", FormatOrigin::Given).unwrap_err().0.contains("twice"));
        assert!(Format::parse_fields("Srcaddr", FormatOrigin::Given).is_err());
        let f = Format::parse_fields("srcaddr dstaddr future-field", FormatOrigin::Given).unwrap();
        assert_eq!(f.unknown_fields(), vec!["future-field"]);
        assert_eq!(f.missing_required(), vec!["srcport", "dstport", "protocol", "action"]);
    }
}
