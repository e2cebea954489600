//! `agora describe` against a fixture cluster: a two-agent `/state`, its
//! `/api/v1/capacity` answer, and a Marathon app mid-deployment with
//! instances waiting; the whole text is compared, so a change to any
//! section shows up here.
use serde_json::{Value, json};

use super::{agent_text, app_text};

fn state() -> Value {
    json!({
        "agents": [
            {"id": "a1", "hostname": "node-1", "status": "connected",
             "attributes": {"rack": "r1", "zone": "z1"}},
            {"id": "a2", "hostname": "node-2", "status": "connected", "attributes": {}}
        ],
        "frameworks": [{"name": "marathon", "tasks": [
            {"id": "web.1", "agent_id": "a1", "state": "TASK_RUNNING",
             "resources": {"cpus": 0.5, "mem": 256.0}},
            {"id": "web.2", "agent_id": "a2", "state": "TASK_STAGING",
             "resources": {"cpus": 0.5, "mem": 256.0}}
        ]}]
    })
}

fn amount(cpus: f64, mem: f64, disk: f64, ports: u64) -> Value {
    json!({"cpus": cpus, "mem": mem, "disk": disk, "gpus": 0.0, "ports": ports})
}

fn capacity() -> Value {
    json!({
        "agents": [{
            "id": "a1", "hostname": "node-1",
            "total": amount(4.0, 4096.0, 10240.0, 100),
            "reserved": {"db": amount(1.0, 1024.0, 0.0, 0)},
            "allocated": amount(0.5, 256.0, 0.0, 1),
            "offered": amount(1.25, 1024.0, 0.0, 10),
            "free": amount(1.25, 1792.0, 10240.0, 89)
        }],
        "fragmentation": {
            "shapes": [
                {"name": "small", "cpus": 0.5, "mem": 512.0, "cluster": 5, "agents": {"a1": 2, "a2": 3}},
                {"name": "large", "cpus": 4.0, "mem": 8192.0, "cluster": 0, "agents": {"a1": 0, "a2": 0}}
            ],
            "agents": [{"id": "a1", "largest": amount(2.5, 2816.0, 10240.0, 99),
                        "stranded": amount(0.0, 0.0, 0.0, 0), "exhausted": null}]
        }
    })
}

const AGENT: &str = "\
Agent:     a1
Hostname:  node-1
Status:    connected

Attributes
  rack         r1
  zone         z1

Resources
              TOTAL   RESERVED  ALLOCATED    OFFERED       FREE
  cpus            4          1       0.50       1.25       1.25
  mem          4096       1024        256       1024       1792
  disk        10240          0          0          0      10240
  gpus            0          0          0          0          0
  ports         100          0          1         10         89

Placeable (reference shapes)
  SHAPE     CPUS MEM (MB)  HERE
  small     0.50      512  2
  large        4     8192  0
Largest task: cpus 2.50, mem 2816, disk 10240, gpus 0, ports 99

Tasks
  ID                                             FRAMEWORK    STATE            CPUS      MEM
  web.1                                          marathon     TASK_RUNNING     0.50      256
";

#[test]
fn an_agent_by_hostname_in_sections() {
    let text = agent_text(&state(), &capacity(), "node-1");
    assert_eq!(text.ok().as_deref(), Some(AGENT));
    assert!(agent_text(&state(), &capacity(), "a1").is_ok_and(|t| t == AGENT));
    assert!(agent_text(&state(), &capacity(), "node-9").is_err());
}

const APP: &str = "\
App:          /prod/web
Version:      2026-01-02T03:04:05.000Z
Runs:         image: nginx:1.27
Shape:        cpus 0.50, mem 256 MB, disk 0 MB, gpus 0, ports 1
Constraints:  rack:GROUP_BY:2
Instances:    3 wanted, 1 staged, 1 running, 1 healthy

Instances
  ID                                               HOST                 STATE          HEALTH    VERSION
  web.1                                            node-1               TASK_RUNNING   healthy   2026-01-02T03:04:05.000Z
  web.2                                            node-2               TASK_STAGING   -         2026-01-02T03:04:05.000Z

Deployment:   d-1 step 1/2: ScaleApplication
Waiting:      1 instance(s)
  declined for InsufficientMemory: 4 of 6 offers
";

#[test]
fn an_app_with_its_deployment_and_waiting_reasons() {
    let app = json!({
        "id": "/prod/web", "version": "2026-01-02T03:04:05.000Z",
        "container": {"docker": {"image": "nginx:1.27"}},
        "cpus": 0.5, "mem": 256.0, "disk": 0.0, "gpus": 0,
        "portDefinitions": [{"port": 10000}], "constraints": [["rack", "GROUP_BY", "2"]],
        "instances": 3, "tasksStaged": 1, "tasksRunning": 1, "tasksHealthy": 1,
        "tasks": [
            {"id": "web.1", "host": "node-1", "state": "TASK_RUNNING",
             "healthCheckResults": [{"alive": true}], "version": "2026-01-02T03:04:05.000Z"},
            {"id": "web.2", "host": "node-2", "state": "TASK_STAGING",
             "healthCheckResults": [], "version": "2026-01-02T03:04:05.000Z"}
        ]
    });
    let deployments = json!([
        {"id": "d-0", "affectedApps": ["/prod/other"], "currentStep": 1, "totalSteps": 1,
         "currentActions": [{"action": "StartApplication"}]},
        {"id": "d-1", "affectedApps": ["/prod/web"], "currentStep": 1, "totalSteps": 2,
         "currentActions": [{"action": "ScaleApplication"}]}
    ]);
    let queue = json!({"queue": [{"app": {"id": "/prod/web"}, "count": 1,
    "processedOffersSummary": {"rejectSummaryLastOffers": [
        {"reason": "InsufficientCpus", "declined": 0, "processed": 6},
        {"reason": "InsufficientMemory", "declined": 4, "processed": 6}
    ]}}]});
    assert_eq!(app_text(&app, &deployments, &queue), APP);
}
