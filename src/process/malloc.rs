//! One malloc arena for the whole process, instead of glibc's up to eight per core.
//!
//! glibc gives a thread that finds the main arena busy an arena of its own. steward's
//! per-service data is allocated on whichever tokio worker runs the actor at that moment,
//! so every arena ends up holding a share of every service plus free space of its own
//! that no other thread reuses. With one arena that free space is shared: S1 (N `sleep`
//! services, measured from outside) went from 54.5 to 50.0 KiB of PSS per service, and
//! with both pipes read by one future from 46.3 to 41.5 KiB (18.0 MiB in all at
//! N = 200); see docs/bench-notes-memory.md. The in-process log pipeline (lines
//! allocated by a reader, freed by the LogBuffer on another thread) showed no slowdown
//! with one arena: each thread's tcache serves most of them without the arena's lock.
//!
//! The binary calls [`limit_malloc_arenas`] first thing in `main`, before any thread
//! exists; an embedding application decides for its own process. Other C libraries (musl)
//! have no arenas, and there it does nothing.

/// Caps glibc's malloc arenas at `max` (`mallopt(M_ARENA_MAX)`). Call it before starting
/// threads: arenas already made stay. Returns whether the C library took the setting.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_malloc_arenas(max: i32) -> bool {
    // SAFETY: mallopt only sets a tunable of glibc's allocator; it takes plain integers,
    // touches no memory of ours, and is documented as callable at any time (arenas that
    // exist are kept, only new ones are limited).
    unsafe { nix::libc::mallopt(nix::libc::M_ARENA_MAX, max) == 1 }
}

/// Caps glibc's malloc arenas; this C library has none, so it does nothing.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas(_max: i32) -> bool {
    false
}

/// Gives the free memory of the heap back to the kernel (`malloc_trim(0)`): glibc returns
/// only free space at the top of the heap by itself, and after thousands of services are
/// removed most of the freed space lies below blocks still in use. Returns whether memory
/// was released. The cost follows the heap's size (milliseconds for hundreds of MiB), so
/// callers trim after bulk removals, not after each.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim_malloc() -> bool {
    // SAFETY: malloc_trim only walks glibc's own free lists under the arena locks and
    // advises the kernel about free pages; it reads or writes no memory of ours.
    unsafe { nix::libc::malloc_trim(0) == 1 }
}

/// Gives free heap memory back; this C library has no such call, so it does nothing.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_malloc() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_gives_back_memory_freed_below_a_block_in_use() {
        // 20 MB of small blocks, then all freed but one kept after them: the free pages lie
        // below a block in use, where glibc does not return them by itself.
        let mut blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![i as u8; 1000]).collect();
        let keep = blocks.pop();
        drop(blocks);
        let released = trim_malloc();
        assert!(keep.is_some_and(|k| k.len() == 1000));
        assert_eq!(released, cfg!(all(target_os = "linux", target_env = "gnu")));
    }

    #[test]
    fn glibc_takes_the_arena_limit() {
        // The test threads already have their arenas; only the call's answer is checked.
        assert_eq!(
            limit_malloc_arenas(1),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
    }
}
