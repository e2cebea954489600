//! integration tests
mod master_smoke;
mod scheduler_offers;
mod scheduler_support;
mod scheduler_tasks;
mod agent_support;
mod agent_process;
mod agent_recovery;
mod scheduler_reconcile;
mod scheduler_failover;
mod agent_docker;
mod scheduler_agents;
mod scheduler_bad_input;
mod scheduler_launch_n;
mod master_offers;
