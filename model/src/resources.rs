//! The resource algebra: named scalars (cpus, mem, disk, gpus), ranges
//! (ports) and sets, each either unreserved (role `*`) or statically reserved
//! for a role, with the Mesos text form `cpus:4;mem:8192;ports:[31000-32000];cpus(web):2`
//! and the Mesos JSON form.
//!
//! Invariant: a `Resources` never holds an empty entry (zero scalar, empty
//! ranges or set), so structural equality is semantic equality, and no
//! operation can make a quantity negative.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{ModelError, ParseError};
use crate::ids::Role;
use crate::parse::{Cursor, RawValue};
use crate::ranges::Ranges;
use crate::scalar::Scalar;

/// Well-known resource names.
pub const CPUS: &str = "cpus";
/// Memory in MB.
pub const MEM: &str = "mem";
/// Disk in MB.
pub const DISK: &str = "disk";
/// Whole GPUs.
pub const GPUS: &str = "gpus";
/// Port ranges.
pub const PORTS: &str = "ports";

/// Below these an offer is not worth making (Mesos `--min_allocatable_resources`
/// default `cpus:0.01|mem:32`): enough of either makes resources allocatable.
pub const MIN_ALLOCATABLE_CPUS: Scalar = Scalar::from_milli(10);
/// See [`MIN_ALLOCATABLE_CPUS`].
pub const MIN_ALLOCATABLE_MEM: Scalar = Scalar::from_units(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Scalar,
    Ranges,
    Set,
}

/// The value of one resource entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A fixed-point quantity.
    Scalar(Scalar),
    /// Integer ranges, e.g. ports.
    Ranges(Ranges),
    /// A set of strings.
    Set(BTreeSet<String>),
}

impl Value {
    fn kind(&self) -> Kind {
        match self {
            Value::Scalar(_) => Kind::Scalar,
            Value::Ranges(_) => Kind::Ranges,
            Value::Set(_) => Kind::Set,
        }
    }
    fn is_empty(&self) -> bool {
        match self {
            Value::Scalar(s) => s.is_zero(),
            Value::Ranges(r) => r.is_empty(),
            Value::Set(s) => s.is_empty(),
        }
    }
    fn add(&mut self, other: &Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a += *b,
            (Value::Ranges(a), Value::Ranges(b)) => *a = a.union(b),
            (Value::Set(a), Value::Set(b)) => a.extend(b.iter().cloned()),
            _ => {} // keys include the kind, so kinds always match here
        }
    }
    fn subtract(&mut self, other: &Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a = a.saturating_sub(*b),
            (Value::Ranges(a), Value::Ranges(b)) => *a = a.difference(b),
            (Value::Set(a), Value::Set(b)) => a.retain(|x| !b.contains(x)),
            _ => {}
        }
    }
    fn contains(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => a >= b,
            (Value::Ranges(a), Value::Ranges(b)) => a.contains(b),
            (Value::Set(a), Value::Set(b)) => b.is_subset(a),
            _ => false,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar(s) => write!(f, "{s}"),
            Value::Ranges(r) => write!(f, "{r}"),
            Value::Set(s) => {
                f.write_str("{")?;
                for (i, x) in s.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(x)?;
                }
                f.write_str("}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    name: String,
    role: Role,
    kind: Kind,
}

/// A bag of resources. Cheap to clone for the small bags agents and tasks hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Resources {
    map: BTreeMap<Key, Value>,
}

/// One entry as seen from outside.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRef<'a> {
    /// Resource name.
    pub name: &'a str,
    /// Reservation role (`*` = unreserved).
    pub role: &'a Role,
    /// Value.
    pub value: &'a Value,
}

impl Resources {
    /// No resources.
    pub fn new() -> Resources {
        Resources::default()
    }

    /// Adds one entry (merging with an existing one of the same name, role and type).
    pub fn push(&mut self, name: impl Into<String>, role: Role, value: Value) {
        if value.is_empty() {
            return;
        }
        let key = Key {
            name: name.into(),
            role,
            kind: value.kind(),
        };
        match self.map.get_mut(&key) {
            Some(v) => v.add(&value),
            None => {
                self.map.insert(key, value);
            }
        }
    }

