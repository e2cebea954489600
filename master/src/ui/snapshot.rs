//! What the pages show, copied out of the loop at one instant: the
//! capacity model's snapshot, the frameworks and the role weights.
use std::collections::BTreeMap;

use agora_capacity::Amount;

use crate::state::{FrameworkConn, Master};

/// The label a framework sets to say where its web UI/API is (Mesos has a
/// `webui_url` field; Agora's Marathon sets this label).
pub(crate) const WEBUI_URL_LABEL: &str = "webui_url";

/// One framework's row.
#[derive(Debug, Clone)]
pub(crate) struct FrameworkRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) roles: Vec<String>,
    pub(crate) connected: bool,
    pub(crate) allocated: Amount,
    pub(crate) offered: Amount,
    pub(crate) tasks: usize,
    pub(crate) webui_url: Option<String>,
}

/// Everything a page needs from the core.
#[derive(Debug, Clone, Default)]
pub(crate) struct UiSnapshot {
    pub(crate) capacity: agora_capacity::Snapshot,
    pub(crate) frameworks: Vec<FrameworkRow>,
    pub(crate) weights: BTreeMap<String, f64>,
    /// Per role: held by its frameworks' tasks and outstanding offers.
    pub(crate) role_held: BTreeMap<String, Amount>,
    pub(crate) offers: usize,
    pub(crate) tasks: usize,
    /// When it was taken, Unix seconds.
    pub(crate) at_unix: f64,
}

impl Master {
    /// Per role: what its frameworks hold in tasks and outstanding offers
    /// (the DRF tallies kept per framework and role).
    pub(crate) fn role_held(&self) -> BTreeMap<String, Amount> {
        let mut out: BTreeMap<String, Amount> = BTreeMap::new();
        for f in self.frameworks.values() {
            for (role, r) in &f.allocated {
                let e = out.entry(role.to_string()).or_default();
                *e = e.plus(Amount::of(r));
            }
        }
        out
    }

    /// The pages' copy of the state.
    pub(crate) fn ui_snapshot(&self) -> UiSnapshot {
        let frameworks = self
            .frameworks
            .values()
            .map(|f| FrameworkRow {
                id: f.id.to_string(),
                name: f.info.name.clone(),
                roles: f.info.roles.iter().map(ToString::to_string).collect(),
                connected: matches!(f.conn, FrameworkConn::Subscribed { .. }),
                allocated: Amount::of(&f.used),
                offered: Amount::of(&f.offered),
                tasks: self.tasks_of(&f.id).count(),
                webui_url: f.info.labels.get(WEBUI_URL_LABEL).cloned(),
            })
            .collect();
        UiSnapshot {
            capacity: self.capacity_snapshot(),
            role_held: self.role_held(),
            frameworks,
            weights: self
                .registry
                .weights
                .iter()
                .map(|(r, w)| (r.to_string(), *w))
                .collect(),
            offers: self.offers.len(),
            tasks: self.tasks.len(),
            at_unix: self.now_unix,
        }
    }
}
