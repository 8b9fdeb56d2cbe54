//! The `definition_json` target: bytes as the body of `POST /api/v1/services` (and of the
//! `service_define` tool), through [`definition_from_json`], the parser both call:
//!
//! * a body that is not JSON is the JSON extractor's business (serde_json, as axum's
//!   `Json` uses it) and only must not panic;
//! * a refusal is a non-empty list of problems, each with words and without a file or
//!   position (the body is not a file the user can open);
//! * an accepted definition passes [`check_definition`], and written as steward saves it
//!   (`?persist=true`: [`service_to_yaml`]), read back as JSON (YAML's JSON subset, through
//!   the YAML crate) and parsed again, it is the same definition. One difference is
//!   expected and allowed: `depends_on` is saved as a map (`db: { condition: started }`),
//!   and a JSON object has no order in steward's JSON (serde_json keeps maps sorted), so
//!   it comes back sorted by id; its order carries no meaning (start order follows the
//!   dependency graph), so it is compared sorted.

use std::path::Path;

use crate::config::{check_definition, definition_from_json, service_to_yaml};

/// The folder relative paths of a body resolve against (the API's config folder).
const BASE_DIR: &str = "/srv/steward-fuzz";

/// The id when the body has none (the tool passes it beside the body).
const DEFAULT_ID: &str = "fuzz";

/// Checks the JSON definition parser on `data`.
///
/// # Panics
/// When a refusal is empty or located, or an accepted definition does not survive
/// save → parse.
pub fn definition_json(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let id = match value.get("id") {
        Some(serde_json::Value::String(id)) => id.clone(),
        _ => DEFAULT_ID.to_string(),
    };
    let base = Path::new(BASE_DIR);
    let def = match definition_from_json(&id, &value, base) {
        Ok(def) => def,
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused with no problem named");
            for e in &errors.0 {
                assert!(!e.message.trim().is_empty(), "a problem without words");
                assert!(
                    e.file.is_none() && e.line == 0 && e.column == 0,
                    "a body's problem points into a file: {e}"
                );
            }
            return;
        }
    };
    assert_eq!(
        def.id, id,
        "the definition has another id than it was sent with"
    );
    if let Err(errors) = check_definition(&def) {
        panic!("accepted, but check_definition refuses it: {errors}");
    }
    let yaml = service_to_yaml(&def);
    let document: serde_json::Value = match serde_saphyr::from_str(&yaml) {
        Ok(document) => document,
        Err(e) => panic!("the saved YAML does not parse: {e}\n{yaml}"),
    };
    let Some(body) = document.get("services").and_then(|s| s.get(&id)) else {
        panic!("the saved YAML has no `services.{id}`:\n{yaml}");
    };
    match definition_from_json(&id, body, base) {
        Ok(again) => assert!(
            sorted_dependencies(&again) == sorted_dependencies(&def),
            "save → parse changed the definition:\n{def:#?}\n{again:#?}\n{yaml}"
        ),
        Err(errors) => panic!("the saved definition is refused: {errors}\n{yaml}"),
    }
}

/// `def` with its `depends_on` in id order.
fn sorted_dependencies(def: &crate::config::ServiceDefinition) -> crate::config::ServiceDefinition {
    let mut def = def.clone();
    def.depends_on.sort_by(|a, b| a.service.cmp(&b.service));
    def
}
