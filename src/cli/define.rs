//! `steward define FILE.yml [--persist]` and `steward remove ID...`: change the set of
//! services of a running daemon.
//!
//! `define` reads a file shaped like `services.yml` and posts each service of its
//! `services:` map as JSON (`POST /api/v1/services`, the YAML schema plus `id`); the daemon
//! validates it exactly as it validates files. Paths in a file are relative to that file
//! (DESIGN §10 "Environment"), but the daemon may run elsewhere, so the client makes
//! `cwd`, `env_file` and `log_file` absolute first, and gives a service without `cwd` (and
//! without `source`, which brings its own) the file's folder.
//!
//! The YAML is read with serde-saphyr into plain JSON values: the client only reshapes the
//! document, and every rule about its content stays in the daemon (`steward::config`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use steward::ServiceState;

use crate::cli::client::{Client, ClientError};
use crate::cli::control::describe;
use crate::cli::style::Paint;
use crate::cli::{DefineArgs, RemoveArgs, out, out_json};

/// The largest file `steward define -f` reads: the cap of a service file (a FIFO or a
/// device is refused, never waited on).
const DEFINE_FILE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Keys of a service whose value is a path relative to the defining file.
const PATH_KEYS: [&str; 3] = ["cwd", "env_file", "log_file"];

/// Runs `steward define`.
pub async fn define(client: &Client, args: &DefineArgs, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = steward::process::regular_file::read_regular(&args.file, DEFINE_FILE_MAX_BYTES)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", args.file.display()))?;
    let folder = std::path::absolute(&args.file)
        .with_context(|| format!("cannot resolve {}", args.file.display()))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let services = services_of(&text, &args.file, &folder)?;
    let query = if args.persist {
        vec![("persist", "true".to_string())]
    } else {
        Vec::new()
    };
    let paint = Paint::stdout();
    let mut defined = Vec::new();
    let mut failures = 0;
    for (id, body) in &services {
        match client
            .post::<ServiceState>(&["api", "v1", "services"], &query, Some(body))
            .await
        {
            Ok(state) => {
                if !json {
                    out(&format!("defined {id}: {}\n", describe(&state, paint)))?;
                }
                defined.push(state);
            }
            Err(e @ ClientError::NoDaemon { .. }) => return Err(e.into()),
            Err(e) => {
                failures += 1;
                eprintln!("steward: {id}: {e}");
            }
        }
    }
    if json {
        out_json(&defined)?;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A definition file as the client reads it: services in file order (the daemon handles
/// dependencies by id, but people read output best in the order they wrote it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionFile {
    /// Checked by the daemon's loader for config files; accepted here as is.
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<Value>,
    /// Only allowed in services.yml; refused with a message below.
    #[serde(default)]
    settings: Option<IgnoredAny>,
    #[serde(default)]
    services: Option<Ordered>,
}

/// A YAML map kept in file order (serde_json's map sorts its keys).
#[derive(Debug)]
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of service id to service")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

/// The services of a definition file, each as the JSON body of `POST /api/v1/services`,
/// in file order.
pub fn services_of(text: &str, file: &Path, folder: &Path) -> anyhow::Result<Vec<(String, Value)>> {
    let shown = file.display();
    let doc: DefinitionFile =
        serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    if doc.settings.is_some() {
        anyhow::bail!(
            "{shown}: `settings` are read from services.yml when steward boots; remove them from this file"
        );
    }
    let services = doc.services.map(|s| s.0).unwrap_or_default();
    if services.is_empty() {
        anyhow::bail!("{shown}: no services: add a `services:` map with at least one service");
    }
    services
        .into_iter()
        .map(|(id, service)| {
            let Value::Object(mut body) = service else {
                anyhow::bail!("{shown}: service `{id}` must be a map of its settings");
            };
            anchor_paths(&mut body, folder);
            body.insert("id".to_string(), Value::String(id.clone()));
            Ok((id, Value::Object(body)))
        })
        .collect()
}

/// Makes the relative paths of a service absolute against `folder`.
fn anchor_paths(body: &mut Map<String, Value>, folder: &Path) {
    for key in PATH_KEYS {
        if let Some(Value::String(path)) = body.get_mut(key)
            && Path::new(path.as_str()).is_relative()
        {
            *path = folder.join(path.as_str()).display().to_string();
        }
    }
    if !body.contains_key("cwd") && !body.contains_key("source") {
        body.insert(
            "cwd".to_string(),
            Value::String(folder.display().to_string()),
        );
    }
}

/// Runs `steward remove`.
pub async fn remove(client: &Client, args: &RemoveArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut removed = Vec::new();
    let mut failures = 0;
    for id in &args.ids {
        let result: Result<Value, ClientError> = client
            .send(
                reqwest::Method::DELETE,
                &["api", "v1", "services", id],
                &[],
                None,
            )
            .await;
        match result {
            Ok(_) => {
                if !json {
                    out(&format!("removed {id}\n"))?;
                }
                removed.push(id.clone());
            }
            Err(e @ ClientError::NoDaemon { .. }) => return Err(e.into()),
            Err(e) => {
                failures += 1;
                eprintln!("steward: {id}: {e}");
            }
        }
    }
    if json {
        out_json(&serde_json::json!({ "removed": removed }))?;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_become_json_bodies_with_their_id_and_anchored_paths() {
        let text = "version: 1\nservices:\n  web:\n    command: sleep 60\n    env_file: .env\n    env: { PORT: 8080 }\n  repo:\n    command: make run\n    source: { git: \"https://example.org/r.git\" }\n  abs:\n    command: true\n    cwd: /srv/abs\n";
        let services = services_of(text, Path::new("extra.yml"), Path::new("/etc/steward"))
            .unwrap_or_default();
        let ids: Vec<&str> = services.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["web", "repo", "abs"]);
        let web = &services[0].1;
        assert_eq!(web["id"], "web");
        assert_eq!(web["cwd"], "/etc/steward");
        assert_eq!(web["env_file"], "/etc/steward/.env");
        assert_eq!(web["env"]["PORT"], 8080);
        assert!(
            services[1].1.get("cwd").is_none(),
            "source brings its own cwd"
        );
        assert_eq!(services[2].1["cwd"], "/srv/abs");
    }

    #[test]
    fn settings_and_unknown_keys_are_refused_with_the_file_name() {
        let err = services_of(
            "version: 1\nsettings: {}\nservices: {}\n",
            Path::new("x.yml"),
            Path::new("/"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.starts_with("x.yml: `settings`"), "{err}");
        let err = services_of("servics: {}\n", Path::new("x.yml"), Path::new("/"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("x.yml: ") && err.contains("servics"),
            "{err}"
        );
    }
}
