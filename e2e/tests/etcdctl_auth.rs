//! Differential test of our etcdctl's authentication against Debian's etcdctl 3.4: the
//! same sequence of `auth`, `user` and `role` commands, and of requests made as different
//! users (`--user`, `--password`, `ETCDCTL_USER`, a password asked for on stdin), runs
//! through both clients, each against its own fresh member so both see the same
//! revisions; stdout, stderr and exit status must match after IDs and ports are blanked.
//! The sequence covers failures too: an existing user, a missing role, enabling auth
//! before root exists, a wrong password, permission denied on reads, writes and watches,
//! and the json, fields, table and protobuf formats.
//!
//! `*_on_reference` runs ours against Debian's etcd, so it checks our etcdctl alone;
//! `*_on_ours` runs ours against our server and Debian's against Debian's etcd, so it
//! also checks our server's authentication.

use std::path::{Path, PathBuf};
use std::process::Output;

use etcd_e2e::{etcdctl_with, normalise, our_binary, Flavor, Member, DEBIAN_ETCDCTL};

/// Debian's etcdctl on a member of Debian's etcd, ours on a member of `flavor`.
struct Duo {
    debian: Member,
    ours: Member,
    dir: tempfile::TempDir,
}

impl Duo {
    fn start(flavor: Flavor) -> Duo {
        Duo {
            debian: Member::start(Flavor::Reference, &[]),
            ours: Member::start(flavor, &[]),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Runs `args` (with `input` on stdin and `env` set) through both clients.
    fn run(&self, args: &[&str], input: Option<&str>, env: &[(&str, &str)]) -> (Output, Output) {
        let debian = Path::new(DEBIAN_ETCDCTL);
        (
            etcdctl_with(debian, &self.debian.endpoint(), args, input, env),
            etcdctl_with(
                &our_binary("etcdctl"),
                &self.ours.endpoint(),
                args,
                input,
                env,
            ),
        )
    }

    /// Asserts both clients print the same for `args`; returns the transcript.
    fn same(&self, args: &[&str]) -> String {
        self.same_with(args, None, &[])
    }

    fn same_with(&self, args: &[&str], input: Option<&str>, env: &[(&str, &str)]) -> String {
        let (debian, ours) = self.run(args, input, env);
        let (debian, ours) = (transcript(&debian), transcript(&ours));
        assert_eq!(ours, debian, "etcdctl {args:?} (left: ours)");
        ours
    }

    /// Asserts both clients write the same bytes for the read-only `args` when both ask
    /// the same member (ours), so member IDs in binary output (protobuf) match too.
    fn same_bytes_on_one(&self, args: &[&str]) -> Vec<u8> {
        let endpoint = self.ours.endpoint();
        let run = |binary: &Path| etcdctl_with(binary, &endpoint, args, None, &[]);
        let (debian, ours) = (run(Path::new(DEBIAN_ETCDCTL)), run(&our_binary("etcdctl")));
        assert_eq!(ours.status.code(), debian.status.code(), "etcdctl {args:?}");
        assert_eq!(ours.stdout, debian.stdout, "etcdctl {args:?} (left: ours)");
        ours.stdout
    }

    /// Asserts both clients answer a write in the protobuf format alike: same status and
    /// stderr, and the same bytes after the response header (whose member IDs differ).
    fn same_protobuf(&self, args: &[&str]) -> Vec<u8> {
        let (debian, ours) = self.run(args, None, &[]);
        assert_eq!(ours.status.code(), debian.status.code(), "etcdctl {args:?}");
        assert_eq!(ours.stderr, debian.stderr, "etcdctl {args:?} (left: ours)");
        let (debian, ours) = (after_header(&debian.stdout), after_header(&ours.stdout));
        assert_eq!(ours, debian, "etcdctl {args:?} (left: ours)");
        ours.to_vec()
    }

    /// A path in the test's directory for `who`'s copy of a file.
    fn path(&self, who: &str, name: &str) -> PathBuf {
        self.dir.path().join(format!("{who}-{name}"))
    }
}

/// A protobuf response without its leading header field (field 1, shorter than 128
/// bytes); panics if it does not start with one.
fn after_header(encoded: &[u8]) -> &[u8] {
    match encoded {
        [0x0a, len, rest @ ..] if *len < 0x80 => &rest[usize::from(*len)..],
        _ => panic!("no response header in {encoded:?}"),
    }
}

/// Exit status, stdout and stderr without Go's log lines, with IDs and ports blanked
/// (also the `fields` format's, which [`normalise`] leaves alone).
fn transcript(out: &Output) -> String {
    let text = etcd_e2e::quiet_transcript(out);
    let fields =
        regex::Regex::new(r#"(?m)^"(ClusterID|MemberID|RaftTerm)" : \d+$"#).expect("regex");
    fields
        .replace_all(&normalise(&text), "\"$1\" : <n>")
        .into_owned()
}

#[test]
fn auth_users_and_roles_on_reference() {
    auth_users_and_roles(Flavor::Reference);
}

/// The same against our server (Debian's etcdctl still talks to Debian's etcd).
#[test]
fn auth_users_and_roles_on_ours() {
    auth_users_and_roles(Flavor::Ours);
}

fn auth_users_and_roles(flavor: Flavor) {
    let duo = Duo::start(flavor);
    let root = "--user=root:rootpw";

    // Authentication cannot be enabled before root exists.
    let refused = duo.same(&["auth", "enable"]);
    assert_eq!(
        refused,
        "exit=1\nError: etcdserver: root user does not exist\n"
    );
    assert_eq!(
        duo.same(&["user", "add", "root:rootpw"]),
        "exit=0\nUser root created\n"
    );
    let exists = duo.same(&["user", "add", "root:other"]);
    assert_eq!(
        exists,
        "exit=1\nError: etcdserver: user name already exists\n"
    );
    duo.same(&["user", "add", ":nameless"]);
    duo.same(&["user", "add"]);

    roles(&duo);
    users(&duo);

    // Enabling gives root the root role first (etcdctl does that itself).
    assert_eq!(
        duo.same(&["auth", "enable"]),
        "exit=0\nAuthentication Enabled\n"
    );
    duo.same(&["auth", "enable", "extra"]);
    as_users(&duo, root);

    assert_eq!(
        duo.same(&[root, "auth", "disable"]),
        "exit=0\nAuthentication Disabled\n"
    );
    assert!(duo.same(&["get", "foo"]).starts_with("exit=0\nfoo\nbar\n"));
}

/// Roles and their permissions in every output format, and the commands' argument errors.
fn roles(duo: &Duo) {
    assert_eq!(
        duo.same(&["role", "add", "r1"]),
        "exit=0\nRole r1 created\n"
    );
    let exists = duo.same(&["role", "add", "r1"]);
    assert_eq!(
        exists,
        "exit=1\nError: etcdserver: role name already exists\n"
    );
    duo.same(&["-w", "json", "role", "add", "r2"]);
    duo.same(&["-w", "fields", "role", "add", "r3"]);
    let table = duo.same(&["-w", "table", "role", "add", "r4"]);
    assert_eq!(
        table,
        "exit=4\nError: table not supported as output format\n"
    );
    duo.same_protobuf(&["-w", "protobuf", "role", "add", "r5"]);
    duo.same(&["role", "add"]);

    for grant in [
        &["r1", "read", "foo"][..],
        &["r1", "write", "foo", "zoo"],
        &["--prefix", "r1", "readwrite", "pre"],
        &["--from-key", "r1", "READ", "fk"],
        &["-w", "json", "r2", "Write", "k"],
        &["-w", "fields", "r2", "read", "k2"],
        // Failures: an unknown type, too few arguments, conflicting flags, no such role.
        &["r1", "rw", "k"],
        &["r1", "read"],
        &["--prefix", "--from-key", "r1", "read", "k"],
        &["--prefix", "r1", "read", "k", "e"],
        &["--from-key", "r1", "read", "k", "e"],
        &["nosuch", "read", "k"],
    ] {
        duo.same(&[&["role", "grant-permission"], grant].concat());
    }
    let r1 = duo.same(&["role", "get", "r1"]);
    assert_eq!(
        r1,
        "exit=0\nRole r1\nKV Read:\n\t[fk, <open ended>\n\tfoo\n\t[pre, prf) (prefix pre)\n\
         KV Write:\n\t[foo, zoo)\n\t[pre, prf) (prefix pre)\n"
    );
    for format in ["json", "fields", "table"] {
        duo.same(&["-w", format, "role", "get", "r1"]);
    }
    let perms = duo.same_bytes_on_one(&["-w", "protobuf", "role", "get", "r1"]);
    assert!(perms.windows(3).any(|w| w == b"prf"), "{perms:?}");
    duo.same(&["role", "get", "nosuch"]);
    duo.same(&["role", "get"]);
    for format in ["simple", "json", "fields", "table"] {
        duo.same(&["-w", format, "role", "list"]);
    }
    duo.same(&["role", "list", "extra"]);

    for revoke in [
        &["r2", "k"][..],
        &["--prefix", "r1", "pre"],
        &["-w", "json", "r1", "foo", "zoo"],
        &["-w", "fields", "r2", "k2"],
        &["r1", "nope"],
        &["r1"],
        &["--from-key", "r1", "a", "b"],
    ] {
        duo.same(&[&["role", "revoke-permission"], revoke].concat());
    }
    duo.same(&[
        "role",
        "grant-permission",
        "--prefix",
        "r1",
        "readwrite",
        "pre",
    ]);
    duo.same(&["role", "delete", "r5"]);
    duo.same(&["-w", "json", "role", "delete", "r4"]);
    duo.same(&["role", "delete", "r5"]);
}

/// Users: passwords from the argument, a flag, stdin or the prompt; roles granted and
/// revoked; every output format.
fn users(duo: &Duo) {
    assert_eq!(
        duo.same(&["user", "add", "u1:p1"]),
        "exit=0\nUser u1 created\n"
    );
    duo.same(&["user", "add", "--new-user-password=p2", "u2"]);
    duo.same(&["-w", "json", "user", "add", "--no-password", "u3"]);
    duo.same(&["-w", "fields", "user", "add", "u4:p4"]);
    duo.same(&["-w", "table", "user", "add", "u5:p5"]);
    duo.same_protobuf(&["-w", "protobuf", "user", "add", "u9:p9"]);
    // Asked twice on stdin (etcdctl's prompts, and stty's complaints about a stdin that is
    // not a terminal); mismatched and empty answers; one word read with
    // --interactive=false.
    let asked = duo.same_with(&["user", "add", "u6"], Some("p6\np6\n"), &[]);
    assert!(
        asked.contains("Password of u6: \nType password of u6 again"),
        "{asked}"
    );
    duo.same_with(&["user", "add", "u7"], Some("a\nb\n"), &[]);
    duo.same_with(&["user", "add", "u7"], Some(""), &[]);
    duo.same_with(
        &["user", "add", "--interactive=false", "u8"],
        Some(" p8 x\n"),
        &[],
    );

    duo.same(&["user", "grant-role", "u1", "r1"]);
    duo.same(&["-w", "json", "user", "grant-role", "u1", "r2"]);
    duo.same(&["-w", "fields", "user", "grant-role", "u8", "r2"]);
    let missing = duo.same(&["user", "grant-role", "u1", "nosuch"]);
    assert_eq!(missing, "exit=1\nError: etcdserver: role name not found\n");
    duo.same(&["user", "grant-role", "nosuch", "r1"]);
    duo.same(&["user", "grant-role", "u1"]);
    for format in ["simple", "json", "fields", "table"] {
        duo.same(&["-w", format, "user", "get", "u1"]);
        duo.same(&["-w", format, "user", "get", "--detail", "u1"]);
        duo.same(&["-w", format, "user", "list"]);
    }
    let users = duo.same_bytes_on_one(&["-w", "protobuf", "user", "list"]);
    assert!(users.windows(2).any(|w| w == b"u9"), "{users:?}");
    duo.same_bytes_on_one(&["-w", "protobuf", "user", "get", "--detail", "u1"]);
    duo.same(&["user", "get", "nosuch"]);
    duo.same(&["user", "revoke-role", "u8", "r2"]);
    duo.same(&["user", "revoke-role", "u8", "r2"]);
    duo.same(&["-w", "json", "user", "revoke-role", "u1", "r2"]);
    duo.same_with(
        &["user", "passwd", "--interactive=false", "u2"],
        Some("p2b\n"),
        &[],
    );
    duo.same_with(
        &["-w", "json", "user", "passwd", "u2"],
        Some("p2c\np2c\n"),
        &[],
    );
    duo.same(&["user", "delete", "u5"]);
    duo.same(&["user", "delete", "u5"]);
}

/// Requests as root, as a user with a read-only role and as one without roles, with the
/// credentials given every way etcdctl takes them.
fn as_users(duo: &Duo, root: &str) {
    let anonymous = duo.same(&["put", "foo", "bar"]);
    assert_eq!(anonymous, "exit=1\nError: etcdserver: user name is empty\n");
    let wrong = duo.same(&["--user=root:wrong", "get", "foo"]);
    assert_eq!(
        wrong,
        "exit=2\nError: etcdserver: authentication failed, invalid user ID or password\n"
    );
    duo.same(&["--user=nobody:x", "get", "foo"]);
    assert_eq!(duo.same(&[root, "put", "foo", "bar"]), "exit=0\nOK\n");

    let reader = duo.same(&["--user=u1:p1", "get", "foo"]);
    assert_eq!(reader, "exit=0\nfoo\nbar\n");
    let denied = duo.same(&["--user=u1:p1", "put", "foo", "x"]);
    assert_eq!(denied, "exit=1\nError: etcdserver: permission denied\n");
    duo.same(&["--user=u1:p1", "-w", "json", "get", "foo"]);
    duo.same(&["--user=u1:p1", "user", "list"]);
    duo.same(&["--user=u1", "--password=p1", "get", "foo"]);
    duo.same(&["--user=u1:p1", "--password=p1", "get", "foo"]);
    duo.same_with(&["get", "foo"], None, &[("ETCDCTL_USER", "u1:p1")]);
    let env = [("ETCDCTL_USER", "u1"), ("ETCDCTL_PASSWORD", "p1")];
    duo.same_with(&["get", "foo"], None, &env);
    let asked = duo.same_with(&["--user=u1", "get", "foo"], Some("p1\n"), &[]);
    assert!(
        asked.starts_with("exit=0\nPassword: \nfoo\nbar\n"),
        "{asked}"
    );
    // An empty password or name: no credentials are sent at all.
    duo.same_with(&["--user=u1", "get", "foo"], Some(""), &[]);
    duo.same(&["--user=:p1", "get", "foo"]);

    // No role at all: reads and watches are refused (the watch by cancelling it).
    duo.same(&["--user=u2:p2c", "get", "foo"]);
    let watch = duo.same(&["--user=u2:p2c", "watch", "foo"]);
    assert!(watch.starts_with("exit=5\n"), "{watch}");
    duo.same(&["--user=u2:p2c", "role", "get", "r1"]);
    duo.same(&[root, "-w", "json", "role", "get", "r1"]);
    duo.same(&[root, "user", "get", "--detail", "u1"]);

    // A stream as root: the snapshot carries the token too.
    let (debian, ours) = (duo.path("debian", "snap.db"), duo.path("ours", "snap.db"));
    let save = |member: &Member, binary: &Path, path: &Path| {
        let path = path.to_str().expect("path");
        let out = etcdctl_with(
            binary,
            &member.endpoint(),
            &[root, "snapshot", "save", path],
            None,
            &[],
        );
        transcript(&out).replace(path, "<path>")
    };
    let debian = save(&duo.debian, Path::new(DEBIAN_ETCDCTL), &debian);
    let ours = save(&duo.ours, &our_binary("etcdctl"), &ours);
    assert_eq!(ours, debian, "snapshot save (left: ours)");
    assert!(ours.contains("Snapshot saved at <path>"), "{ours}");
}
