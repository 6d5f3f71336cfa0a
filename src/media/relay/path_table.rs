//! The shard's table of media paths, and the epoll set that watches their sockets for the
//! shard's relay loop (`relay_loop`).
//!
//! Why a table and an epoll set of our own rather than each call's task watching its sockets:
//! a relayed packet then costs a tokio task wake-up (scheduling the task, polling its future,
//! its sockets' readiness records, the call's wake-up bookkeeping) on top of the receive and
//! the send. Here one `epoll_wait` hands the relay loop every call with packets queued, and
//! each is relayed straight from its entry; a call's task wakes only for what the packets mean
//! to it (`PathEvent`). In alternating `bench/run --quick` pairs on a 2-core VM this took
//! 4.5–6 % off dialin's CPU per relayed packet (bench/README.md). The table is the shard thread's own (a `thread_local`): the relay loop and the
//! calls' tasks run on that thread one at a time, so no lock guards it.

use super::path::{MediaPath, PathEvent};
use crate::media::Side;
use std::cell::RefCell;
use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

thread_local! {
    /// This thread's table, once its relay loop runs (`install`).
    static TABLE: RefCell<Option<PathTable>> = const { RefCell::new(None) };
}

/// Every media path on the shard, and the epoll set of their sockets.
pub(super) struct PathTable {
    /// Edge-triggered: a socket is reported once per arrival of packets, and the relay loop
    /// reads it until it is empty (or keeps it for its next pass).
    epoll: OwnedFd,
    entries: Vec<Entry>,
    /// Indices of empty entries, reused before the table grows.
    free: Vec<u32>,
}

/// One slot of the table. The generation tells a reused slot from its earlier tenant, so an
/// epoll event or a handle of an ended call can never reach a new one.
struct Entry {
    generation: u32,
    path: Option<MediaPath>,
}

/// The epoll data of the shard's stop signal. No slot has it (slot indices stay below
/// `u32::MAX >> 1`), so [`PathTable::event`] finds no path for it.
const STOP_EVENT: u64 = u64::MAX;

/// Which socket of a path an epoll event is about, with the path's slot: the epoll data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Token {
    index: u32,
    generation: u32,
    side: Side,
}

impl Token {
    fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | (u64::from(self.index) << 1) | self.side.index() as u64
    }

    fn from_u64(data: u64) -> Token {
        Token {
            index: ((data & 0xffff_ffff) >> 1) as u32,
            generation: (data >> 32) as u32,
            side: if data & 1 == 1 {
                Side::Server
            } else {
                Side::Caller
            },
        }
    }
}

impl PathTable {
    fn new() -> io::Result<PathTable> {
        // SAFETY: plain system call; a valid fd is owned by the OwnedFd from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PathTable {
            // SAFETY: `fd` was just created and nothing else owns it.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            entries: Vec::new(),
            free: Vec::new(),
        })
    }

    /// The epoll set the relay loop waits on.
    pub fn epoll_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Reads up to `events.len()` ready sockets without waiting; how many were read.
    pub fn ready(&self, events: &mut [libc::epoll_event]) -> io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is valid for `max` entries.
        let n = unsafe { libc::epoll_wait(self.epoll_fd(), events.as_mut_ptr(), max, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// The path and leg an event of [`ready`](Self::ready) is about; `None` for a slot that
    /// changed hands since. `data` is the event's data.
    pub fn event(&mut self, data: u64) -> Option<(&mut MediaPath, Side)> {
        let token = Token::from_u64(data);
        let entry = self.entries.get_mut(token.index as usize)?;
        if entry.generation != token.generation {
            return None;
        }
        Some((entry.path.as_mut()?, token.side))
    }

    fn watch(&self, socket: &UdpSocket, token: Token) -> io::Result<()> {
        let edge = (libc::EPOLLIN | libc::EPOLLET) as u32;
        self.add(socket.as_raw_fd(), edge, token.to_u64())
    }

    /// Adds the shard's stop signal (an eventfd) to the set, level-triggered, with
    /// [`STOP_EVENT`] as its data: once given, every pass hears of it until the loop returns.
    pub fn watch_stop(&self, fd: RawFd) -> io::Result<()> {
        self.add(fd, libc::EPOLLIN as u32, STOP_EVENT)
    }

    fn add(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: data };
        // SAFETY: both fds are open; `event` is a valid epoll_event.
        let rc = unsafe { libc::epoll_ctl(self.epoll_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn unwatch(&self, socket: &UdpSocket) {
        // SAFETY: both fds are open; a null event is allowed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.epoll_fd(),
                libc::EPOLL_CTL_DEL,
                socket.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
    }

    fn insert(&mut self, path: MediaPath) -> io::Result<(u32, u32)> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|i| *i < u32::MAX >> 1)
                    .ok_or_else(|| io::Error::other("the shard's media table is full"))?;
                self.entries.push(Entry {
                    generation: 0,
                    path: None,
                });
                i
            }
        };
        let entry = &mut self.entries[index as usize];
        let token = Token {
            index,
            generation: entry.generation,
            side: Side::Caller,
        };
        if let Err(e) = self.watch(&path.caller, token) {
            self.free.push(index);
            return Err(e);
        }
        self.entries[index as usize].path = Some(path);
        Ok((index, token.generation))
    }

    fn remove(&mut self, index: u32, generation: u32) {
        let Some(entry) = self.entries.get_mut(index as usize) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let path = entry.path.take();
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(index);
        if let Some(path) = path {
            self.unwatch(&path.caller);
            if let Some(s) = &path.server {
                self.unwatch(s);
            }
        }
    }

    fn path(&mut self, index: u32, generation: u32) -> Option<&mut MediaPath> {
        let entry = self.entries.get_mut(index as usize)?;
        (entry.generation == generation)
            .then_some(entry.path.as_mut())
            .flatten()
    }
}

