//! AWS VPC flow logs: a fast byte parser for default and custom formats (plain or gzip) and
//! analyses of rejected flows (VPN, ESP, VXLAN, DNS, BGP, asymmetric NACL drops) producing findings.

pub mod analysis;
pub mod format;
pub mod parse;
pub mod rules;
mod table;

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use netsleuth_model::{Confidence, Evidence, Finding, Location};
use serde::Serialize;

pub use analysis::{AsymmetricFlow, Category, CategorySummary, RejectedFlow, Settings, Totals};
pub use format::{Format, FormatOrigin};
pub use rules::RULES;

use analysis::{Aggregator, At};

/// Buffer for reading; lines are cut out of it without copying.
const CHUNK: usize = 1 << 18;
/// The longest line accepted: flow-log records are a few hundred bytes even with every field.
pub const MAX_LINE: usize = 1 << 16;
/// Bytes asked for per read.
const READ: usize = 1 << 16;
/// Malformed lines kept per file as examples (all are counted).
const MALFORMED_EXAMPLES: usize = 5;

/// The catalog entry of a flow-log rule id.
pub fn rule(id: &str) -> Option<&'static crate::CaptureRule> {
    RULES.iter().find(|r| r.id == id)
}

/// How to read and analyse flow logs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub settings: Settings,
    /// The layout of files without a header line (CloudWatch exports); a header wins.
    pub format_fields: Option<Format>,
}

/// One line that is not a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedLine {
    pub line: u64,
    pub message: String,
    pub text: String,
}

/// What reading one file found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub gzip: bool,
    /// The layout used (of the first header if there were several).
    pub format: Option<String>,
    pub fields: Vec<String>,
    pub lines: u64,
    pub headers: u64,
    pub blank: u64,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub nodata: u64,
    pub skipdata: u64,
    pub incomplete: u64,
    pub malformed: u64,
    pub malformed_examples: Vec<MalformedLine>,
    /// Reading stopped early (broken or truncated gzip, I/O error): where and why.
    pub read_error: Option<String>,
    /// The format could not be determined or lacks fields the analyses need.
    pub format_problem: Option<String>,
}

impl FileSummary {
    /// Whether the file needs a FLOW-001 finding.
    pub fn has_problem(&self) -> bool {
        self.malformed > 0
            || self.read_error.is_some()
            || self.format_problem.is_some()
            || self.incomplete > 0
            || self.lines == 0
    }
}

/// Everything learned from a set of flow-log files.
#[derive(Debug, Clone, Serialize)]
pub struct FlowlogReport {
    pub files: Vec<FileSummary>,
    pub totals: Totals,
    pub categories: Vec<CategorySummary>,
    pub top_by_bytes: Vec<RejectedFlow>,
    pub top_by_packets: Vec<RejectedFlow>,
    pub asymmetric: Vec<AsymmetricFlow>,
    /// True when the flow maps filled up and matching is incomplete (a finding says so).
    pub limit_reached: bool,
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

/// Reads flow-log files one after another into one aggregation.
#[derive(Debug)]
pub struct FlowlogAnalyzer {
    agg: Aggregator,
    format_fields: Option<Format>,
    summaries: Vec<FileSummary>,
}

/// Per-file reading state.
struct FileState {
    file: u32,
    format: Option<Format>,
    /// Inside a line longer than `MAX_LINE`: drop bytes up to the next newline.
    skipping: bool,
    /// The format cannot be determined: stop reading.
    stop: bool,
    summary: FileSummary,
}

impl FlowlogAnalyzer {
    pub fn new(options: Options) -> FlowlogAnalyzer {
        FlowlogAnalyzer {
            agg: Aggregator::new(options.settings),
            format_fields: options.format_fields,
            summaries: Vec::new(),
        }
    }

