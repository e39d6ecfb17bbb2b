//! Who is connected to the other nodes, and in which rooms: this node's
//! copy, fed by their events in stream order, replaced whole by a node's
//! state when this node catches up, and dropped with a node that stops
//! sending heartbeats. Indexed by folded nickname and by room, so a direct
//! message or a member list costs one lookup, not a walk of every user.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chat_api::names::fold;
use chat_api::{PresenceEvent, SessionId};

use super::pages::Pages;
use super::wire::{Event, NodeState};

/// A presence change to tell this node's members of `room`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub room: String,
    pub event: PresenceEvent,
    pub nick: String,
    pub new_nick: Option<String>,
    pub reason: Option<String>,
}

impl Notice {
    fn new(room: &str, event: PresenceEvent, nick: &str) -> Notice {
        Notice {
            room: room.to_string(),
            event,
            nick: nick.to_string(),
            new_nick: None,
            reason: None,
        }
    }
}

type Member = (String, SessionId);

/// Remote session handles: the top bit, then the node's number above the
/// session's own 40 bits.
const REMOTE: u64 = chat_api::REMOTE_SESSION;
const SESSION_BITS: u32 = 40;

#[derive(Default)]
struct User {
    nick: String,
    rooms: Vec<String>,
}

struct Node {
    boot: u64,
    last_seen: Instant,
    users: HashMap<SessionId, User>,
}

#[derive(Default)]
struct Remote {
    nodes: HashMap<String, Node>,
    /// Every node name ever heard, by the number in its sessions' handles.
    numbers: Vec<String>,
    /// Folded nickname → who holds it.
    by_nick: HashMap<String, Member>,
    /// Folded room name → (name as spelt, its members elsewhere).
    rooms: HashMap<String, (String, HashSet<Member>)>,
    /// States from the stream whose last page has not come yet.
    pages: Pages,
}

/// What a heartbeat told.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// A node (or a new run of one) this node has no state of: ask it.
    Unknown,
    Known,
}

/// The other nodes' users and rooms.
#[derive(Default)]
pub struct Directory {
    remote: RwLock<Remote>,
}

impl Directory {
    /// Applies one event from another node; returns what this node's room
    /// members are to be told.
    pub fn apply(&self, event: &Event) -> Vec<Notice> {
        let mut remote = self.remote.write().unwrap();
        match event {
            Event::Online {
                node,
                session,
                nick,
            } => {
                remote.add_user(node, *session, nick);
                Vec::new()
            }
            Event::Renamed {
                node,
                session,
                nick,
            } => remote.rename(node, *session, nick),
            Event::Joined {
                node,
                session,
                room,
            } => remote.join(node, *session, room).into_iter().collect(),
            Event::Left {
                node,
                session,
                room,
                event,
                reason,
            } => remote
                .leave(node, *session, room)
                .map(|nick| Notice {
                    reason: reason.clone(),
                    ..Notice::new(room, *event, &nick)
                })
                .into_iter()
                .collect(),
            Event::Offline { node, session } => {
                remote.remove_user(node, *session);
                Vec::new()
            }
            Event::State(page) => match remote.pages.add(page) {
                Some(state) => remote.replace(&state),
                None => Vec::new(),
            },
            Event::Leaving { node } => {
                let notices = remote.drop_node(node, "the user's server shut down");
                remote.nodes.remove(node);
                notices
            }
            Event::Say { .. }
            | Event::Broadcast { .. }
            | Event::Direct { .. }
            | Event::Relay { .. } => Vec::new(),
        }
    }

    /// Replaces what is known of a node with its own account of itself;
    /// returns what this node's rooms are to be told of the differences.
    pub fn replace(&self, state: &NodeState) -> Vec<Notice> {
        self.remote.write().unwrap().replace(state)
    }

    /// Records a heartbeat. A node seen with a new boot has restarted: its
    /// old sessions are dropped (their rooms are told, in the notices).
    pub fn heartbeat(&self, node: &str, boot: u64, now: Instant) -> (Seen, Vec<Notice>) {
        let mut remote = self.remote.write().unwrap();
        match remote.nodes.get_mut(node) {
            Some(known) if known.boot == boot => {
                known.last_seen = now;
                (Seen::Known, Vec::new())
            }
            // Heard of through an event before its first heartbeat.
            Some(known) if known.boot == 0 => {
                known.boot = boot;
                known.last_seen = now;
                (Seen::Unknown, Vec::new())
            }
            Some(_) => {
                let notices = remote.drop_node(node, "the user's server restarted");
                remote.nodes.insert(node.to_string(), Node::new(boot, now));
                (Seen::Unknown, notices)
            }
            None => {
                remote.nodes.insert(node.to_string(), Node::new(boot, now));
                (Seen::Unknown, Vec::new())
            }
        }
    }

