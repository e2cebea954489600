//! Compiles etcd's .proto files with protox (pure Rust), so no system protoc
//! is needed. Server code only: Agora serves this API, its tests use real
//! etcd clients.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/mvccpb/kv.proto",
        "proto/etcdserverpb/rpc.proto",
        "proto/v3lockpb/v3lock.proto",
        "proto/v3electionpb/v3election.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .compile_fds(fds)?;
    // The internal forwarding service: members are its clients too.
    let forward = protox::compile(["proto/agora/etcd/internal/v1/forward.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(forward)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
