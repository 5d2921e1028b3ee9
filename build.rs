//! Compiles `proto/` into Rust with protox (a pure-Rust protobuf compiler, so no
//! system `protoc` is needed) and writes the descriptor set that server
//! reflection serves.
use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["sqlgate/v1/sqlgate.proto"], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("sqlgate_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        // prost's codec, but undecodable requests are INVALID_ARGUMENT.
        .codec_path("crate::codec::Codec")
        // Written by hand so that streams can send rows encoded straight from
        // MySQL cells (see src/api/row_batch.rs); the wire format is the proto's.
        .extern_path(".sqlgate.v1.RowBatch", "crate::api::RowBatch")
        // Written by hand so that Execute can send column descriptions
        // encoded once per result shape (see src/api/execute_response.rs).
        .extern_path(".sqlgate.v1.ExecuteResponse", "crate::api::ExecuteResponse")
        // google.rpc.Status (in-band statement errors of Transaction streams)
        // is tonic-types' own, which is what tonic's statuses carry.
        .extern_path(".google.rpc", "::tonic_types::pb")
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
