//! Alarms: cluster-wide conditions that restrict what the cluster accepts.
//!
//! Alarms are raised and cleared through raft (every member applies the same change), and
//! kept in the backend so a restart keeps them. While a NOSPACE alarm is active the state
//! machine refuses everything that could grow the database (puts, txns with puts, lease
//! grants) with `etcdserver: mvcc: database space exceeded`, as etcd's capped applier does;
//! reads, deletes and compaction still work, so an operator can free space and disarm.

use std::collections::BTreeSet;

use etcd_proto::etcdserverpb::alarm_request::AlarmAction;
use etcd_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmType};

use crate::error::{EtcdError, Result};
use crate::storage::keys;

/// The active alarms of the cluster, as (member ID, alarm type).
#[derive(Debug, Default)]
pub struct Alarms {
    active: BTreeSet<(u64, i32)>,
}

impl Alarms {
    /// Loads the alarms kept in the backend.
    pub fn open(tree: &sled::Tree) -> Result<Self> {
        let mut active = BTreeSet::new();
        for item in tree.scan_prefix([keys::ALARM_PREFIX]) {
            let (k, _) = item?;
            let alarm = keys::parse_alarm(&k)
                .ok_or_else(|| EtcdError::Internal("alarm: corrupt record".into()))?;
            active.insert(alarm);
        }
        Ok(Alarms { active })
    }

    /// Whether the cluster is out of space (writes that grow the store are refused).
    pub fn no_space(&self) -> bool {
        self.active
            .iter()
            .any(|(_, a)| *a == AlarmType::Nospace as i32)
    }

    /// Every active alarm.
    pub fn list(&self) -> Vec<AlarmMember> {
        self.active
            .iter()
            .map(|&(member_id, alarm)| AlarmMember { member_id, alarm })
            .collect()
    }

    /// Applies a replicated alarm request, queueing the backend change in `batch`; answers
    /// the alarms the request concerns, as etcd does.
    pub fn apply(&mut self, req: &AlarmRequest, batch: &mut sled::Batch) -> Vec<AlarmMember> {
        let this = (req.member_id, req.alarm);
        let member = || AlarmMember {
            member_id: req.member_id,
            alarm: req.alarm,
        };
        match AlarmAction::try_from(req.action).unwrap_or(AlarmAction::Get) {
            AlarmAction::Get => self
                .list()
                .into_iter()
                .filter(|m| req.alarm == AlarmType::None as i32 || m.alarm == req.alarm)
                .collect(),
            AlarmAction::Activate if req.alarm == AlarmType::None as i32 => Vec::new(),
            AlarmAction::Activate => {
                self.active.insert(this);
                batch.insert(&keys::alarm(this.0, this.1)[..], &[][..]);
                vec![member()]
            }
            AlarmAction::Deactivate => {
                if !self.active.remove(&this) {
                    return Vec::new();
                }
                batch.remove(&keys::alarm(this.0, this.1)[..]);
                vec![member()]
            }
        }
    }
}

/// An alarm as etcd prints it in `Status.errors` and `etcdctl alarm list`
/// (`memberID:<decimal id> alarm:NOSPACE `, protobuf text format).
pub fn describe(m: &AlarmMember) -> String {
    let name = AlarmType::try_from(m.alarm)
        .map(|a| a.as_str_name())
        .unwrap_or("NONE");
    format!("memberID:{} alarm:{name} ", m.member_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
        AlarmRequest {
            action: action as i32,
            member_id,
            alarm: alarm as i32,
        }
    }

    #[test]
    fn activate_persist_deactivate() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("state").unwrap();
        let mut alarms = Alarms::open(&tree).unwrap();
        let mut batch = sled::Batch::default();
        let raised = alarms.apply(
            &req(AlarmAction::Activate, 7, AlarmType::Nospace),
            &mut batch,
        );
        assert_eq!(raised.len(), 1);
        tree.apply_batch(batch).unwrap();
        assert!(alarms.no_space());

        let reopened = Alarms::open(&tree).unwrap();
        assert!(reopened.no_space());
        assert_eq!(describe(&reopened.list()[0]), "memberID:7 alarm:NOSPACE ");

        let mut batch = sled::Batch::default();
        let get = alarms.apply(&req(AlarmAction::Get, 0, AlarmType::None), &mut batch);
        assert_eq!(get.len(), 1);
        let gone = alarms.apply(
            &req(AlarmAction::Deactivate, 7, AlarmType::Nospace),
            &mut batch,
        );
        assert_eq!(gone.len(), 1);
        let again = alarms.apply(
            &req(AlarmAction::Deactivate, 7, AlarmType::Nospace),
            &mut batch,
        );
        assert!(again.is_empty());
        tree.apply_batch(batch).unwrap();
        assert!(!alarms.no_space());
        assert!(!Alarms::open(&tree).unwrap().no_space());
    }
}