    /// Reads one file (plain or gzip, detected by its magic bytes) from any reader; `name`
    /// is how findings name it. Problems end up in the returned summary, never as a panic.
    pub fn read(&mut self, name: &str, mut input: impl Read) -> &FileSummary {
        let file = self.agg.files.len() as u32;
        self.agg.files.push(name.to_string());
        let before = self.agg.totals.clone();
        let mut state = FileState {
            file,
            format: None,
            skipping: false,
            stop: false,
            summary: FileSummary { path: name.to_string(), ..FileSummary::default() },
        };
        let mut head = [0u8; 2];
        let mut got = 0;
        let mut head_error = None;
        while got < 2 {
            match input.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    head_error = Some(e);
                    break;
                }
            }
        }
        if file as usize >= At::MAX_FILES {
            state.summary.read_error = Some(format!("not read: more than {} files in one run", At::MAX_FILES));
        } else if let Some(e) = head_error {
            state.summary.read_error = Some(format!("cannot read: {e}"));
        } else {
            let chained = Cursor::new(head[..got].to_vec()).chain(input);
            if got == 2 && head == [0x1f, 0x8b] {
                state.summary.gzip = true;
                self.read_lines(flate2::read::MultiGzDecoder::new(chained), &mut state);
            } else {
                self.read_lines(chained, &mut state);
            }
        }
        let after = &self.agg.totals;
        let s = &mut state.summary;
        s.records = after.records - before.records;
        s.accepted = after.accepted - before.accepted;
        s.rejected = after.rejected - before.rejected;
        s.nodata = after.nodata - before.nodata;
        s.skipdata = after.skipdata - before.skipdata;
        s.incomplete = after.incomplete - before.incomplete;
        self.agg.totals.malformed += s.malformed;
        self.summaries.push(state.summary);
        &self.summaries[self.summaries.len() - 1]
    }

    /// Reads one file from disk (`-`: standard input, e.g. `aws s3 cp s3://... - |`); `Err`
    /// only when it cannot be opened.
    pub fn read_file(&mut self, path: &Path) -> io::Result<&FileSummary> {
        if path.as_os_str() == "-" {
            return Ok(self.read("-", io::stdin().lock()));
        }
        let file = std::fs::File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory, not a flow-log file"));
        }
        Ok(self.read(&path.display().to_string(), file))
    }

    fn read_lines(&mut self, mut input: impl Read, state: &mut FileState) {
        // CHUNK is four times MAX_LINE and the carried partial line never exceeds MAX_LINE,
        // so every read has room.
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0usize;
        loop {
            // Read in slices that stay in the L2 cache until they are parsed (the flow tables
            // evict a whole buffer's worth).
            let end = (filled + READ).min(buf.len());
            let n = match input.read(&mut buf[filled..end]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let partial = if filled > 0 && !state.skipping {
                        format!(" (the incomplete line {} was dropped)", state.summary.lines + 1)
                    } else {
                        String::new()
                    };
                    state.summary.read_error =
                        Some(format!("reading stopped after line {}: {e}{partial}", state.summary.lines));
                    return;
                }
            };
            let scan_from = filled;
            filled += n;
            let mut start = 0;
            if let Some(last_nl) = memchr::memrchr(b'\n', &buf[scan_from..filled]).map(|i| i + scan_from) {
                let lines = &buf[..=last_nl];
                while start < lines.len() {
                    if let Some(next) = self.record_at(state, &lines[start..]) {
                        start += next;
                        continue;
                    }
                    let nl = memchr::memchr(b'\n', &lines[start..]).map_or(last_nl, |i| start + i);
                    self.line(state, &lines[start..nl], false);
                    start = nl + 1;
                    if state.stop {
                        break;
                    }
                }
                if state.stop {
                    return;
                }
            }
            buf.copy_within(start..filled, 0);
            filled -= start;
            if state.skipping {
                // Still inside a too-long line: its bytes are dropped up to the next newline.
                filled = 0;
            } else if filled > MAX_LINE {
                self.too_long(state);
                filled = 0;
            }
        }
        if filled > 0 && !state.skipping {
            self.line(state, &buf[..filled], true);
        }
    }

    fn too_long(&mut self, state: &mut FileState) {
        if !state.skipping {
            state.summary.lines += 1;
            let line = state.summary.lines;
            self.malformed(state, line, format!("line longer than {MAX_LINE} bytes (not a flow-log record)"), b"");
            state.skipping = true;
        }
    }

    fn malformed(&mut self, state: &mut FileState, line: u64, message: String, text: &[u8]) {
        state.summary.malformed += 1;
        if state.summary.malformed_examples.len() < MALFORMED_EXAMPLES {
            state.summary.malformed_examples.push(MalformedLine { line, message, text: analysis::excerpt(text) });
        }
    }

    /// The default-format record at the start of `text` (complete lines), read without
    /// looking for its line's end first (`parse::parse_default_at`): where the next line
    /// starts, or `None` to split the line off and read it with `line`.
    #[inline]
    fn record_at(&mut self, state: &mut FileState, text: &[u8]) -> Option<usize> {
        if state.skipping || !state.format.as_ref()?.has_default_slots() {
            return None;
        }
        let mut rec = parse::Record::default();
        let (len, next) = parse::parse_default_at(text, &mut rec)?;
        state.summary.lines += 1;
        self.agg.record(&rec, At::new(state.file, state.summary.lines), &text[..len]);
        Some(next)
    }

    #[inline]
    fn line(&mut self, state: &mut FileState, raw: &[u8], unterminated: bool) {
        if state.skipping {
            // The tail of a too-long line, already counted.
            state.skipping = false;
            return;
        }
        state.summary.lines += 1;
        let line_no = state.summary.lines;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(|b| *b == b' ' || *b == b'\t') {
            state.summary.blank += 1;
            return;
        }
        let Some(format) = &state.format else {
            return self.first_line(state, line, line_no, unterminated);
        };
        let mut rec = parse::Record::default();
        match parse::parse_line_into(format, line, &mut rec) {
            Ok(()) => self.agg.record(&rec, At::new(state.file, line_no), line),
            Err(e) => {
                // A header in the middle: files concatenated with `cat` or `zcat`.
                if let Some(h) = Format::parse_header(line) {
                    state.summary.headers += 1;
                    self.check_format(state, &h, line_no);
                    state.format = Some(h);
                    return;
                }
                let mut message = e.describe(format, line);
                if unterminated {
                    message.push_str(" (the last line has no newline: the file looks truncated)");
                }
                self.malformed(state, line_no, message, line);
            }
        }
    }

    /// The first non-blank line decides the format: a header, `--format-fields`, or a
    /// default-format record (14 fields starting with `2 `); otherwise reading stops.
    #[cold]
    fn first_line(&mut self, state: &mut FileState, line: &[u8], line_no: u64, unterminated: bool) {
        if let Some(h) = Format::parse_header(line) {
            state.summary.headers += 1;
            self.check_format(state, &h, line_no);
            state.format = Some(h);
            return;
        }
        let format = if let Some(given) = &self.format_fields {
            given.clone()
        } else if line.starts_with(b"2 ")
            && line.split(|b| *b == b' ' || *b == b'\t').filter(|f| !f.is_empty()).count() == 14
        {
            Format::default_v2(FormatOrigin::DefaultGuessed)
        } else {
            let fields = line.split(|b| *b == b' ' || *b == b'\t').filter(|f| !f.is_empty()).count();
            state.summary.format_problem = Some(format!(
                "line {line_no}: no header line and not the default format (it has {fields} field(s); the default has 14 \
                 starting with version `2`): give the field list with --format-fields \"version account-id ...\"; \
                 the file was not read further"
            ));
            state.stop = true;
            return;
        };
        self.check_format(state, &format, line_no);
        state.format = Some(format);
        // Parse this line again now that the format is known.
        state.summary.lines -= 1;
        self.line(state, line, unterminated)
    }

    fn check_format(&mut self, state: &mut FileState, format: &Format, line_no: u64) {
        if state.summary.format.is_none() {
            state.summary.format = Some(format.describe());
            state.summary.fields = format.names().to_vec();
        }
        let missing = format.missing_required();
        if !missing.is_empty() && state.summary.format_problem.is_none() {
            state.summary.format_problem = Some(format!(
                "the format at line {line_no} lacks {}: records are counted but rejected flows cannot be analysed",
                missing.join(", ")
            ));
        }
    }

    /// The summaries of the files read so far.
    pub fn files(&self) -> &[FileSummary] {
        &self.summaries
    }

    /// Computes the findings and tables.
    pub fn finish(mut self) -> FlowlogReport {
        self.agg.settle();
        let mut findings: Vec<Finding> = Vec::new();
        for s in &self.summaries {
            if let Some(f) = file_finding(s) {
                findings.push(f);
            }
        }
        if self.agg.limit_reached() {
            if let Some(rule) = rule(rules::FLOW_INPUT) {
                findings.push(Finding {
                    rule: rule.id.to_string(),
                    severity: rule.severity,
                    layer: rule.layer,
                    subject: "flowlogs/limit".to_string(),
                    title: "Flow-log input larger than the flow-tracking limit".to_string(),
                    detail: format!(
                        "More than {} distinct accepted or rejected 5-tuples: {} record(s) of further flows were counted \
                         but not kept, so asymmetric flows, pair counts and the top tables may miss them.",
                        self.agg.settings.max_flows, self.agg.totals.untracked
                    ),
                    evidence: vec![Evidence::new(Location::Derived, format!("{} record(s) untracked", self.agg.totals.untracked))],
                    fix: "Raise --max-flows (about 100 bytes of memory per flow) or analyse fewer files at once.".to_string(),
                    confidence: Confidence::Confirmed,
                });
            }
        }
        let results = self.agg.results();
        findings.extend(self.agg.findings(&results));
        netsleuth_model::finding::sort_findings(&mut findings);
        FlowlogReport {
            asymmetric: self.agg.asymmetric(&results),
            categories: results.categories,
            top_by_bytes: results.top_by_bytes,
            top_by_packets: results.top_by_packets,
            limit_reached: self.agg.limit_reached(),
            totals: self.agg.totals.clone(),
            files: self.summaries,
            findings,
        }
    }
}

