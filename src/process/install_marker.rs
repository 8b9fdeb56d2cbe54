//! The install marker: how steward remembers that a service's `install` step (and the
//! clone of its `source`) ran for the definition it has now (DESIGN §10 "Install,
//! source, detached").
//!
//! After a successful install the Server writes `state_dir/installed/<id>`, holding a
//! fingerprint of `install` + `source`. A start whose fingerprint equals the marker's
//! skips the step, so install runs once per definition: not again after a crash, a
//! manual restart or a restart of steward itself, but again once `install` or `source`
//! changes.
//!
//! The fingerprint must stay the same across builds and Rust versions (the marker
//! outlives the binary that wrote it), so it is not `DefaultHasher` (whose algorithm is
//! unspecified): it is 128-bit FNV-1a over a canonical, length-prefixed encoding of the
//! two keys, written as hex. This detects changes; it is not meant to resist an
//! adversary (whoever can write the state directory can write the marker).

use std::io;
use std::path::{Path, PathBuf};

use crate::config::{CommandSpec, SourceSpec};
use crate::process::env_file_writer::write_atomically;

/// `state_dir/installed`
pub fn marker_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("installed")
}

/// `state_dir/installed/<service>`
pub fn marker_path(state_dir: &Path, service: &str) -> io::Result<PathBuf> {
    if service.is_empty() || service.starts_with('.') || service.contains(['/', '\\', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{service}` cannot name an install marker"),
        ));
    }
    Ok(marker_dir(state_dir).join(service))
}

/// The stable fingerprint of a service's `install` and `source`, as 32 hex digits.
pub fn fingerprint(install: Option<&CommandSpec>, source: Option<&SourceSpec>) -> String {
    let mut hash = Fnv128::new();
    match install {
        None => hash.field(b"install:none"),
        Some(CommandSpec::Line(line)) => {
            hash.field(b"install:line");
            hash.field(line.as_bytes());
        }
        Some(CommandSpec::Argv(argv)) => {
            hash.field(b"install:argv");
            hash.field(&(argv.len() as u64).to_le_bytes());
            for arg in argv {
                hash.field(arg.as_bytes());
            }
        }
    }
    match source {
        None => hash.field(b"source:none"),
        Some(source) => {
            hash.field(b"source:git");
            hash.field(source.git.as_bytes());
            match &source.reference {
                None => hash.field(b"ref:none"),
                Some(reference) => {
                    hash.field(b"ref");
                    hash.field(reference.as_bytes());
                }
            }
        }
    }
    format!("{:032x}", hash.finish())
}

/// True when the service's marker exists and holds `fingerprint`. A missing or
/// unreadable marker means "not installed": the step runs again, which is the safe side.
pub fn is_current(state_dir: &Path, service: &str, fingerprint: &str) -> bool {
    marker_path(state_dir, service)
        .and_then(std::fs::read_to_string)
        .is_ok_and(|text| text.trim() == fingerprint)
}

/// Writes the marker atomically (a crash leaves the old marker or the new one, never
/// half of one).
pub fn write(state_dir: &Path, service: &str, fingerprint: &str) -> io::Result<()> {
    let path = marker_path(state_dir, service)?;
    std::fs::create_dir_all(marker_dir(state_dir))?;
    write_atomically(&path, format!("{fingerprint}\n").as_bytes(), None)
}

/// Removes the marker; one that is not there is not an error.
pub fn remove(state_dir: &Path, service: &str) -> io::Result<()> {
    match std::fs::remove_file(marker_path(state_dir, service)?) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// 128-bit FNV-1a (offset basis and prime from the FNV specification).
struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn new() -> Self {
        Fnv128(Self::OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// A length prefix keeps `("ab", "c")` and `("a", "bc")` apart.
    fn field(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }

    fn finish(&self) -> u128 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> CommandSpec {
        CommandSpec::Line(s.to_string())
    }

    #[test]
    fn fnv_matches_the_published_test_vectors() {
        let mut empty = Fnv128::new();
        empty.bytes(b"");
        assert_eq!(empty.finish(), 0x6c62272e07bb014262b821756295c58d);
        let mut a = Fnv128::new();
        a.bytes(b"a");
        assert_eq!(a.finish(), 0xd228cb696f1a8caf78912b704e4a8964);
    }

    #[test]
    fn the_fingerprint_is_stable_across_builds() {
        // Pinned (computed independently): a change here would rerun every user's install
        // step after an upgrade of steward.
        assert_eq!(
            fingerprint(Some(&line("npm ci")), None),
            "e19de7b697daaa4919f69c02de9b4809"
        );
    }

    #[test]
    fn any_change_of_install_or_source_changes_the_fingerprint() {
        let source = |git: &str, reference: Option<&str>| SourceSpec {
            git: git.to_string(),
            reference: reference.map(str::to_string),
        };
        let all = [
            fingerprint(None, None),
            fingerprint(Some(&line("make")), None),
            fingerprint(Some(&line("make all")), None),
            fingerprint(Some(&CommandSpec::Argv(vec!["make".into()])), None),
            fingerprint(
                Some(&CommandSpec::Argv(vec!["make".into(), "all".into()])),
                None,
            ),
            fingerprint(Some(&CommandSpec::Argv(vec!["make all".into()])), None),
            fingerprint(None, Some(&source("/r", None))),
            fingerprint(None, Some(&source("/r", Some("main")))),
            fingerprint(None, Some(&source("/r2", Some("main")))),
            fingerprint(Some(&line("make")), Some(&source("/r", None))),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_marker_round_trips_and_a_missing_one_is_not_current() {
        let dir = tempfile::tempdir().expect("tempdir");
        let print = fingerprint(Some(&line("make")), None);
        assert!(!is_current(dir.path(), "web", &print));
        write(dir.path(), "web", &print).expect("write");
        assert!(is_current(dir.path(), "web", &print));
        assert!(!is_current(dir.path(), "web", &fingerprint(None, None)));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("installed/web")).expect("read"),
            format!("{print}\n")
        );
        remove(dir.path(), "web").expect("remove");
        remove(dir.path(), "web").expect("remove twice");
        assert!(!is_current(dir.path(), "web", &print));
        assert!(marker_path(dir.path(), "../x").is_err());
    }
}
