use super::*;
use proptest::prelude::*;

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
            prop_assert_eq!(got.ports().count(), u64::from(ports));
        }
    }
}
