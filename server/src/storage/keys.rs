//! The layout of the state tree ([`Backend::state`](super::Backend::state)): every key and
//! key prefix written to it, who writes it, and how far it travels.
//!
//! Seven modules keep their records in the one tree, and three paths copy parts of it
//! elsewhere: raft snapshots (built by [`KvState::export`](crate::state::KvState::export),
//! installed by the raft state machine), the hash members compare
//! ([`KvState::hash`](crate::state::KvState::hash)) and `etcdctl snapshot restore`. Each of
//! them asks [`classify`] what a key is and does what the key's [`Reach`] allows, so that a
//! key is never copied where it does not belong:
//!
//! - a key this module does not know fails to classify, and every path refuses it with
//!   [`UnknownKey`] rather than guess (its writer's first snapshot or hash fails);
//! - a new [`KeyKind`] does not compile until [`KeyKind::reach`] says how far it travels.
//!
//! The bytes are the on-disk format: existing data dirs hold them, so they never change.
//! Prefixes begin with distinct bytes (`k`, `l`, `a`, `u`, `r`, and `m/` for single keys), so no key
//! can be taken for another kind's.

/// Prefix of key-value history records, written by the MVCC store
/// ([`crate::mvcc::write`]) on every change and dropped by compaction: the prefix, then
/// the revision's main and sub parts as big-endian `u64`s, so that a scan walks history in
/// revision order. Replicated data.
pub const HISTORY_PREFIX: u8 = b'k';
/// Length of a history key: prefix, main, sub.
pub const HISTORY_KEY_LEN: usize = 17;

/// The MVCC store's current revision (big-endian `i64`), written with every change.
/// Replicated data.
pub const REVISION: &[u8] = b"m/revision";
/// The last compacted revision (big-endian `i64`), written by compaction. Replicated data.
pub const COMPACTED: &[u8] = b"m/compacted";

/// Prefix of leases, written by the lessor ([`crate::lease`]) on grant, checkpoint and
/// revoke: the prefix, then the lease ID as a big-endian `u64`; the value is a
/// `LeaseRecord`. Replicated data.
pub const LEASE_PREFIX: u8 = b'l';
/// Length of a lease key: prefix, ID.
const LEASE_KEY_LEN: usize = 9;

/// Prefix of active alarms, written by [`crate::alarm`] when an alarm is raised or
/// cleared: the prefix, the member ID as a big-endian `u64`, the alarm type as a
/// big-endian `i32`; the value is empty. Replicated, but a restore into a new cluster
/// drops it (the alarms were raised by the old cluster's members).
pub const ALARM_PREFIX: u8 = b'a';
/// Length of an alarm key: prefix, member ID, alarm type.
const ALARM_KEY_LEN: usize = 13;

/// Prefix of published member attributes (name, client URLs), written by the apply of a
/// `MemberAttributes` request: the prefix, then the member ID in 16 lowercase hex digits;
/// the value is a `MemberAttributes`. Replicated, but a restore into a new cluster drops
/// it (its members are not the old ones).
pub const MEMBER_ATTRIBUTES_PREFIX: &[u8] = b"m/attr/";
/// Hex digits of the member ID in a member attributes key.
const MEMBER_ATTRIBUTES_ID_DIGITS: usize = 16;

/// The log ID of the last entry applied to the state, written by the raft state machine
/// in the batch of every applied entry. A raft position: it travels in raft snapshots (it
/// is the snapshot's position) but is left out of the hash, as members at the same
/// revision may have applied different entries (blank and membership entries).
pub const APPLIED: &[u8] = b"m/applied";
/// The membership last applied, written by the raft state machine when it applies a
/// membership entry. A raft position, like [`APPLIED`].
pub const MEMBERSHIP: &[u8] = b"m/membership";

/// This member's ID (big-endian `u64`), written once when the member is first started
/// (bootstrap, join or restore). Local: never sent in, nor replaced by, a snapshot.
pub const MEMBER_ID: &[u8] = b"m/member_id";
/// This member's cluster ID (big-endian `u64`), written with [`MEMBER_ID`]. Local.
pub const CLUSTER_ID: &[u8] = b"m/cluster_id";
/// The membership a restored or forced-new member initializes raft with on its next
/// start, written by bootstrap, restore and `--force-new-cluster`, removed once raft is
/// initialized. Local.
pub const PENDING_MEMBERS: &[u8] = b"m/pending_members";
/// Present while a raft snapshot is being installed (its value: the snapshot's log ID):
/// the install replaces the state in several batches, and a member that stops before the
/// last one redoes it from the snapshot file on its next start. Local.
pub const INSTALL_PENDING: &[u8] = b"m/install_pending";

