//! Booting a config directory with the library.
//!
//! Run with `cargo run --example boot` (or `cargo run --example boot -- path/to/config`).
//!
//! Loads `config/` (services.yml + services.d/*.yml), starts the autostart services,
//! waits until each is ready or finished (at most 20 s), prints their states, and stops
//! everything.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use steward::{ServiceStatus, Steward};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| "config".into());
    let config = steward::config::load_dir(&dir)?;
    let steward = Steward::boot(config).await?;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let states = steward.list().await?;
        let settled = states.iter().all(|s| {
            s.ready
                || matches!(
                    s.status,
                    ServiceStatus::Exited | ServiceStatus::Failed | ServiceStatus::Pending
                )
        });
        if settled || Instant::now() > deadline {
            for s in &states {
                println!(
                    "{:<12} {:<8} health={:<9} ready={:<5} pid={}",
                    s.id,
                    s.status.as_str(),
                    s.health.as_str(),
                    s.ready,
                    s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
                );
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    steward.shutdown().await?;
    Ok(())
}
