//! Moving raft messages between members. The engine only produces and
//! consumes `eraftpb::Message`s; a transport carries them, as bytes in
//! raft-rs's protobuf encoding (inside a tonic envelope in production, see
//! deps.md). `grpc` is that network (tonic); `sim` is the deterministic in-process network for tests.

pub mod grpc;
pub mod sim;

use protobuf::Message as _;
use raft::eraftpb::Message;

/// Something that delivers messages to peers, best effort: raft tolerates
/// loss, duplication and reordering, never corruption (authenticate peers).
pub trait Transport {
    /// Queues `message` for member `message.to`. Must not block.
    fn send(&mut self, message: Message);

    /// Peers that could not be reached (or whose queue overflowed) since
    /// the last call; the owner passes each to `Replica::report_unreachable`.
    fn take_unreachable(&mut self) -> Vec<u64> {
        Vec::new()
    }
}

/// Encodes a message for the wire.
pub fn encode_message(message: &Message) -> Vec<u8> {
    // Encoding an in-memory message fails only past protobuf's 2 GiB limit,
    // which bounded appends and our snapshots stay far below; the receiver
    // drops the empty frame that results.
    message.write_to_bytes().unwrap_or_default()
}

/// Decodes a message from the wire; `None` (with a log line) for bytes
/// that are not one.
pub fn decode_message(bytes: &[u8]) -> Option<Message> {
    match Message::parse_from_bytes(bytes) {
        Ok(message) => Some(message),
        Err(error) => {
            tracing::warn!(%error, "undecodable raft message ignored");
            None
        }
    }
}
