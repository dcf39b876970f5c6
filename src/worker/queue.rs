//! A bounded queue whose blocking side sleeps at once: the device queues
//! and the two body pipes between the loop and the pool threads.
//!
//! `crossbeam_channel` (and std's channels, built the same way) spin and
//! then call `sched_yield` a few times before a blocked receiver or sender
//! parks. On a machine with a few cores shared by a worker, its pool
//! threads and the load, those yields were 7% of an erasure-coded PUT's
//! CPU (`perf`): a pool thread waiting for the next body chunk yields to
//! the loop that is busy producing it, over and over. Here a blocked side
//! takes a mutex, finds nothing, and waits on a condition variable; the
//! other side signals only when someone is waiting, so the common case (the
//! loop `try_send`s into a queue nobody sleeps on) makes no system call.
//! The loop itself only ever uses the `try_` operations.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receivers: usize,
    /// Receivers asleep in `recv`.
    waiting_recv: usize,
    /// Senders asleep in `send`.
    waiting_send: usize,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    cap: usize,
    not_empty: Condvar,
    not_full: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves the deque consistent (no
        // user code runs under it), so a poisoned lock is still good.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending end.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end; clones share the queue (each item goes to one).
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// Why `try_send` handed the item back.
#[derive(Debug)]
pub enum TrySendError<T> {
    /// The queue holds `cap` items.
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// Why `try_recv` returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued yet.
    Empty,
    /// Nothing queued, and every sender is gone.
    Disconnected,
}

/// Every sender is gone and the queue is empty.
#[derive(Debug, PartialEq, Eq)]
pub struct Disconnected;

/// A queue holding at most `cap` items (at least one).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let cap = cap.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::with_capacity(cap),
            senders: 1,
            receivers: 1,
            waiting_recv: 0,
            waiting_send: 0,
        }),
        cap,
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

impl<T> Sender<T> {
    fn push(&self, mut st: MutexGuard<'_, State<T>>, item: T) {
        st.items.push_back(item);
        let wake = st.waiting_recv > 0;
        drop(st);
        if wake {
            self.shared.not_empty.notify_one();
        }
    }

    /// Queue an item if there is room.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let st = self.shared.lock();
        if st.receivers == 0 {
            return Err(TrySendError::Disconnected(item));
        }
        if st.items.len() >= self.shared.cap {
            return Err(TrySendError::Full(item));
        }
        self.push(st, item);
        Ok(())
    }

    /// Queue an item, sleeping while the queue is full. The item comes
    /// back when every receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        let mut st = self.shared.lock();
        loop {
            if st.receivers == 0 {
                return Err(item);
            }
            if st.items.len() < self.shared.cap {
                break;
            }
            st.waiting_send += 1;
            st = self.shared.not_full.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting_send -= 1;
        }
        self.push(st, item);
        Ok(())
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.shared.lock().items.len()
    }

    /// Nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Receiver<T> {
    fn took(&self, mut st: MutexGuard<'_, State<T>>) -> Option<T> {
        let item = st.items.pop_front()?;
        let wake = st.waiting_send > 0;
        drop(st);
        if wake {
            self.shared.not_full.notify_one();
        }
        Some(item)
    }

    /// Take an item if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let st = self.shared.lock();
        let gone = st.senders == 0;
        match self.took(st) {
            Some(item) => Ok(item),
            None if gone => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Take an item, sleeping until one is queued or every sender is gone.
    pub fn recv(&self) -> Result<T, Disconnected> {
        let mut st = self.shared.lock();
        loop {
            if !st.items.is_empty() {
                return self.took(st).ok_or(Disconnected);
            }
            if st.senders == 0 {
                return Err(Disconnected);
            }
            st.waiting_recv += 1;
            st = self.shared.not_empty.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting_recv -= 1;
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.lock().receivers += 1;
        Receiver { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.senders -= 1;
        let wake = st.senders == 0 && st.waiting_recv > 0;
        drop(st);
        if wake {
            self.shared.not_empty.notify_all();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.receivers -= 1;
        let gone = st.receivers == 0;
        let wake = gone && st.waiting_send > 0;
        // Items nobody will take are dropped now, outside the lock (a job
        // holds pipes whose drop wakes the loop).
        let orphans = if gone { std::mem::take(&mut st.items) } else { VecDeque::new() };
        drop(st);
        drop(orphans);
        if wake {
            self.shared.not_full.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn try_send_stops_at_capacity_and_hands_the_item_back() {
        let (tx, rx) = bounded(2);
        assert!(tx.try_send(1).is_ok());
        assert!(tx.try_send(2).is_ok());
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(tx.len(), 2);
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(tx.try_send(3).is_ok());
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn disconnection_is_seen_from_both_ends_after_the_queue_drains() {
        let (tx, rx) = bounded(4);
        tx.try_send(7).ok();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(7));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv(), Err(Disconnected));

        let (tx, rx) = bounded(1);
        drop(rx);
        assert!(matches!(tx.try_send(1), Err(TrySendError::Disconnected(1))));
        assert_eq!(tx.send(2), Err(2));
    }

    #[test]
    fn a_sleeping_receiver_wakes_for_an_item_and_for_the_last_sender_leaving() {
        let (tx, rx) = bounded::<u32>(1);
        let rx2 = rx.clone();
        let t = std::thread::spawn(move || (rx.recv(), rx.recv()));
        let t2 = std::thread::spawn(move || rx2.recv());
        std::thread::sleep(Duration::from_millis(50));
        tx.send(5).ok();
        std::thread::sleep(Duration::from_millis(50));
        drop(tx);
        let (a, b) = t.join().unwrap_or((Err(Disconnected), Err(Disconnected)));
        let c = t2.join().unwrap_or(Err(Disconnected));
        let mut got: Vec<_> = [a, b, c].into_iter().collect();
        got.sort_by_key(|r| r.is_err());
        assert_eq!(got, vec![Ok(5), Err(Disconnected), Err(Disconnected)]);
    }

    #[test]
    fn a_sleeping_sender_wakes_for_room_and_for_the_receiver_leaving() {
        let (tx, rx) = bounded::<u32>(1);
        tx.try_send(1).ok();
        let tx2 = tx.clone();
        let t = std::thread::spawn(move || tx.send(2));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(t.join().unwrap_or(Err(0)), Ok(()));
        let t2 = std::thread::spawn(move || tx2.send(3));
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
        assert_eq!(t2.join().unwrap_or(Ok(())), Err(3));
    }
}
