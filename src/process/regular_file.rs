//! Reading a small file that a user names (an `env_file`, the file of `steward define -f`)
//! bounded and without ever blocking: only a regular file is read, opened with
//! `O_NONBLOCK` (a FIFO swapped in cannot hang the `open`), checked again on the open
//! descriptor, and read up to a cap whatever its metadata says (`/dev/zero` has length 0).
//! The config loader applies the same rules to service files, with located errors
//! (`config::load`).

use std::fs::{Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The bytes of the regular file at `path`, at most `cap`; an error that says what the
/// path is instead (a FIFO, a device, a directory…) or that the file is too large.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    refuse_unless_regular(&std::fs::metadata(path)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    refuse_unless_regular(&file.metadata()?)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {cap} bytes such a file may have"),
        ));
    }
    Ok(bytes)
}

fn refuse_unless_regular(metadata: &Metadata) -> io::Result<()> {
    match not_regular(metadata) {
        None => Ok(()),
        Some(what) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}, not a regular file"),
        )),
    }
}

/// What `metadata` describes when it is not a regular file (`a FIFO (named pipe)`, `a
/// directory`…); `None` for a regular file.
pub fn not_regular(metadata: &Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        return None;
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Some(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.env");
        std::fs::write(&path, "A=1\n").expect("write");
        assert_eq!(read_regular(&path, 100).expect("read"), b"A=1\n");
    }

    #[test]
    fn a_file_past_the_cap_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.env");
        std::fs::write(&path, vec![b'x'; 101]).expect("write");
        let error = read_regular(&path, 100).expect_err("too large");
        assert!(
            error.to_string().contains("larger than the 100 bytes"),
            "{error}"
        );
    }

    #[test]
    fn a_fifo_a_device_and_a_directory_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo.env");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let zero = dir.path().join("zero.env");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (zero.as_path(), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let error = read_regular(path, 1 << 20).expect_err("refused");
            assert!(error.to_string().starts_with(what), "{error}");
        }
    }
}
