//! Compiles the .proto files with protox (pure Rust), so no system protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/agora/v1/common.proto",
        "proto/agora/v1/scheduler.proto",
        "proto/agora/v1/agent.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    // Every service uses `codec::LeanCodec` (small initial buffers; see there).
    tonic_prost_build::configure()
        .codec_path("crate::codec::LeanCodec")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
