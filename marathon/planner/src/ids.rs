//! Marathon's identifiers: [`PathId`] (`/prod/web/api`, with Marathon's own
//! rules, since model ids forbid `/`), [`InstanceId`] (`prod_web_api.<uuid>`,
//! Marathon's task-id form), [`DeploymentId`] and [`Version`].
//!
//! Ids that need randomness (instance and deployment ids) are built from a
//! caller-supplied unique part: this crate has no random source.
use std::fmt;

use crate::error::IdError;

/// An app or group id: a slash path such as `/prod/web/api`.
///
/// Each segment is a DNS-like name, `(label\.)*label` with
/// `label = [a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]`, or `..` (the parent) in a
/// relative id before it is made canonical. Empty segments (`//`, a trailing
/// `/`) are dropped, as Marathon's `PathId.apply` does. The root group is the
/// absolute path with no segments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathId {
    segments: Vec<String>,
    absolute: bool,
}

/// Is `s` one segment of Marathon's id regex (without `..`)?
fn is_label_path(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_label)
}

/// `[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]`.
fn is_label(l: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !l.is_empty()
        && l.chars().all(|c| ok_char(c) || c == '-')
        && l.starts_with(ok_char)
        && l.ends_with(ok_char)
}

impl PathId {
    /// The root group `/`.
    pub fn root() -> PathId {
        PathId {
            segments: Vec::new(),
            absolute: true,
        }
    }

    /// Parses an absolute (`/a/b`) or relative (`b`, `../c`) id, checking
    /// every segment against Marathon's id rules. `..` is kept until
    /// [`PathId::canonical`] resolves it.
    pub fn parse(text: &str) -> Result<PathId, IdError> {
        let absolute = text.starts_with('/');
        let mut segments = Vec::new();
        for seg in text.split('/').filter(|s| !s.is_empty()) {
            if seg != ".." && !is_label_path(seg) {
                return Err(IdError::InvalidPath {
                    id: text.to_string(),
                    segment: seg.to_string(),
                });
            }
            segments.push(seg.to_string());
        }
        Ok(PathId { segments, absolute })
    }

    /// Parses `text` and resolves it against the group `base` (Marathon
    /// resolves an app's relative id and dependencies against its group).
    pub fn parse_in(text: &str, base: &PathId) -> Result<PathId, IdError> {
        Ok(PathId::parse(text)?.canonical(base))
    }

    /// The absolute form: a relative id is appended to `base` (which should
    /// be absolute), `..` removes the segment before it (never above the
    /// root), as Marathon's `PathId.canonicalPath`.
    pub fn canonical(&self, base: &PathId) -> PathId {
        let start: &[String] = if self.absolute { &[] } else { &base.segments };
        let mut out: Vec<String> = Vec::with_capacity(start.len() + self.segments.len());
        for seg in start.iter().chain(self.segments.iter()) {
            if seg == ".." {
                out.pop();
            } else {
                out.push(seg.clone());
            }
        }
        PathId {
            segments: out,
            absolute: true,
        }
    }

    /// Builds an absolute id from segments, checking each.
    pub fn from_segments<S: AsRef<str>>(segments: &[S]) -> Result<PathId, IdError> {
        let mut text = String::new();
        for s in segments {
            text.push('/');
            text.push_str(s.as_ref());
        }
        let id = PathId::parse(if text.is_empty() { "/" } else { &text })?;
        if id.segments.iter().any(|s| s == "..") {
            return Err(IdError::InvalidPath {
                id: text,
                segment: "..".into(),
            });
        }
        Ok(id)
    }

    /// Is this the root group?
    pub fn is_root(&self) -> bool {
        self.absolute && self.segments.is_empty()
    }

    /// Is this an absolute id?
    pub fn is_absolute(&self) -> bool {
        self.absolute
    }

    /// The segments, outermost group first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The last segment (the app's own name), if any.
    pub fn name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }

    /// The enclosing group (the root's parent is the root).
    pub fn parent(&self) -> PathId {
        let mut segments = self.segments.clone();
        segments.pop();
        PathId {
            segments,
            absolute: self.absolute,
        }
    }

    /// Is `self` inside the group `group` (or equal to it)?
    pub fn is_within(&self, group: &PathId) -> bool {
        self.absolute == group.absolute && self.segments.starts_with(&group.segments)
    }

    /// Marathon's "safe" form used in task ids: segments joined by `_`
    /// (`/prod/web/api` → `prod_web_api`).
    pub fn safe_path(&self) -> String {
        self.segments.join("_")
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.absolute {
            f.write_str("/")?;
        }
        f.write_str(&self.segments.join("/"))
    }
}

/// One instance (task) of an app: `<app safe path>.<unique>`, Marathon's task
/// id form (`prod_web_api.3d6a2f…`), so clients that split it keep working.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// The id of a new instance of `app`; `unique` is a caller-made uuid.
    pub fn new(app: &PathId, unique: &str) -> InstanceId {
        InstanceId(format!("{}.{unique}", app.safe_path()))
    }

    /// Wraps an id read back from storage or a status update.
    pub fn from_string(s: impl Into<String>) -> InstanceId {
        InstanceId(s.into())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The app part (`prod_web_api`): everything before the last `.`.
    pub fn app_safe_path(&self) -> &str {
        self.0.rsplit_once('.').map_or(self.0.as_str(), |(a, _)| a)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deployment's id (a uuid made by the caller).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeploymentId(pub String);

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An app version: milliseconds since the Unix epoch, as Marathon's
/// ISO-8601 version timestamps (formatted by the API layer). Versions of one
/// app are strictly increasing; the caller assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marathon_id_rules() {
        for ok in [
            "/",
            "/prod/web/api",
            "app",
            "a-b.c-d",
            "/a1/0",
            "../x",
            "/a//b/",
        ] {
            assert!(PathId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/Prod", "/a_b", "/-a", "/a-", "/a..b", "/.", "/a/b c", "/a./b",
        ] {
            assert!(PathId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn canonical_resolves_relative_ids_and_parents() {
        let base = PathId::parse("/prod/web").unwrap();
        let c = |s: &str| PathId::parse(s).unwrap().canonical(&base).to_string();
        assert_eq!(c("api"), "/prod/web/api");
        assert_eq!(c("../db"), "/prod/db");
        assert_eq!(c("../../../../x"), "/x");
        assert_eq!(c("/abs/x"), "/abs/x");
        assert_eq!(c("/a//b/"), "/a/b");
        assert_eq!(PathId::root().to_string(), "/");
    }

    #[test]
    fn parents_names_and_safe_paths() {
        let id = PathId::parse("/prod/web/api").unwrap();
        assert_eq!(id.parent().to_string(), "/prod/web");
        assert_eq!(id.name(), Some("api"));
        assert_eq!(id.safe_path(), "prod_web_api");
        assert!(id.is_within(&PathId::parse("/prod").unwrap()));
        assert!(!id.is_within(&PathId::parse("/pro").unwrap()));
        assert!(PathId::root().parent().is_root());
        let inst = InstanceId::new(&id, "1234-abcd");
        assert_eq!(inst.as_str(), "prod_web_api.1234-abcd");
        assert_eq!(inst.app_safe_path(), "prod_web_api");
        assert!(PathId::from_segments(&["a", ".."]).is_err());
    }
}
