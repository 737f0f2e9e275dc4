//! Where a collection goes: a bundle folder (refusing to mix into a non-empty one unless
//! forced) or a `.tar.gz` of the same layout, plus the `manifest.json` that records it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use netsleuth_ingest::Redactor;
use netsleuth_model::host::HostRole;
use serde::{Deserialize, Serialize};

use super::{
    check_host_name, check_netns, collect_host, time, CollectError, CollectOptions, CollectTarget, HostReport,
};

/// `manifest.json` `format`.
pub const BUNDLE_FORMAT: &str = "netsleuth-bundle/1";

/// `manifest.json` as collect writes it. The bundle reader uses `format`, `collected_at`,
/// `cluster`, `salt_id` and `tool_version`; `hosts` and `commands` are for people and tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub format: String,
    /// RFC 3339 UTC, seconds: when collection started (age checks measure against it).
    pub collected_at: String,
    pub tool_version: String,
    /// Id of the redaction key (not the key).
    pub salt_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub hosts: Vec<ManifestHost>,
    pub commands: Vec<super::CommandRecord>,
}

/// One collected host in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHost {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<HostRole>,
    /// Bundle-relative paths of the files written.
    pub artifacts: Vec<String>,
}

/// What [`collect_bundle`] produced.
#[derive(Debug, Clone)]
pub struct BundleReport {
    /// The folder or `.tar.gz` file written.
    pub output: PathBuf,
    pub tarball: bool,
    pub collected_at: String,
    pub salt_id: String,
    pub hosts: Vec<HostReport>,
}

/// Whether `path` names a gzip tarball output (`.tar.gz` or `.tgz`).
pub fn is_tarball(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// Writes `<bundle_root>/manifest.json` for `hosts` (replacing one that is there).
pub fn write_manifest(
    bundle_root: &Path,
    collected_at: SystemTime,
    cluster: Option<&str>,
    redactor: &Redactor,
    hosts: &[HostReport],
) -> Result<PathBuf, CollectError> {
    let manifest = ManifestRecord {
        format: BUNDLE_FORMAT.to_string(),
        collected_at: time::rfc3339(collected_at, false),
        tool_version: format!("netsleuth {}", env!("CARGO_PKG_VERSION")),
        salt_id: redactor.salt_id().to_string(),
        cluster: cluster.map(str::to_string),
        hosts: hosts
            .iter()
            .map(|h| ManifestHost {
                name: h.name.clone(),
                netns: h.netns.clone(),
                role: h.role,
                artifacts: h.artifacts.clone(),
            })
            .collect(),
        commands: hosts.iter().flat_map(|h| h.commands.iter().cloned()).collect(),
    };
    let path = bundle_root.join("manifest.json");
    let mut text = serde_json::to_string_pretty(&manifest).map_err(|e| CollectError::io(&path, io::Error::other(e)))?;
    text.push('\n');
    // Written aside and renamed over: a symlink at manifest.json is replaced, not followed.
    let partial = bundle_root.join(format!(".manifest.json.partial-{}", std::process::id()));
    let _ = fs::remove_file(&partial);
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| fs::rename(&partial, &path));
    if let Err(e) = result {
        let _ = fs::remove_file(&partial);
        return Err(CollectError::io(&path, e));
    }
    Ok(path)
}

/// Collects every target into one bundle at `output`: a folder, or a `.tar.gz` when the
/// name says so. A non-empty folder or an existing file is refused unless `force`; with
/// `force` a folder keeps its other files and only `manifest.json` and the collected
/// hosts' folders are replaced.
pub fn collect_bundle(
    targets: &[CollectTarget],
    output: &Path,
    force: bool,
    redactor: &Redactor,
    opts: &CollectOptions,
) -> Result<BundleReport, CollectError> {
    if targets.is_empty() {
        return Err(CollectError::NoTargets);
    }
    // Check everything before touching the output.
    for (i, t) in targets.iter().enumerate() {
        check_host_name(&t.name)?;
        if let Some(ns) = &t.netns {
            check_netns(ns)?;
        }
        if targets.iter().take(i).any(|o| o.name == t.name) {
            return Err(CollectError::DuplicateHost { name: t.name.clone() });
        }
    }
    let collected_at = SystemTime::now();
    let tarball = is_tarball(output);
    let hosts = if tarball {
        match fs::symlink_metadata(output) {
            Ok(m) if m.is_dir() => return Err(CollectError::IsADirectory { path: output.to_path_buf() }),
            Ok(_) if !force => return Err(CollectError::OutputExists { path: output.to_path_buf() }),
            _ => {}
        }
        let stage = StageDir::new()?;
        let hosts = collect_all(targets, stage.path(), collected_at, redactor, opts)?;
        write_tarball(stage.path(), output, collected_at)?;
        hosts
    } else {
        prepare_dir(output, force, targets)?;
        collect_all(targets, output, collected_at, redactor, opts)?
    };
    Ok(BundleReport {
        output: output.to_path_buf(),
        tarball,
        collected_at: time::rfc3339(collected_at, false),
        salt_id: redactor.salt_id().to_string(),
        hosts,
    })
}

