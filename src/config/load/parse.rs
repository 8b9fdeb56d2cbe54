//! One file's text into the raw schema ([`RawFile`]), in passes that each skip one more
//! section found broken, so that every broken section is reported (see `load`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::MAX_FILE_BYTES;
use super::messages::{Context, describe, error_pos, unknown_top_level_key};
use crate::config::model::{Pos, RawBody, RawEntry, RawFile, RawService, RawSettings, Sp};
use crate::config::problem::Problem;

/// Stop collecting a file's parse errors after this many; the rest usually follow from them.
const MAX_PASSES: usize = 64;

/// The YAML options: budgets sized for service files, our own duplicate-key handling, no
/// snippets (errors are rendered as `file:line:col: message`).
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.max_nodes = 100_000;
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 2;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES as usize;
    serde_saphyr::options! {
        budget: Some(budget),
        with_snippet: false,
        reject_unsupported_tags: true,
        // YAML 1.2 booleans only: `command: y` or `tags: [no]` stay text, and `autostart`
        // takes `true` or `false`.
        strict_booleans: true,
        // Repeated keys reach our visitors, which name both places (a service id given
        // twice); derived structs still reject a repeated field.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    }
}

/// A part of a file that a failed pass can skip next time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Section {
    Version,
    Settings,
    /// The `services:` map itself, between services.
    Services,
    /// One service, by id.
    Service(String),
}

/// The state of one parsing pass: what to skip, where the visitor is, and the problems it
/// found without failing (an unknown top-level key, a key given twice).
struct Pass<'a> {
    skip: &'a HashSet<Section>,
    /// The section being read and the position of its key.
    current: RefCell<Option<(Section, Pos)>>,
    problems: RefCell<Vec<Problem>>,
}

impl Pass<'_> {
    fn skips(&self, section: &Section) -> bool {
        self.skip.contains(section)
    }

    fn enter(&self, section: Section, key: Pos) {
        *self.current.borrow_mut() = Some((section, key));
    }

    fn leave(&self) {
        *self.current.borrow_mut() = None;
    }

    fn report(&self, problem: Problem) {
        self.problems.borrow_mut().push(problem);
    }
}

/// Parses one file's text into the raw schema, with every problem found on the way.
/// `None` when the file could not be parsed far enough to check its meaning.
pub(crate) fn parse_file(text: &str) -> (Option<RawFile>, Vec<Problem>) {
    let mut skip: HashSet<Section> = HashSet::new();
    let mut problems = Vec::new();
    // The parser's own rendering of each error seen, so that an error met again while
    // skipping a section (a syntax error, typically) is reported once.
    let mut seen: Vec<(Pos, String)> = Vec::new();
    for _ in 0..MAX_PASSES {
        let pass = Pass {
            skip: &skip,
            current: RefCell::new(None),
            problems: RefCell::new(Vec::new()),
        };
        let result = serde_saphyr::with_deserializer_from_str_with_options(
            text,
            yaml_options(),
            |deserializer| FileSeed(&pass).deserialize(deserializer),
        );
        let current = pass.current.into_inner();
        let soft = pass.problems.into_inner();
        match result {
            Ok(raw) => {
                problems.extend(soft);
                return (Some(raw), problems);
            }
            Err(error) => {
                let key = (error_pos(&error), error.to_string());
                let repeated = seen.contains(&key);
                if !repeated {
                    let pos = key.0;
                    // A later pass sees further into the same spot (a type error first,
                    // then the syntax error behind it): keep only the later view.
                    problems.retain(|p: &Problem| p.pos != pos || pos == Pos::default());
                    let context = Context {
                        section: current.as_ref().map(|(section, _)| section),
                        key: current.as_ref().map(|(_, pos)| *pos),
                        text,
                    };
                    problems.push(describe(&error, &context));
                    seen.push(key);
                }
                match current.map(|(section, _)| section) {
                    Some(section) if !repeated && !skip.contains(&section) => {
                        skip.insert(section);
                    }
                    _ => {
                        problems.extend(soft);
                        return (None, problems);
                    }
                }
            }
        }
    }
    (None, problems)
}

/// Parses one service body given as text (JSON from the API, which is YAML too), with the
/// same messages as a file; positions are left for the caller to drop.
pub(crate) fn parse_service_text(id: &str, text: &str) -> Result<RawService, Problem> {
    let section = Section::Service(id.to_string());
    serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |deserializer| {
        RawService::deserialize(deserializer)
    })
    .map_err(|error| {
        let context = Context {
            section: Some(&section),
            key: None,
            text,
        };
        describe(&error, &context)
    })
}

struct FileSeed<'p, 'a>(&'p Pass<'a>);

impl<'de> DeserializeSeed<'de> for FileSeed<'_, '_> {
    type Value = RawFile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawFile, D::Error> {
        deserializer.deserialize_any(FileVisitor(self.0))
    }
}

struct FileVisitor<'p, 'a>(&'p Pass<'a>);

