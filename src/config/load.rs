//! Reading a config directory: `services.yml`, then every `services.d/*.yml` in name
//! order, parsed with serde-saphyr and turned into definitions by `validate`.
//!
//! This is the one module that knows the YAML crate (DESIGN §9: serde_yaml is archived;
//! serde-saphyr is pure Rust, fuzzed, reports line and column, and enforces budgets against
//! hostile input). Everything it returns is in steward's own terms ([`ConfigError`]).
//!
//! **Every error at once.** A derived serde struct stops at its first error, and a
//! streaming parser cannot resume inside a broken node. So a file is parsed in passes: the
//! visitor of the top-level map notes which section (`version`, `settings`, one service)
//! it is in; when a pass fails inside a section, the error is recorded and the next pass
//! skips that section. Each pass skips one more section or ends, so a file with three
//! broken services reports three errors, and the services that parsed still get their
//! semantic checks. An error outside any section (a YAML syntax error between services,
//! say) ends the file. Inputs are capped in size and in YAML budget, so the passes stay
//! cheap and no input can make the loader panic or run away.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_saphyr::{DefaultMessageFormatter, Error as YamlError, MessageFormatter};

use crate::config::model::{
    FILE_KEYS, HTTP_KEYS, NOT_YET_KEYS, PROBE_KEYS, Pos, RawBody, RawEntry, RawFile, RawService,
    RawSettings, SERVICE_KEYS, SETTINGS_KEYS, Sp,
};
use crate::config::problem::{Problem, key_list, nearest};
use crate::config::validate::{self, FileContext};
use crate::config::{Config, ServiceDefinition, Settings};
use crate::error::{ConfigError, ConfigErrors};

/// A service file larger than this is refused before parsing: definitions are small, and
/// the cap bounds the cost of the error-collecting passes.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Stop collecting a file's parse errors after this many; the rest usually follow from them.
const MAX_PASSES: usize = 64;

