//! Where the pid records of one steward process live: one file of fixed-size slots,
//! `state_dir/pids/steward-<pid>-<start time>.table`, written in place.
//!
//! Every spawn writes a record and every exit clears it. Written as a file per service (a
//! temporary file renamed over `<service>.json`), each start allocated an inode, and
//! during a boot of 4,500 services on ext4 that was 21 % of steward's CPU time, most of
//! it in the file system's scan of recently freed inodes (docs/BENCHMARKS.md, "S8 in the
//! fourth session"). Here a record is a `pwrite` of [`SLOT`] bytes into a file opened
//! once: no inode, no directory entry, no rename per start.
//!
//! A slot is one line of text, padded with spaces: `<crc32> <pid> <pgid> <start time>
//! <d|p> <service>`, so `cat` shows what runs. The checksum covers what follows it: a
//! slot that does not match (a write cut short by a crash of the machine) is reported by
//! recovery, not trusted. A cleared slot is all spaces. Slots are 256 bytes, so one never
//! straddles a page, and a write of one is not split by a steward that is SIGKILLed.
//!
//! Each steward process has its own table per state directory (the pid and start time in
//! the name say whose it is), so two processes never share an allocator. A process keeps
//! its tables in a registry for its lifetime: every runtime of the process that uses the
//! same `state_dir`, and the free functions of `pid_file`, see the same slots. The cost:
//! one open file per state directory a process has used, until it exits (`steward up`
//! uses one; a program that boots runtimes on many state directories keeps one each).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::pid_file::{PidRecord, pid_dir, start_time};

/// The size of one slot, its newline included.
pub const SLOT: usize = 256;

/// The extension of table files.
pub(crate) const EXTENSION: &str = "table";

/// This process's table for one state directory.
#[derive(Debug)]
pub(crate) struct PidTable {
    path: PathBuf,
    file: File,
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    /// Each recorded service: its slot and its record.
    taken: HashMap<String, (u64, PidRecord)>,
    /// Cleared slots, reused before the file grows.
    free: Vec<u64>,
    /// The number of slots the file has.
    len: u64,
}

impl PidTable {
    /// This process's table for `state_dir`, created on first use.
    pub(crate) fn of(state_dir: &Path) -> io::Result<Arc<PidTable>> {
        static TABLES: OnceLock<Mutex<HashMap<PathBuf, Arc<PidTable>>>> = OnceLock::new();
        let mut tables = TABLES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(table) = tables.get(state_dir) {
            return Ok(table.clone());
        }
        let table = Arc::new(PidTable::create(state_dir)?);
        tables.insert(state_dir.to_path_buf(), table.clone());
        Ok(table)
    }

    fn create(state_dir: &Path) -> io::Result<PidTable> {
        let dir = pid_dir(state_dir);
        std::fs::create_dir_all(&dir)?;
        let me = std::process::id();
        let started = start_time(me).unwrap_or(0);
        let path = dir.join(format!("steward-{me}-{started}.{EXTENSION}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(PidTable {
            path,
            file,
            slots: Mutex::default(),
        })
    }

    /// The table's file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records (or replaces) the service's record.
    pub(crate) fn write(&self, record: &PidRecord) -> io::Result<()> {
        let line = encode(record)?;
        let mut slots = self.lock();
        let slot = match slots.taken.get(&record.service) {
            Some((slot, _)) => *slot,
            None => match slots.free.pop() {
                Some(slot) => slot,
                None => {
                    slots.len += 1;
                    slots.len - 1
                }
            },
        };
        // Under the lock: a slot is never handed to another service while it is written.
        let written = self.file.write_all_at(&line, slot * SLOT as u64);
        match written {
            Ok(()) => {
                slots
                    .taken
                    .insert(record.service.clone(), (slot, record.clone()));
                Ok(())
            }
            Err(e) => {
                if !slots.taken.contains_key(&record.service) {
                    slots.free.push(slot);
                }
                Err(e)
            }
        }
    }

    /// Clears the service's record; a service without one is not an error.
    pub(crate) fn remove(&self, service: &str) -> io::Result<()> {
        let mut slots = self.lock();
        let Some((slot, record)) = slots.taken.remove(service) else {
            return Ok(());
        };
        match self.file.write_all_at(&BLANK, slot * SLOT as u64) {
            Ok(()) => {
                slots.free.push(slot);
                Ok(())
            }
            Err(e) => {
                // Still on disk: keep it ours, so a later write or remove finds it.
                slots.taken.insert(service.to_string(), (slot, record));
                Err(e)
            }
        }
    }

    /// The service's record, if it has one.
    pub(crate) fn read(&self, service: &str) -> Option<PidRecord> {
        self.lock()
            .taken
            .get(service)
            .map(|(_, record)| record.clone())
    }