impl<'de> Visitor<'de> for FileVisitor<'_, '_> {
    type Value = RawFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map with `version`, `settings` and `services`")
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawFile, E> {
        Ok(RawFile::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<RawFile, E> {
        Ok(RawFile::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFile, A::Error> {
        let pass = self.0;
        let mut raw = RawFile::default();
        let mut seen_services = false;
        while let Some(key) = map.next_key::<Sp<String>>()? {
            let key_pos = Pos::of(&key);
            let name = key.value.as_str();
            let given_twice = match name {
                "version" => raw.version.is_some(),
                "settings" => raw.settings.is_some(),
                "services" => seen_services,
                _ => false,
            };
            if given_twice {
                pass.report(
                    Problem::new(key_pos, format!("`{name}` is given twice in this file"))
                        .hint("keep one; merge the two blocks if both hold something"),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match name {
                "version" => {
                    let body = if pass.skips(&Section::Version) {
                        map.next_value::<IgnoredAny>()?;
                        RawBody::Failed
                    } else {
                        pass.enter(Section::Version, key_pos);
                        let value = map.next_value::<Option<Sp<String>>>()?;
                        pass.leave();
                        value.map_or(RawBody::Empty, RawBody::Parsed)
                    };
                    raw.version = Some((key_pos, body));
                }
                "settings" => {
                    let body = if pass.skips(&Section::Settings) {
                        map.next_value::<IgnoredAny>()?;
                        RawBody::Failed
                    } else {
                        pass.enter(Section::Settings, key_pos);
                        let value = map.next_value::<Option<RawSettings>>()?;
                        pass.leave();
                        value.map_or(RawBody::Empty, RawBody::Parsed)
                    };
                    raw.settings = Some((key_pos, body));
                }
                "services" => {
                    seen_services = true;
                    if pass.skips(&Section::Services) {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        pass.enter(Section::Services, key_pos);
                        raw.services = map.next_value_seed(ServicesSeed(pass))?;
                        pass.leave();
                    }
                }
                other => {
                    pass.report(unknown_top_level_key(key_pos, other));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

struct ServicesSeed<'p, 'a>(&'p Pass<'a>);

impl<'de> DeserializeSeed<'de> for ServicesSeed<'_, '_> {
    type Value = Vec<RawEntry>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<RawEntry>, D::Error> {
        deserializer.deserialize_any(ServicesVisitor(self.0))
    }
}

struct ServicesVisitor<'p, 'a>(&'p Pass<'a>);

impl<'de> Visitor<'de> for ServicesVisitor<'_, '_> {
    type Value = Vec<RawEntry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of service ids to service definitions")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<RawEntry>, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: de::Error>(self) -> Result<Vec<RawEntry>, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<RawEntry>, A::Error> {
        let pass = self.0;
        let mut entries = Vec::new();
        let services_pos = pass
            .current
            .borrow()
            .as_ref()
            .map(|(_, pos)| *pos)
            .unwrap_or_default();
        while let Some(id) = map.next_key::<Sp<String>>()? {
            let section = Section::Service(id.value.clone());
            let body = if pass.skips(&section) {
                pass.leave();
                map.next_value::<IgnoredAny>()?;
                RawBody::Failed
            } else {
                pass.enter(section, Pos::of(&id));
                let value = map.next_value::<Option<RawService>>()?;
                value.map_or(RawBody::Empty, |service| RawBody::Parsed(Box::new(service)))
            };
            pass.enter(Section::Services, services_pos);
            entries.push(RawEntry { id, body });
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::messages::innermost;
    use super::*;
    use crate::config::model::{HTTP_KEYS, PROBE_KEYS, SERVICE_KEYS, SETTINGS_KEYS};
    use serde_saphyr::Error as YamlError;

    #[test]
    fn unknown_field_lists_match_the_schema() {
        // The suggestion lists in `model` must be the keys serde actually accepts.
        let (_, problems) = parse_file("version: 1\nservices:\n  a:\n    bogus: 1\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("log_max_files"))
        );
        for (yaml, keys) in [
            (
                "version: 1\nservices:\n  a:\n    bogus_key_x: 1\n",
                SERVICE_KEYS,
            ),
            (
                "version: 1\nservices:\n  a:\n    readiness:\n      bogus_key_x: 1\n",
                PROBE_KEYS,
            ),
            (
                "version: 1\nservices:\n  a:\n    readiness:\n      http:\n        bogus_key_x: 1\n",
                HTTP_KEYS,
            ),
            ("version: 1\nsettings:\n  bogus_key_x: 1\n", SETTINGS_KEYS),
        ] {
            let error =
                serde_saphyr::with_deserializer_from_str_with_options(yaml, yaml_options(), |d| {
                    let pass_skip = HashSet::new();
                    let pass = Pass {
                        skip: &pass_skip,
                        current: RefCell::new(None),
                        problems: RefCell::new(Vec::new()),
                    };
                    FileSeed(&pass).deserialize(d)
                })
                .expect_err(yaml);
            match innermost(&error) {
                YamlError::SerdeUnknownField { expected, .. } => {
                    assert_eq!(expected.as_slice(), keys)
                }
                other => panic!("unexpected error {other:?}"),
            }
        }
    }
}