/// Whether v3 authentication is on (one byte, 1 or 0), written by the auth store
/// ([`crate::auth::store`]) when auth is enabled or disabled. Replicated data: like etcd's
/// auth buckets it is restored with the keys.
pub const AUTH_ENABLED: &[u8] = b"m/auth/enabled";
/// The auth revision (big-endian `u64`), written with every change of users, roles or
/// permissions. Replicated data.
pub const AUTH_REVISION: &[u8] = b"m/auth/revision";
/// Prefix of auth users: the prefix, then the user name; the value is an `authpb.User`
/// (name, bcrypt hash, sorted roles). Replicated data.
pub const AUTH_USER_PREFIX: u8 = b'u';
/// Prefix of auth roles: the prefix, then the role name; the value is an `authpb.Role`.
/// Replicated data.
pub const AUTH_ROLE_PREFIX: u8 = b'r';

/// Defines [`KeyKind`] and [`KeyKind::ALL`] from one list, so the list of kinds the tests
/// walk cannot miss one.
macro_rules! key_kinds {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// What a key of the state tree is: one kind per key or key prefix above.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum KeyKind {
            $($(#[$doc])* $kind,)*
        }

        impl KeyKind {
            /// Every kind.
            pub const ALL: &'static [KeyKind] = &[$(KeyKind::$kind,)*];
        }
    };
}

key_kinds! {
    /// A key-value history record ([`HISTORY_PREFIX`]).
    History,
    /// The current revision ([`REVISION`]).
    Revision,
    /// The compacted revision ([`COMPACTED`]).
    Compacted,
    /// A lease ([`LEASE_PREFIX`]).
    Lease,
    /// An active alarm ([`ALARM_PREFIX`]).
    Alarm,
    /// A member's published attributes ([`MEMBER_ATTRIBUTES_PREFIX`]).
    MemberAttributes,
    /// The last applied log ID ([`APPLIED`]).
    Applied,
    /// The last applied membership ([`MEMBERSHIP`]).
    Membership,
    /// This member's ID ([`MEMBER_ID`]).
    MemberId,
    /// This member's cluster ID ([`CLUSTER_ID`]).
    ClusterId,
    /// The membership raft is yet to be initialized with ([`PENDING_MEMBERS`]).
    PendingMembers,
    /// A raft snapshot installation not finished yet ([`INSTALL_PENDING`]).
    InstallPending,
    /// The auth switch ([`AUTH_ENABLED`]).
    AuthEnabled,
    /// The auth revision ([`AUTH_REVISION`]).
    AuthRevision,
    /// An auth user ([`AUTH_USER_PREFIX`]).
    AuthUser,
    /// An auth role ([`AUTH_ROLE_PREFIX`]).
    AuthRole,
}

/// How far a key travels beyond this member's state tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// This member's own: never in a snapshot, never replaced by one, not hashed.
    Local,
    /// How far this member's raft has applied: in raft snapshots (the receiver takes the
    /// position along with the state it describes), not hashed (it differs between
    /// members at the same revision), not restored into a new cluster.
    RaftPosition,
    /// State every member of this cluster holds alike, but that belongs to this cluster:
    /// in snapshots and hashed, not restored into a new cluster.
    Cluster,
    /// Key-value data: in snapshots, hashed, and restored into a new cluster.
    Data,
}

impl KeyKind {
    /// How far keys of this kind travel.
    pub const fn reach(self) -> Reach {
        match self {
            KeyKind::History
            | KeyKind::Revision
            | KeyKind::Compacted
            | KeyKind::Lease
            | KeyKind::AuthEnabled
            | KeyKind::AuthRevision
            | KeyKind::AuthUser
            | KeyKind::AuthRole => Reach::Data,
            KeyKind::Alarm | KeyKind::MemberAttributes => Reach::Cluster,
            KeyKind::Applied | KeyKind::Membership => Reach::RaftPosition,
            KeyKind::MemberId
            | KeyKind::ClusterId
            | KeyKind::PendingMembers
            | KeyKind::InstallPending => Reach::Local,
        }
    }
}

