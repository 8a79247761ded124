//! Splitting one revision's watch response for a watcher created with `fragment`, as
//! etcd's `sendFragments` does, so clients see the same messages: a response under the
//! limit (`--max-request-bytes` plus gRPC's overhead allowance), or with a single event,
//! goes whole; otherwise events are added
//! to a piece until it would reach the limit (a piece holds at least one event), and
//! every piece but the last is marked `fragment`.

use etcd_proto::etcdserverpb::WatchResponse;
use prost::Message;

/// Field number of `WatchResponse.events`.
const EVENTS_FIELD: u32 = 11;

/// The messages `resp` is sent as.
pub fn fragments(resp: WatchResponse, limit: usize) -> Vec<WatchResponse> {
    if resp.encoded_len() < limit || resp.events.len() < 2 {
        return vec![resp];
    }
    let mut empty = resp.clone();
    empty.events = Vec::new();
    empty.fragment = true;
    let base = empty.encoded_len();
    let mut pieces = Vec::new();
    let mut piece = empty.clone();
    let mut size = base;
    for ev in resp.events {
        let n = prost::encoding::message::encoded_len(EVENTS_FIELD, &ev);
        if !piece.events.is_empty() && size + n >= limit {
            pieces.push(std::mem::replace(&mut piece, empty.clone()));
            size = base;
        }
        size += n;
        piece.events.push(ev);
    }
    piece.fragment = false;
    pieces.push(piece);
    pieces
}

#[cfg(test)]
mod tests {
    use etcd_proto::etcdserverpb::ResponseHeader;
    use etcd_proto::mvccpb::{Event, KeyValue};

    use super::*;

    fn response(values: &[usize]) -> WatchResponse {
        WatchResponse {
            header: Some(ResponseHeader {
                revision: 9,
                ..Default::default()
            }),
            watch_id: 3,
            events: values
                .iter()
                .map(|&n| Event {
                    kv: Some(KeyValue {
                        key: b"k".to_vec(),
                        value: vec![b'v'; n],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn small_or_single_event_responses_go_whole() {
        let small = response(&[10, 10]);
        let len = small.encoded_len();
        assert_eq!(fragments(small.clone(), len + 1), vec![small]);
        let single = response(&[500]);
        assert_eq!(fragments(single.clone(), 100), vec![single]);
    }

    #[test]
    fn pieces_stay_under_the_limit_and_all_but_the_last_are_fragments() {
        let resp = response(&[100, 100, 100, 100, 300]);
        let limit = 250;
        let pieces = fragments(resp.clone(), limit);
        // Two ~115-byte events fit under 250 bytes, a third would not; the large one
        // goes alone.
        let counts: Vec<usize> = pieces.iter().map(|p| p.events.len()).collect();
        assert_eq!(counts, [2, 2, 1]);
        for (i, p) in pieces.iter().enumerate() {
            assert_eq!(p.fragment, i + 1 < pieces.len());
            assert_eq!(p.header, resp.header);
            assert_eq!(p.watch_id, 3);
            assert!(p.events.len() == 1 || p.encoded_len() < limit, "{p:?}");
        }
        let events: Vec<Event> = pieces.into_iter().flat_map(|p| p.events).collect();
        assert_eq!(events, resp.events);
    }

    #[test]
    fn a_response_exactly_at_the_limit_is_split() {
        let resp = response(&[50, 50]);
        let pieces = fragments(resp.clone(), resp.encoded_len());
        assert_eq!(pieces.len(), 2);
    }
}
