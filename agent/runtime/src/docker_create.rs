//! Translating a [`LaunchSpec`] into Docker's container-create body (pure,
//! so it is unit-tested without a daemon).
use std::collections::HashMap;

use agora_model::{DockerNetwork, DockerSpec};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use crate::cgroups::{CFS_PERIOD_US, cfs_quota_us, cpu_shares, mem_limit_bytes};
use crate::{
    DOCKER_NAME_PREFIX, LABEL_AGENT_ID, LABEL_CONTAINER_ID, LABEL_FRAMEWORK_ID, LABEL_SANDBOX,
    LABEL_TASK_ID, LaunchSpec, RuntimeError,
};

/// Docker refuses memory limits below 6 MB; smaller requests are raised to it.
pub(crate) const DOCKER_MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;
/// Host address bridge-mode ports are published on (all interfaces, as
/// Marathon apps expect to be reachable on the agent's address).
const PUBLISH_HOST_IP: &str = "0.0.0.0";

/// The Docker container name for a container id.
pub(crate) fn container_name(container_id: &str) -> String {
    format!("{DOCKER_NAME_PREFIX}{container_id}")
}

/// Splits an image reference into `fromImage` and `tag` for a pull. Without
/// a tag Docker would pull *every* tag, so `latest` is made explicit.
pub(crate) fn split_image(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (
            image[..name_start + i].to_string(),
            image[name_start + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// Entrypoint and cmd, following Mesos' Docker containerizer: a shell
/// command overrides the image entrypoint with `/bin/sh -c` (MESOS-1770);
/// otherwise `value` and `arguments` become the cmd after the (image or
/// given) entrypoint; no command at all keeps the image's defaults.
fn entrypoint_and_cmd(
    spec: &LaunchSpec,
    docker: &DockerSpec,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let given_entrypoint = (!docker.entrypoint.is_empty()).then(|| docker.entrypoint.clone());
    let Some(cmd) = &spec.command else {
        return (given_entrypoint, None);
    };
    if cmd.shell {
        return match given_entrypoint {
            Some(ep) => (
                Some(ep),
                Some(vec!["/bin/sh".into(), "-c".into(), cmd.value.clone()]),
            ),
            None => (
                Some(vec!["/bin/sh".into(), "-c".into()]),
                Some(vec![cmd.value.clone()]),
            ),
        };
    }
    let mut argv = Vec::new();
    if !cmd.value.is_empty() {
        argv.push(cmd.value.clone());
    }
    argv.extend(cmd.arguments.iter().cloned());
    (given_entrypoint, (!argv.is_empty()).then_some(argv))
}

/// The labels marking an Agora container; ours win over the task's own.
pub(crate) fn labels(spec: &LaunchSpec, docker: &DockerSpec) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = docker
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_AGENT_ID.into(), spec.agent_id.to_string());
    labels.insert(LABEL_TASK_ID.into(), spec.task_id.to_string());
    labels.insert(LABEL_FRAMEWORK_ID.into(), spec.framework_id.to_string());
    labels.insert(LABEL_CONTAINER_ID.into(), spec.container_id.clone());
    labels.insert(
        LABEL_SANDBOX.into(),
        spec.sandbox.to_string_lossy().into_owned(),
    );
    labels
}

/// The create body for `spec` (which must have `docker` set), or why the
/// spec's limits cannot be given to Docker.
pub(crate) fn container_body(
    spec: &LaunchSpec,
    docker: &DockerSpec,
) -> Result<ContainerCreateBody, RuntimeError> {
    let (entrypoint, cmd) = entrypoint_and_cmd(spec, docker);
    let mut host = HostConfig {
        network_mode: Some(
            match docker.network {
                DockerNetwork::Host => "host",
                DockerNetwork::Bridge => "bridge",
                DockerNetwork::None => "none",
            }
            .to_string(),
        ),
        privileged: Some(docker.privileged),
        ..Default::default()
    };
    let cpus = spec.limits.cpus.milli();
    if cpus > 0 {
        host.cpu_shares = i64::try_from(cpu_shares(cpus)).ok();
        host.cpu_period = i64::try_from(CFS_PERIOD_US).ok();
        host.cpu_quota = Some(cfs_quota_us(cpus));
    }
    if !spec.limits.mem_mb.is_zero() {
        let bytes = mem_limit_bytes(spec.limits.mem_mb)?.max(DOCKER_MIN_MEMORY_BYTES);
        host.memory = Some(bytes);
        // Equal to memory: no swap, so going over the limit is an OOM kill.
        host.memory_swap = Some(bytes);
    }
    if let Some(pids) = spec.limits.pids {
        host.pids_limit = i64::try_from(pids).ok();
    }
    let mut exposed = None;
    if docker.network == DockerNetwork::Bridge && !docker.port_mappings.is_empty() {
        let mut bindings = HashMap::new();
        let mut keys = Vec::new();
        for pm in &docker.port_mappings {
            let proto = if pm.protocol.is_empty() {
                "tcp"
            } else {
                pm.protocol.as_str()
            };
            let key = format!("{}/{}", pm.container_port, proto.to_ascii_lowercase());
            let binding = PortBinding {
                host_ip: Some(PUBLISH_HOST_IP.into()),
                host_port: Some(pm.host_port.to_string()),
            };
            bindings
                .entry(key.clone())
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        host.port_bindings = Some(bindings);
        exposed = Some(keys);
    }
    Ok(ContainerCreateBody {
        image: Some(docker.image.clone()),
        entrypoint,
        cmd,
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels(spec, docker)),
        user: spec.command.as_ref().and_then(|c| c.user.clone()),
        exposed_ports: exposed,
        host_config: Some(host),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use agora_model::{AgentId, CommandSpec, FrameworkId, PortMapping, Scalar, TaskId};

    fn spec(command: Option<CommandSpec>, docker: DockerSpec) -> LaunchSpec {
        LaunchSpec {
            container_id: "t.1".into(),
            task_id: TaskId::new_unchecked("t"),
            agent_id: AgentId::new_unchecked("a"),
            framework_id: FrameworkId::new_unchecked("f"),
            sandbox: "/sb".into(),
            command,
            docker: Some(docker),
            env: [("PORT0".to_string(), "31000".to_string())].into(),
            limits: Limits {
                cpus: Scalar::from_milli(1500),
                mem_mb: Scalar::from_units(64),
                pids: Some(100),
            },
        }
    }

    #[test]
    fn splits_image_references() {
        assert_eq!(split_image("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(split_image("a/b:1.2"), ("a/b".into(), "1.2".into()));
        assert_eq!(
            split_image("reg:5000/b"),
            ("reg:5000/b".into(), "latest".into())
        );
        assert_eq!(split_image("b@sha256:ab"), ("b".into(), "sha256:ab".into()));
    }

    #[test]
    fn shell_command_limits_labels_and_ports() {
        let docker = DockerSpec {
            image: "img".into(),
            network: DockerNetwork::Bridge,
            port_mappings: vec![PortMapping {
                host_port: 31000,
                container_port: 80,
                protocol: "tcp".into(),
                name: None,
            }],
            labels: [
                ("agora.task_id".to_string(), "spoof".to_string()),
                ("x".to_string(), "y".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let s = spec(Some(CommandSpec::shell("echo hi")), docker.clone());
        let b = container_body(&s, &docker).unwrap();
        assert_eq!(b.entrypoint.unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(b.cmd.unwrap(), ["echo hi"]);
        let h = b.host_config.unwrap();
        assert_eq!(
            (h.cpu_shares, h.cpu_quota, h.cpu_period),
            (Some(1536), Some(150_000), Some(100_000))
        );
        assert_eq!(
            (h.memory, h.memory_swap, h.pids_limit),
            (Some(64 << 20), Some(64 << 20), Some(100))
        );
        let bind = &h.port_bindings.unwrap()["80/tcp"];
        assert_eq!(
            bind.as_ref().unwrap()[0].host_port.as_deref(),
            Some("31000")
        );
        let labels = b.labels.unwrap();
        assert_eq!(labels["agora.task_id"], "t");
        assert_eq!(labels["x"], "y");
        assert_eq!(b.env.unwrap(), ["PORT0=31000"]);
    }

    #[test]
    fn an_absurd_memory_limit_is_an_error_not_an_overflow() {
        let docker = DockerSpec {
            image: "img".into(),
            ..Default::default()
        };
        let mut s = spec(None, docker.clone());
        s.limits.mem_mb = Scalar::from_milli(i64::MAX);
        let err = container_body(&s, &docker)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            err.as_ref().is_err_and(|e| e.contains("memory limit")),
            "{err:?}"
        );
        // Small limits are still raised to Docker's minimum.
        s.limits.mem_mb = Scalar::from_units(1);
        let h = container_body(&s, &docker).unwrap().host_config.unwrap();
        assert_eq!(h.memory, Some(DOCKER_MIN_MEMORY_BYTES));
    }

    #[test]
    fn argv_and_image_defaults() {
        let docker = DockerSpec {
            image: "img".into(),
            entrypoint: vec!["/ep".into()],
            ..Default::default()
        };
        let argv = CommandSpec {
            value: "".into(),
            arguments: vec!["--x".into()],
            ..Default::default()
        };
        let b = container_body(&spec(Some(argv), docker.clone()), &docker).unwrap();
        assert_eq!(
            (b.entrypoint.unwrap(), b.cmd.unwrap()),
            (vec!["/ep".to_string()], vec!["--x".to_string()])
        );
        let plain = DockerSpec {
            image: "img".into(),
            ..Default::default()
        };
        let b = container_body(&spec(None, plain.clone()), &plain).unwrap();
        assert_eq!((b.entrypoint, b.cmd), (None, None));
        assert_eq!(b.host_config.unwrap().network_mode.as_deref(), Some("host"));
    }
}
