//! A backup of a group's replicated state: one member's state machine
//! snapshot, in a file an operator keeps (`etcdctl snapshot save` against
//! the etcd API writes one) and later founds a new group from.
//!
//! Layout: [`BACKUP_MAGIC`], the snapshot's length (u64, big endian), the
//! snapshot, zeros up to a multiple of [`BACKUP_BLOCK`] bytes, and the
//! SHA-256 of all that. etcd appends a SHA-256 to its snapshot stream the
//! same way, and etcdctl refuses to save a stream whose length is not a
//! multiple of 512 plus the 32 checksum bytes (a bolt file is whole
//! pages), hence the padding. A backup is copied between machines and
//! kept for months, so a flipped or missing byte must be found before a
//! group is founded on it, not when a key is read.
use sha2::{Digest, Sha256};

/// The first bytes of every backup, with the layout's version.
pub const BACKUP_MAGIC: &[u8; 8] = b"AGORABK1";
/// The checksummed part is a whole number of these (see the module docs).
pub const BACKUP_BLOCK: usize = 512;
/// Length of the trailing checksum.
const CHECKSUM_BYTES: usize = 32;
/// Magic and length field.
const HEAD_BYTES: usize = BACKUP_MAGIC.len() + 8;

/// Why bytes are not a usable backup.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupError {
    /// It does not start with [`BACKUP_MAGIC`]: another file, or a backup
    /// of a layout this version does not know.
    #[error(
        "not an Agora backup (it does not start with {:?})",
        String::from_utf8_lossy(BACKUP_MAGIC)
    )]
    NotABackup,
    /// Shorter than the magic, length and checksum.
    #[error("backup truncated: {0} bytes")]
    Truncated(usize),
    /// The content does not match its checksum: damaged or cut short.
    #[error("backup damaged: its SHA-256 does not match its content")]
    Checksum,
    /// The checksum matches, but the recorded length does not fit the
    /// content: written by something other than [`encode_backup`].
    #[error("backup malformed: it records a {0}-byte state that it does not hold")]
    Length(u64),
}

/// The backup file's bytes for a state machine snapshot.
pub fn encode_backup(snapshot: &[u8]) -> Vec<u8> {
    let padded = (HEAD_BYTES + snapshot.len()).next_multiple_of(BACKUP_BLOCK);
    let mut out = Vec::with_capacity(padded + CHECKSUM_BYTES);
    out.extend_from_slice(BACKUP_MAGIC);
    out.extend_from_slice(&(snapshot.len() as u64).to_be_bytes());
    out.extend_from_slice(snapshot);
    out.resize(padded, 0);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    out
}

/// The snapshot inside a backup file's bytes, once its checksum matches.
pub fn decode_backup(bytes: &[u8]) -> Result<&[u8], BackupError> {
    if bytes.len() < HEAD_BYTES + CHECKSUM_BYTES {
        return match bytes.starts_with(&BACKUP_MAGIC[..bytes.len().min(BACKUP_MAGIC.len())]) {
            true => Err(BackupError::Truncated(bytes.len())),
            false => Err(BackupError::NotABackup),
        };
    }
    if !bytes.starts_with(BACKUP_MAGIC) {
        return Err(BackupError::NotABackup);
    }
    let (content, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    if Sha256::digest(content).as_slice() != checksum {
        return Err(BackupError::Checksum);
    }
    let mut length = [0u8; 8];
    length.copy_from_slice(&content[BACKUP_MAGIC.len()..HEAD_BYTES]);
    let length = u64::from_be_bytes(length);
    let body = &content[HEAD_BYTES..];
    usize::try_from(length)
        .ok()
        .and_then(|length| body.get(..length))
        .ok_or(BackupError::Length(length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_backup_gives_back_its_snapshot() {
        let backup = encode_backup(b"state");
        assert_eq!(decode_backup(&backup), Ok(&b"state"[..]));
        assert_eq!(decode_backup(&encode_backup(b"")), Ok(&b""[..]));
    }

    #[test]
    fn other_files_and_short_ones_are_named() {
        assert_eq!(decode_backup(b""), Err(BackupError::Truncated(0)));
        assert_eq!(decode_backup(b"AGORA"), Err(BackupError::Truncated(5)));
        assert_eq!(decode_backup(b"bolt"), Err(BackupError::NotABackup));
        let mut other = vec![0u8; 100];
        other[..4].copy_from_slice(b"BOLT");
        assert_eq!(decode_backup(&other), Err(BackupError::NotABackup));
        let cut = encode_backup(b"state");
        assert_eq!(
            decode_backup(&cut[..cut.len() - 1]),
            Err(BackupError::Checksum)
        );
        // A checksum that matches a length the content does not hold.
        let mut forged = BACKUP_MAGIC.to_vec();
        forged.extend_from_slice(&u64::MAX.to_be_bytes());
        let checksum = Sha256::digest(&forged);
        forged.extend_from_slice(&checksum);
        assert_eq!(decode_backup(&forged), Err(BackupError::Length(u64::MAX)));
    }

    /// etcdctl's `snapshot save` takes only streams of whole 512-byte
    /// blocks plus a 32-byte checksum (`hasChecksum` in etcd's client).
    #[test]
    fn backups_have_the_length_etcdctl_accepts() {
        for len in [0, 1, 495, 496, 497, 10_000] {
            let backup = encode_backup(&vec![7; len]);
            assert_eq!(backup.len() % BACKUP_BLOCK, CHECKSUM_BYTES, "len {len}");
        }
    }

    proptest! {
        /// Any one flipped bit, anywhere after the magic, is found.
        #[test]
        fn a_flipped_bit_is_found(snapshot in proptest::collection::vec(any::<u8>(), 0..512),
                                  at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut backup = encode_backup(&snapshot);
            let position = BACKUP_MAGIC.len() + at.index(backup.len() - BACKUP_MAGIC.len());
            backup[position] ^= 1 << bit;
            prop_assert_eq!(decode_backup(&backup), Err(BackupError::Checksum));
        }

        #[test]
        fn round_trip(snapshot in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let backup = encode_backup(&snapshot);
            prop_assert_eq!(decode_backup(&backup), Ok(&snapshot[..]));
        }
    }
}
