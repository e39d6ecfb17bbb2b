//! A node's state in pages. The state lists every user of the node with
//! their rooms, and one NATS message holds at most the server's
//! `max_payload` (1 MB by default, some ten thousand users): a larger node
//! could otherwise never tell the others who is on it. The pages of one
//! state are sent back to back by one publisher, so they arrive in order;
//! a receiver applies the state only once its last page is in.

use std::collections::HashMap;

use super::wire::NodeState;

/// Room left in each message for the event's envelope around the users.
const ENVELOPE: usize = 1024;

/// `state` as pages whose JSON each fits in `max_payload` bytes (one page,
/// even with no users; a user larger than a page gets a page of their own).
pub fn split(state: NodeState, max_payload: usize) -> Vec<NodeState> {
    let budget = max_payload.saturating_sub(ENVELOPE + state.node.len());
    let mut pages = Vec::new();
    let mut page = Vec::new();
    let mut size = 0;
    for user in state.users {
        // Measured as written; a comma between entries.
        let len = chat_api::serde_json::to_vec(&user).map_or(0, |json| json.len()) + 1;
        if !page.is_empty() && size + len > budget {
            pages.push(std::mem::take(&mut page));
            size = 0;
        }
        size += len;
        page.push(user);
    }
    pages.push(page);
    let last = pages.len() - 1;
    pages
        .into_iter()
        .enumerate()
        .map(|(i, users)| NodeState {
            node: state.node.clone(),
            boot: state.boot,
            users,
            part: i as u32,
            more: i < last,
            on_stream: false,
        })
        .collect()
}

/// Pages received of states not yet complete, by node.
#[derive(Default)]
pub struct Pages {
    pending: HashMap<String, NodeState>,
}

impl Pages {
    /// Takes one page; returns the whole state once its last page is in.
    /// A first page starts the state afresh (an earlier sending that broke
    /// off is dropped); a page out of turn drops what was gathered, since
    /// a sender that lost a page sends its whole state again.
    pub fn add(&mut self, page: &NodeState) -> Option<NodeState> {
        let gathered = self.pending.remove(&page.node);
        let mut whole = match gathered {
            _ if page.part == 0 => NodeState {
                users: Vec::new(),
                ..page.clone()
            },
            Some(so_far) if so_far.boot == page.boot && so_far.part + 1 == page.part => so_far,
            _ => return None,
        };
        whole.users.extend(page.users.iter().cloned());
        whole.part = page.part;
        whole.more = page.more;
        if page.more {
            self.pending.insert(page.node.clone(), whole);
            return None;
        }
        whole.part = 0;
        Some(whole)
    }

    /// Drops what was gathered of `node`'s state (the node is gone).
    pub fn forget(&mut self, node: &str) {
        self.pending.remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::UserState;

    fn state(users: usize) -> NodeState {
        NodeState {
            node: "a".into(),
            boot: 7,
            users: (0..users)
                .map(|i| UserState {
                    session: i as u64 + 1,
                    nick: format!("user{i:03}"),
                    rooms: vec![format!("#room-{i}"), "#lobby".into()],
                })
                .collect(),
            part: 0,
            more: false,
            on_stream: false,
        }
    }

    #[test]
    fn a_large_state_is_split_into_pages_that_fit_and_put_back_whole() {
        let whole = state(500);
        let pages = split(whole.clone(), 4096);
        assert!(pages.len() > 5, "{} pages", pages.len());
        for (i, page) in pages.iter().enumerate() {
            let event = crate::cluster::wire::Event::State(page.clone());
            let json = chat_api::serde_json::to_vec(&event).unwrap();
            assert!(json.len() <= 4096, "page {i}: {} bytes", json.len());
            assert_eq!(page.part as usize, i);
            assert_eq!(page.more, i + 1 < pages.len());
        }
        let mut received = Pages::default();
        let (last, rest) = pages.split_last().unwrap();
        for page in rest {
            assert_eq!(received.add(page), None, "applied before its last page");
        }
        assert_eq!(received.add(last), Some(whole));
    }

    #[test]
    fn a_small_state_is_one_page() {
        let whole = state(3);
        let pages = split(whole.clone(), 1 << 20);
        assert_eq!(pages, vec![whole.clone()]);
        assert_eq!(Pages::default().add(&pages[0]), Some(whole));
        let empty = state(0);
        assert_eq!(split(empty.clone(), 1 << 20), vec![empty]);
    }

    #[test]
    fn a_sending_that_broke_off_is_dropped_when_the_state_comes_again() {
        let first = split(state(300), 4096);
        let again = split(state(200), 4096);
        let mut received = Pages::default();
        // The first sending lost its second page: its third is out of turn.
        assert_eq!(received.add(&first[0]), None);
        assert_eq!(received.add(&first[2]), None);
        for page in &again[..again.len() - 1] {
            assert_eq!(received.add(page), None);
        }
        assert_eq!(received.add(again.last().unwrap()), Some(state(200)));
    }
}
