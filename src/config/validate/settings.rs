//! The `settings` block of services.yml: `listen`, `token_env`, `state_dir`,
//! `shutdown_timeout`, `exit_with`, `max_services` and `cgroups`, each checked with its
//! place and turned into [`Settings`] (defaults for what is not given).

use std::path::Path;

use super::checker::Checker;
use super::is_valid_id;
use super::probes::host_port;
use crate::config::Settings;
use crate::config::model::{Pos, RawSettings};
use crate::config::problem::Problem;

/// The settings of one file, or `None` when anything in them is wrong (all of it noted).
pub(super) fn convert_settings(
    raw: &RawSettings,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Option<Settings> {
    let before = problems.len();
    let mut c = Checker {
        place: " in `settings`".to_string(),
        problems,
    };
    let mut settings = Settings::defaults_in(base_dir);
    if let Some(listen) = &raw.listen {
        match host_port(&listen.value) {
            Ok(()) => settings.listen = listen.value.trim().to_string(),
            Err(detail) => c.field(
                Pos::of(listen),
                "listen",
                &detail,
                "write an address and port, e.g. `127.0.0.1:7070`",
            ),
        }
    }
    if let Some(token_env) = &raw.token_env {
        c.env_name(Pos::of(token_env), "token_env", &token_env.value);
        settings.token_env = Some(token_env.value.clone());
    }
    if let Some(state_dir) = &raw.state_dir
        && let Some(path) = c.path(base_dir, "state_dir", state_dir)
    {
        settings.state_dir = path;
    }
    if let Some(timeout) = &raw.shutdown_timeout
        && let Some(duration) = c.duration("shutdown_timeout", timeout)
    {
        settings.shutdown_timeout = duration;
    }
    if let Some(exit_with) = &raw.exit_with {
        let id = exit_with.value.trim();
        if is_valid_id(id) {
            settings.exit_with = Some(id.to_string());
        } else {
            c.field(
                Pos::of(exit_with),
                "exit_with",
                &format!("`{id}` is not a service id"),
                "name a service defined in services.yml or services.d, e.g. `exit_with: app`",
            );
        }
    }
    if let Some(max) = &raw.max_services
        && let Some(max) = c.number(max, "max_services", 1, i64::from(u32::MAX))
    {
        settings.max_services = max as usize;
    }
    if let Some(cgroups) = &raw.cgroups
        && let Some(cgroups) = c.boolean(cgroups, "cgroups")
    {
        settings.cgroups = cgroups;
    }
    (c.problems.len() == before).then_some(settings)
}
