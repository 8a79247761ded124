//! Writes the seed corpus (`etcd_fuzz::seeds`) under `corpus/<target>/`, replacing seeds
//! of the same name. Run from `fuzz/`: `cargo run --example write_seeds`.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for s in etcd_fuzz::seeds::all() {
        let dir = root.join(s.target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(s.name), &s.bytes).expect("seed written");
        println!("{}/{}: {} bytes", s.target, s.name, s.bytes.len());
    }
}