    /// Drops every node not heard from within `timeout`; returns their
    /// names and what this node's rooms are to be told.
    pub fn expire(&self, now: Instant, timeout: Duration) -> Vec<(String, Vec<Notice>)> {
        let mut remote = self.remote.write().unwrap();
        let dead: Vec<String> = remote
            .nodes
            .iter()
            .filter(|(_, n)| now.duration_since(n.last_seen) > timeout)
            .map(|(name, _)| name.clone())
            .collect();
        dead.into_iter()
            .map(|name| {
                let notices = remote.drop_node(&name, "the user's server stopped answering");
                remote.nodes.remove(&name);
                (name, notices)
            })
            .collect()
    }

    /// Drops what is known of a node (its users, silently), so that its
    /// next heartbeat counts as a first one.
    pub fn forget(&self, node: &str) {
        let mut remote = self.remote.write().unwrap();
        remote.drop_node(node, "");
        remote.nodes.remove(node);
    }

    /// Counts every node as just heard from (after this node's own link
    /// was down: their silence was ours).
    pub fn touch_all(&self, now: Instant) {
        for node in self.remote.write().unwrap().nodes.values_mut() {
            node.last_seen = now;
        }
    }

    /// The run of `node` this node hears from (0 if only its events were
    /// heard so far); `None` for a node not heard from, or dropped.
    pub fn boot_of(&self, node: &str) -> Option<u64> {
        self.remote.read().unwrap().nodes.get(node).map(|n| n.boot)
    }

    /// A handle for a session of another node, unique on this one: the top
    /// bit set (local session ids count up from 1 and never reach it), the
    /// node's number, the session's id on its node.
    pub fn handle(&self, node: &str, session: SessionId) -> Option<SessionId> {
        if session >= 1 << SESSION_BITS {
            return None;
        }
        let mut remote = self.remote.write().unwrap();
        let number = match remote.numbers.iter().position(|n| n == node) {
            Some(i) => i,
            None => {
                remote.numbers.push(node.to_string());
                remote.numbers.len() - 1
            }
        };
        Some(REMOTE | ((number as u64) << SESSION_BITS) | session)
    }

    /// The node and session a handle names, if it names one elsewhere.
    pub fn resolve(&self, handle: SessionId) -> Option<(String, SessionId)> {
        if handle & REMOTE == 0 {
            return None;
        }
        let number = ((handle & !REMOTE) >> SESSION_BITS) as usize;
        let node = self.remote.read().unwrap().numbers.get(number)?.clone();
        Some((node, handle & ((1 << SESSION_BITS) - 1)))
    }

    /// The session holding `nick` elsewhere.
    pub fn session_of(&self, nick: &str) -> Option<(String, SessionId)> {
        self.remote
            .read()
            .unwrap()
            .by_nick
            .get(&fold(nick))
            .cloned()
    }

    /// The node and spelling of whoever holds `nick` elsewhere.
    pub fn locate(&self, nick: &str) -> Option<(String, String)> {
        let remote = self.remote.read().unwrap();
        let (node, session) = remote.by_nick.get(&fold(nick))?;
        let user = remote.nodes.get(node)?.users.get(session)?;
        Some((node.clone(), user.nick.clone()))
    }

    /// Nicknames connected elsewhere.
    pub fn users(&self) -> Vec<String> {
        let remote = self.remote.read().unwrap();
        remote
            .nodes
            .values()
            .flat_map(|n| n.users.values().map(|u| u.nick.clone()))
            .collect()
    }

    /// The room's members elsewhere, and its name as spelt there.
    pub fn members(&self, room: &str) -> Option<(String, Vec<String>)> {
        let remote = self.remote.read().unwrap();
        let (name, members) = remote.rooms.get(&fold(room))?;
        let nicks = members
            .iter()
            .filter_map(|(node, session)| {
                Some(remote.nodes.get(node)?.users.get(session)?.nick.clone())
            })
            .collect();
        Some((name.clone(), nicks))
    }

    /// Every room with members elsewhere: (name, members there).
    pub fn rooms(&self) -> Vec<(String, usize)> {
        let remote = self.remote.read().unwrap();
        remote
            .rooms
            .values()
            .map(|(name, members)| (name.clone(), members.len()))
            .collect()
    }

    /// How many sessions are in `room` elsewhere.
    pub fn member_count(&self, room: &str) -> usize {
        let remote = self.remote.read().unwrap();
        remote.rooms.get(&fold(room)).map_or(0, |(_, m)| m.len())
    }

    /// How many users are connected elsewhere.
    pub fn user_count(&self) -> usize {
        self.remote.read().unwrap().by_nick.len()
    }

