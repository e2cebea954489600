//! Placement constraints, `[field, OPERATOR, value?]`, with Marathon's
//! matching rules (`mesosphere.mesos.Constraints`):
//!
//! - the field is `hostname`/`@hostname` (the agent's hostname), `@region` /
//!   `@zone` (fault domain), or an agent attribute; values compare as strings
//!   (attributes as `agora_model::AttributeValue` prints them);
//! - an agent that lacks the field matches only `UNLIKE`;
//! - `LIKE`/`UNLIKE` regexes match the whole value (Java `String.matches`),
//!   compiled once, here, when the constraint is parsed.
//!
//! Whether a constraint holds depends on the app's running instances; that
//! part (UNIQUE, CLUSTER, GROUP_BY, MAX_PER) is decided in `placement` over
//! per-value counters. This module holds what depends on the agent alone.
use std::collections::BTreeMap;
use std::fmt;

use agora_model::{Attributes, Scalar};
use regex::Regex;

use crate::error::{ConstraintError, Violation};

/// What a constraint looks at on an agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `hostname` or `@hostname`.
    Hostname,
    /// `@region`: the agent's fault-domain region.
    Region,
    /// `@zone`: the agent's fault-domain zone.
    Zone,
    /// Any other name: an agent attribute.
    Attribute(String),
}

impl Field {
    fn parse(name: &str) -> Field {
        match name {
            "hostname" | "@hostname" => Field::Hostname,
            "@region" => Field::Region,
            "@zone" => Field::Zone,
            other => Field::Attribute(other.to_string()),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Hostname => f.write_str("hostname"),
            Field::Region => f.write_str("@region"),
            Field::Zone => f.write_str("@zone"),
            Field::Attribute(a) => f.write_str(a),
        }
    }
}

/// A full-match regular expression, compiled once; equal when the source
/// text is equal.
#[derive(Debug, Clone)]
pub struct FullRegex {
    source: String,
    compiled: Regex,
}

impl FullRegex {
    /// Compiles `source` anchored at both ends (`^(?:source)$`).
    pub fn new(source: &str) -> Result<FullRegex, ConstraintError> {
        Regex::new(&format!("^(?:{source})$"))
            .map(|compiled| FullRegex {
                source: source.to_string(),
                compiled,
            })
            .map_err(|e| ConstraintError::BadRegex {
                value: source.to_string(),
                message: e.to_string(),
            })
    }

    /// Does the whole of `value` match?
    pub fn matches(&self, value: &str) -> bool {
        self.compiled.is_match(value)
    }

    /// The expression as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for FullRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for FullRegex {}

/// A constraint operator with its (validated) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// At most one instance per field value.
    Unique,
    /// All instances on one value: the given one, or (without a value) the
    /// value of the first instance placed.
    Cluster(Option<String>),
    /// Spread evenly over values. `Some(g)`: over `g` groups (at least, as
    /// Marathon's docs put it); `None`: over every value the cluster's
    /// known inventory has (Marathon left this case undefined, #7269).
    GroupBy(Option<u32>),
    /// The value matches the regex (whole value).
    Like(FullRegex),
    /// The value does not match the regex, or the agent lacks the field.
    Unlike(FullRegex),
    /// Fewer than `n` instances per value before placing one more.
    MaxPer(u32),
    /// The value equals the given text (scalars compared at 3 decimals).
    Is(String),
}

/// One placement constraint of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// What it looks at.
    pub field: Field,
    /// How.
    pub op: Operator,
}

