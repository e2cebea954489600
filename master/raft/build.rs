//! Compiles the peer protocol with protox (pure Rust), so no system protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["proto/agora/raft/v1/raft.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".agora.raft.v1.RaftEnvelope.payload")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