    /// The other nodes this node hears from, sorted.
    pub fn nodes(&self) -> Vec<String> {
        let mut names: Vec<String> = self.remote.read().unwrap().nodes.keys().cloned().collect();
        names.sort();
        names
    }
}

impl Node {
    fn new(boot: u64, now: Instant) -> Node {
        Node {
            boot,
            last_seen: now,
            users: HashMap::new(),
        }
    }
}

impl Remote {
    /// The node's entry; one heard of first through an event (before its
    /// heartbeat) counts as just seen, its boot learnt from that heartbeat.
    fn node(&mut self, node: &str) -> &mut Node {
        self.nodes
            .entry(node.to_string())
            .or_insert_with(|| Node::new(0, Instant::now()))
    }

    fn add_user(&mut self, node: &str, session: SessionId, nick: &str) {
        self.node(node).users.insert(
            session,
            User {
                nick: nick.to_string(),
                rooms: Vec::new(),
            },
        );
        self.by_nick.insert(fold(nick), (node.to_string(), session));
    }

    fn rename(&mut self, node: &str, session: SessionId, nick: &str) -> Vec<Notice> {
        let member = (node.to_string(), session);
        let Some(user) = self.node(node).users.get_mut(&session) else {
            return Vec::new();
        };
        let old = std::mem::replace(&mut user.nick, nick.to_string());
        let rooms = user.rooms.clone();
        if self.by_nick.get(&fold(&old)) == Some(&member) {
            self.by_nick.remove(&fold(&old));
        }
        self.by_nick.insert(fold(nick), member);
        rooms
            .iter()
            .map(|room| Notice {
                new_nick: Some(nick.to_string()),
                ..Notice::new(room, PresenceEvent::Nick, &old)
            })
            .collect()
    }

    fn join(&mut self, node: &str, session: SessionId, room: &str) -> Option<Notice> {
        let user = self.node(node).users.get_mut(&session)?;
        if user.rooms.iter().any(|r| r.eq_ignore_ascii_case(room)) {
            return None;
        }
        user.rooms.push(room.to_string());
        let nick = user.nick.clone();
        self.rooms
            .entry(fold(room))
            .or_insert_with(|| (room.to_string(), HashSet::new()))
            .1
            .insert((node.to_string(), session));
        Some(Notice::new(room, PresenceEvent::Join, &nick))
    }

    /// Takes a session out of a room; its nickname if it was in it.
    fn leave(&mut self, node: &str, session: SessionId, room: &str) -> Option<String> {
        let user = self.node(node).users.get_mut(&session)?;
        let before = user.rooms.len();
        user.rooms.retain(|r| !r.eq_ignore_ascii_case(room));
        if user.rooms.len() == before {
            return None;
        }
        let nick = user.nick.clone();
        let key = fold(room);
        if let Some((_, members)) = self.rooms.get_mut(&key) {
            members.remove(&(node.to_string(), session));
            if members.is_empty() {
                self.rooms.remove(&key);
            }
        }
        Some(nick)
    }

    fn remove_user(&mut self, node: &str, session: SessionId) {
        let Some(user) = self.node(node).users.remove(&session) else {
            return;
        };
        let member = (node.to_string(), session);
        for room in &user.rooms {
            let key = fold(room);
            if let Some((_, members)) = self.rooms.get_mut(&key) {
                members.remove(&member);
                if members.is_empty() {
                    self.rooms.remove(&key);
                }
            }
        }
        if self.by_nick.get(&fold(&user.nick)) == Some(&member) {
            self.by_nick.remove(&fold(&user.nick));
        }
    }

    /// Removes a node's users; each room they were in is told they quit.
    fn drop_node(&mut self, node: &str, reason: &str) -> Vec<Notice> {
        self.pages.forget(node);
        let sessions: Vec<SessionId> = self
            .nodes
            .get(node)
            .map(|n| n.users.keys().copied().collect())
            .unwrap_or_default();
        let mut notices = Vec::new();
        for session in sessions {
            if let Some(user) = self.nodes.get(node).and_then(|n| n.users.get(&session)) {
                notices.extend(user.rooms.iter().map(|room| Notice {
                    reason: Some(reason.to_string()),
                    ..Notice::new(room, PresenceEvent::Quit, &user.nick)
                }));
            }
            self.remove_user(node, session);
        }
        notices
    }