impl Constraint {
    /// Parses Marathon's JSON form: `["hostname", "UNIQUE"]`,
    /// `["rack_id", "GROUP_BY", "3"]`, `["rack", "LIKE", "rack-[1-3]"]`.
    pub fn parse<S: AsRef<str>>(parts: &[S]) -> Result<Constraint, ConstraintError> {
        let (field, op, value) = match parts {
            [f, o] => (f.as_ref(), o.as_ref(), None),
            [f, o, v] => (f.as_ref(), o.as_ref(), Some(v.as_ref())),
            _ => return Err(ConstraintError::Arity),
        };
        if field.is_empty() {
            return Err(ConstraintError::EmptyField);
        }
        let need = || value.ok_or(ConstraintError::MissingValue);
        let number = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| ConstraintError::NotANumber(v.to_string()))
        };
        let op = match op {
            "UNIQUE" if value.is_some() => return Err(ConstraintError::UnexpectedValue),
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster(value.filter(|v| !v.is_empty()).map(str::to_string)),
            "GROUP_BY" => match value.filter(|v| !v.is_empty()) {
                None => Operator::GroupBy(None),
                Some(v) => match number(v)? {
                    0 => return Err(ConstraintError::NotANumber(v.to_string())),
                    g => Operator::GroupBy(Some(g)),
                },
            },
            "LIKE" => Operator::Like(FullRegex::new(need()?)?),
            "UNLIKE" => Operator::Unlike(FullRegex::new(need()?)?),
            "MAX_PER" => Operator::MaxPer(number(need()?)?),
            "IS" => Operator::Is(need()?.to_string()),
            other => return Err(ConstraintError::UnknownOperator(other.to_string())),
        };
        Ok(Constraint {
            field: Field::parse(field),
            op,
        })
    }

    /// Does an agent with value `value` for the field pass the part of the
    /// constraint that does not depend on running instances? `None` means
    /// the agent lacks the field: only `UNLIKE` matches then.
    pub fn matches_agent(&self, value: Option<&str>) -> bool {
        let Some(v) = value else {
            return matches!(self.op, Operator::Unlike(_));
        };
        match &self.op {
            Operator::Like(re) => re.matches(v),
            Operator::Unlike(re) => !re.matches(v),
            Operator::Is(want) => values_equal(v, want),
            Operator::Cluster(Some(want)) => v == want,
            Operator::Unique
            | Operator::Cluster(None)
            | Operator::GroupBy(_)
            | Operator::MaxPer(_) => true,
        }
    }

    /// Does placement depend on how the app's instances spread over values?
    pub fn counts_instances(&self) -> bool {
        matches!(
            self.op,
            Operator::Unique | Operator::Cluster(None) | Operator::GroupBy(_) | Operator::MaxPer(_)
        )
    }
}