    /// Builder: adds an unreserved scalar.
    pub fn with_scalar(mut self, name: &str, v: Scalar) -> Resources {
        self.push(name, Role::star(), Value::Scalar(v));
        self
    }

    /// Builder: adds unreserved ranges.
    pub fn with_ranges(mut self, name: &str, r: Ranges) -> Resources {
        self.push(name, Role::star(), Value::Ranges(r));
        self
    }

    /// Convenience for tests and fixtures: cpus, mem (MB), disk (MB), unreserved.
    pub fn cpus_mem_disk(cpus: f64, mem: f64, disk: f64) -> Resources {
        let s = |v: f64| Scalar::from_f64(v).unwrap_or(Scalar::ZERO);
        Resources::new()
            .with_scalar(CPUS, s(cpus))
            .with_scalar(MEM, s(mem))
            .with_scalar(DISK, s(disk))
    }

    /// Iterates over the entries in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = ResourceRef<'_>> {
        self.map.iter().map(|(k, v)| ResourceRef {
            name: &k.name,
            role: &k.role,
            value: v,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Are there no resources at all?
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Resources) {
        for (k, v) in &other.map {
            match self.map.get_mut(k) {
                Some(mine) => mine.add(v),
                None => {
                    self.map.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// Removes `other` from `self`, never below zero; entries that become
    /// empty are dropped.
    pub fn subtract(&mut self, other: &Resources) {
        for (k, v) in &other.map {
            if let Some(mine) = self.map.get_mut(k) {
                mine.subtract(v);
                if mine.is_empty() {
                    self.map.remove(k);
                }
            }
        }
    }

    /// `self + other` as a new bag.
    pub fn plus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.add(other);
        r
    }

    /// `self - other` as a new bag.
    pub fn minus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.subtract(other);
        r
    }

    /// Does `self` hold everything in `other` (same names, roles, types)?
    pub fn contains(&self, other: &Resources) -> bool {
        other
            .map
            .iter()
            .all(|(k, v)| self.map.get(k).is_some_and(|mine| mine.contains(v)))
    }

    /// Total of a scalar over all roles.
    pub fn scalar(&self, name: &str) -> Scalar {
        self.map
            .iter()
            .filter(|(k, _)| k.name == name)
            .fold(Scalar::ZERO, |acc, (_, v)| match v {
                Value::Scalar(s) => acc + *s,
                _ => acc,
            })
    }

    /// cpus over all roles.
    pub fn cpus(&self) -> Scalar {
        self.scalar(CPUS)
    }
    /// mem (MB) over all roles.
    pub fn mem(&self) -> Scalar {
        self.scalar(MEM)
    }
    /// disk (MB) over all roles.
    pub fn disk(&self) -> Scalar {
        self.scalar(DISK)
    }
    /// gpus over all roles.
    pub fn gpus(&self) -> Scalar {
        self.scalar(GPUS)
    }

    /// Union of a ranges resource over all roles.
    pub fn ranges(&self, name: &str) -> Ranges {
        self.map
            .iter()
            .filter(|(k, _)| k.name == name)
            .fold(Ranges::default(), |acc, (_, v)| match v {
                Value::Ranges(r) => acc.union(r),
                _ => acc,
            })
    }

    /// Ports over all roles.
    pub fn ports(&self) -> Ranges {
        self.ranges(PORTS)
    }

    /// Only the entries whose role satisfies `f`.
    pub fn filter_roles(&self, f: impl Fn(&Role) -> bool) -> Resources {
        Resources {
            map: self
                .map
                .iter()
                .filter(|(k, _)| f(&k.role))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The unreserved (`*`) part.
    pub fn unreserved(&self) -> Resources {
        self.filter_roles(Role::is_star)
    }

    /// What a framework in `role` may be offered: unreserved plus reserved for `role`.
    pub fn allocatable_to(&self, role: &Role) -> Resources {
        self.filter_roles(|r| r.is_star() || r == role)
    }

    /// Roles that hold static reservations here.
    pub fn reservation_roles(&self) -> BTreeSet<Role> {
        self.map
            .keys()
            .filter(|k| !k.role.is_star())
            .map(|k| k.role.clone())
            .collect()
    }

    /// Are these worth offering (Mesos min allocatable: cpus 0.01 or mem 32)?
    pub fn is_allocatable(&self) -> bool {
        self.cpus() >= MIN_ALLOCATABLE_CPUS || self.mem() >= MIN_ALLOCATABLE_MEM
    }

    /// Checks names against their required types: cpus/mem/disk/gpus scalar,
    /// gpus whole, ports ranges, and no name with two types.
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
        for (k, v) in &self.map {
            if let Some(prev) = kinds.insert(&k.name, k.kind)
                && prev != k.kind
            {
                return Err(ModelError::invalid(
                    &k.name,
                    "used with two different value types",
                ));
            }
            if k.name.is_empty() {
                return Err(ModelError::invalid("resources", "resource name is empty"));
            }
            match (k.name.as_str(), v) {
                (CPUS | MEM | DISK, Value::Scalar(_)) => {}
                (GPUS, Value::Scalar(s)) if !s.is_whole() => {
                    return Err(ModelError::invalid(
                        GPUS,
                        format!("{s} is not a whole number"),
                    ));
                }
                (GPUS, Value::Scalar(_)) => {}
                (PORTS, Value::Ranges(r))
                    if r.pairs()
                        .last()
                        .is_some_and(|&(_, e)| e > u64::from(u16::MAX)) =>
                {
                    return Err(ModelError::invalid(PORTS, "port above 65535"));
                }
                (PORTS, Value::Ranges(_)) => {}
                (CPUS | MEM | DISK | GPUS, _) => {
                    return Err(ModelError::invalid(&k.name, "must be a scalar"));
                }
                (PORTS, _) => return Err(ModelError::invalid(PORTS, "must be ranges")),
                _ => {}
            }
        }
        Ok(())
    }

    /// Parses the Mesos text form, e.g.
    /// `cpus:4;mem:8192;disk:10240;ports:[31000-32000];cpus(web):2;bugs:{a,b}`.
    pub fn parse(text: &str) -> Result<Resources, ModelError> {
        let mut c = Cursor::new(text);
        let mut out = Resources::new();
        c.skip_ws();
        if c.at_end() {
            return Ok(out);
        }
        loop {
            let (p, name) = c.take_until(&[':', '(', ';']);
            if name.is_empty() {
                return Err(ParseError::new(p, "expected a resource name").into());
            }
            if let Some(bad) = name
                .chars()
                .find(|ch| !(ch.is_ascii_alphanumeric() || "_-.".contains(*ch)))
            {
                return Err(ParseError::new(
                    p,
                    format!("invalid character {bad:?} in resource name {name:?}"),
                )
                .into());
            }
            let role = if c.eat('(') {
                let (rp, role) = c.take_until(&[')', ':', ';']);
                c.expect(')', "to close the role")?;
                Role::parse(role).map_err(|e| ParseError::new(rp, e.to_string()))?
            } else {
                Role::star()
            };
            c.expect(':', &format!("after resource name {name:?}"))?;
            let vp = c.pos;
            let value = match c.value()? {
                RawValue::Number(v, _) => Value::Scalar(
                    Scalar::from_f64(v).map_err(|e| ParseError::new(vp, e.to_string()))?,
                ),
                RawValue::Ranges(r) => Value::Ranges(r),
                RawValue::Set(s) => Value::Set(s),
                RawValue::Text(t) => {
                    return Err(ParseError::new(
                        vp,
                        format!("{t:?} is not a number, [ranges] or {{set}}"),
                    )
                    .into());
                }
            };
            if let Value::Scalar(s) = &value
                && name == GPUS
                && !s.is_whole()
            {
                return Err(
                    ParseError::new(vp, format!("gpus must be a whole number, got {s}")).into(),
                );
            }
            out.push(name, role, value);
            if !c.separator()? {
                break;
            }
        }
        out.validate()?;
        Ok(out)
    }

    /// Carves a task's request out of these (offered) resources: reserved
    /// resources of `role` first, then unreserved; concrete ports are the
    /// lowest free ones. Fails with what is missing.
    pub fn carve(&self, req: &ResourceRequest, role: &Role) -> Result<Resources, ModelError> {
        let mut out = Resources::new();
        let mut missing = Vec::new();
        for (name, want) in [
            (CPUS, req.cpus),
            (MEM, req.mem),
            (DISK, req.disk),
            (GPUS, req.gpus),
        ] {
            let mut left = want;
            for r in [role.clone(), Role::star()] {
                if left.is_zero() {
                    break;
                }
                let key = Key {
                    name: name.to_string(),
                    role: r.clone(),
                    kind: Kind::Scalar,
                };
                if let Some(Value::Scalar(have)) = self.map.get(&key) {
                    let take = (*have).min(left);
                    out.push(name, r, Value::Scalar(take));
                    left = left.saturating_sub(take);
                }
                if role.is_star() {
                    break;
                }
            }
            if !left.is_zero() {
                missing.push(format!(
                    "{name} (need {want}, have {})",
                    self.allocatable_to(role).scalar(name)
                ));
            }
        }
        if req.ports > 0 {
            let mut left = u64::from(req.ports);
            for r in [role.clone(), Role::star()] {
                if left == 0 {
                    break;
                }
                let key = Key {
                    name: PORTS.to_string(),
                    role: r.clone(),
                    kind: Kind::Ranges,
                };
                if let Some(Value::Ranges(have)) = self.map.get(&key) {
                    let n = have.count().min(left);
                    if let Some(take) = have.take_lowest(n) {
                        out.push(PORTS, r, Value::Ranges(take));
                        left -= n;
                    }
                }
                if role.is_star() {
                    break;
                }
            }
            if left > 0 {
                missing.push(format!(
                    "ports (need {}, have {})",
                    req.ports,
                    self.allocatable_to(role).ports().count()
                ));
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(ModelError::Insufficient(missing.join(", ")))
        }
    }

    /// Parses the Mesos JSON form (an array of resource objects).
    pub fn from_json(json: &str) -> Result<Resources, ModelError> {
        let items: Vec<ResourceJson> = serde_json::from_str(json)
            .map_err(|e| ParseError::new(json_err_pos(json, &e), e.to_string()))?;
        let mut out = Resources::new();
        for (i, item) in items.into_iter().enumerate() {
            let role = match item.role.as_deref() {
                None | Some("") => Role::star(),
                Some(r) => Role::parse(r)
                    .map_err(|e| ModelError::invalid(format!("[{i}].role"), e.to_string()))?,
            };
            let value = match item.kind.as_str() {
                "SCALAR" => {
                    let v = item
                        .scalar
                        .ok_or_else(|| ModelError::invalid(format!("[{i}].scalar"), "missing"))?;
                    Value::Scalar(Scalar::from_f64(v.value).map_err(|e| {
                        ModelError::invalid(format!("[{i}].scalar.value"), e.to_string())
                    })?)
                }
                "RANGES" => {
                    let v = item
                        .ranges
                        .ok_or_else(|| ModelError::invalid(format!("[{i}].ranges"), "missing"))?;
                    for (j, r) in v.range.iter().enumerate() {
                        if r.end < r.begin {
                            return Err(ModelError::invalid(
                                format!("[{i}].ranges.range[{j}]"),
                                "end is below begin",
                            ));
                        }
                    }
                    Value::Ranges(Ranges::from_pairs(v.range.iter().map(|r| (r.begin, r.end))))
                }
                "SET" => {
                    let v = item
                        .set
                        .ok_or_else(|| ModelError::invalid(format!("[{i}].set"), "missing"))?;
                    Value::Set(v.item.into_iter().collect())
                }
                other => {
                    return Err(ModelError::invalid(
                        format!("[{i}].type"),
                        format!("unknown type {other:?}"),
                    ));
                }
            };
            out.push(item.name, role, value);
        }
        out.validate()?;
        Ok(out)
    }

    /// The Mesos JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let items: Vec<ResourceJson> = self
            .iter()
            .map(|r| {
                let mut j = ResourceJson {
                    name: r.name.to_string(),
                    kind: String::new(),
                    role: Some(r.role.to_string()),
                    scalar: None,
                    ranges: None,
                    set: None,
                };
                match r.value {
                    Value::Scalar(s) => {
                        j.kind = "SCALAR".into();
                        j.scalar = Some(ScalarJson { value: s.as_f64() });
                    }
                    Value::Ranges(rg) => {
                        j.kind = "RANGES".into();
                        j.ranges = Some(RangesJson {
                            range: rg
                                .pairs()
                                .iter()
                                .map(|&(begin, end)| RangeJson { begin, end })
                                .collect(),
                        });
                    }
                    Value::Set(s) => {
                        j.kind = "SET".into();
                        j.set = Some(SetJson {
                            item: s.iter().cloned().collect(),
                        });
                    }
                }
                j
            })
            .collect();
        serde_json::to_value(items).unwrap_or(serde_json::Value::Null)
    }

    /// A compact summary object `{"cpus": 4, "mem": 8192, "ports": "[31000-32000]"}`
    /// over all roles, for status pages.
    pub fn summary_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for name in [CPUS, MEM, DISK, GPUS] {
            m.insert(name.into(), serde_json::json!(self.scalar(name).as_f64()));
        }
        m.insert(PORTS.into(), serde_json::json!(self.ports().to_string()));
        serde_json::Value::Object(m)
    }
}

fn json_err_pos(json: &str, e: &serde_json::Error) -> usize {
    // serde_json reports line/column; turn them into a byte offset.
    let mut pos = 0;
    for (i, line) in json.split_inclusive('\n').enumerate() {
        if i + 1 == e.line() {
            return pos + e.column().saturating_sub(1);
        }
        pos += line.len();
    }
    pos
}

impl fmt::Display for Resources {
    /// The Mesos text form; parse(to_string(r)) == r.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            if r.role.is_star() {
                write!(f, "{}:{}", r.name, r.value)?;
            } else {
                write!(f, "{}({}):{}", r.name, r.role, r.value)?;
            }
        }
        Ok(())
    }
}