fn collect_all(
    targets: &[CollectTarget],
    root: &Path,
    collected_at: SystemTime,
    redactor: &Redactor,
    opts: &CollectOptions,
) -> Result<Vec<HostReport>, CollectError> {
    let mut hosts = Vec::with_capacity(targets.len());
    for t in targets {
        hosts.push(collect_host(t, root, redactor, opts)?);
    }
    write_manifest(root, collected_at, opts.cluster.as_deref(), redactor, &hosts)?;
    Ok(hosts)
}

/// Creates `dir` (mode 0700: a bundle describes the network in detail) or checks that it
/// is empty; with `force`, removes what this collection will write.
fn prepare_dir(dir: &Path, force: bool, targets: &[CollectTarget]) -> Result<(), CollectError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| CollectError::io(dir, e));
        }
        Err(e) => return Err(CollectError::io(dir, e)),
        Ok(_) if !dir.is_dir() => return Err(CollectError::NotADirectory { path: dir.to_path_buf() }),
        Ok(_) => {}
    }
    let empty = fs::read_dir(dir).map_err(|e| CollectError::io(dir, e))?.next().is_none();
    if empty {
        return Ok(());
    }
    if !force {
        return Err(CollectError::OutputNotEmpty { path: dir.to_path_buf() });
    }
    let mut stale = vec![dir.join("manifest.json")];
    stale.extend(targets.iter().map(|t| dir.join("hosts").join(&t.name)));
    for path in stale {
        let result = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            // A symlink is removed, never followed.
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
        };
        result.map_err(|e| CollectError::io(&path, e))?;
    }
    Ok(())
}

/// A private staging folder for a tarball, removed on drop.
struct StageDir(PathBuf);

impl StageDir {
    fn new() -> Result<StageDir, CollectError> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("netsleuth-collect-{}-{nanos}", std::process::id()));
        fs::DirBuilder::new().mode(0o700).create(&path).map_err(|e| CollectError::io(&path, e))?;
        Ok(StageDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StageDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the bundle folder `root` as a gzip tarball at `file` (entries relative to the
/// bundle root: `manifest.json`, `hosts/…`; sorted, owned by 0, stamped `mtime`). The
/// archive is built next to `file` and renamed into place, so a failure leaves no half file.
pub fn write_tarball(root: &Path, file: &Path, mtime: SystemTime) -> Result<(), CollectError> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bundle.tar.gz".into());
    let partial = file.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let result = build_tarball(root, &partial, mtime).and_then(|()| fs::rename(&partial, file));
    if let Err(e) = result {
        let _ = fs::remove_file(&partial);
        return Err(CollectError::io(file, e));
    }
    Ok(())
}

fn build_tarball(root: &Path, partial: &Path, mtime: SystemTime) -> io::Result<()> {
    let out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(partial)?;
    let gz = flate2::write::GzEncoder::new(io::BufWriter::new(out), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let secs = mtime.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    add_tree(&mut tar, root, Path::new(""), secs)?;
    let gz = tar.into_inner()?;
    let buffered = gz.finish()?;
    let file: File = buffered.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

fn add_tree<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, rel: &Path, mtime: u64) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        let ft = entry.file_type()?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &rel, io::empty())?;
            add_tree(tar, &path, &rel, mtime)?;
        } else if ft.is_file() {
            let data = fs::read(&path)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(u64::try_from(data.len()).unwrap_or(u64::MAX));
            tar.append_data(&mut header, &rel, data.as_slice())?;
        }
        // Collect writes only folders and files; anything else is not ours to pack.
    }
    Ok(())
}
