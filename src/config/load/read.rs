//! Reading one config file's bytes, bounded and without ever blocking.
//!
//! The name `services.yml` or `services.d/x.yml` can point at anything: a FIFO (whose
//! `open` waits for a writer forever), a character device (`/dev/zero` never ends and has
//! length 0, so a size check on the metadata lets it through), a directory, or a symbolic
//! link to nothing. None of them is a definition, and none may hang or grow the loader
//! (issue 14, item 5). So a file is used only when it is a regular file:
//!
//! 1. `stat` (following links) must say "regular file"; a dangling link, a FIFO, a device,
//!    a socket or a directory is refused with an error naming the file;
//! 2. it is opened with `O_NONBLOCK`, so that a FIFO swapped in after the `stat` cannot
//!    block the `open`, and `fstat` on the open descriptor checks the type again;
//! 3. at most [`MAX_FILE_BYTES`] + 1 bytes are read, whatever the metadata says, so a file
//!    that grows while it is read cannot exceed the cap either.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::MAX_FILE_BYTES;
use crate::error::ConfigError;

/// The bytes of the file at `absolute` (shown as `shown` in errors), at most
/// [`MAX_FILE_BYTES`], or why it cannot be used. `is_main` adds a hint to a missing
/// `services.yml`.
pub(super) fn read_bounded(
    shown: &Path,
    absolute: &Path,
    is_main: bool,
) -> Result<Vec<u8>, ConfigError> {
    let metadata = std::fs::metadata(absolute).map_err(|e| {
        if let Some(target) = dangling_link_target(absolute) {
            return located(
                shown,
                format!(
                    "a symbolic link to `{}`, which does not exist",
                    target.display()
                ),
            )
            .with_hint("point the link at a regular file, or remove it");
        }
        if is_main && e.kind() == std::io::ErrorKind::NotFound {
            ConfigError::detached(format!("cannot read `{}`: {e}", shown.display())).with_hint(
                "create it with `version: 1` and a `services:` map (see docs/CONFIGURATION.md)",
            )
        } else {
            located(shown, format!("cannot read: {e}"))
        }
    })?;
    refuse_unless_regular(shown, &metadata)?;

    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(absolute)
        .map_err(|e| located(shown, format!("cannot read: {e}")))?;
    let metadata = file
        .metadata()
        .map_err(|e| located(shown, format!("cannot read: {e}")))?;
    refuse_unless_regular(shown, &metadata)?;
    read_capped(shown, file)
}

/// At most `MAX_FILE_BYTES` bytes of `file`; one byte more means the file is too large.
fn read_capped(shown: &Path, file: File) -> Result<Vec<u8>, ConfigError> {
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| located(shown, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(located(
            shown,
            format!("larger than the {MAX_FILE_BYTES} bytes a service file may have"),
        )
        .with_hint("split it into several files in services.d"));
    }
    Ok(bytes)
}

/// An error unless `metadata` describes a regular file; the error says what it is instead.
fn refuse_unless_regular(shown: &Path, metadata: &Metadata) -> Result<(), ConfigError> {
    let Some(what) = crate::process::regular_file::not_regular(metadata) else {
        return Ok(());
    };
    Err(located(
        shown,
        format!("{what}, not a regular file: steward reads definitions only from regular files"),
    )
    .with_hint("replace it with a regular YAML file, or remove it"))
}

/// Where the symbolic link at `path` points, when it is a link whose target is missing.
fn dangling_link_target(path: &Path) -> Option<PathBuf> {
    let link = std::fs::symlink_metadata(path).ok()?;
    if !link.file_type().is_symlink() {
        return None;
    }
    std::fs::read_link(path).ok()
}

/// An error about the whole file (no line or column: it was never parsed).
fn located(shown: &Path, message: String) -> ConfigError {
    ConfigError {
        file: Some(shown.to_path_buf()),
        ..ConfigError::detached(message)
    }
}