    /// Every record, in slot order.
    pub(crate) fn records(&self) -> Vec<PidRecord> {
        let slots = self.lock();
        let mut taken: Vec<&(u64, PidRecord)> = slots.taken.values().collect();
        taken.sort_by_key(|(slot, _)| *slot);
        taken.into_iter().map(|(_, r)| r.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A cleared slot.
const BLANK: [u8; SLOT] = {
    let mut blank = [b' '; SLOT];
    blank[SLOT - 1] = b'\n';
    blank
};

/// The slot text of `record`.
pub(crate) fn encode(record: &PidRecord) -> io::Result<[u8; SLOT]> {
    if record.service.is_empty() || record.service.contains(char::is_whitespace) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` cannot name a pid record", record.service),
        ));
    }
    let body = format!(
        "{} {} {} {} {}",
        record.pid,
        record.pgid,
        record.start_time,
        if record.detached { 'd' } else { 'p' },
        record.service
    );
    let line = format!("{:08x} {body}", crc32fast::hash(body.as_bytes()));
    if line.len() >= SLOT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the pid record of `{}` does not fit a slot of {SLOT} bytes",
                record.service
            ),
        ));
    }
    let mut slot = BLANK;
    slot[..line.len()].copy_from_slice(line.as_bytes());
    Ok(slot)
}

/// One slot's text: `Ok(None)` when cleared, `Err` with the reason when it is not a
/// record.
fn decode(slot: &[u8]) -> Result<Option<PidRecord>, String> {
    let text = std::str::from_utf8(slot).map_err(|_| "not text".to_string())?;
    let text = text.trim_end_matches(['\n', ' ', '\0']);
    if text.is_empty() {
        return Ok(None);
    }
    let (sum, body) = text
        .split_once(' ')
        .ok_or_else(|| "no checksum".to_string())?;
    let sum = u32::from_str_radix(sum, 16).map_err(|_| format!("checksum `{sum}`"))?;
    if sum != crc32fast::hash(body.as_bytes()) {
        return Err("checksum does not match (a write cut short)".to_string());
    }
    let mut fields = body.splitn(5, ' ');
    let mut number = |what: &str| {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| format!("no {what}"))
    };
    let pid = u32::try_from(number("pid")?).map_err(|_| "pid out of range".to_string())?;
    let pgid = u32::try_from(number("pgid")?).map_err(|_| "pgid out of range".to_string())?;
    let start_time = number("start time")?;
    let detached = match fields.next() {
        Some("d") => true,
        Some("p") => false,
        _ => return Err("no kind (d or p)".to_string()),
    };
    let service = fields
        .next()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "no service".to_string())?;
    Ok(Some(PidRecord {
        service: service.to_string(),
        pid,
        pgid,
        start_time,
        detached,
    }))
}

/// What a table file holds.
#[derive(Debug, Default)]
pub(crate) struct TableFile {
    /// Its records, in slot order.
    pub(crate) records: Vec<PidRecord>,
    /// The slots that are not records: slot number, reason.
    pub(crate) bad: Vec<(usize, String)>,
}

/// Reads a table file.
pub(crate) fn read_file(path: &Path) -> io::Result<TableFile> {
    let bytes = std::fs::read(path)?;
    let mut file = TableFile::default();
    for (i, slot) in bytes.chunks(SLOT).enumerate() {
        match decode(slot) {
            Ok(Some(record)) => file.records.push(record),
            Ok(None) => {}
            Err(reason) => file.bad.push((i, reason)),
        }
    }
    Ok(file)
}

/// The owner a table's file name gives (`steward-<pid>-<start time>.table`).
pub(crate) fn owner(path: &Path) -> Option<(u32, u64)> {
    let stem = path.file_stem()?.to_str()?.strip_prefix("steward-")?;
    let (pid, started) = stem.split_once('-')?;
    Some((pid.parse().ok()?, started.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(service: &str, pid: u32) -> PidRecord {
        PidRecord {
            service: service.into(),
            pid,
            pgid: pid,
            start_time: 987_654_321,
            detached: service.starts_with('d'),
        }
    }

    #[test]
    fn a_slot_round_trips_and_a_damaged_one_is_refused() {
        let r = record("daemon-1", 4242);
        let slot = encode(&r).expect("fits");
        assert_eq!(slot.len(), SLOT);
        assert_eq!(decode(&slot), Ok(Some(r)));
        assert_eq!(decode(&BLANK), Ok(None));
        let mut cut = slot;
        cut[12] = b'9';
        assert!(decode(&cut).expect_err("damaged").contains("checksum"));
        assert!(decode(b"zz 1 2 3 p x").is_err());
        assert!(encode(&record(&"x".repeat(SLOT), 1)).is_err());
        assert!(encode(&record("two words", 1)).is_err());
    }

    #[test]
    fn slots_are_reused_and_the_file_holds_what_the_table_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = PidTable::create(dir.path()).expect("table");
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            table.write(&record(name, 100 + i as u32)).expect("write");
        }
        table.remove("b").expect("remove");
        table.remove("b").expect("removing twice is fine");
        // A replaced record keeps its slot; a new service takes the freed one.
        table.write(&record("a", 200)).expect("replace");
        table.write(&record("d", 300)).expect("write");
        assert_eq!(
            std::fs::metadata(table.path()).expect("meta").len(),
            3 * SLOT as u64
        );
        let on_disk = read_file(table.path()).expect("read");
        assert!(on_disk.bad.is_empty(), "{:?}", on_disk.bad);
        assert_eq!(
            on_disk.records,
            vec![record("a", 200), record("d", 300), record("c", 102)]
        );
        assert_eq!(table.records(), on_disk.records);
        assert_eq!(table.read("d"), Some(record("d", 300)));
        assert_eq!(table.read("b"), None);
        assert_eq!(
            owner(table.path()),
            Some((
                std::process::id(),
                start_time(std::process::id()).expect("we run")
            ))
        );
    }
}