/// Text equality, except that two numbers are equal when they agree to
/// three decimals (Marathon compares scalar attributes that way: `IS 3`
/// matches `3.0`).
fn values_equal(have: &str, want: &str) -> bool {
    if have == want {
        return true;
    }
    match (parse_scalar(have), parse_scalar(want)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn parse_scalar(s: &str) -> Option<Scalar> {
    let v: f64 = s.trim().parse().ok()?;
    Scalar::from_f64(v).ok()
}

impl fmt::Display for Constraint {
    /// Marathon's JSON-ish form, for decline reasons: `hostname:UNIQUE`,
    /// `rack:GROUP_BY:3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = &self.field;
        match &self.op {
            Operator::Unique => write!(f, "{field}:UNIQUE"),
            Operator::Cluster(None) => write!(f, "{field}:CLUSTER"),
            Operator::Cluster(Some(v)) => write!(f, "{field}:CLUSTER:{v}"),
            Operator::GroupBy(None) => write!(f, "{field}:GROUP_BY"),
            Operator::GroupBy(Some(g)) => write!(f, "{field}:GROUP_BY:{g}"),
            Operator::Like(r) => write!(f, "{field}:LIKE:{}", r.as_str()),
            Operator::Unlike(r) => write!(f, "{field}:UNLIKE:{}", r.as_str()),
            Operator::MaxPer(n) => write!(f, "{field}:MAX_PER:{n}"),
            Operator::Is(v) => write!(f, "{field}:IS:{v}"),
        }
    }
}

/// Parses a list of constraints in Marathon's JSON form; errors name their
/// path as Marathon's 422 body does (`/constraints(1)`).
pub fn parse_constraints<S: AsRef<str>>(raw: &[Vec<S>]) -> Result<Vec<Constraint>, Vec<Violation>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    for (i, parts) in raw.iter().enumerate() {
        match Constraint::parse(parts) {
            Ok(c) => out.push(c),
            Err(e) => errors.push(Violation::at(format!("/constraints({i})"), e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// What constraints can see of an agent: its hostname, fault domain and
/// attributes, with attribute values already in their string form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentFacts {
    /// The agent's hostname.
    pub hostname: String,
    /// Fault-domain region, if the agent has one.
    pub region: Option<String>,
    /// Fault-domain zone, if the agent has one.
    pub zone: Option<String>,
    /// Attribute values as strings (`agora_model::AttributeValue`'s form).
    pub attributes: BTreeMap<String, String>,
}

impl AgentFacts {
    /// Facts from a hostname and model attributes.
    pub fn new(hostname: impl Into<String>, attributes: &Attributes) -> AgentFacts {
        AgentFacts {
            hostname: hostname.into(),
            region: None,
            zone: None,
            attributes: attributes
                .0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        }
    }

    /// The agent's value for `field`, if it has one.
    pub fn value(&self, field: &Field) -> Option<&str> {
        match field {
            Field::Hostname => Some(&self.hostname),
            Field::Region => self.region.as_deref(),
            Field::Zone => self.zone.as_deref(),
            Field::Attribute(name) => self.attributes.get(name).map(String::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(parts: &[&str]) -> Constraint {
        Constraint::parse(parts).unwrap()
    }

    #[test]
    fn parses_every_operator_and_field_alias() {
        assert_eq!(c(&["hostname", "UNIQUE"]).field, Field::Hostname);
        assert_eq!(c(&["@hostname", "UNIQUE"]).field, Field::Hostname);
        assert_eq!(c(&["@zone", "GROUP_BY"]).op, Operator::GroupBy(None));
        assert_eq!(c(&["rack", "GROUP_BY", "3"]).op, Operator::GroupBy(Some(3)));
        assert_eq!(c(&["rack", "CLUSTER"]).op, Operator::Cluster(None));
        assert_eq!(
            c(&["rack", "CLUSTER", "r1"]).op,
            Operator::Cluster(Some("r1".into()))
        );
        assert_eq!(c(&["rack", "MAX_PER", "2"]).op, Operator::MaxPer(2));
        assert_eq!(c(&["rack", "IS", "r1"]).op, Operator::Is("r1".into()));
        assert_eq!(c(&["rack", "LIKE", "r[12]"]).to_string(), "rack:LIKE:r[12]");
    }

    #[test]
    fn rejects_bad_constraints_with_marathon_messages() {
        let err = |p: &[&str]| Constraint::parse(p).unwrap_err();
        assert_eq!(err(&["hostname"]), ConstraintError::Arity);
        assert_eq!(
            err(&["hostname", "UNIQUE", "x"]),
            ConstraintError::UnexpectedValue
        );
        assert_eq!(err(&["rack", "LIKE"]), ConstraintError::MissingValue);
        assert_eq!(
            err(&["rack", "MAX_PER", "two"]),
            ConstraintError::NotANumber("two".into())
        );
        assert_eq!(
            err(&["rack", "GROUP_BY", "0"]),
            ConstraintError::NotANumber("0".into())
        );
        assert!(matches!(
            err(&["rack", "LIKE", "("]),
            ConstraintError::BadRegex { .. }
        ));
        assert!(matches!(
            err(&["rack", "NEAR"]),
            ConstraintError::UnknownOperator(_)
        ));
        assert_eq!(err(&["", "UNIQUE"]), ConstraintError::EmptyField);
    }

    #[test]
    fn errors_name_their_json_path() {
        let raw = vec![
            vec!["hostname", "UNIQUE"],
            vec!["rack", "MAX_PER"],
            vec!["rack", "LIKE", "["],
        ];
        let errs = parse_constraints(&raw).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].path, "/constraints(1)");
        assert_eq!(errs[0].errors, vec!["Missing value".to_string()]);
        assert_eq!(errs[1].path, "/constraints(2)");
    }

    #[test]
    fn like_and_unlike_match_the_whole_value() {
        let like = c(&["rack", "LIKE", "rack-[1-3]"]);
        assert!(like.matches_agent(Some("rack-2")));
        assert!(!like.matches_agent(Some("rack-22")));
        assert!(!like.matches_agent(Some("xrack-2")));
        let unlike = c(&["rack", "UNLIKE", "rack-[1-3]"]);
        assert!(!unlike.matches_agent(Some("rack-2")));
        assert!(unlike.matches_agent(Some("rack-22")));
        // Alternation is anchored as a whole, not per branch.
        assert!(!c(&["r", "LIKE", "a|b"]).matches_agent(Some("ab")));
    }

    #[test]
    fn a_missing_attribute_matches_only_unlike() {
        for op in [
            vec!["rack", "UNIQUE"],
            vec!["rack", "CLUSTER"],
            vec!["rack", "CLUSTER", "r1"],
            vec!["rack", "GROUP_BY"],
            vec!["rack", "LIKE", ".*"],
            vec!["rack", "MAX_PER", "5"],
            vec!["rack", "IS", "r1"],
        ] {
            assert!(
                !Constraint::parse(&op).unwrap().matches_agent(None),
                "{op:?}"
            );
        }
        assert!(c(&["rack", "UNLIKE", ".*"]).matches_agent(None));
    }

    #[test]
    fn is_compares_scalars_at_three_decimals() {
        let is = c(&["level", "IS", "3"]);
        assert!(is.matches_agent(Some("3")));
        assert!(is.matches_agent(Some("3.0")));
        assert!(is.matches_agent(Some("3.0001")));
        assert!(!is.matches_agent(Some("3.01")));
        assert!(!c(&["rack", "IS", "r1"]).matches_agent(Some("r10")));
    }

    #[test]
    fn facts_give_field_values() {
        let attrs = Attributes::parse("rack:r1;level:3").unwrap();
        let f = AgentFacts::new("host-1", &attrs);
        assert_eq!(f.value(&Field::Hostname), Some("host-1"));
        assert_eq!(f.value(&Field::Attribute("rack".into())), Some("r1"));
        assert_eq!(f.value(&Field::Attribute("level".into())), Some("3"));
        assert_eq!(f.value(&Field::Zone), None);
    }
}