    /// Makes what is known of a node its own account of itself; returns
    /// what this node's rooms are to be told of the differences (changes
    /// whose events this node missed, while NATS was away): who is gone,
    /// renamed, or left or joined which room. A change already told by its
    /// event is no difference here, so nothing is told twice.
    fn replace(&mut self, state: &NodeState) -> Vec<Notice> {
        let node = self.node(&state.node);
        node.boot = state.boot;
        node.last_seen = Instant::now();
        let listed: HashSet<SessionId> = state.users.iter().map(|u| u.session).collect();
        let gone: Vec<SessionId> = node
            .users
            .keys()
            .filter(|session| !listed.contains(session))
            .copied()
            .collect();
        let mut notices = Vec::new();
        for session in gone {
            if let Some(user) = self.nodes[&state.node].users.get(&session) {
                notices.extend(user.rooms.iter().map(|room| Notice {
                    reason: Some(GONE_UNSEEN.to_string()),
                    ..Notice::new(room, PresenceEvent::Quit, &user.nick)
                }));
            }
            self.remove_user(&state.node, session);
        }
        for user in &state.users {
            let known = self.nodes[&state.node].users.get(&user.session);
            let (nick, rooms) = match known {
                Some(known) => (known.nick.clone(), known.rooms.clone()),
                None => {
                    self.add_user(&state.node, user.session, &user.nick);
                    (user.nick.clone(), Vec::new())
                }
            };
            if nick != user.nick {
                notices.extend(self.rename(&state.node, user.session, &user.nick));
            }
            for room in rooms.iter().filter(|r| !contains(&user.rooms, r)) {
                if let Some(nick) = self.leave(&state.node, user.session, room) {
                    notices.push(Notice::new(room, PresenceEvent::Part, &nick));
                }
            }
            for room in &user.rooms {
                notices.extend(self.join(&state.node, user.session, room));
            }
        }
        notices
    }
}

/// The reason told with the `quit` of a user a node's state no longer
/// lists: they left while this node was not hearing from theirs.
const GONE_UNSEEN: &str = "the user left while the servers were out of touch";

/// Whether `rooms` holds `room` (room names compare without case).
fn contains(rooms: &[String], room: &str) -> bool {
    rooms.iter().any(|r| r.eq_ignore_ascii_case(room))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::UserState;

    fn online(directory: &Directory, session: SessionId, nick: &str, rooms: &[&str]) {
        let node = "a".to_string();
        directory.apply(&Event::Online {
            node: node.clone(),
            session,
            nick: nick.into(),
        });
        for room in rooms {
            directory.apply(&Event::Joined {
                node: node.clone(),
                session,
                room: room.to_string(),
            });
        }
    }

    fn state(users: &[(SessionId, &str, &[&str])]) -> Event {
        Event::State(NodeState {
            node: "a".into(),
            boot: 1,
            users: users
                .iter()
                .map(|(session, nick, rooms)| UserState {
                    session: *session,
                    nick: nick.to_string(),
                    rooms: rooms.iter().map(|r| r.to_string()).collect(),
                })
                .collect(),
            part: 0,
            more: false,
            on_stream: false,
        })
    }

    fn told(notices: &[Notice]) -> Vec<String> {
        let mut told: Vec<String> = notices
            .iter()
            .map(|n| {
                let to = n.new_nick.as_deref().map(|new| format!(" -> {new}"));
                let why = n.reason.as_deref().map(|r| format!(" ({r})"));
                format!(
                    "{} {:?} {}{}{}",
                    n.room,
                    n.event,
                    n.nick,
                    to.unwrap_or_default(),
                    why.unwrap_or_default()
                )
            })
            .collect();
        told.sort();
        told
    }

    /// While NATS was away this node missed node a's events; a's state
    /// then tells its rooms what changed, each change once.
    #[test]
    fn a_state_tells_the_rooms_what_its_missed_events_would_have() {
        let directory = Directory::default();
        online(&directory, 1, "ann", &["#x"]);
        online(&directory, 2, "bea", &["#x", "#y"]);
        online(&directory, 3, "cy", &["#y"]);
        let notices = directory.apply(&state(&[
            (2, "beatrice", &["#y", "#z"]),
            (3, "cy", &["#y"]),
            (4, "dan", &["#x"]),
        ]));
        assert_eq!(
            told(&notices),
            [
                "#x Join dan",
                "#x Nick bea -> beatrice",
                "#x Part beatrice",
                "#x Quit ann (the user left while the servers were out of touch)",
                "#y Nick bea -> beatrice",
                "#z Join beatrice",
            ]
        );
        let mut users = directory.users();
        users.sort();
        assert_eq!(users, ["beatrice", "cy", "dan"]);
        // The same state again is no news.
        let again = directory.apply(&state(&[
            (2, "beatrice", &["#y", "#z"]),
            (3, "cy", &["#y"]),
            (4, "dan", &["#x"]),
        ]));
        assert_eq!(told(&again), Vec::<String>::new());
    }
}
