//! The image as an OCI image layout: exported from Docker with skopeo, checked (the layout
//! file, every blob's digest and size, umoci unpacking it into a runtime bundle with the
//! image's user and entrypoint), and run once with podman from the layout: a member healthy
//! on its published port, answering Debian's etcdctl, stopped by SIGTERM with exit 0.
//!
//! podman needs `--ulimit` values within this sandbox's limits: the sandbox withholds
//! CAP_SYS_RESOURCE, so runc cannot raise a container's open-file and process limits to
//! podman's defaults (see the README's "Images").

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use etcd_e2e::docker;
use etcd_e2e::{etcdctl, free_port, wait};

/// A directory of this test process with a lowercase path (podman derives an image name
/// from an `oci:` path, and image names are lowercase), removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Dir {
        let path = std::env::temp_dir().join(docker::unique(what));
        std::fs::create_dir_all(&path).expect("mkdir");
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (apt-get install {program}): {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Checks that the blob a descriptor names exists with its size and sha256 digest; returns
/// its path.
fn blob(layout: &Path, descriptor: &serde_json::Value) -> PathBuf {
    let digest = descriptor["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let path = layout.join("blobs/sha256").join(hex);
    let size = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("blob {digest} missing: {e}"))
        .len();
    assert_eq!(Some(size), descriptor["size"].as_u64(), "size of {digest}");
    let sum = run_ok("sha256sum", &[path.to_str().unwrap()]);
    assert_eq!(
        sum.split_whitespace().next(),
        Some(hex),
        "digest of {digest}"
    );
    path
}

/// podman with its own storage under `dir`, so the test touches no other images.
struct Podman {
    root: String,
    runroot: String,
    name: String,
}

impl Podman {
    fn cmd(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--root",
            &self.root,
            "--runroot",
            &self.runroot,
            "--storage-driver",
            "vfs",
        ];
        all.extend_from_slice(args);
        run("podman", &all)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-f", "-v", &self.name]);
        let _ = self.cmd(&["rmi", "-a", "-f"]);
    }
}

#[test]
fn oci_layout_is_valid_and_runs_with_podman() {
    let image = docker::require();
    let dir = Dir::new("oci");
    let layout = dir.0.join("layout");
    let reference = format!("oci:{}:dev", layout.display());
    run_ok(
        "skopeo",
        &["copy", &format!("docker-daemon:{image}"), &reference],
    );

    // The layout: its marker file, the index naming the tag, the manifest, config and
    // layers all present with their digests and sizes.
    assert_eq!(
        json(&layout.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index = json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    let entry = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "dev")
        .expect("the dev tag in index.json");
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let manifest = json(&blob(&layout, entry));
    let config = json(&blob(&layout, &manifest["config"]));
    for layer in manifest["layers"].as_array().expect("layers") {
        blob(&layout, layer);
    }
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["etcd"]));
    assert!(
        config["config"]["Labels"]["org.opencontainers.image.version"].is_string(),
        "no version label: {config}"
    );
    // umoci turns it into a runtime bundle: the binaries in the root filesystem, the
    // image's user and entrypoint in config.json.
    let bundle = dir.0.join("bundle");
    run_ok(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:dev", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    for bin in ["etcd", "etcdctl", "etcd-benchmark", "etcd-gateway"] {
        assert!(
            bundle.join("rootfs/usr/local/bin").join(bin).exists(),
            "{bin} missing from the unpacked image"
        );
    }
    let runtime = json(&bundle.join("config.json"));
    assert_eq!(runtime["process"]["user"]["uid"], 65532);
    assert_eq!(runtime["process"]["args"][0], "etcd");

    // podman runs it from the layout.
    let port = free_port();
    let podman = Podman {
        root: dir.0.join("podman-root").display().to_string(),
        runroot: dir.0.join("podman-run").display().to_string(),
        name: docker::unique("podman"),
    };
    let started = Instant::now();
    let out = podman.cmd(&[
        "run",
        "-d",
        "--name",
        &podman.name,
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=4096:4096",
        "-p",
        &format!("127.0.0.1:{port}:2379"),
        &reference,
    ]);
    assert!(
        out.status.success(),
        "podman run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    wait::until(Duration::from_secs(60), "the podman member healthy", || {
        etcdctl(&endpoint, &["endpoint", "health"], None)
            .status
            .success()
    });
    let healthy_after = started.elapsed();
    let put = etcdctl(&endpoint, &["put", "from", "podman"], None);
    assert!(put.status.success());
    let get = etcdctl(&endpoint, &["get", "from", "--print-value-only"], None);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "podman\n");
    let user = podman.cmd(&["inspect", "--format", "{{.Config.User}}", &podman.name]);
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532:65532");
    let stopping = Instant::now();
    let stop = podman.cmd(&["stop", "-t", "10", &podman.name]);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let stopped_after = stopping.elapsed();
    let code = podman.cmd(&["inspect", "--format", "{{.State.ExitCode}}", &podman.name]);
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "0",
        "the podman member did not exit 0 on SIGTERM"
    );
    assert!(stopped_after < Duration::from_secs(10));
    eprintln!("podman: healthy after {healthy_after:?}, stopped in {stopped_after:?}");
}
