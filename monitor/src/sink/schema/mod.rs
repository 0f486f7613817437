//! The schema of every JSON line the monitor prints, defined once: the ECS version the
//! lines follow ([`ECS_VERSION`], pinned here and nowhere else), and the table of every
//! field ([`FIELDS`]: name, type, which lines carry it, meaning). Fields ECS defines keep
//! ECS's names and types; everything else lives under the one vendor object `monitor`.
//! [`problems`] checks a line against the table.
//!
//! What is made from the table (docs/alert-schema.md, the Elasticsearch templates) is
//! `sink::docs`; the end-to-end tests check real output against the table and against
//! Elastic's own ECS definitions.

mod check;
mod fields;

pub use check::problems;
pub use fields::FIELDS;

/// The ECS version every line declares in `ecs.version` (npm `@elastic/ecs` of the same
/// version is what the tests validate against).
pub const ECS_VERSION: &str = "9.4.0";
/// The one top-level object for fields ECS does not define.
pub const VENDOR: &str = "monitor";

/// A field's type: ECS's type for ECS fields (Elasticsearch mapping types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Keyword,
    Long,
    Float,
    Date,
    Boolean,
    /// ECS `match_only_text` (`message`).
    Text,
    /// ECS `wildcard` (`url.path`).
    Wildcard,
    /// An object whose members are listed as fields of their own.
    Object,
    /// A free-form object (decoded Docker settings): every leaf indexed as a keyword.
    Flattened,
}

impl Type {
    /// The Elasticsearch mapping type (ECS's name for it).
    pub fn mapping(self) -> &'static str {
        match self {
            Type::Keyword => "keyword",
            Type::Long => "long",
            Type::Float => "float",
            Type::Date => "date",
            Type::Boolean => "boolean",
            Type::Text => "match_only_text",
            Type::Wildcard => "wildcard",
            Type::Object => "object",
            Type::Flattened => "flattened",
        }
    }

    /// Whether a JSON value (one element, for arrays) has this type.
    pub fn fits(self, v: &serde_json::Value) -> bool {
        match self {
            Type::Keyword | Type::Text | Type::Wildcard | Type::Date => v.is_string(),
            Type::Long => v.is_i64() || v.is_u64(),
            Type::Float => v.is_number(),
            Type::Boolean => v.is_boolean(),
            Type::Object | Type::Flattened => v.is_object(),
        }
    }
}

/// Which lines carry a field: [`When::Optional`] ones only when they apply (the meaning says
/// when), the others always on the lines named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Every line: alerts, audit-trail events, records, posture findings.
    Every,
    /// Every line of `run` and `replay`: alerts, audit-trail events, records.
    Runtime,
    /// Every alert and audit-trail event.
    Alert,
    /// `docker-request` alerts.
    Docker,
    /// `setuid` and `setgid` alerts.
    SetId,
    /// Self-defence alerts on signals, ptrace and process_vm (`signal`, `ptrace`,
    /// `process-vm`).
    Tamper,
    /// Alerts raised by a process inside a container.
    Container,
    /// Every record about the monitor (`event.dataset: monitor.status`).
    Record,
    /// Every `monitor check --json` finding.
    Check,
    Optional,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Every => "every",
            When::Runtime => "runtime",
            When::Alert => "alert",
            When::Docker => "docker",
            When::SetId => "setid",
            When::Tamper => "tamper",
            When::Container => "container",
            When::Record => "record",
            When::Check => "check",
            When::Optional => "optional",
        }
    }
}

/// One field of the schema.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Dotted name (`process.parent.pid`); members of arrays of objects are named through
    /// the array (`monitor.process.ancestors.pid`).
    pub name: &'static str,
    pub ty: Type,
    /// A JSON array of values of `ty`.
    pub array: bool,
    pub when: When,
    pub meaning: &'static str,
}

impl Field {
    /// Whether ECS defines it (else it is under [`VENDOR`]).
    pub fn is_ecs(&self) -> bool {
        !(self.name == VENDOR || self.name.starts_with("monitor."))
    }
}

/// The field called `name`.
pub fn field(name: &str) -> Option<&'static Field> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&str, &Field>> =
        std::sync::OnceLock::new();
    BY_NAME.get_or_init(|| FIELDS.iter().map(|f| (f.name, f)).collect()).get(name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_members_have_their_object() {
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert!(!f.meaning.is_empty(), "{} has no meaning", f.name);
        }
        // Nothing is both a value and an object with members (Elasticsearch could not map it).
        for f in FIELDS.iter().filter(|f| !matches!(f.ty, Type::Object)) {
            let prefix = format!("{}.", f.name);
            let members: Vec<_> = FIELDS.iter().filter(|g| g.name.starts_with(&prefix)).collect();
            assert!(members.is_empty(), "{} is a {:?} and has members {members:?}", f.name, f.ty);
        }
        // ECS objects hold no vendor names and the vendor object no ECS ones.
        assert!(FIELDS.iter().filter(|f| !f.is_ecs()).all(|f| f.name.starts_with("monitor.")));
    }
}
