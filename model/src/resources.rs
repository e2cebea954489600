//! The resource algebra: named scalars (cpus, mem, disk, gpus), ranges
//! (ports) and sets, each either unreserved (role `*`) or statically reserved
//! for a role, with the Mesos text form `cpus:4;mem:8192;ports:[31000-32000];cpus(web):2`
//! and the Mesos JSON form.
//!
//! Invariant: a `Resources` never holds an empty entry (zero scalar, empty
//! ranges or set), so structural equality is semantic equality, and no
//! operation can make a quantity negative.
//!
//! Representation (for speed; see BENCHMARKS.md, "Allocator cycle"): the
//! allocator copies one `Resources` per offer, 10,000 per cycle, and reads
//! two per agent in random order. Almost every bag is unreserved cpus, mem,
//! disk, maybe gpus, and a port range, so those live in fixed inline slots:
//! a copy is a `memcpy` of 168 bytes, with no allocation and no pointer to
//! chase (more port ranges are shared, see `ranges.rs`). Everything else (reservations, other names,
//! sets) goes to a sorted "spill" list behind an `Arc`: copying shares it,
//! and only a mutation of a shared list copies it (`Arc::make_mut`).
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, LazyLock};

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

/// Names of the unreserved scalar slots, in name order: the order `iter`
/// yields them in, which is the order of the former sorted map.
const SCALAR_SLOTS: [&str; 4] = [CPUS, DISK, GPUS, MEM];
/// Slot indices, for readability.
const SLOT_CPUS: usize = 0;
const SLOT_DISK: usize = 1;
const SLOT_GPUS: usize = 2;
const SLOT_MEM: usize = 3;
/// Fixed entries: the four scalar slots, then ports.
const FIXED: usize = SCALAR_SLOTS.len() + 1;

fn scalar_slot(name: &str) -> Option<usize> {
    match name {
        CPUS => Some(SLOT_CPUS),
        DISK => Some(SLOT_DISK),
        GPUS => Some(SLOT_GPUS),
        MEM => Some(SLOT_MEM),
        _ => None,
    }
}

/// `&Role` of the fixed slots, which store no role of their own.
static STAR: LazyLock<Role> = LazyLock::new(Role::star);
/// What an absent ports slot reads as.
static EMPTY_RANGES: Ranges = Ranges::empty();

/// One spilled entry: anything that is not an unreserved well-known
/// resource of its usual type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Entry {
    name: Box<str>,
    role: Role,
    value: Value,
}

impl Entry {
    fn key(&self) -> (&str, &str, Kind) {
        (&self.name, self.role.as_str(), self.value.kind())
    }
}

/// A bag of resources. Copying the common case (unreserved cpus, mem, disk,
/// gpus, ports) allocates nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Resources {
    /// Unreserved cpus, disk, gpus, mem (see [`SCALAR_SLOTS`]); always
    /// `Value::Scalar`, zero when absent. Stored as `Value` so that `iter`
    /// can lend a `&Value` for them.
    scalars: [Value; 4],
    /// Unreserved ports; always `Value::Ranges`, empty when absent.
    ports: Value,
    /// Every other entry, sorted by (name, role, kind), none empty; `None`
    /// rather than an empty list, so equality stays structural.
    spill: Option<Arc<Vec<Entry>>>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            scalars: [
                Value::Scalar(Scalar::ZERO),
                Value::Scalar(Scalar::ZERO),
                Value::Scalar(Scalar::ZERO),
                Value::Scalar(Scalar::ZERO),
            ],
            ports: Value::Ranges(Ranges::default()),
            spill: None,
        }
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resources({self})")
    }
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

/// Entries of a [`Resources`] in (name, role, kind) order: the fixed slots
/// merged with the sorted spill.
struct Iter<'a> {
    res: &'a Resources,
    fixed: usize,
    spill: &'a [Entry],
}