/// The FLOW-001 finding of one file, if it had problems.
fn file_finding(s: &FileSummary) -> Option<Finding> {
    if !s.has_problem() {
        return None;
    }
    let rule = rule(rules::FLOW_INPUT)?;
    let mut parts = Vec::new();
    let mut evidence = Vec::new();
    if s.lines == 0 && s.read_error.is_none() {
        parts.push("the file is empty".to_string());
        evidence.push(Evidence::new(Location::file(&s.path), "0 lines"));
    }
    if let Some(p) = &s.format_problem {
        parts.push(p.clone());
        evidence.push(Evidence::new(Location::line(&s.path, 1), p.clone()));
    }
    if s.malformed > 0 {
        parts.push(format!("{} malformed line(s) of {} were not counted as records", s.malformed, s.lines));
        for m in &s.malformed_examples {
            let loc =
                u32::try_from(m.line).map(|l| Location::line(&s.path, l)).unwrap_or_else(|_| Location::file(&s.path));
            evidence.push(Evidence::new(loc, format!("{}: {}", m.message, m.text)));
        }
    }
    if s.incomplete > 0 {
        parts.push(format!(
            "{} record(s) lack an address, port, protocol or action (`-`) and were not analysed",
            s.incomplete
        ));
    }
    if let Some(e) = &s.read_error {
        parts.push(format!("{e}; {} record(s) before that were analysed", s.records));
        let at =
            u32::try_from(s.lines + 1).map(|l| Location::line(&s.path, l)).unwrap_or_else(|_| Location::file(&s.path));
        evidence.push(Evidence::new(at, e.clone()));
    }
    if evidence.is_empty() {
        evidence.push(Evidence::new(Location::file(&s.path), parts.join("; ")));
    }
    Some(Finding {
        rule: rule.id.to_string(),
        severity: rule.severity,
        layer: rule.layer,
        subject: format!("flowlogs/{}", s.path),
        title: rule.title.to_string(),
        detail: format!("{}: {}.", s.path, parts.join("; ")),
        evidence,
        fix: rule.fix.to_string(),
        confidence: Confidence::Confirmed,
    })
}

/// Reads and analyses flow-log files; `Err` names the first file that cannot be opened.
pub fn analyze_files(paths: &[PathBuf], options: Options) -> Result<FlowlogReport, (PathBuf, io::Error)> {
    let mut analyzer = FlowlogAnalyzer::new(options);
    for p in paths {
        if let Err(e) = analyzer.read_file(p) {
            return Err((p.clone(), e));
        }
    }
    Ok(analyzer.finish())
}

/// Analyses in-memory bytes as one file (tests, fuzzing).
pub fn analyze_bytes(name: &str, data: &[u8], options: Options) -> FlowlogReport {
    let mut analyzer = FlowlogAnalyzer::new(options);
    analyzer.read(name, data);
    analyzer.finish()
}
