//! The channel that carries a transaction's events (tokio backend).
//!
//! tokio's unbounded channel allocates its first block (32 slots) when it is created. Every
//! transaction has such a channel and lives on for up to 64*T1 (32 s) after its final response
//! to absorb retransmissions, while it mostly carries one or two events. At a few hundred
//! set-ups per second those blocks are many megabytes that a long-running process keeps as
//! heap fragmentation. This channel allocates its queue on the first send and keeps it small.
//!
//! Semantics follow tokio's unbounded channel where the transaction layer relies on them:
//! `send` fails once the receiver is gone, `recv` returns `None` once every sender is gone and
//! the queue is empty, and `recv` is cancel-safe.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

pub use tokio::sync::mpsc::error::SendError;

struct State<T> {
    queue: VecDeque<T>,
    waker: Option<Waker>,
    senders: usize,
    receiver_alive: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; recover the state if something ever did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sending half; cloneable.
pub struct UnboundedSender<T> {
    shared: Arc<Shared<T>>,
}

/// Receiving half.
pub struct UnboundedReceiver<T> {
    shared: Arc<Shared<T>>,
}

/// A channel with nothing allocated for its queue until the first send.
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            senders: 1,
            receiver_alive: true,
        }),
    });
    (
        UnboundedSender {
            shared: shared.clone(),
        },
        UnboundedReceiver { shared },
    )
}

impl<T> UnboundedSender<T> {
    /// Queues `value`; never blocks. Fails, returning the value, once the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let waker = {
            let mut state = self.shared.lock();
            if !state.receiver_alive {
                return Err(SendError(value));
            }
            state.queue.push_back(value);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().receiver_alive
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        UnboundedSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for UnboundedSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            if state.senders == 0 {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> std::fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnboundedSender")
    }
}

impl<T> UnboundedReceiver<T> {
    /// The next value; `None` once every sender is gone and the queue is empty. Cancel-safe:
    /// a value is only taken in the poll that returns it.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(v) = state.queue.pop_front() {
                if state.queue.is_empty() && state.queue.capacity() > 8 {
                    // A burst is over: do not keep its queue for the transaction's lifetime.
                    state.queue.shrink_to(8);
                }
                return Poll::Ready(Some(v));
            }
            if state.senders == 0 {
                return Poll::Ready(None);
            }
            match &state.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => state.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for UnboundedReceiver<T> {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.shared.lock();
            state.receiver_alive = false;
            state.waker = None;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a queued value's drop may use the channel.
        drop(queued);
    }
}

impl<T> std::fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnboundedReceiver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nothing_is_allocated_for_the_queue_until_the_first_send() {
        let (tx, rx) = unbounded_channel::<u64>();
        assert_eq!(rx.shared.lock().queue.capacity(), 0);
        tx.send(1).unwrap();
        assert!(rx.shared.lock().queue.capacity() > 0);
    }

    #[tokio::test]
    async fn values_arrive_in_order_across_tasks() {
        let (tx, mut rx) = unbounded_channel();
        let producer = tokio::spawn(async move {
            for i in 0..100u32 {
                tx.send(i).unwrap();
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        for i in 0..100u32 {
            assert_eq!(rx.recv().await, Some(i));
        }
        producer.await.unwrap();
        // The producer's sender is gone: the channel ends.
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send_and_when_the_last_sender_goes() {
        let (tx, mut rx) = unbounded_channel::<&str>();
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send("event").unwrap();
        drop(tx);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !waiter.is_finished(),
            "one sender is left: the channel is open"
        );
        drop(tx2);
        let (first, end) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("receiver woke")
            .unwrap();
        assert_eq!(first, Some("event"));
        assert_eq!(end, None);
    }

    #[test]
    fn send_fails_with_the_value_once_the_receiver_is_gone() {
        let (tx, rx) = unbounded_channel::<String>();
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        let err = tx.send("late".to_string()).unwrap_err();
        assert_eq!(err.0, "late");
        assert_eq!(err.to_string(), "channel closed");
    }

    #[tokio::test]
    async fn a_cancelled_recv_loses_nothing() {
        let (tx, mut rx) = unbounded_channel::<u8>();
        let timed_out = tokio::time::timeout(Duration::from_millis(5), rx.recv()).await;
        assert!(timed_out.is_err());
        tx.send(7).unwrap();
        assert_eq!(rx.recv().await, Some(7));
    }

    #[test]
    fn a_drained_burst_gives_its_queue_back() {
        let (tx, mut rx) = unbounded_channel::<u64>();
        for i in 0..100 {
            tx.send(i).unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..100 {
                rx.recv().await.unwrap();
            }
        });
        assert!(rx.shared.lock().queue.capacity() <= 8);
    }
}
