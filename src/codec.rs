//! The protobuf codec of the API: prost's, except that a request that cannot
//! be decoded (for example invalid UTF-8 in a string field) is the client's
//! error, INVALID_ARGUMENT / MALFORMED_REQUEST, rather than tonic's INTERNAL.
use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Code, Status,
    codec::{BufferSettings, DecodeBuf},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Used by the generated service code (see `build.rs`).
#[derive(Debug, Clone)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(buffer_settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(ProstCodec::<T, U>::raw_decoder(buffer_settings()))
    }
}

/// The first allocation of a call's request and response buffers, bytes.
/// tonic allocates both eagerly when a call starts (8 KiB each by default),
/// so most of what an idle stream holds is these; they grow in steps of
/// this size as messages need (see `tests/limits.rs`, idle streams).
const BUFFER_BYTES: usize = 1024;
/// How much of a response stream is gathered before it is sent (tonic's
/// default).
const YIELD_THRESHOLD: usize = 32 * 1024;

fn buffer_settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

/// prost's decoder with the error code changed.
pub struct Decoder<U>(ProstDecoder<U>);

impl<U: Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| match status.code() {
            Code::Internal => crate::errors::status::malformed_request(format!(
                "the message is not valid protobuf for this call: {}",
                status.message()
            )),
            _ => status,
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
