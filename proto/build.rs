//! Generates the Rust types, gRPC clients and gRPC servers for every `.proto` file
//! under `proto/`, without needing a system `protoc`: `protox` parses the files into a
//! descriptor set, which `tonic-prost-build` then turns into code. The encoded
//! descriptor set is also written to `OUT_DIR/etcd_descriptor.bin`.

use std::path::{Path, PathBuf};

use protox::prost::Message as _;

/// Directory holding the `.proto` files; also the import root, so files import each
/// other by paths such as `etcdserverpb/rpc.proto`.
const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Cargo scans a directory recursively, so new or edited files trigger a rebuild.
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let root = Path::new(PROTO_ROOT);
    let mut files = Vec::new();
    collect_protos(root, root, &mut files)?;
    files.sort();

    let fds = protox::compile(&files, [root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("etcd_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

/// Appends to `out` the path, relative to `root` and with `/` separators, of every
/// `.proto` file under `dir`.
fn collect_protos(
    root: &Path,
    dir: &Path,
    out: &mut Vec<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(root, &path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            let relative = path.strip_prefix(root)?;
            let parts: Vec<_> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}
