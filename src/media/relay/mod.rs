//! The RTP relay: each call's media path (media state, both legs' sockets, SRTP) in the table
//! of the shard the call runs on, and the shard's loop that relays every call's packets in
//! place, without waking the call's task. No allocation, lock or log line per packet.
//!
//! Why it lives in `media` and not in the call driver: the relay decides nothing about the
//! call. The driver carries out the call's actions ("bridge", "play", "send a digit") on the
//! path and hears back only what packets mean to the call (`PathEvent`).
//!
//! # What the call driver uses
//! - `Shards::spawn`: runs a call's task on the next shard, the thread whose relay loop will
//!   carry its packets (the path table is the thread's own, so the task and the loop share it
//!   without a lock). `on_shard` says whether the current thread is such a shard. `serve`
//!   starts the `Shards` (in the `CallContext`) and shuts them down when it stops.
//! - `PathHandle::insert`: puts a new call's `MediaPath` (caller socket, media state,
//!   `SrtpLeg`) into the shard's table and starts relaying its caller leg; dropping the
//!   handle takes the path out and closes its sockets.
//! - `PathHandle::with`: everything the call's task does to its media (play, bridge, a
//!   re-INVITE's new peer, the timer's packets via `MediaPath::deliver`); the legs' sockets
//!   follow the peers it settled.
//! - `PathHandle::add_server_socket`: the server leg's socket once it is dialled.
//! - `PathHandle::poll_event`: the call's wake-up source for digits, a moved media deadline
//!   and a failed relay.
//! - `MAX_PACKET`: the buffer size for packets the call originates.
//!
//! Files: `shards` (threads and their lifetime), `relay_loop` (one pass per wake-up),
//! `pass_budget` (how long a pass may take), `path_table` (the table and its epoll set),
//! `path` (one call's path), `forward` (the per-packet hot path), `recv_batch` (`recvmmsg`),
//! `connected` (connected UDP sockets), `srtp_leg` (the caller leg's SRTP).

mod connected;
mod forward;
mod pass_budget;
mod path;
mod path_table;
mod recv_batch;
mod relay_loop;
mod shards;
mod srtp_leg;

pub(crate) use path::{MediaPath, PathEvent};
pub(crate) use path_table::{on_shard, PathHandle};
pub use recv_batch::MAX_PACKET;
pub use shards::Shards;
pub(crate) use srtp_leg::SrtpLeg;