impl<'a> Iter<'a> {
    /// The next non-empty fixed entry at or after `self.fixed`.
    fn fixed_entry(&mut self) -> Option<(&'static str, Kind, &'a Value)> {
        while self.fixed < FIXED {
            let (name, kind, value) = if self.fixed < SCALAR_SLOTS.len() {
                (
                    SCALAR_SLOTS[self.fixed],
                    Kind::Scalar,
                    &self.res.scalars[self.fixed],
                )
            } else {
                (PORTS, Kind::Ranges, &self.res.ports)
            };
            if !value.is_empty() {
                return Some((name, kind, value));
            }
            self.fixed += 1;
        }
        None
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = ResourceRef<'a>;
    fn next(&mut self) -> Option<ResourceRef<'a>> {
        let fixed = self.fixed_entry();
        let spilled = self.spill.first();
        let take_fixed = match (fixed, spilled) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((name, kind, _)), Some(e)) => (name, STAR.as_str(), kind) < e.key(),
        };
        if take_fixed {
            let (name, _, value) = fixed?;
            self.fixed += 1;
            Some(ResourceRef {
                name,
                role: &STAR,
                value,
            })
        } else {
            let (e, rest) = self.spill.split_first()?;
            self.spill = rest;
            Some(ResourceRef {
                name: &e.name,
                role: &e.role,
                value: &e.value,
            })
        }
    }
}

impl Resources {
    /// No resources.
    pub fn new() -> Resources {
        Resources::default()
    }

    fn slot(&self, i: usize) -> Scalar {
        match self.scalars[i] {
            Value::Scalar(s) => s,
            _ => Scalar::ZERO,
        }
    }

    fn set_slot(&mut self, i: usize, s: Scalar) {
        match &mut self.scalars[i] {
            // In place: assigning a whole `Value` would first drop the old one.
            Value::Scalar(x) => *x = s,
            other => *other = Value::Scalar(s),
        }
    }

    fn port_ranges(&self) -> &Ranges {
        match &self.ports {
            Value::Ranges(r) => r,
            _ => &EMPTY_RANGES,
        }
    }

