//! A bound on how deeply txns nest in anything decoded with serde: log
//! entries, snapshots, and requests members forward to their leader.
//!
//! Decoding a nested txn recurses once per level, so bytes describing a
//! txn nested a hundred thousand levels deep (a few hundred kilobytes)
//! would overflow the decoding thread's stack and abort the process before
//! any validation runs. Past [`MAX_TXN_DEPTH`] decoding fails instead.

use std::cell::Cell;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::types::TxnRequest;

/// Deepest txn nesting decoded. etcd's op budget (128 operations over all
/// levels of one txn) already bounds a valid txn's depth at 128, and the
/// etcd API's protobuf decoder stops far earlier (prost's recursion limit
/// of 100 messages, two per level), so no request a client can send
/// through the API is refused here.
pub const MAX_TXN_DEPTH: usize = 128;

thread_local! {
    /// Nested txns being decoded on this thread right now.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// Whether a decode on this thread was refused for its nesting since
    /// [`from_postcard`] started it.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Decodes `bytes` with postcard. postcard drops the text of serde's
/// custom errors, so a refusal for nesting is recognised here and said.
pub fn from_postcard<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    REFUSED.with(|refused| refused.set(false));
    postcard::from_bytes(bytes).map_err(|error| {
        if REFUSED.with(|refused| refused.replace(false)) {
            format!("txn nested deeper than {MAX_TXN_DEPTH} levels")
        } else {
            error.to_string()
        }
    })
}

/// One level of nesting being decoded; leaving it (also by an error)
/// gives the level back.
struct Level;

impl Level {
    fn enter() -> Option<Level> {
        DEPTH.with(|depth| {
            let now = depth.get() + 1;
            (now <= MAX_TXN_DEPTH).then(|| {
                depth.set(now);
                Level
            })
        })
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

/// Decodes a nested txn, refusing one level deeper than [`MAX_TXN_DEPTH`].
pub(crate) fn bounded_txn<'de, D: Deserializer<'de>>(decoder: D) -> Result<TxnRequest, D::Error> {
    let Some(_level) = Level::enter() else {
        REFUSED.with(|refused| refused.set(true));
        return Err(D::Error::custom(format!(
            "txn nested deeper than {MAX_TXN_DEPTH} levels"
        )));
    };
    TxnRequest::deserialize(decoder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::nested_txn_bytes;
    use crate::{Command, RequestOp};

    fn depth_of(command: &Command) -> usize {
        let Command::Txn(mut txn) = command.clone() else {
            return 0;
        };
        let mut depth = 0;
        while let Some(RequestOp::Txn(nested)) = txn.success.first().cloned() {
            depth += 1;
            txn = nested;
        }
        depth
    }

    #[test]
    fn txns_nested_up_to_the_bound_decode() {
        let decoded = from_postcard::<Command>(&nested_txn_bytes(MAX_TXN_DEPTH)).unwrap();
        assert_eq!(depth_of(&decoded), MAX_TXN_DEPTH);
        assert_eq!(DEPTH.with(Cell::get), 0, "every level was given back");
    }

    #[test]
    fn txns_nested_past_the_bound_are_refused_without_overflowing_the_stack() {
        for depth in [MAX_TXN_DEPTH + 1, 200_000] {
            let error = from_postcard::<Command>(&nested_txn_bytes(depth)).unwrap_err();
            assert!(error.to_string().contains("nested deeper"), "{error}");
            assert_eq!(DEPTH.with(Cell::get), 0, "every level was given back");
        }
        // The thread decodes normally afterwards.
        let decoded = from_postcard::<Command>(&nested_txn_bytes(3)).unwrap();
        assert_eq!(depth_of(&decoded), 3);
    }
}
