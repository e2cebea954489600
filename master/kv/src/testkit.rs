//! Test input builders for this crate's and other crates' tests (feature
//! `testkit`), as `agora_model::testkit`.

use crate::{Command, RequestOp, TxnRequest};

/// The postcard bytes of a `Command::Txn` whose success branch nests
/// `depth` txns, built without building the value (dropping a value that
/// deep would itself overflow the stack).
pub fn nested_txn_bytes(depth: usize) -> Vec<u8> {
    let empty = TxnRequest::default();
    // An empty txn is three zero lengths (compare, success, failure); what
    // precedes them is the variant's tag.
    let command = postcard::to_stdvec(&Command::Txn(empty.clone())).unwrap_or_default();
    let op = postcard::to_stdvec(&RequestOp::Txn(empty)).unwrap_or_default();
    let tag = |bytes: &[u8]| bytes[..bytes.len().saturating_sub(3)].to_vec();
    let (command_tag, op_tag) = (tag(&command), tag(&op));
    let mut bytes = command_tag;
    for _ in 0..depth {
        // compare: none; success: one op, a txn.
        bytes.extend([0, 1]);
        bytes.extend(&op_tag);
    }
    bytes.extend([0, 0, 0]);
    // Each enclosing txn's empty failure branch.
    bytes.extend(std::iter::repeat_n(0, depth));
    bytes
}
