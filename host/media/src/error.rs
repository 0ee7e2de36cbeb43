//! The error type of the relay's control API.
//!
//! Errors describe ports, addresses, paths and suites, never key bytes, so
//! every variant can be logged as it is. Packet-level problems are not
//! errors: they are counted drops (see [`LegStats`](crate::LegStats)).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::Side;

/// Why a control call (start, allocate, configure, record) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The configuration is unusable (empty port range, no worker, zero
    /// timeout); the text names the field.
    #[error("invalid relay configuration: {0}")]
    Config(&'static str),
    /// Every RTP/RTCP port pair of the range is in use, by our calls or by
    /// other processes.
    #[error("no free RTP/RTCP port pair in {min}..={max}")]
    NoPorts {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
    },
    /// A socket could not be bound for a reason other than the port being
    /// taken (the bind address is not local, permissions, descriptors
    /// exhausted).
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The SRTP suite, key or options of one leg were rejected by
    /// `pbx-srtp` (wrong key length for the suite, bad option).
    #[error("invalid SRTP parameters for leg {side:?}: {source}")]
    Srtp {
        /// The leg being configured.
        side: Side,
        /// The SRTP error (never carries key bytes).
        #[source]
        source: pbx_srtp::Error,
    },
    /// The recording file could not be created or its header written.
    #[error("cannot create recording {path}: {source}")]
    Recording {
        /// The path we tried.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// `record` was called twice for one call.
    #[error("the call is already being recorded")]
    AlreadyRecording,
    /// A relay thread could not be started.
    #[error("cannot start a relay thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The relay's worker did not answer (it stopped or panicked).
    #[error("the media relay worker is not running")]
    Stopped,
}
