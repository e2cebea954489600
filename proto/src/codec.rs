//! The gRPC codec of every Agora service: prost, with a small initial buffer.
//!
//! tonic's default gives each stream an 8 KiB encode buffer and an 8 KiB
//! decode buffer up front. A master holds one long-lived Attach stream per
//! agent, so at 10,000 agents those two buffers alone were 160 MB of a
//! mostly idle master. Agora's messages are a few hundred bytes; a buffer
//! that starts at 1 KiB grows for the rare large one (an OFFERS event) and
//! keeps that size for the stream's next messages.
use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial size of a stream's encode and decode buffers.
const INITIAL_BUFFER: usize = 1024;
/// How much a streaming response encodes before yielding (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD)
}

/// `tonic_prost::ProstCodec` with `settings()`; named in `build.rs`.
#[derive(Debug, Clone, Copy)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        LeanCodec(PhantomData)
    }
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