impl Reach {
    /// Whether the key is in raft snapshots and backup snapshots, and is replaced when a
    /// raft snapshot is installed.
    pub const fn in_snapshot(self) -> bool {
        match self {
            Reach::Data | Reach::Cluster | Reach::RaftPosition => true,
            Reach::Local => false,
        }
    }

    /// Whether the key is part of the state hash members compare.
    pub const fn in_hash(self) -> bool {
        match self {
            Reach::Data | Reach::Cluster => true,
            Reach::RaftPosition | Reach::Local => false,
        }
    }

    /// Whether `snapshot restore` carries the key into the new cluster's data dir.
    pub const fn restored(self) -> bool {
        match self {
            Reach::Data => true,
            Reach::Cluster | Reach::RaftPosition | Reach::Local => false,
        }
    }
}

/// A key no [`KeyKind`] describes: written by code that does not go through this module,
/// or by another program or version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state database: key {} is of no known kind", show(.0))]
pub struct UnknownKey(pub Vec<u8>);

/// A key as text where it is printable, bytes in hex otherwise.
fn show(key: &[u8]) -> String {
    key.iter()
        .map(|&b| match b {
            b' '..=b'~' if b != b'\\' => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// What `key` is, or [`UnknownKey`].
pub fn classify(key: &[u8]) -> Result<KeyKind, UnknownKey> {
    let kind = match key {
        [HISTORY_PREFIX, ..] if key.len() == HISTORY_KEY_LEN => KeyKind::History,
        [LEASE_PREFIX, ..] if key.len() == LEASE_KEY_LEN => KeyKind::Lease,
        [ALARM_PREFIX, ..] if key.len() == ALARM_KEY_LEN => KeyKind::Alarm,
        REVISION => KeyKind::Revision,
        COMPACTED => KeyKind::Compacted,
        APPLIED => KeyKind::Applied,
        MEMBERSHIP => KeyKind::Membership,
        MEMBER_ID => KeyKind::MemberId,
        CLUSTER_ID => KeyKind::ClusterId,
        PENDING_MEMBERS => KeyKind::PendingMembers,
        INSTALL_PENDING => KeyKind::InstallPending,
        AUTH_ENABLED => KeyKind::AuthEnabled,
        AUTH_REVISION => KeyKind::AuthRevision,
        [AUTH_USER_PREFIX, _, ..] => KeyKind::AuthUser,
        [AUTH_ROLE_PREFIX, _, ..] => KeyKind::AuthRole,
        _ if is_member_attributes(key) => KeyKind::MemberAttributes,
        _ => return Err(UnknownKey(key.to_vec())),
    };
    Ok(kind)
}

/// How far `key` travels, or [`UnknownKey`].
pub fn reach(key: &[u8]) -> Result<Reach, UnknownKey> {
    classify(key).map(KeyKind::reach)
}

fn is_member_attributes(key: &[u8]) -> bool {
    key.strip_prefix(MEMBER_ATTRIBUTES_PREFIX)
        .is_some_and(|id| {
            id.len() == MEMBER_ATTRIBUTES_ID_DIGITS
                && id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// Key of the history record at revision (`main`, `sub`).
pub fn history(main: i64, sub: i64) -> [u8; HISTORY_KEY_LEN] {
    let mut k = [0u8; HISTORY_KEY_LEN];
    k[0] = HISTORY_PREFIX;
    k[1..9].copy_from_slice(&(main as u64).to_be_bytes());
    k[9..].copy_from_slice(&(sub as u64).to_be_bytes());
    k
}

/// The revision (`main`, `sub`) of a history key; `None` for any other key.
pub fn parse_history(key: &[u8]) -> Option<(i64, i64)> {
    if key.len() != HISTORY_KEY_LEN || key[0] != HISTORY_PREFIX {
        return None;
    }
    let main = u64::from_be_bytes(key[1..9].try_into().ok()?) as i64;
    let sub = u64::from_be_bytes(key[9..].try_into().ok()?) as i64;
    Some((main, sub))
}

/// Key of lease `id`.
pub fn lease(id: i64) -> [u8; LEASE_KEY_LEN] {
    let mut k = [0u8; LEASE_KEY_LEN];
    k[0] = LEASE_PREFIX;
    k[1..].copy_from_slice(&(id as u64).to_be_bytes());
    k
}

/// Key of alarm type `alarm` raised by member `member`.
pub fn alarm(member: u64, alarm: i32) -> [u8; ALARM_KEY_LEN] {
    let mut k = [0u8; ALARM_KEY_LEN];
    k[0] = ALARM_PREFIX;
    k[1..9].copy_from_slice(&member.to_be_bytes());
    k[9..].copy_from_slice(&alarm.to_be_bytes());
    k
}

/// The member and alarm type of an alarm key; `None` for any other key.
pub fn parse_alarm(key: &[u8]) -> Option<(u64, i32)> {
    if key.len() != ALARM_KEY_LEN || key[0] != ALARM_PREFIX {
        return None;
    }
    let member = u64::from_be_bytes(key[1..9].try_into().ok()?);
    let alarm = i32::from_be_bytes(key[9..].try_into().ok()?);
    Some((member, alarm))
}

/// Key of member `id`'s published attributes.
pub fn member_attributes(id: u64) -> Vec<u8> {
    let mut k = MEMBER_ATTRIBUTES_PREFIX.to_vec();
    k.extend_from_slice(format!("{id:016x}").as_bytes());
    k
}

/// Key of auth user `name`.
pub fn auth_user(name: &str) -> Vec<u8> {
    let mut k = vec![AUTH_USER_PREFIX];
    k.extend_from_slice(name.as_bytes());
    k
}

/// Key of auth role `name`.
pub fn auth_role(name: &str) -> Vec<u8> {
    let mut k = vec![AUTH_ROLE_PREFIX];
    k.extend_from_slice(name.as_bytes());
    k
}

/// One key of `kind`, for tests that need a key of every kind.
#[cfg(test)]
pub fn example(kind: KeyKind) -> Vec<u8> {
    match kind {
        KeyKind::History => history(3, 1).to_vec(),
        KeyKind::Revision => REVISION.to_vec(),
        KeyKind::Compacted => COMPACTED.to_vec(),
        KeyKind::Lease => lease(7).to_vec(),
        KeyKind::Alarm => alarm(42, 1).to_vec(),
        KeyKind::MemberAttributes => member_attributes(42),
        KeyKind::Applied => APPLIED.to_vec(),
        KeyKind::Membership => MEMBERSHIP.to_vec(),
        KeyKind::MemberId => MEMBER_ID.to_vec(),
        KeyKind::ClusterId => CLUSTER_ID.to_vec(),
        KeyKind::PendingMembers => PENDING_MEMBERS.to_vec(),
        KeyKind::InstallPending => INSTALL_PENDING.to_vec(),
        KeyKind::AuthEnabled => AUTH_ENABLED.to_vec(),
        KeyKind::AuthRevision => AUTH_REVISION.to_vec(),
        KeyKind::AuthUser => auth_user("alice"),
        KeyKind::AuthRole => auth_role("readers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes existing data dirs hold: changing any of them loses data on upgrade.
    #[test]
    fn the_on_disk_bytes_do_not_change() {
        assert_eq!(HISTORY_PREFIX, 0x6b);
        assert_eq!(LEASE_PREFIX, 0x6c);
        assert_eq!(ALARM_PREFIX, 0x61);
        assert_eq!(REVISION, b"m/revision");
        assert_eq!(COMPACTED, b"m/compacted");
        assert_eq!(MEMBER_ATTRIBUTES_PREFIX, b"m/attr/");
        assert_eq!(APPLIED, b"m/applied");
        assert_eq!(MEMBERSHIP, b"m/membership");
        assert_eq!(MEMBER_ID, b"m/member_id");
        assert_eq!(CLUSTER_ID, b"m/cluster_id");
        assert_eq!(PENDING_MEMBERS, b"m/pending_members");
        assert_eq!(INSTALL_PENDING, b"m/install_pending");
        assert_eq!(AUTH_ENABLED, b"m/auth/enabled");
        assert_eq!(AUTH_REVISION, b"m/auth/revision");
        assert_eq!(auth_user("root"), b"uroot");
        assert_eq!(auth_role("root"), b"rroot");
        assert_eq!(
            history(0x0102, 3),
            *b"k\0\0\0\0\0\0\x01\x02\0\0\0\0\0\0\0\x03"
        );
        assert_eq!(lease(0x0a0b), *b"l\0\0\0\0\0\0\x0a\x0b");
        assert_eq!(lease(-1), *b"l\xff\xff\xff\xff\xff\xff\xff\xff");
        assert_eq!(alarm(5, 1), *b"a\0\0\0\0\0\0\0\x05\0\0\0\x01");
        assert_eq!(member_attributes(0xab), b"m/attr/00000000000000ab");
    }

    /// Every key and prefix, with the kind and reach its doc comment gives it.
    #[test]
    fn every_key_has_its_kind_and_reach() {
        let table: &[(&[u8], KeyKind, Reach)] = &[
            (&history(1, 0), KeyKind::History, Reach::Data),
            (REVISION, KeyKind::Revision, Reach::Data),
            (COMPACTED, KeyKind::Compacted, Reach::Data),
            (&lease(1), KeyKind::Lease, Reach::Data),
            (&alarm(1, 1), KeyKind::Alarm, Reach::Cluster),
            (
                &member_attributes(1),
                KeyKind::MemberAttributes,
                Reach::Cluster,
            ),
            (APPLIED, KeyKind::Applied, Reach::RaftPosition),
            (MEMBERSHIP, KeyKind::Membership, Reach::RaftPosition),
            (MEMBER_ID, KeyKind::MemberId, Reach::Local),
            (CLUSTER_ID, KeyKind::ClusterId, Reach::Local),
            (PENDING_MEMBERS, KeyKind::PendingMembers, Reach::Local),
            (INSTALL_PENDING, KeyKind::InstallPending, Reach::Local),
            (AUTH_ENABLED, KeyKind::AuthEnabled, Reach::Data),
            (AUTH_REVISION, KeyKind::AuthRevision, Reach::Data),
            (&auth_user("a"), KeyKind::AuthUser, Reach::Data),
            (&auth_role("a"), KeyKind::AuthRole, Reach::Data),
        ];
        for (key, kind, reach) in table {
            assert_eq!(classify(key), Ok(*kind), "{}", show(key));
            assert_eq!(kind.reach(), *reach, "{kind:?}");
        }
        let listed: Vec<KeyKind> = table.iter().map(|(_, kind, _)| *kind).collect();
        assert_eq!(listed, KeyKind::ALL, "the table lists every kind once");
    }

    #[test]
    fn every_kind_has_an_example_of_its_own() {
        for &kind in KeyKind::ALL {
            assert_eq!(classify(&example(kind)), Ok(kind));
        }
    }

    #[test]
    fn what_travels_where() {
        let travels = |pick: fn(Reach) -> bool| -> Vec<Reach> {
            [
                Reach::Data,
                Reach::Cluster,
                Reach::RaftPosition,
                Reach::Local,
            ]
            .into_iter()
            .filter(|r| pick(*r))
            .collect()
        };
        assert_eq!(
            travels(Reach::in_snapshot),
            [Reach::Data, Reach::Cluster, Reach::RaftPosition]
        );
        assert_eq!(travels(Reach::in_hash), [Reach::Data, Reach::Cluster]);
        assert_eq!(travels(Reach::restored), [Reach::Data]);
    }

    #[test]
    fn unknown_and_malformed_keys_are_refused() {
        let unknown: &[&[u8]] = &[
            b"",
            b"foo",
            b"m/",
            b"m/revisionx",
            b"m/attr/",
            b"m/attr/00000000000000AB",
            b"m/attr/00000000000000ab0",
            &history(1, 0)[..16],
            &lease(1)[..8],
            &alarm(1, 1)[..12],
            b"x\0\0\0\0\0\0\0\x01",
            b"u",
            b"r",
            b"m/auth/",
        ];
        for key in unknown {
            assert_eq!(classify(key), Err(UnknownKey(key.to_vec())));
        }
        assert_eq!(
            UnknownKey(b"z\x01".to_vec()).to_string(),
            "state database: key z\\x01 is of no known kind"
        );
    }

    #[test]
    fn keys_parse_back() {
        assert_eq!(parse_history(&history(300, 2)), Some((300, 2)));
        assert_eq!(parse_history(&lease(1)), None);
        assert_eq!(parse_alarm(&alarm(9, 2)), Some((9, 2)));
        assert_eq!(parse_alarm(&history(1, 1)), None);
        assert!(history(2, 7) < history(3, 0) && history(3, 0) < history(300, 1));
    }
}
