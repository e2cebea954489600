//! integration tests
mod agent_docker;
mod agent_http;
mod agent_process;
mod agent_recovery;
mod agent_support;
mod master_offers;
mod master_smoke;
mod scheduler_agents;
mod scheduler_bad_input;
mod scheduler_burst;
mod scheduler_failover;
mod scheduler_launch_n;
mod scheduler_offers;
mod scheduler_reconcile;
mod scheduler_support;
mod scheduler_tasks;
mod tidy;