/// Starts this thread's table; the relay loop calls it before anything else on its thread.
/// Returns the epoll set to wait on.
pub(super) fn install() -> io::Result<RawFd> {
    TABLE.with_borrow_mut(|t| match t {
        Some(t) => Ok(t.epoll_fd()),
        None => {
            let table = PathTable::new()?;
            let fd = table.epoll_fd();
            *t = Some(table);
            Ok(fd)
        }
    })
}

/// Whether this thread runs a relay loop, so a call's path can be inserted here.
pub(crate) fn on_shard() -> bool {
    TABLE.with_borrow(Option::is_some)
}

/// Runs `f` on this thread's table, if it has one.
pub(super) fn with_table<R>(f: impl FnOnce(&mut PathTable) -> R) -> Option<R> {
    TABLE.with_borrow_mut(|t| t.as_mut().map(f))
}

/// A call's claim on its path in its shard's table; the path leaves the table (its sockets
/// closed) when the handle is dropped. Only usable on the shard's thread, where the call's
/// task runs.
pub(crate) struct PathHandle {
    index: u32,
    generation: u32,
}

impl PathHandle {
    /// Puts `path` into this thread's table and starts relaying its caller leg's packets.
    /// Fails on a thread that runs no relay loop (no shard could be started).
    pub fn insert(path: MediaPath) -> io::Result<PathHandle> {
        let inserted = with_table(|t| t.insert(path)).unwrap_or_else(|| {
            Err(io::Error::other(
                "no media shard runs on this thread (could its thread not be started?)",
            ))
        });
        let (index, generation) = inserted?;
        Ok(PathHandle { index, generation })
    }

    /// Runs `f` on the call's path. Must not be nested in another `with` or the relay loop's
    /// dispatch (they hold the table).
    /// The legs' sockets follow what `f` changed of their peers (`MediaPath::sync_peers`).
    pub fn with<R>(&self, f: impl FnOnce(&mut MediaPath) -> R) -> R {
        let run = |p: &mut MediaPath| {
            let r = f(p);
            p.sync_peers();
            r
        };
        with_table(|t| t.path(self.index, self.generation).map(run))
            .flatten()
            .expect("a call's media path is used on its shard's thread while the call lasts")
    }

    /// Adds the server leg's socket (non-blocking) and starts relaying its packets.
    pub fn add_server_socket(&self, socket: UdpSocket) -> io::Result<()> {
        let token = Token {
            index: self.index,
            generation: self.generation,
            side: Side::Server,
        };
        with_table(|t| {
            t.watch(&socket, token)?;
            if let Some(path) = t.path(self.index, self.generation) {
                if let Some(old) = path.replace_server(socket) {
                    t.unwatch(&old);
                }
            }
            Ok(())
        })
        .unwrap_or_else(|| Err(io::Error::other("no media shard runs on this thread")))
    }

    /// Stops relaying the server leg's socket and closes it (the leg was lost; a new one
    /// may be added later).
    pub fn remove_server_socket(&self) {
        with_table(|t| {
            let old = t
                .path(self.index, self.generation)
                .and_then(MediaPath::take_server);
            if let Some(old) = old {
                t.unwatch(&old);
            }
        });
    }

    /// Ready with the next news the call's packets have for its task.
    pub fn poll_event(&self, cx: &Context<'_>) -> Poll<PathEvent> {
        match self.with(|p| p.take_event(cx.waker())) {
            Some(e) => Poll::Ready(e),
            None => Poll::Pending,
        }
    }
}

impl Drop for PathHandle {
    fn drop(&mut self) {
        // At thread exit the table may be gone already; its sockets close with it.
        let _ = TABLE.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                if let Some(t) = t.as_mut() {
                    t.remove(self.index, self.generation);
                }
            }
        });
    }
}

#[cfg(test)]
#[path = "path_table_tests.rs"]
mod tests;
