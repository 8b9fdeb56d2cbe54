//! The `config_roundtrip` target: bytes as a config folder, through
//! [`load_dir`] (what `steward validate`, `steward up` and a reload read):
//!
//! * the bytes up to the first NUL are `services.yml`; the bytes after it, when there is
//!   one, `services.d/fuzz.yml` (a NUL is never valid YAML, so nothing is lost by the cut);
//! * **refused** — every error names one of the two files and a line and column inside it
//!   (1-based; lines as YAML counts them, a lone `\r` ending one too; the line at most one
//!   past the last, for "unexpected end of file"; the column at most one past the line);
//! * **accepted** — every definition passes [`check_definition`], all of them together
//!   [`check_dependencies`], the config `check_exit_with` (the rest of `steward validate`),
//!   and each saved by [`save_service`] (what `steward define`, `POST …?persist=true` and
//!   the `service_define` tool write) into a second folder loads back from it as the same
//!   definition (its `source_file` the saved file).
//!
//! The two folders are made once per thread (under `TMPDIR` when it is set, as fuzz/run
//! does, else on tmpfs at `/dev/shm` when there is one) and rewritten for each input.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{check_definition, check_dependencies, load_dir, save_service};
use crate::error::ConfigErrors;

/// Checks the config loader and saver on `data`.
///
/// # Panics
/// When an error has no location, or a valid definition does not survive save → load.
pub fn config_roundtrip(data: &[u8]) {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let scratch = scratch.get_or_insert_with(Scratch::new);
        check_in(data, scratch);
    });
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// The file name of the second file, in `services.d`.
const EXTRA_FILE: &str = "fuzz.yml";

/// The main file of the folder definitions are saved into: no service of its own.
const EMPTY_MAIN: &str = "version: 1\nservices: {}\n";

/// A thread's two config folders: the input, and the one definitions are saved into.
struct Scratch {
    root: PathBuf,
    input: PathBuf,
    saved: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "steward-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // tmpfs first when `TMPDIR` is not set: the saver syncs every file it writes,
        // which on a busy disk costs more than the rest of the check.
        let shm = Path::new("/dev/shm");
        let mut bases = Vec::new();
        if std::env::var_os("TMPDIR").is_none() && shm.is_dir() {
            bases.push(shm.to_path_buf());
        }
        bases.push(std::env::temp_dir());
        let mut last_error = None;
        for base in bases {
            let root = base.join(&name);
            let (input, saved) = (root.join("in"), root.join("saved"));
            let made = [&input, &saved]
                .iter()
                .try_for_each(|dir| std::fs::create_dir_all(dir.join("services.d")));
            match made {
                Ok(()) => return Scratch { root, input, saved },
                Err(e) => last_error = Some((root, e)),
            }
        }
        match last_error {
            Some((root, e)) => panic!("cannot create the scratch folder {}: {e}", root.display()),
            None => unreachable!("the temporary directory is always tried"),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn create_dir(dir: &Path) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!("cannot create the scratch folder {}: {e}", dir.display());
    }
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("cannot write {}: {e}", path.display());
    }
}

/// Empties `dir/services.d`.
fn clear_services_d(dir: &Path) {
    let services_d = dir.join("services.d");
    let _ = std::fs::remove_dir_all(&services_d);
    create_dir(&services_d);
}

fn check_in(data: &[u8], scratch: &Scratch) {
    let (main, extra) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    let main_path = scratch.input.join("services.yml");
    let extra_path = scratch.input.join("services.d").join(EXTRA_FILE);
    write(&main_path, main);
    match extra {
        Some(extra) => write(&extra_path, extra),
        None => {
            let _ = std::fs::remove_file(&extra_path);
        }
    }
    match load_dir(&scratch.input) {
        Err(errors) => {
            let files = [(main_path, main), (extra_path, extra.unwrap_or_default())];
            check_located(&errors, &files);
        }
        Ok(config) => {
            let defs: Vec<_> = config.services.iter().collect();
            for def in &defs {
                if let Err(errors) = check_definition(def) {
                    panic!("loaded, but check_definition refuses it: {errors}");
                }
            }
            if let Err(errors) = check_dependencies(&defs) {
                panic!("loaded, but check_dependencies refuses them: {errors}");
            }
            // The rest of what `steward validate` checks.
            if let Err(why) = config.check_exit_with() {
                panic!("loaded, but check_exit_with refuses it: {why}");
            }
            check_saved_loads_back(&config.services, &scratch.saved);
        }
    }
}

/// Every error names one of `files` and a line and column within its text.
fn check_located(errors: &ConfigErrors, files: &[(PathBuf, &[u8])]) {
    assert!(!errors.0.is_empty(), "refused with no error");
    for e in &errors.0 {
        let Some((_, bytes)) = files.iter().find(|(path, _)| Some(path) == e.file.as_ref()) else {
            panic!("an error that names no file of the config: {e}");
        };
        let lines = yaml_lines(&String::from_utf8_lossy(bytes));
        let line = usize::try_from(e.line).unwrap_or(usize::MAX);
        assert!(
            (1..=lines.len() + 1).contains(&line) && e.column >= 1,
            "an error outside the file's {} lines (or without a column): {e}",
            lines.len()
        );
        let width = lines.get(line - 1).map_or(0, |l| l.chars().count());
        assert!(
            e.column <= width as u64 + 1,
            "an error past the end of its line ({width} characters): {e}"
        );
    }
}

/// The lines of `text` as YAML counts them: `\r\n`, `\n` and a lone `\r` each end one
/// (so `command: x\r  a:` is two lines, and the parser's positions after it count so).
fn yaml_lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(str::to_string)
        .collect()
}

/// Saves every definition into `saved` and loads that folder back: the same definitions.
fn check_saved_loads_back(services: &[crate::config::ServiceDefinition], saved: &Path) {
    clear_services_d(saved);
    write(&saved.join("services.yml"), EMPTY_MAIN.as_bytes());
    let mut paths = Vec::new();
    for def in services {
        match save_service(def, saved) {
            Ok(path) => paths.push(path),
            Err(e) => panic!("a loaded definition cannot be saved: {e}\n{def:#?}"),
        }
    }
    let reloaded = match load_dir(saved) {
        Ok(config) => config,
        Err(errors) => panic!("the saved definitions do not load: {errors}"),
    };
    assert_eq!(
        reloaded.services.len(),
        services.len(),
        "{} definitions saved, {} loaded back",
        services.len(),
        reloaded.services.len()
    );
    for (def, path) in services.iter().zip(&paths) {
        let Some(again) = reloaded.services.iter().find(|d| d.id == def.id) else {
            panic!("`{}` was saved but is not loaded back", def.id);
        };
        let mut expected = def.clone();
        expected.source_file = Some(std::path::absolute(path).unwrap_or_else(|_| path.clone()));
        if *again != expected {
            let yaml = std::fs::read_to_string(path).unwrap_or_default();
            panic!(
                "save → load changed `{}`:\n{expected:#?}\n{again:#?}\n{yaml}",
                def.id
            );
        }
    }
}
