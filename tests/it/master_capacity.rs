//! The capacity API (issue 9 §1) on a real master with simulated agents:
//! the breakdown adds up and groups by attribute, "what fits" answers with
//! the Marathon planner's rules (UNIQUE, LIKE), names each agent's
//! bottleneck and the funnel, and bad queries are 400s with the field.
use std::time::Duration;

use agora_model::{AttributeValue, Attributes, Resources};
use agora_tests::{SimAgent, SimAgentConfig, TestMaster, http_get};
use serde_json::Value;

async fn get_json(master: &TestMaster, path: &str) -> anyhow::Result<(u16, Value)> {
    let (code, body) = http_get(master.addr, path).await?;
    Ok((code, serde_json::from_str(&body)?))
}

#[tokio::test]
async fn capacity_breakdown_and_what_fits() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut sims = Vec::new();
    for (i, rack) in ["r1", "r1", "r2"].iter().enumerate() {
        let c = SimAgentConfig {
            resources: Resources::parse("cpus:4;mem:4096;disk:100;ports:[31000-31009]")?,
            attributes: Attributes(
                [("rack".to_string(), AttributeValue::Text((*rack).into()))]
                    .into_iter()
                    .collect(),
            ),
            hostname: format!("sim-{i}"),
            ..SimAgentConfig::default()
        };
        sims.push(SimAgent::start(&master.endpoint(), c).await);
    }
    let cap = agora_tests::eventually(
        "3 agents in the capacity",
        Duration::from_secs(15),
        || async {
            let (code, v) = get_json(&master, "/api/v1/capacity").await.ok()?;
            (code == 200 && v["agents"].as_array().map(Vec::len) == Some(3)).then_some(v)
        },
    )
    .await?;
    let cluster = &cap["cluster"];
    assert_eq!(cluster["total"]["cpus"].as_f64(), Some(12.0), "{cap}");
    assert_eq!(cluster["total"]["ports"], 30);
    assert_eq!(cluster["free"]["mem"].as_f64(), Some(12288.0));
    assert_eq!(
        cap["by_attribute"]["rack"]["r1"]["total"]["cpus"].as_f64(),
        Some(8.0)
    );
    assert_eq!(
        cap["by_attribute"]["rack"]["r2"]["total"]["cpus"].as_f64(),
        Some(4.0)
    );

    let (code, all) = get_json(&master, "/api/v1/capacity/fit?cpus=1&mem=512").await?;
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["placeable"], 12);
    assert!(
        all["agents"]
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x["bottleneck"] == "cpus")),
        "{all}"
    );
    let (_, unique) = get_json(
        &master,
        "/api/v1/capacity/fit?cpus=1&mem=512&constraint=hostname:UNIQUE&count=5",
    )
    .await?;
    assert_eq!(
        (unique["placeable"].as_u64(), unique["fits"].as_bool()),
        (Some(3), Some(false)),
        "{unique}"
    );
    let (_, like) = get_json(
        &master,
        "/api/v1/capacity/fit?cpus=1&constraint=rack:LIKE:r2",
    )
    .await?;
    assert_eq!(like["placeable"], 4);
    let constraints = like["funnel"]
        .as_array()
        .and_then(|f| f.iter().find(|s| s["stage"] == "constraints"))
        .cloned();
    assert_eq!(
        constraints.map(|c| (c["rejected"].clone(), c["remaining"].clone())),
        Some((2.into(), 1.into()))
    );
    let (_, mem) = get_json(&master, "/api/v1/capacity/fit?cpus=0.5&mem=3000").await?;
    assert_eq!(mem["placeable"], 3);
    assert_eq!(mem["agents"][0]["bottleneck"], "mem");

    // Fragmentation for the reference shapes, and "what if".
    let small = &cap["fragmentation"]["shapes"][0];
    assert_eq!(
        (small["name"].as_str(), small["cluster"].as_u64()),
        (Some("small"), Some(24)),
        "{cap}"
    );
    let (_, more) = get_json(
        &master,
        "/api/v1/capacity/fit?cpus=1&mem=512&add_agent=cpus:8%3Bmem:8192%40rack%3Dr3",
    )
    .await?;
    assert_eq!(more["placeable"], 20, "{more}");
    let id = all["agents"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, less) = get_json(
        &master,
        &format!("/api/v1/capacity/fit?cpus=1&mem=512&drain={id}"),
    )
    .await?;
    assert_eq!(less["placeable"], 8, "{less}");

    // /metrics: per agent and state, in base units, summing to the total;
    // placeable per shape; clean under promtool.
    let (code, text) = http_get(master.addr, "/metrics").await?;
    assert_eq!(code, 200);
    let cpu_sum: f64 = text
        .lines()
        .filter(|l| l.starts_with("agora_capacity_cpus{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(cpu_sum, 12.0, "{text}");
    let mem_free: f64 = text
        .lines()
        .filter(|l| l.starts_with("agora_capacity_memory_bytes{") && l.contains("state=\"free\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(mem_free, 3.0 * 4096.0 * 1024.0 * 1024.0);
    assert!(
        text.contains("agora_capacity_placeable_instances{shape=\"small\"} 24"),
        "{text}"
    );
    if agora_tests::promtool::available("capacity metrics") {
        let (ok, said) = agora_tests::promtool::check_metrics(&text).await?;
        assert!(ok, "promtool: {said}");
    }

    for bad in [
        "/api/v1/capacity/fit?cpus=lots",
        "/api/v1/capacity/fit?mem=-1",
        "/api/v1/capacity/fit?constraint=rack:NOPE",
        "/api/v1/capacity/fit?count=x",
    ] {
        let (code, v) = get_json(&master, bad).await?;
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(
            v["details"][0]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with('/')),
            "{v}"
        );
    }
    Ok(())
}

/// Requests that would make the dry run unbounded (billions of port specs
/// or placements) are 400s naming the parameter, on the API and the page;
/// the largest accepted values are answered.
#[tokio::test]
async fn fit_refuses_requests_that_would_run_unbounded() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let c = SimAgentConfig {
        resources: Resources::parse("cpus:4;mem:4096;ports:[31000-31009]")?,
        hostname: "bounded-0".into(),
        ..SimAgentConfig::default()
    };
    let _sim = SimAgent::start(&master.endpoint(), c).await;
    agora_tests::eventually("1 agent", Duration::from_secs(15), || async {
        let (code, v) = get_json(&master, "/api/v1/capacity").await.ok()?;
        (code == 200 && v["agents"].as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await?;
    let max_fit = agora_capacity::MAX_FIT;
    let max_ports = agora_capacity::MAX_PORTS;
    for (query, path) in [
        ("ports=4294967295".to_string(), "/ports"),
        (format!("cpus=1&ports={}", max_ports + 1), "/ports"),
        ("cpus=0&mem=0&disk=0&count=4294967295".to_string(), "/count"),
        (format!("cpus=1&count={}", max_fit + 1), "/count"),
        ("cpus=0&mem=0&disk=0".to_string(), "/cpus"),
        ("cpus=0&mem=0&disk=0&count=1".to_string(), "/cpus"),
    ] {
        let (code, v) = get_json(&master, &format!("/api/v1/capacity/fit?{query}")).await?;
        assert_eq!(code, 400, "{query}: {v}");
        assert_eq!(v["details"][0]["path"], path, "{query}: {v}");
        let (code, page) = http_get(master.addr, &format!("/ui/fit?{query}")).await?;
        assert_eq!(code, 400, "{query}: {page}");
        assert!(page.contains(&format!("Invalid {path}")), "{query}: {page}");
    }
    // The limits themselves are answered: ten ports take ten instances of
    // a one-port shape, and no agent has a hundred ports.
    let one_port = format!("/api/v1/capacity/fit?cpus=0&mem=0&ports=1&count={max_fit}");
    let (code, v) = get_json(&master, &one_port).await?;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["placeable"].as_u64(), v["fits"].as_bool()),
        (Some(10), Some(false)),
        "{v}"
    );
    let wide = format!("/api/v1/capacity/fit?cpus=1&ports={max_ports}");
    let (code, v) = get_json(&master, &wide).await?;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["placeable"], 0, "{v}");
    assert_eq!(v["agents"][0]["bottleneck"], "ports", "{v}");
    Ok(())
}

/// The utilisation history is sampled by the leader every 10 s, replicated,
/// and still there (the same points) at the next leader after a crash.
#[tokio::test]
async fn capacity_history_survives_a_leader_crash() -> anyhow::Result<()> {
    let settle = Duration::from_secs(40);
    let mut group = agora_tests::TestGroup::start(3, TestMaster::fast_config()).await?;
    let leader = group.leader(settle).await?;
    let config = SimAgentConfig {
        resources: Resources::parse("cpus:4;mem:4096")?,
        ..SimAgentConfig::default()
    };
    let _agent = SimAgent::start(&group.addresses(), config).await;
    let path = "/api/v1/capacity/history?scope=cluster&range=1h";
    let before = agora_tests::eventually("two samples with the agent", settle, || async {
        let (code, v) = get_json(&group.masters[&leader], path).await.ok()?;
        let totals = v["series"]["cpus.total"].as_array()?;
        let with_agent = totals.iter().filter(|x| x.as_f64() == Some(4.0)).count();
        (code == 200 && with_agent >= 2).then_some(v)
    })
    .await?;
    assert_eq!(before["step_seconds"], 10, "{before}");
    assert_eq!(
        before["times"].as_array().map(Vec::len),
        before["series"]["cpus.total"].as_array().map(Vec::len)
    );
    assert!(
        before["scopes"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "cluster")),
        "{before}"
    );

    // A standby sends the caller to the leader.
    let standby = group.masters.keys().find(|id| **id != leader).copied();
    if let Some(id) = standby {
        let (code, _) = http_get(group.masters[&id].addr, path).await?;
        assert_eq!(code, 307);
        let (code, head, _) = agora_tests::http_request(
            group.masters[&id].addr,
            "GET",
            "/ui/agents?sort=cpus.free",
            None,
        )
        .await?;
        assert_eq!(code, 307, "the pages too");
        let leader_addr = group.masters[&leader].addr.to_string();
        assert!(
            head.contains(&format!(
                "location: http://{leader_addr}/ui/agents?sort=cpus.free"
            )),
            "{head}"
        );
    }
    let (code, bad) = get_json(
        &group.masters[&leader],
        "/api/v1/capacity/history?range=soon",
    )
    .await?;
    assert_eq!(code, 400, "{bad}");
    assert_eq!(bad["details"][0]["path"], "/range");

    if let Some(m) = group.masters.get_mut(&leader) {
        m.crash();
    }
    let new_leader = group.leader(settle).await?;
    assert_ne!(new_leader, leader);
    let (code, after) = get_json(&group.masters[&new_leader], path).await?;
    assert_eq!(code, 200, "{after}");
    // Every closed point the old leader served is served again, unchanged
    // (the last one was still filling and may have grown since).
    let times_before = before["times"].as_array().cloned().unwrap_or_default();
    let totals_before = before["series"]["cpus.total"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let times_after = after["times"].as_array().cloned().unwrap_or_default();
    let totals_after = after["series"]["cpus.total"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let closed = times_before.len() - 1;
    assert!(times_after.len() >= closed, "{before}\n{after}");
    assert_eq!(times_after[..closed], times_before[..closed]);
    assert_eq!(totals_after[..closed], totals_before[..closed]);
    Ok(())
}

/// Configured reference shapes replace the defaults everywhere capacity is
/// counted in shapes: the API's fragmentation, the metrics and the page.
#[tokio::test]
async fn configured_reference_shapes_are_counted() -> anyhow::Result<()> {
    let mut cfg = TestMaster::fast_config();
    cfg.reference_shapes = vec![agora_capacity::ReferenceShape {
        name: "wide".into(),
        cpus: agora_model::Scalar::from_units(3),
        mem: agora_model::Scalar::from_units(1000),
    }];
    let master = TestMaster::start_with(cfg).await;
    let mut sims = Vec::new();
    for i in 0..2 {
        let c = SimAgentConfig {
            resources: Resources::parse("cpus:4;mem:4096")?,
            hostname: format!("shape-{i}"),
            ..SimAgentConfig::default()
        };
        sims.push(SimAgent::start(&master.endpoint(), c).await);
    }
    let cap = agora_tests::eventually("2 agents", Duration::from_secs(15), || async {
        let (code, v) = get_json(&master, "/api/v1/capacity").await.ok()?;
        (code == 200 && v["agents"].as_array().map(Vec::len) == Some(2)).then_some(v)
    })
    .await?;
    let shapes = cap["fragmentation"]["shapes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(shapes.len(), 1, "{cap}");
    assert_eq!(shapes[0]["name"], "wide");
    assert_eq!(shapes[0]["cluster"], 2, "one 3-cpu task per 4-cpu agent");
    let (_, text) = http_get(master.addr, "/metrics").await?;
    assert!(
        text.contains("agora_capacity_placeable_instances{shape=\"wide\"} 2"),
        "{text}"
    );
    assert!(!text.contains("shape=\"small\""));
    let (code, page) = http_get(master.addr, "/ui").await?;
    assert_eq!(code, 200);
    assert!(page.contains("data-test=\"placeable-wide\">2<"), "{page}");
    Ok(())
}
