//! The generated protobuf types and gRPC service of `proto/sqlgate/v1/sqlgate.proto`.
#![allow(missing_docs)]

tonic::include_proto!("sqlgate.v1");

mod execute_response;
mod row_batch;
pub use execute_response::{COLUMNS as EXECUTE_RESPONSE_COLUMNS, ExecuteResponse};
pub use row_batch::{ROW_VALUES, RowBatch};

/// The encoded `FileDescriptorSet` of the API, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sqlgate_descriptor.bin"));

/// The fully qualified gRPC service name, as health checks and reflection use it.
pub const SERVICE_NAME: &str = "sqlgate.v1.Database";
