//! Session ids, passwords and the table of live sessions with their expiry.
//! Ids and passwords are made the way ZooKeeper's SessionTrackerImpl and
//! ZooKeeperServer make them, so sessions carry over between the two systems.

use crate::conn::ConnHandle;
use std::collections::HashMap;

/// ZooKeeper's fixed secret mixed into the password seed.
const SUPER_SECRET: i64 = 0xB3415C00;

/// `java.util.Random`, enough of it to generate session passwords.
pub struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    const MULTIPLIER: i64 = 0x5DEECE66D;
    const MASK: i64 = (1 << 48) - 1;

    pub fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed as u64 >> (48 - bits)) as i32
    }

    pub fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    pub fn next_bytes(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let mut rnd = self.next_int();
            let n = (out.len() - i).min(4);
            for _ in 0..n {
                out[i] = rnd as u8;
                i += 1;
                rnd >>= 8;
            }
        }
    }
}

/// The password of a session: `new Random(sessionId ^ superSecret).nextBytes(16)`.
pub fn session_password(session_id: i64) -> [u8; 16] {
    let mut out = [0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut out);
    out
}

/// The first session id of a server: elapsed milliseconds in bits 8..56 and the
/// server id in the top byte, as `SessionTrackerImpl.initializeNextSessionId`.
pub fn initial_session_id(server_id: u64, now_ms: i64) -> i64 {
    let mut sid = ((now_ms << 24) as u64 >> 8) as i64;
    sid |= (server_id as i64) << 56;
    // The container marker is never a session id.
    if sid == i64::MIN {
        sid += 1;
    }
    sid
}

pub struct Session {
    pub timeout_ms: i32,
    /// Milliseconds since server start at which the session expires, rounded
    /// up to the next tick as ZooKeeper's ExpiryQueue does.
    pub expires_at: u64,
    pub conn: Option<ConnHandle>,
    /// A closeSession txn has been proposed for it.
    pub closing: bool,
}

pub struct SessionTable {
    tick_ms: u64,
    next_id: i64,
    sessions: HashMap<i64, Session>,
}

impl SessionTable {
    pub fn new(tick_ms: u64, first_id: i64) -> Self {
        SessionTable {
            tick_ms: tick_ms.max(1),
            next_id: first_id,
            sessions: HashMap::new(),
        }
    }

    pub fn allocate_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn expiry(&self, now_ms: u64, timeout_ms: i32) -> u64 {
        let t = now_ms + timeout_ms.max(0) as u64;
        (t / self.tick_ms + 1) * self.tick_ms
    }

    pub fn add(&mut self, id: i64, timeout_ms: i32, now_ms: u64, conn: Option<ConnHandle>) {
        let expires_at = self.expiry(now_ms, timeout_ms);
        self.sessions.insert(
            id,
            Session {
                timeout_ms,
                expires_at,
                conn,
                closing: false,
            },
        );
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    pub fn remove(&mut self, id: i64) -> Option<Session> {
        self.sessions.remove(&id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every session with its timeout, for a snapshot.
    pub fn list(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .map(|(id, s)| (*id, s.timeout_ms))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn ids(&self) -> Vec<i64> {
        self.sessions.keys().copied().collect()
    }

    /// Pushes the session's expiry forward; false when it is unknown or closing.
    pub fn touch(&mut self, id: i64, now_ms: u64) -> bool {
        let tick = self.tick_ms;
        match self.sessions.get_mut(&id) {
            Some(s) if !s.closing => {
                let t = now_ms + s.timeout_ms.max(0) as u64;
                s.expires_at = (t / tick + 1) * tick;
                true
            }
            _ => false,
        }
    }

    /// Gives every session a full timeout from `now_ms` and forgets earlier
    /// expiry decisions: a member that starts leading does not know when the
    /// sessions were last seen elsewhere.
    pub fn refresh_all(&mut self, now_ms: u64) {
        let tick = self.tick_ms;
        for s in self.sessions.values_mut() {
            let t = now_ms + s.timeout_ms.max(0) as u64;
            s.expires_at = (t / tick + 1) * tick;
            s.closing = false;
        }
    }

    /// Forgets every expiry decision whose closeSession may not have been
    /// committed: the sessions past their expiry are taken again.
    pub fn clear_closing(&mut self) {
        for s in self.sessions.values_mut() {
            s.closing = false;
        }
    }

    /// The connections of the sessions connected to this member.
    pub fn connections(&self) -> Vec<ConnHandle> {
        self.sessions
            .values()
            .filter_map(|s| s.conn.clone())
            .collect()
    }

    /// Marks every session past its expiry as closing and returns their ids.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<i64> {
        let mut out = Vec::new();
        for (id, s) in self.sessions.iter_mut() {
            if !s.closing && s.expires_at <= now_ms {
                s.closing = true;
                out.push(*id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_known_sequence() {
        // new java.util.Random(42).nextInt() == -1170105035, then 234785527
        let mut r = JavaRandom::new(42);
        assert_eq!(r.next_int(), -1170105035);
        assert_eq!(r.next_int(), 234785527);
    }

    #[test]
    fn session_ids_carry_the_server_id_in_the_top_byte() {
        let id = initial_session_id(1, 0x0b2a8e);
        assert_eq!(id, 0x0100_000b_2a8e_0000);
        assert_eq!((id as u64) >> 56, 1);
    }

    #[test]
    fn expiry_rounds_up_to_the_next_tick() {
        let mut t = SessionTable::new(2000, 1);
        t.add(7, 5000, 100, None);
        assert_eq!(t.get(7).map(|s| s.expires_at), Some(6000));
        assert!(t.take_expired(5999).is_empty());
        assert_eq!(t.take_expired(6000), vec![7]);
        assert!(t.take_expired(7000).is_empty());
    }
}