    fn spilled(&self) -> &[Entry] {
        self.spill.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The spill for writing; copies it first if it is shared.
    fn spill_mut(&mut self) -> &mut Vec<Entry> {
        Arc::make_mut(self.spill.get_or_insert_with(Default::default))
    }

    /// Restores "no empty spill list" after removals.
    fn tidy_spill(&mut self) {
        if self.spill.as_ref().is_some_and(|s| s.is_empty()) {
            self.spill = None;
        }
    }

    fn find_spilled(&self, key: (&str, &str, Kind)) -> Result<usize, usize> {
        self.spilled().binary_search_by(|e| e.key().cmp(&key))
    }

    /// The value stored under (name, role, kind), if any.
    fn get(&self, name: &str, role: &Role, kind: Kind) -> Option<&Value> {
        if role.is_star() {
            match (scalar_slot(name), kind) {
                (Some(i), Kind::Scalar) => {
                    return Some(&self.scalars[i]).filter(|v| !v.is_empty());
                }
                _ if name == PORTS && kind == Kind::Ranges => {
                    return Some(&self.ports).filter(|v| !v.is_empty());
                }
                _ => {}
            }
        }
        let i = self.find_spilled((name, role.as_str(), kind)).ok()?;
        self.spilled().get(i).map(|e| &e.value)
    }

    /// Adds a spilled entry (merging with an existing one).
    fn add_spilled(&mut self, name: &str, role: &Role, value: &Value) {
        match self.find_spilled((name, role.as_str(), value.kind())) {
            Ok(i) => self.spill_mut()[i].value.add(value),
            Err(i) => self.spill_mut().insert(
                i,
                Entry {
                    name: name.into(),
                    role: role.clone(),
                    value: value.clone(),
                },
            ),
        }
    }

    /// Adds one entry (merging with an existing one of the same name, role and type).
    pub fn push(&mut self, name: impl Into<String>, role: Role, value: Value) {
        if value.is_empty() {
            return;
        }
        let name: String = name.into();
        if role.is_star() {
            match (scalar_slot(&name), &value) {
                (Some(i), Value::Scalar(s)) => {
                    let sum = self.slot(i) + *s;
                    self.set_slot(i, sum);
                    return;
                }
                (_, Value::Ranges(r)) if name == PORTS => {
                    self.ports = Value::Ranges(self.port_ranges().union(r));
                    return;
                }
                _ => {}
            }
        }
        match self.find_spilled((&name, role.as_str(), value.kind())) {
            Ok(i) => self.spill_mut()[i].value.add(&value),
            Err(i) => self.spill_mut().insert(
                i,
                Entry {
                    name: name.into_boxed_str(),
                    role,
                    value,
                },
            ),
        }
    }

    /// Builder: adds an unreserved scalar. Well-known names go straight to
    /// their slot, without the name allocation `push` makes.
    pub fn with_scalar(mut self, name: &str, v: Scalar) -> Resources {
        match scalar_slot(name) {
            Some(i) => {
                let sum = self.slot(i) + v;
                self.set_slot(i, sum);
            }
            None => self.push(name, Role::star(), Value::Scalar(v)),
        }
        self
    }

    /// Builder: adds unreserved ranges (ports without allocating a name).
    pub fn with_ranges(mut self, name: &str, r: Ranges) -> Resources {
        if name == PORTS {
            if !r.is_empty() {
                self.ports = Value::Ranges(self.port_ranges().union(&r));
            }
        } else {
            self.push(name, Role::star(), Value::Ranges(r));
        }
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

    /// Iterates over the entries in a stable order (by name, then role).
    pub fn iter(&self) -> impl Iterator<Item = ResourceRef<'_>> {
        Iter {
            res: self,
            fixed: 0,
            spill: self.spilled(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        let fixed = self.scalars.iter().filter(|v| !v.is_empty()).count()
            + usize::from(!self.ports.is_empty());
        fixed + self.spilled().len()
    }

    /// Are there no resources at all?
    pub fn is_empty(&self) -> bool {
        self.spill.is_none() && self.ports.is_empty() && self.scalars.iter().all(Value::is_empty)
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Resources) {
        for i in 0..SCALAR_SLOTS.len() {
            let theirs = other.slot(i);
            if !theirs.is_zero() {
                let sum = self.slot(i) + theirs;
                self.set_slot(i, sum);
            }
        }
        if !other.ports.is_empty() {
            self.ports = Value::Ranges(self.port_ranges().union(other.port_ranges()));
        }
        match (&self.spill, &other.spill) {
            (_, None) => {}
            // Share the other bag's list instead of copying it.
            (None, Some(theirs)) => self.spill = Some(Arc::clone(theirs)),
            (Some(_), Some(theirs)) => {
                for e in theirs.iter() {
                    self.add_spilled(&e.name, &e.role, &e.value);
                }
            }
        }
    }

    /// Removes `other` from `self`, never below zero; entries that become
    /// empty are dropped.
    pub fn subtract(&mut self, other: &Resources) {
        for i in 0..SCALAR_SLOTS.len() {
            let left = self.slot(i).saturating_sub(other.slot(i));
            self.set_slot(i, left);
        }
        if !other.ports.is_empty() && !self.ports.is_empty() {
            self.ports = Value::Ranges(self.port_ranges().difference(other.port_ranges()));
        }
        if self.spill.is_none() {
            return;
        }
        for e in other.spilled() {
            if let Ok(i) = self.find_spilled(e.key()) {
                let spill = self.spill_mut();
                spill[i].value.subtract(&e.value);
                if spill[i].value.is_empty() {
                    spill.remove(i);
                }
            }
        }
        self.tidy_spill();
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
        (0..SCALAR_SLOTS.len()).all(|i| self.slot(i) >= other.slot(i))
            && self.port_ranges().contains(other.port_ranges())
            && other.spilled().iter().all(|e| {
                self.find_spilled(e.key())
                    .ok()
                    .and_then(|i| self.spilled().get(i))
                    .is_some_and(|mine| mine.value.contains(&e.value))
            })
    }

    /// Total of a scalar over all roles.
    pub fn scalar(&self, name: &str) -> Scalar {
        let fixed = scalar_slot(name).map_or(Scalar::ZERO, |i| self.slot(i));
        self.spilled()
            .iter()
            .filter(|e| &*e.name == name)
            .fold(fixed, |acc, e| match e.value {
                Value::Scalar(s) => acc + s,
                _ => acc,
            })
    }

    /// The unreserved (`*`) amount of a scalar; for cpus, mem, disk and gpus
    /// a plain field read.
    pub fn unreserved_scalar(&self, name: &str) -> Scalar {
        // An unreserved well-known scalar is always in its slot.
        if let Some(i) = scalar_slot(name) {
            return self.slot(i);
        }
        self.spilled()
            .iter()
            .filter(|e| &*e.name == name && e.role.is_star())
            .fold(Scalar::ZERO, |acc, e| match e.value {
                Value::Scalar(s) => acc + s,
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
        let fixed = if name == PORTS {
            self.port_ranges().clone()
        } else {
            Ranges::default()
        };
        self.spilled()
            .iter()
            .filter(|e| &*e.name == name)
            .fold(fixed, |acc, e| match &e.value {
                Value::Ranges(r) => acc.union(r),
                _ => acc,
            })
    }

    /// Ports over all roles.
    pub fn ports(&self) -> Ranges {
        self.ranges(PORTS)
    }

    /// Is everything here unreserved cpus, mem, disk, gpus or ports (so
    /// those five amounts describe the bag completely)? True for almost
    /// every agent and task; callers use it to take a fast path.
    pub fn only_unreserved_well_known(&self) -> bool {
        self.spill.is_none()
    }

    /// Unreserved cpus, mem, disk and gpus, in that order: four field reads,
    /// for callers that sum many bags (the allocator's snapshot builder).
    pub fn unreserved_well_known(&self) -> [Scalar; 4] {
        [
            self.slot(SLOT_CPUS),
            self.slot(SLOT_MEM),
            self.slot(SLOT_DISK),
            self.slot(SLOT_GPUS),
        ]
    }

    /// Unreserved ports; a borrow, unlike [`Resources::ports`].
    pub fn unreserved_ports(&self) -> &Ranges {
        self.port_ranges()
    }

    /// Is anything here reserved for a role (anything but `*`)?
    pub fn has_reservations(&self) -> bool {
        self.spilled().iter().any(|e| !e.role.is_star())
    }

    /// Only the entries whose role satisfies `f`.
    pub fn filter_roles(&self, f: impl Fn(&Role) -> bool) -> Resources {
        let mut out = if f(&STAR) {
            Resources {
                spill: None,
                ..self.clone()
            }
        } else {
            Resources::new()
        };
        let spilled = self.spilled();
        if spilled.iter().all(|e| f(&e.role)) {
            // Everything stays: share the list.
            out.spill.clone_from(&self.spill);
        } else {
            let kept: Vec<Entry> = spilled.iter().filter(|e| f(&e.role)).cloned().collect();
            out.spill = (!kept.is_empty()).then(|| Arc::new(kept));
        }
        out
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
        self.spilled()
            .iter()
            .filter(|e| !e.role.is_star())
            .map(|e| e.role.clone())
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
        for e in self.iter() {
            let kind = e.value.kind();
            if let Some(prev) = kinds.insert(e.name, kind)
                && prev != kind
            {
                return Err(ModelError::invalid(
                    e.name,
                    "used with two different value types",
                ));
            }
            if e.name.is_empty() {
                return Err(ModelError::invalid("resources", "resource name is empty"));
            }
            match (e.name, e.value) {
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
                    return Err(ModelError::invalid(e.name, "must be a scalar"));
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
                if let Some(Value::Scalar(have)) = self.get(name, &r, Kind::Scalar) {
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
                if let Some(Value::Ranges(have)) = self.get(PORTS, &r, Kind::Ranges) {
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

mod json;

#[cfg(test)]
mod tests;
