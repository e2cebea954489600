//! Where the client commands find the cluster, and whether they colour.
//! One global `--address` (env `AGORA_ADDR`) names the master and one
//! global `--marathon` (env `AGORA_MARATHON`) names Marathon for every
//! client command; the older per-command `--master` (env `AGORA_MASTER`)
//! still works and wins when given, since it is the more specific flag.
//! Colour follows no-color.org: `--no-color` or any non-empty `NO_COLOR`
//! turns it off, and it is off whenever stdout is not a terminal.
use std::io::IsTerminal;

use clap::Args;

/// The master when nothing names one (`agora dev`'s default).
pub(crate) const DEFAULT_MASTER: &str = "127.0.0.1:5050";
/// Marathon when nothing names it (Marathon's own default port).
pub(crate) const DEFAULT_MARATHON: &str = "127.0.0.1:8080";

/// clap's parser for a member id: decimal as Agora lists ids, or `0x` and
/// hex as etcdctl prints them (`0xa` is member 10).
pub(crate) fn member_id(text: &str) -> Result<u64, String> {
    agora_master::replication::parse_member_id(text).ok_or_else(|| {
        format!("{text:?} is not a member id: decimal, or 0x and hex as etcdctl prints ids")
    })
}

/// The top-level options every client command shares.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct Globals {
    /// The master's `host:port` (any master; a standby redirects).
    #[arg(long = "address", global = true, env = "AGORA_ADDR")]
    pub(crate) address: Option<String>,
    /// Marathon's `host:port`.
    #[arg(long, global = true, env = "AGORA_MARATHON")]
    pub(crate) marathon: Option<String>,
    /// No ANSI colour (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
}

/// A client command's endpoints: its own `--master` flag, then filled in
/// from the globals by [`Endpoints::resolve`] before the command runs.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct Endpoints {
    /// The master's `host:port` (the older spelling of --address).
    #[arg(long = "master", global = true, value_name = "HOST:PORT")]
    master_flag: Option<String>,
    /// The master to talk to.
    #[arg(skip)]
    pub(crate) master: String,
    /// Marathon to talk to.
    #[arg(skip)]
    pub(crate) marathon: String,
}

impl Endpoints {
    /// `--master`, else `--address`/`AGORA_ADDR`, else `AGORA_MASTER`, else
    /// the default; Marathon from `--marathon`/`AGORA_MARATHON`.
    pub(crate) fn resolve(&mut self, g: &Globals) {
        let env_master = std::env::var("AGORA_MASTER").ok().filter(|v| !v.is_empty());
        self.master = self
            .master_flag
            .clone()
            .or_else(|| g.address.clone())
            .or(env_master)
            .unwrap_or_else(|| DEFAULT_MASTER.to_string());
        self.marathon = g
            .marathon
            .clone()
            .unwrap_or_else(|| DEFAULT_MARATHON.to_string());
    }
}

/// Whether to print ANSI colour: stdout is a terminal, `--no-color` was
/// not given and `NO_COLOR` is unset or empty.
pub(crate) fn colour(g: &Globals) -> bool {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !g.no_color && !no_color_env && std::io::stdout().is_terminal()
}

/// Wraps `text` in an SGR colour code when `on`.
pub(crate) fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
