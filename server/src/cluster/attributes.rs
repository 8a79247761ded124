//! Published member attributes (name, client URLs), kept in the replicated state so every
//! member lists the same names and client URLs. A member without attributes has not
//! started yet; etcd lists it with an empty name.

use etcd_proto::raftrequestpb::MemberAttributes;
use prost::Message;

use crate::storage::keys;

/// Member `id`'s published attributes, if any.
pub fn load(tree: &sled::Tree, id: u64) -> Option<MemberAttributes> {
    let raw = tree.get(keys::member_attributes(id)).ok().flatten()?;
    MemberAttributes::decode(raw.as_ref()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_the_tree() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("state").unwrap();
        assert!(load(&tree, 7).is_none());
        let a = MemberAttributes {
            id: 7,
            name: "n7".into(),
            client_urls: vec!["http://127.0.0.1:2379".into()],
        };
        tree.insert(keys::member_attributes(7), a.encode_to_vec())
            .unwrap();
        assert_eq!(load(&tree, 7), Some(a));
    }
}