/// Loads `dir/services.yml` and `dir/services.d/*.yml` (name order), returning every
/// error of every file at once.
///
/// Error paths are shown as `dir` was given (`config/services.d/api.yml:12:5: …`); the
/// paths inside the returned definitions are absolute.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigErrors> {
    let abs_dir = match std::path::absolute(dir) {
        Ok(abs) => abs,
        Err(e) => {
            return Err(ConfigErrors(vec![ConfigError::detached(format!(
                "cannot resolve the config folder `{}`: {e}",
                dir.display()
            ))]));
        }
    };
    let mut errors = Vec::new();
    if !abs_dir.is_dir() {
        errors.push(
            ConfigError::detached(format!("config folder `{}` does not exist", dir.display()))
                .with_hint("create it with a `services.yml`, or point `--config` at the folder that holds one"),
        );
        return Err(ConfigErrors(errors));
    }

    let mut files = vec![FileToLoad {
        shown: dir.join("services.yml"),
        absolute: abs_dir.join("services.yml"),
        is_main: true,
    }];
    files.extend(list_services_d(dir, &abs_dir, &mut errors));

    let mut settings = Settings::defaults_in(&abs_dir);
    let mut services: Vec<ServiceDefinition> = Vec::new();
    // id → where it was first defined, for the duplicate check across files.
    let mut first_definition: HashMap<String, (PathBuf, Pos)> = HashMap::new();

    for file in &files {
        let text = match read_text(file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (raw, mut problems) = parse_file(&text);
        if let Some(raw) = raw {
            let ctx = FileContext {
                base_dir: file
                    .absolute
                    .parent()
                    .map_or_else(|| abs_dir.clone(), Path::to_path_buf),
                source_file: Some(file.absolute.clone()),
                is_main: file.is_main,
            };
            let outcome = validate::convert_file(raw, &ctx);
            problems.extend(outcome.problems);
            if let Some(file_settings) = outcome.settings {
                settings = file_settings;
            }
            for (id, pos, definition) in outcome.services {
                match first_definition.get(&id) {
                    Some((first_file, first_pos)) => problems.push(
                        Problem::new(
                            pos,
                            format!(
                                "service `{id}` is defined twice: first in {}:{}:{}",
                                first_file.display(),
                                first_pos.line,
                                first_pos.column
                            ),
                        )
                        .hint("ids are unique across services.yml and services.d; rename one or remove it"),
                    ),
                    None => {
                        first_definition.insert(id, (file.shown.clone(), pos));
                        if let Some(definition) = definition {
                            services.push(definition);
                        }
                    }
                }
            }
        }
        problems.sort_by_key(|p| p.pos);
        errors.extend(
            problems
                .into_iter()
                .map(|p| p.into_error(Some(&file.shown))),
        );
    }

    if errors.is_empty() {
        Ok(Config {
            dir: abs_dir,
            settings,
            services,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// One file to read: the path shown in errors, the absolute one, and whether it is the
/// main file (the only one allowed a `settings:` block).
struct FileToLoad {
    shown: PathBuf,
    absolute: PathBuf,
    is_main: bool,
}

/// The `*.yml` files of `services.d`, sorted by name. A missing folder is fine.
fn list_services_d(dir: &Path, abs_dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<FileToLoad> {
    let shown_d = dir.join("services.d");
    let abs_d = abs_dir.join("services.d");
    let entries = match std::fs::read_dir(&abs_d) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(ConfigError::detached(format!(
                "cannot list `{}`: {e}",
                shown_d.display()
            )));
            return Vec::new();
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(ConfigError::detached(format!(
                    "cannot list `{}`: {e}",
                    shown_d.display()
                )));
                continue;
            }
        };
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        // Editor swap and lock files (`.web.yml.swp`, `.#web.yml`) are not definitions.
        if name_text.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        if name_text.ends_with(".yml") {
            names.push(name);
        } else if let Some(stem) = name_text.strip_suffix(".yaml") {
            errors.push(
                ConfigError::detached(format!(
                    "`{}` is not read: steward reads only `*.yml` files in services.d",
                    shown_d.join(&name).display()
                ))
                .with_hint(format!("rename it to `{stem}.yml`")),
            );
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| FileToLoad {
            shown: shown_d.join(&name),
            absolute: abs_d.join(&name),
            is_main: false,
        })
        .collect()
}

/// The file's text, or why it cannot be used.
fn read_text(file: &FileToLoad) -> Result<String, ConfigError> {
    let shown = file.shown.display();
    let metadata = std::fs::metadata(&file.absolute).map_err(|e| {
        let error = ConfigError::detached(format!("cannot read `{shown}`: {e}"));
        if file.is_main && e.kind() == std::io::ErrorKind::NotFound {
            error.with_hint(
                "create it with `version: 1` and a `services:` map (see docs/CONFIGURATION.md)",
            )
        } else {
            error
        }
    })?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(ConfigError::detached(format!(
            "`{shown}` is {} bytes, more than the {MAX_FILE_BYTES} a service file may have",
            metadata.len()
        ))
        .with_hint("split it into several files in services.d"));
    }
    let bytes = std::fs::read(&file.absolute)
        .map_err(|e| ConfigError::detached(format!("cannot read `{shown}`: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count() as u64
            + 1;
        ConfigError {
            file: Some(file.shown.clone()),
            line,
            column,
            message: "the file is not valid UTF-8".to_string(),
            hint: Some("save it as UTF-8 text".to_string()),
        }
    })
}

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
enum Section {
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

/// The problem for a top-level key that is not `version`, `settings` or `services`.
fn unknown_top_level_key(pos: Pos, key: &str) -> Problem {
    let problem = Problem::new(pos, format!("unknown top-level key `{key}`"));
    if let Some(near) = nearest(key, FILE_KEYS) {
        problem.hint(format!("did you mean `{near}`?"))
    } else if SERVICE_KEYS.contains(&key) {
        problem.hint(format!(
            "`{key}` belongs to a service: put it under `services:` and the service's id"
        ))
    } else {
        problem.hint(format!(
            "a file holds only {}; if `{key}` is a service, put it under `services:`",
            key_list(FILE_KEYS)
        ))
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

/// The error the parser reported, under any alias or snippet wrapper.
fn innermost(mut error: &YamlError) -> &YamlError {
    loop {
        match error {
            YamlError::WithSnippet { error: inner, .. }
            | YamlError::AliasError { error: inner, .. } => {
                error = inner;
            }
            other => return other,
        }
    }
}

/// The error's position, `0:0` when it has none (only used to recognise a repeated error).
fn error_pos(error: &YamlError) -> Pos {
    error.location().map_or_else(Pos::default, |location| Pos {
        line: location.line(),
        column: location.column(),
    })
}

/// Where an error happened, in words: ` in service `web``.
fn place(section: Option<&Section>) -> String {
    match section {
        Some(Section::Service(id)) => format!(" in service `{id}`"),
        Some(Section::Settings) => " in `settings`".to_string(),
        Some(Section::Version) => " in `version`".to_string(),
        Some(Section::Services) => " in `services`".to_string(),
        None => String::new(),
    }
}

/// What `describe` knows about where an error happened.
struct Context<'a> {
    /// The section being read.
    section: Option<&'a Section>,
    /// The position of that section's key.
    key: Option<Pos>,
    /// The source, to quote the offending value.
    text: &'a str,
}

/// Turns a parser error into a problem that says what is wrong and how to fix it.
fn describe(error: &YamlError, context: &Context) -> Problem {
    let section = context.section;
    // Errors raised by a visitor carry no position; the section's key is the best guess.
    let pos = error
        .location()
        .map(|location| Pos {
            line: location.line(),
            column: location.column(),
        })
        .filter(|pos| pos.line > 0)
        .or(context.key)
        .unwrap_or(Pos { line: 1, column: 1 });
    let inner = innermost(error);
    let at = place(section);
    let found = |default: &str| match value_at(context.text, pos) {
        Some(value) => format!("`{value}`"),
        None => default.to_string(),
    };
    let mismatch = |expected: &str, found: String| {
        // A whole service (or settings block) written as a scalar on its key's line.
        let on_key_line = context.key.is_some_and(|key| key.line == pos.line);
        match (section, expected) {
            (Some(Section::Service(id)), "struct RawService" | "mapping start") if on_key_line => {
                let example = value_at(context.text, pos).unwrap_or_else(|| "./run.sh".to_string());
                Problem::new(pos, format!("service `{id}` must be a map of keys, found {found}"))
                    .hint(format!("a service is a map with `command` or `argv`, e.g. `{id}: {{ command: {example} }}`"))
            }
            (Some(Section::Settings), "struct RawSettings" | "mapping start") if on_key_line => {
                Problem::new(pos, format!("`settings` must be a map, found {found}")).hint(format!(
                    "`settings` is a map with {}",
                    key_list(SETTINGS_KEYS)
                ))
            }
            _ => {
                let key = key_before(context.text, pos);
                let (what, hint) = expected_in_words(expected, key.as_deref());
                let for_key = key.map_or_else(String::new, |key| format!(" for `{key}`"));
                Problem::new(pos, format!("expected {what}{for_key}{at}, found {found}")).hint(hint)
            }
        }
    };
    match inner {
        YamlError::SerdeUnknownField { field, expected, .. } => {
            unknown_key(pos, field, expected, section)
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => mismatch(expected, unexpected.clone()),
        YamlError::InvalidScalar { ty, .. } => mismatch(ty, found("something else")),
        YamlError::InvalidBooleanStrict { .. } => mismatch("boolean", found("something else")),
        YamlError::Unexpected { expected, .. }
            if matches!(*expected, "mapping start" | "sequence start" | "string scalar") =>
        {
            mismatch(expected, found("something else"))
        }
        YamlError::NullIntoString { .. } => Problem::new(pos, format!("empty value{at}"))
            .hint("write a value, or `\"\"` for an empty string"),
        YamlError::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref().unwrap_or("a key");
            Problem::new(pos, format!("`{key}` is given twice{at}")).hint("keep only one of them")
        }
        YamlError::Message { msg, .. } if msg.starts_with("duplicate field") => {
            let field = msg.split('`').nth(1).unwrap_or("a key");
            Problem::new(pos, format!("`{field}` is given twice{at}")).hint("keep only one of them")
        }
        YamlError::MultipleDocuments { .. } => {
            Problem::new(pos, "more than one YAML document in this file").hint(
                "keep one document per file: remove the `---` line, or move the rest to its own file in services.d",
            )
        }
        YamlError::Budget { .. } => Problem::new(
            pos,
            format!("the file is over the size limits of a service file{at} ({})", message_of(inner)),
        )
        .hint(
            "a service file should be small and shallow: simplify it or split it into several files",
        ),
        YamlError::UnsupportedTag { .. } => Problem::new(pos, format!("{}{at}", message_of(inner)))
            .hint("remove the `!tag`: service files use plain YAML values"),
        YamlError::ExternalMessage { .. }
        | YamlError::Eof { .. }
        | YamlError::Unexpected { .. }
        | YamlError::UnexpectedSequenceEnd { .. }
        | YamlError::UnexpectedMappingEnd { .. }
        | YamlError::ContainerEndMismatch { .. }
        | YamlError::UnexpectedContainerEndWhileReadingKeyNode { .. }
        | YamlError::UnexpectedContainerEndWhileSkippingNode { .. }
        | YamlError::IndentationError { .. }
        | YamlError::UnknownAnchor { .. } => {
            let message = message_of(inner);
            if message.contains("limit") {
                return Problem::new(pos, format!("{message}{at}")).hint(
                    "a service file should be small and shallow: simplify it or split it into several files",
                );
            }
            Problem::new(pos, format!("YAML syntax error: {message}"))
                .hint("check the indentation, the `:` after each key and the quotes on this line and the one before")
        }
        _ => Problem::new(pos, format!("{}{at}", message_of(inner)))
            .hint("see docs/CONFIGURATION.md for what each key accepts"),
    }
}

/// The key written just before `pos` on its line (`tags` for `    tags: frontend` at the
/// `f`), when the value sits on its key's line.
fn key_before(text: &str, pos: Pos) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let end = usize::try_from(pos.column).ok()?.checked_sub(1)?;
    let before: String = line.chars().take(end).collect();
    let before = before.trim_end().strip_suffix(':')?;
    let key = before
        .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',')
        .next()?
        .trim_matches(|c| c == '"' || c == '\'');
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plain.then(|| key.to_string())
}

/// The plain value written at `pos`, to quote it in a message: up to the end of the line,
/// a comment, or the end of a flow item. `None` when there is nothing sensible to quote.
fn value_at(text: &str, pos: Pos) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let start = usize::try_from(pos.column).ok()?.checked_sub(1)?;
    let rest: String = line.chars().skip(start).collect();
    let end = rest
        .find(" #")
        .into_iter()
        .chain(rest.find([',', ']', '}']))
        .min()
        .unwrap_or(rest.len());
    let value = rest[..end].trim();
    if value.is_empty() || value.chars().count() > 60 || value.contains('`') {
        None
    } else {
        Some(value.to_string())
    }
}

/// The parser's own message, without location or snippet, on one line.
fn message_of(error: &YamlError) -> String {
    let text = DefaultMessageFormatter.format_message(error);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `unknown key `comand` in service `api`` with the nearest valid key, or the "not supported
/// yet" message for the keys that arrive with a later issue.
fn unknown_key(pos: Pos, field: &str, expected: &[&str], section: Option<&Section>) -> Problem {
    let service = match section {
        Some(Section::Service(id)) => Some(id.as_str()),
        _ => None,
    };
    let service_words = service.map_or_else(String::new, |id| format!("service `{id}`"));
    let place = if expected == PROBE_KEYS {
        format!("a probe of {service_words}")
    } else if expected == HTTP_KEYS {
        format!("the `http` check of {service_words}")
    } else if expected == SETTINGS_KEYS {
        "`settings`".to_string()
    } else {
        service_words
    };
    if NOT_YET_KEYS.contains(&field) && expected == SERVICE_KEYS {
        return Problem::new(pos, format!("`{field}` is not supported yet (in {place})")).hint(
            format!("remove `{field}`: it arrives with service dependencies in a later version of steward"),
        );
    }
    let problem = Problem::new(pos, format!("unknown key `{field}` in {place}"));
    let synonym = match field {
        "cmd" => Some("command"),
        "args" | "arguments" => Some("argv"),
        "workdir" | "working_dir" | "dir" | "directory" => Some("cwd"),
        "environment" => Some("env"),
        "labels" => Some("tags"),
        "restart_policy" => Some("restart"),
        _ => None,
    }
    .filter(|s| expected.contains(s));
    match synonym.or_else(|| nearest(field, expected)) {
        Some(near) => problem.hint(format!("did you mean `{near}`?")),
        None => problem.hint(format!("valid keys here are {}", key_list(expected))),
    }
}

/// serde's name of an expected type, in words, with how to write one.
fn expected_in_words(expected: &str, key: Option<&str>) -> (String, String) {
    // A map or list is better named by the key it belongs to.
    let expected = match (expected, key) {
        ("mapping start", Some("readiness" | "liveness" | "startup")) => "struct RawProbe",
        ("mapping start", Some("http")) => "struct RawHttp",
        ("mapping start", Some("env")) => "a map of variable names to values",
        (other, _) => other,
    };
    let (what, hint): (&str, String) = match expected {
        "a boolean" | "boolean" => ("a boolean", "write `true` or `false`".to_string()),
        "mapping start" => (
            "a map",
            "write `key: value` pairs, indented under the key, or `{ key: value }`".to_string(),
        ),
        "sequence start" => ("a list", "write a list: `[a, b]`, or one `- item` per line".to_string()),
        "string scalar" => ("text", "write the value as text; quote it if it contains `:` or `#`".to_string()),
        "floating point" => ("a number", "write a number such as `1.5`".to_string()),
        "i64" | "u64" | "u32" | "i32" | "u16" | "u8" | "usize" => ("a whole number", "write a number such as `10`, without quotes".to_string()),
        "a string" => ("text", "write the value as text; quote it if it contains `:` or `#`".to_string()),
        "a sequence" => ("a list", "write a list: `[a, b]`, or one `- item` per line".to_string()),
        "struct RawService" => (
            "a service definition (a map)",
            "a service is a map with `command` or `argv`, e.g. `web: { command: python3 app.py }`".to_string(),
        ),
        "struct RawProbe" => (
            "a probe (a map)",
            "a probe is a map with one of `http`, `tcp` or `command`, e.g. `readiness: { tcp: 127.0.0.1:8080 }`".to_string(),
        ),
        "struct RawHttp" => (
            "an http check (a map)",
            "write `http: { url: \"http://127.0.0.1:8080/health\" }`".to_string(),
        ),
        "struct RawSettings" => (
            "a map of settings",
            format!("`settings` is a map with {}", key_list(SETTINGS_KEYS)),
        ),
        "a map of variable names to values" => (
            "a map of variable names to values",
            "write `env: { PORT: \"8080\" }`, or one `NAME: value` per line".to_string(),
        ),
        "a command line or a list of arguments" => (
            "a command line or a list of arguments",
            "write `command: \"pg_isready -h 127.0.0.1\"` or `command: [pg_isready, -h, 127.0.0.1]`".to_string(),
        ),
        "a map of service ids to service definitions" => (
            "a map of service ids to service definitions",
            "write `services:` followed by one indented `id:` per service".to_string(),
        ),
        "a map with `version`, `settings` and `services`" => (
            "a map with `version`, `settings` and `services`",
            "start the file with `version: 1` and put services under `services:`".to_string(),
        ),
        other => (other, "see docs/CONFIGURATION.md for what each key accepts".to_string()),
    };
    (what.to_string(), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

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
