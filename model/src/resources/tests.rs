use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn r(s: &str) -> Resources {
    Resources::parse(s).unwrap()
}

#[test]
fn parses_and_prints_the_mesos_text_form() {
    let res = r("cpus:4;mem:8192;disk:10240;ports:[31000-32000];cpus(web):2;bugs(debug):{a,b,c}");
    assert_eq!(res.cpus(), Scalar::from_units(6));
    assert_eq!(res.unreserved().cpus(), Scalar::from_units(4));
    assert_eq!(res.ports().count(), 1001);
    assert_eq!(Resources::parse(&res.to_string()).unwrap(), res);
    assert_eq!(r(" cpus : 1.5 ; mem:32 ").cpus(), Scalar::from_milli(1500));
    assert!(r("").is_empty());
}

#[test]
fn malformed_text_gives_position_and_reason() {
    let cases = [
        ("cpus4", "expected ':'"),
        ("cpus:abc", "is not a number"),
        ("cpus:4;mem", "expected ':'"),
        ("ports:[31000-]", "range end"),
        ("ports:[32000-31000]", "below begin"),
        ("ports:[1-2", "to close ranges"),
        ("cpus(:1", "role"),
        ("cpus:-1", "negative"),
        ("gpus:1.5", "whole number"),
        ("cpus:[1-2]", "must be a scalar"),
        ("ports:5", "must be ranges"),
        ("c pus:1", "invalid character"),
    ];
    for (input, want) in cases {
        let err = Resources::parse(input).unwrap_err().to_string();
        assert!(err.contains(want), "{input:?}: {err:?} lacks {want:?}");
    }
    match Resources::parse("cpus:4;mem:x") {
        Err(ModelError::Parse(p)) => assert_eq!(p.pos, 11),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn json_form_round_trips() {
    let res = r("cpus:4;mem:1024;ports:[31000-31005,31010-31010];cpus(web):0.5;zones:{a,b}");
    let json = res.to_json().to_string();
    assert_eq!(Resources::from_json(&json).unwrap(), res);
    let mesos = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":2}},
                    {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":3}]}}]"#;
    let parsed = Resources::from_json(mesos).unwrap();
    assert_eq!(parsed, r("cpus:2;ports:[1-3]"));
    assert!(
        Resources::from_json(r#"[{"name":"cpus","type":"SCALAR"}]"#)
            .unwrap_err()
            .to_string()
            .contains("[0].scalar")
    );
    assert!(Resources::from_json("[{").is_err());
}

#[test]
fn carve_prefers_reserved_and_picks_lowest_ports() {
    let offer = r("cpus:4;mem:4096;cpus(web):1;ports:[31000-31002,31010-31020]");
    let web = Role::parse("web").unwrap();
    let got = offer
        .carve(&ResourceRequest::new(1.5, 512.0).ports(4), &web)
        .unwrap();
    assert_eq!(
        got,
        r("cpus(web):1;cpus:0.5;mem:512;ports:[31000-31002,31010-31010]")
    );
    assert!(offer.contains(&got));
    let star = offer
        .carve(&ResourceRequest::new(4.5, 1.0), &Role::star())
        .unwrap_err();
    assert!(
        star.to_string().contains("cpus (need 4.5, have 4)"),
        "{star}"
    );
    let ports = offer
        .carve(&ResourceRequest::new(0.1, 1.0).ports(100), &Role::star())
        .unwrap_err();
    assert!(ports.to_string().contains("ports"), "{ports}");
}

#[test]
fn allocatable_threshold_is_mesos_minimum() {
    assert!(r("cpus:0.01").is_allocatable());
    assert!(r("mem:32").is_allocatable());
    assert!(!r("cpus:0.009;mem:31;disk:100").is_allocatable());
}

fn arb_resources() -> impl Strategy<Value = Resources> {
    let role = prop_oneof![Just(Role::star()), Just(Role::parse("web").unwrap())];
    let entry = prop_oneof![
        (
            prop_oneof![Just(CPUS), Just(MEM), Just(DISK)],
            0i64..100_000,
            role.clone()
        )
            .prop_map(|(n, m, role)| (n, role, Value::Scalar(Scalar::from_milli(m)))),
        (
            proptest::collection::vec((31000u64..31100, 0u64..10), 0..4),
            role
        )
            .prop_map(|(v, role)| (
                PORTS,
                role,
                Value::Ranges(Ranges::from_pairs(v.into_iter().map(|(b, l)| (b, b + l))))
            )),
    ];
    proptest::collection::vec(entry, 0..6).prop_map(|v| {
        let mut res = Resources::new();
        for (n, role, val) in v {
            res.push(n, role, val);
        }
        res
    })
}

proptest! {
    #[test]
    fn add_then_subtract_is_identity(a in arb_resources(), b in arb_resources()) {
        // Ranges are sets, so a + b - b == a holds when b is disjoint from a,
        // and always for scalars; check the general law a + b - b ⊆ a ⊆ a + b.
        let sum = a.plus(&b);
        prop_assert!(sum.contains(&a));
        prop_assert!(sum.contains(&b));
        let back = sum.minus(&b);
        prop_assert!(a.contains(&back));
        let disjoint_b = b.minus(&a);
        prop_assert_eq!(a.plus(&disjoint_b).minus(&disjoint_b), a.clone());
    }

    #[test]
    fn contains_after_subtract_and_never_negative(a in arb_resources(), b in arb_resources()) {
        let d = a.minus(&b);
        prop_assert!(a.contains(&d));
        for e in d.iter() {
            if let Value::Scalar(s) = e.value { prop_assert!(s.milli() > 0); }
        }
        prop_assert!(d.minus(&d).is_empty());
    }

    #[test]
    fn text_form_round_trips(a in arb_resources()) {
        prop_assert_eq!(Resources::parse(&a.to_string()).unwrap(), a.clone());
        prop_assert_eq!(Resources::from_json(&a.to_json().to_string()).unwrap(), a);
    }

    #[test]
    fn carve_is_contained_in_source(a in arb_resources(), cpus in 0i64..5000, mem in 0i64..5000, ports in 0u32..20) {
        let req = ResourceRequest { cpus: Scalar::from_milli(cpus), mem: Scalar::from_milli(mem), ports, ..Default::default() };
        if let Ok(got) = a.carve(&req, &Role::parse("web").unwrap()) {
            prop_assert!(a.contains(&got));
            prop_assert_eq!(got.cpus(), req.cpus);
            prop_assert_eq!(got.mem(), req.mem);
            // Counted per reservation: the generator may give `*` and `web`
            // the same port (no agent would), and the union would count it once.
            let taken: u64 = got
                .iter()
                .filter_map(|e| match e.value {
                    Value::Ranges(r) if e.name == PORTS => Some(r.count()),
                    _ => None,
                })
                .sum();
            prop_assert_eq!(taken, u64::from(ports));
        }
    }
}

// ---------------------------------------------------------------------------
// The compact representation (fixed slots + spill) against a reference
// model: a sorted map from (name, role, kind) to plain values, which is what
// `Resources` was before it was made compact.

/// Reference value: ranges as explicit sets of integers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RefValue {
    Scalar(i64),
    Ranges(BTreeSet<u64>),
    Set(BTreeSet<String>),
}

type RefKey = (String, String, u8);
type RefModel = BTreeMap<RefKey, RefValue>;

fn ref_of(r: &Resources) -> RefModel {
    let mut m = RefModel::new();
    for e in r.iter() {
        let (kind, v) = match e.value {
            Value::Scalar(s) => (0, RefValue::Scalar(s.milli())),
            Value::Ranges(rg) => (1, RefValue::Ranges(rg.values().collect())),
            Value::Set(s) => (2, RefValue::Set(s.clone())),
        };
        let old = m.insert((e.name.to_string(), e.role.to_string(), kind), v);
        assert!(old.is_none(), "entry {} ({}) yielded twice", e.name, e.role);
    }
    m
}

fn ref_empty(v: &RefValue) -> bool {
    match v {
        RefValue::Scalar(s) => *s == 0,
        RefValue::Ranges(r) => r.is_empty(),
        RefValue::Set(s) => s.is_empty(),
    }
}

fn ref_add(a: &RefModel, b: &RefModel) -> RefModel {
    let mut out = a.clone();
    for (k, v) in b {
        match (out.get_mut(k), v) {
            (Some(RefValue::Scalar(x)), RefValue::Scalar(y)) => *x += y,
            (Some(RefValue::Ranges(x)), RefValue::Ranges(y)) => x.extend(y),
            (Some(RefValue::Set(x)), RefValue::Set(y)) => x.extend(y.iter().cloned()),
            (None, _) => {
                out.insert(k.clone(), v.clone());
            }
            _ => unreachable!("kinds are part of the key"),
        }
    }
    out
}

fn ref_sub(a: &RefModel, b: &RefModel) -> RefModel {
    let mut out = a.clone();
    for (k, v) in b {
        if let Some(mine) = out.get_mut(k) {
            match (mine, v) {
                (RefValue::Scalar(x), RefValue::Scalar(y)) => *x = (*x - y).max(0),
                (RefValue::Ranges(x), RefValue::Ranges(y)) => x.retain(|p| !y.contains(p)),
                (RefValue::Set(x), RefValue::Set(y)) => x.retain(|p| !y.contains(p)),
                _ => unreachable!("kinds are part of the key"),
            }
        }
    }
    out.retain(|_, v| !ref_empty(v));
    out
}

fn ref_contains(a: &RefModel, b: &RefModel) -> bool {
    b.iter().all(|(k, v)| match (a.get(k), v) {
        (Some(RefValue::Scalar(x)), RefValue::Scalar(y)) => x >= y,
        (Some(RefValue::Ranges(x)), RefValue::Ranges(y)) => y.is_subset(x),
        (Some(RefValue::Set(x)), RefValue::Set(y)) => y.is_subset(x),
        _ => false,
    })
}

/// Any mix of entries: well-known names in their usual and unusual types,
/// other names, reservations for two roles, sets, and port lists long
/// enough to leave the inline representation.
fn arb_any_resources() -> impl Strategy<Value = Resources> {
    let role = prop_oneof![
        3 => Just(Role::star()),
        1 => Just(Role::parse("web").unwrap()),
        1 => Just(Role::parse("db").unwrap()),
    ];
    let name = prop_oneof![
        Just(CPUS),
        Just(MEM),
        Just(DISK),
        Just(GPUS),
        Just(PORTS),
        Just("bugs"),
        Just("zz"),
        Just("a"),
    ];
    let ranges = proptest::collection::vec((0u64..120, 0u64..6), 0..5)
        .prop_map(|v| Ranges::from_pairs(v.into_iter().map(|(b, l)| (b, b + l))));
    let set = proptest::collection::btree_set(prop_oneof![Just("x"), Just("y"), Just("z")], 0..3)
        .prop_map(|s| {
            s.into_iter()
                .map(String::from)
                .collect::<BTreeSet<String>>()
        });
    let value = prop_oneof![
        4 => (0i64..5_000).prop_map(|m| Value::Scalar(Scalar::from_milli(m))),
        2 => ranges.prop_map(Value::Ranges),
        1 => set.prop_map(Value::Set),
    ];
    proptest::collection::vec((name, role, value), 0..8).prop_map(|v| {
        let mut res = Resources::new();
        for (n, role, val) in v {
            res.push(n, role, val);
        }
        res
    })
}

proptest! {
    #[test]
    fn compact_algebra_matches_the_reference_model(a in arb_any_resources(), b in arb_any_resources()) {
        let (ra, rb) = (ref_of(&a), ref_of(&b));
        // No empty entries, entries in (name, role, kind) order, len agrees.
        prop_assert!(ra.values().all(|v| !ref_empty(v)));
        let keys: Vec<(String, String)> = a.iter().map(|e| (e.name.to_string(), e.role.to_string())).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{:?}", keys);
        prop_assert_eq!(a.len(), ra.len());
        prop_assert_eq!(a.is_empty(), ra.is_empty());

        prop_assert_eq!(ref_of(&a.plus(&b)), ref_add(&ra, &rb));
        prop_assert_eq!(ref_of(&a.minus(&b)), ref_sub(&ra, &rb));
        prop_assert_eq!(a.contains(&b), ref_contains(&ra, &rb));
        let mut in_place = a.clone();
        in_place.add(&b);
        in_place.subtract(&a);
        prop_assert_eq!(ref_of(&in_place), ref_sub(&ref_add(&ra, &rb), &ra));

        for name in [CPUS, MEM, DISK, GPUS, "bugs", "zz", "a"] {
            let want: i64 = ra.iter()
                .filter(|((n, _, _), _)| n == name)
                .map(|(_, v)| if let RefValue::Scalar(s) = v { *s } else { 0 })
                .sum();
            prop_assert_eq!(a.scalar(name).milli(), want);
            let unreserved: i64 = ra.iter()
                .filter(|((n, r, _), _)| n == name && r == "*")
                .map(|(_, v)| if let RefValue::Scalar(s) = v { *s } else { 0 })
                .sum();
            prop_assert_eq!(a.unreserved_scalar(name).milli(), unreserved);
        }
        let ports: BTreeSet<u64> = ra.iter()
            .filter(|((n, _, _), _)| n == PORTS)
            .flat_map(|(_, v)| if let RefValue::Ranges(r) = v { r.clone() } else { BTreeSet::new() })
            .collect();
        prop_assert_eq!(a.ports().values().collect::<BTreeSet<u64>>(), ports);

        let web = Role::parse("web").unwrap();
        let mut want = ra.clone();
        want.retain(|(_, r, _), _| r == "*" || r == "web");
        prop_assert_eq!(ref_of(&a.allocatable_to(&web)), want);
        let mut want = ra.clone();
        want.retain(|(_, r, _), _| r == "*");
        prop_assert_eq!(ref_of(&a.unreserved()), want);
        prop_assert_eq!(a.has_reservations(), ra.keys().any(|(_, r, _)| r != "*"));
        let roles: BTreeSet<String> = ra.keys().filter(|(_, r, _)| r != "*").map(|(_, r, _)| r.clone()).collect();
        prop_assert_eq!(a.reservation_roles().iter().map(|r| r.to_string()).collect::<BTreeSet<_>>(), roles);
    }

    #[test]
    fn equality_and_hash_are_semantic(a in arb_any_resources(), b in arb_any_resources()) {
        use std::hash::{BuildHasher, RandomState};
        // The same entries pushed in another order, and a bag that reached
        // the same contents through arithmetic, are equal and hash alike.
        let mut reversed = Resources::new();
        let entries: Vec<_> = a.iter().map(|e| (e.name.to_string(), e.role.clone(), e.value.clone())).collect();
        for (n, r, v) in entries.into_iter().rev() {
            reversed.push(n, r, v);
        }
        prop_assert_eq!(&reversed, &a);
        let roundabout = a.plus(&b).minus(&b.minus(&a)).minus(&b);
        let direct = a.minus(&b);
        prop_assert_eq!(ref_of(&roundabout) == ref_of(&direct), roundabout == direct);
        let h = RandomState::new();
        prop_assert_eq!(h.hash_one(&reversed), h.hash_one(&a));
        prop_assert_eq!(a == b, ref_of(&a) == ref_of(&b));
        prop_assert!(a.minus(&a).is_empty());
        prop_assert_eq!(a.minus(&a), Resources::new());
    }
}

#[test]
fn common_bags_copy_without_allocating() {
    // Not an allocation counter (the crate forbids unsafe, which a counting
    // global allocator needs), but the structural reason: an unreserved bag
    // has no spill, and its sizes stay those the allocator was tuned for.
    let res = r("cpus:32;mem:131072;disk:1000000;gpus:1;ports:[31000-31005,31010-32000]");
    assert!(res.spill.is_none());
    assert_eq!(std::mem::size_of::<Value>(), 32);
    assert_eq!(std::mem::size_of::<Resources>(), 168);
    assert!(!res.has_reservations());
    let copy = res.clone();
    assert_eq!(copy, res);
    assert_eq!(
        copy.to_string(),
        "cpus:32;disk:1000000;gpus:1;mem:131072;ports:[31000-31005,31010-32000]"
    );
}