impl Serialize for Resources {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::String(s) => Resources::parse(&s).map_err(serde::de::Error::custom),
            other => Resources::from_json(&other.to_string()).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ResourceJson {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scalar: Option<ScalarJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ranges: Option<RangesJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set: Option<SetJson>,
}

#[derive(Serialize, Deserialize)]
struct ScalarJson {
    value: f64,
}

#[derive(Serialize, Deserialize)]
struct RangesJson {
    #[serde(default)]
    range: Vec<RangeJson>,
}

#[derive(Serialize, Deserialize)]
struct RangeJson {
    begin: u64,
    end: u64,
}

#[derive(Serialize, Deserialize)]
struct SetJson {
    #[serde(default)]
    item: Vec<String>,
}

/// What a task asks for; `carve` turns it into concrete resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceRequest {
    /// CPUs.
    pub cpus: Scalar,
    /// Memory, MB.
    pub mem: Scalar,
    /// Disk, MB.
    pub disk: Scalar,
    /// Whole GPUs.
    pub gpus: Scalar,
    /// How many host ports.
    pub ports: u32,
}

impl ResourceRequest {
    /// A request from floats (fixtures, examples); invalid values become zero.
    pub fn new(cpus: f64, mem: f64) -> ResourceRequest {
        ResourceRequest {
            cpus: Scalar::from_f64(cpus).unwrap_or(Scalar::ZERO),
            mem: Scalar::from_f64(mem).unwrap_or(Scalar::ZERO),
            ..Default::default()
        }
    }
    /// Builder: disk in MB.
    pub fn disk(mut self, disk: f64) -> Self {
        self.disk = Scalar::from_f64(disk).unwrap_or(Scalar::ZERO);
        self
    }
    /// Builder: number of ports.
    pub fn ports(mut self, n: u32) -> Self {
        self.ports = n;
        self
    }
}

#[cfg(test)]
mod tests;
