//! Signals to process groups.
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Sends `signal` to the process group `pgid`. A group that no longer exists is not an error.
pub fn signal_group(pgid: u32, signal: Signal) -> std::io::Result<()> {
    match nix::sys::signal::killpg(Pid::from_raw(pgid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)),
    }
}
