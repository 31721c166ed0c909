//! The MTA-STS policy cache (`--mta-sts-cache FILE`), as a sending MTA keeps one (RFC 8461
//! 3.3 and 5.1): a policy is kept for its `max_age`, used when a fetch fails or is not needed
//! (the TXT id unchanged), and replaced when the id changes.
//!
//! The file is small JSON (`{"version":1,"policies":{DOMAIN:{policy,id,fetched_at,max_age}}}`),
//! read with a size cap and written whole to a temporary file, then renamed over the old one,
//! so a reader never sees half a file.

use mxtrace_proto::model::posture::MtaStsPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A cache file over this size is refused rather than read.
pub const MAX_FILE: u64 = 1024 * 1024;
/// Domains kept; beyond this the entries fetched longest ago are dropped on write.
pub const MAX_ENTRIES: usize = 1000;
const VERSION: u32 = 1;

/// One cached policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPolicy {
    pub policy: MtaStsPolicy,
    /// The `_mta-sts` TXT id the policy was fetched under.
    pub id: String,
    /// Unix time, seconds.
    pub fetched_at: u64,
    /// The policy's max_age in seconds (RFC 8461 3.2): the entry is valid until
    /// `fetched_at + max_age`.
    pub max_age: u64,
}

impl CachedPolicy {
    pub fn valid_at(&self, now: u64) -> bool {
        now < self.fetched_at.saturating_add(self.max_age)
    }

    /// `fetched_at` as RFC 3339, for the output.
    pub fn fetched_at_text(&self) -> String {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(self.fetched_at);
        humantime::format_rfc3339_seconds(t).to_string()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    policies: BTreeMap<String, CachedPolicy>,
}

/// A cache file that cannot be read or written: reported, never fatal (the sender goes on as
/// without a cache).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    #[error("MTA-STS cache {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("MTA-STS cache {path} is over {MAX_FILE} bytes: not read")]
    TooLarge { path: PathBuf },
    #[error("MTA-STS cache {path} is not a cache file: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The entry for `domain`, valid or not (None: no file or no entry).
pub fn lookup(path: &Path, domain: &str) -> Result<Option<CachedPolicy>, CacheError> {
    Ok(read(path)?.policies.remove(&key(domain)))
}

/// Records `entry` for `domain` (replacing the old one), bounded to `MAX_ENTRIES`.
pub fn store(path: &Path, domain: &str, entry: CachedPolicy) -> Result<(), CacheError> {
    // An unreadable old file is replaced rather than blocking the cache for good.
    let mut file = read(path).unwrap_or_default();
    file.version = VERSION;
    file.policies.insert(key(domain), entry);
    while file.policies.len() > MAX_ENTRIES {
        let oldest = file
            .policies
            .iter()
            .min_by_key(|(_, e)| e.fetched_at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => file.policies.remove(&k),
            None => break,
        };
    }
    write(path, &file)
}

fn key(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

fn read(path: &Path) -> Result<CacheFile, CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CacheFile::default()),
        Err(e) => return Err(io(e)),
    };
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(CacheError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    serde_json::from_slice(&buf).map_err(|source| CacheError::Format {
        path: path.to_path_buf(),
        source,
    })
}

/// Temporary file beside the target, then rename (atomic on one file system).
fn write(path: &Path, file: &CacheFile) -> Result<(), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec_pretty(file).map_err(|source| CacheError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&json).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fetched_at: u64) -> CachedPolicy {
        CachedPolicy {
            policy: MtaStsPolicy {
                mode: "enforce".into(),
                max_age: 100,
                mx: vec!["mx.a.test".into()],
            },
            id: id.into(),
            fetched_at,
            max_age: 100,
        }
    }

    #[test]
    fn store_replaces_lookup_reads_and_bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("mxtrace-sts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cache.json");
        assert_eq!(lookup(&path, "a.test").unwrap(), None);
        store(&path, "A.test.", entry("1", 10)).unwrap();
        store(&path, "a.test", entry("2", 20)).unwrap();
        let got = lookup(&path, "a.test").unwrap().unwrap();
        assert_eq!(
            (got.id.as_str(), got.valid_at(119), got.valid_at(120)),
            ("2", true, false)
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            lookup(&path, "a.test"),
            Err(CacheError::Format { .. })
        ));
        std::fs::write(&path, vec![b' '; MAX_FILE as usize + 1]).unwrap();
        assert!(matches!(
            lookup(&path, "a.test"),
            Err(CacheError::TooLarge { .. })
        ));
        // A broken file is replaced by the next store.
        store(&path, "b.test", entry("3", 30)).unwrap();
        assert!(lookup(&path, "b.test").unwrap().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
