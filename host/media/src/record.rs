//! Call recording: a recorder thread turns decrypted G.711 frames into an
//! 8 kHz, 16-bit, stereo WAV file (leg A left, leg B right).
//!
//! Workers hand frames over a bounded channel with `try_send`: when the
//! recorder falls behind the frame is dropped and counted, so recording
//! never delays forwarding. The channel's slots are allocated once, so a
//! frame costs a copy, not an allocation.
//!
//! Placement: each direction's first frame is placed by its arrival time
//! (the file starts at the first frame of either direction), later frames
//! by their RTP timestamp relative to that anchor, so lost packets become
//! silence. A timestamp jump of more than [`MAX_GAP`] forward or of more
//! than the window backward, or a new SSRC, re-anchors the direction on
//! its arrival time, clamped to at most `MAX_GAP` of silence. Samples sit
//! in a [`WINDOW`]-long ring until the later direction has passed them, then
//! go to the file; a frame that arrives after its place was written is
//! dropped and counted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::g711;
use crate::stats::bump;

/// Sample rate of G.711 and of the file.
pub(crate) const RATE: u64 = 8000;
/// Samples (per channel) kept in memory before they are written: how
/// much the two directions may drift apart, and how late a frame may be.
pub(crate) const WINDOW: u64 = 2 * RATE;
/// Longest silence a timestamp or arrival jump may insert.
pub(crate) const MAX_GAP: u64 = 2 * RATE;
/// Largest frame recorded: 60 ms of G.711.
pub(crate) const MAX_FRAME: usize = 480;
/// Frames the recorder queue holds (about 10 s of one call's audio).
pub(crate) const QUEUE: usize = 1024;
/// Largest data chunk a RIFF file can describe.
const MAX_DATA: u64 = u32::MAX as u64 - 36;

/// The G.711 variant of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Law {
    Ulaw,
    Alaw,
}

/// One decrypted audio frame, copied out of the worker's buffer.
pub(crate) struct Frame {
    /// The recording it belongs to.
    pub(crate) id: u64,
    /// 0: leg A (left), 1: leg B (right).
    pub(crate) channel: usize,
    pub(crate) law: Law,
    pub(crate) ssrc: u32,
    pub(crate) ts: u32,
    pub(crate) at: Instant,
    pub(crate) len: u16,
    pub(crate) data: [u8; MAX_FRAME],
}

/// What the recorder thread is told. Frames are inline, not boxed: the
/// queue's slots are allocated once, a boxed frame would be an allocation
/// per packet.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RecMsg {
    /// A new recording; frames with its id follow.
    Start {
        id: u64,
        rec: Box<Recording>,
    },
    Frame(Frame),
    /// No more frames for `id` will come: write the rest, patch the
    /// header, close the file, then signal `done`.
    Finish {
        id: u64,
        done: Option<mpsc::Sender<()>>,
    },
}

/// Starts the recorder thread; it runs until every sender is dropped, then
/// finishes the recordings still open.
pub(crate) fn spawn() -> io::Result<(SyncSender<RecMsg>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name("pbx-media-rec".into())
        .spawn(move || run(rx))?;
    Ok((tx, handle))
}

fn run(rx: Receiver<RecMsg>) {
    let mut recs: HashMap<u64, Recording> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        match msg {
            RecMsg::Start { id, rec } => {
                recs.insert(id, *rec);
            }
            RecMsg::Frame(f) => {
                if let Some(r) = recs.get_mut(&f.id) {
                    let len = usize::from(f.len).min(MAX_FRAME);
                    r.push(f.channel, f.law, f.ssrc, f.ts, f.at, &f.data[..len]);
                }
            }
            RecMsg::Finish { id, done } => {
                if let Some(r) = recs.remove(&id) {
                    r.finish();
                }
                if let Some(d) = done {
                    let _ = d.send(());
                }
            }
        }
    }
    for (_, r) in recs.drain() {
        r.finish();
    }
}

/// Per-direction placement state.
#[derive(Debug, Clone, Copy, Default)]
struct Dir {
    /// (SSRC, RTP timestamp, file position) of the frame placed by arrival.
    anchor: Option<(u32, u32, u64)>,
    /// One past the last sample placed.
    next: u64,
}

/// One open recording.
pub(crate) struct Recording {
    out: BufWriter<File>,
    path: PathBuf,
    /// Arrival time of the first frame: file position 0.
    t0: Option<Instant>,
    /// `WINDOW` stereo samples starting at `flushed`, by position modulo.
    ring: Box<[[i16; 2]]>,
    /// Everything before this position is in the file.
    flushed: u64,
    /// One past the last sample placed in either channel.
    end: u64,
    dirs: [Dir; 2],
    data_bytes: u64,
    /// Set on the first write error: the rest is discarded.
    failed: bool,
    /// Frames dropped here, for the call's statistics and the relay's.
    dropped: Arc<AtomicU64>,
    dropped_total: Arc<AtomicU64>,
}

impl Recording {
    /// Creates the file and writes a header whose sizes `finish` patches.
    pub(crate) fn create(path: &Path, dropped: Arc<AtomicU64>, dropped_total: Arc<AtomicU64>) -> io::Result<Recording> {
        let mut out = BufWriter::with_capacity(64 * 1024, File::create(path)?);
        out.write_all(&wav_header(0))?;
        out.flush()?;
        Ok(Recording {
            out,
            path: path.to_owned(),
            t0: None,
            ring: vec![[0i16; 2]; WINDOW as usize].into_boxed_slice(),
            flushed: 0,
            end: 0,
            dirs: [Dir::default(); 2],
            data_bytes: 0,
            failed: false,
            dropped,
            dropped_total,
        })
    }

    /// Places one frame of `channel` (0 left, 1 right).
    pub(crate) fn push(&mut self, channel: usize, law: Law, ssrc: u32, ts: u32, at: Instant, payload: &[u8]) {
        let n = payload.len() as u64;
        let t0 = *self.t0.get_or_insert(at);
        let wall = samples(at.saturating_duration_since(t0));
        let (flushed, end) = (self.flushed, self.end);
        let d = &mut self.dirs[channel & 1];
        let by_ts = match d.anchor {
            Some((s, ts0, pos0)) if s == ssrc => {
                let p = pos0 as i64 + i64::from(ts.wrapping_sub(ts0) as i32);
                let lo = d.next as i64 - WINDOW as i64;
                let hi = (d.next + MAX_GAP) as i64;
                (lo..=hi).contains(&p).then_some(p.max(0) as u64)
            }
            _ => None,
        };
        let pos = match by_ts {
            Some(p) => p,
            None => {
                // First frame of this direction, a new SSRC or a far jump:
                // trust the arrival time, but insert at most MAX_GAP of
                // silence and never go back before what is written.
                let from = if d.anchor.is_some() { d.next } else { flushed };
                let p = wall.clamp(from.max(flushed), from.max(end) + MAX_GAP);
                d.anchor = Some((ssrc, ts, p));
                p
            }
        };
        d.next = d.next.max(pos + n);
        if pos + n > self.flushed + WINDOW {
            self.flush_to(pos + n - WINDOW);
        }
        let table = match law {
            Law::Ulaw => &g711::ULAW,
            Law::Alaw => &g711::ALAW,
        };
        let mut late = false;
        for (k, &b) in payload.iter().enumerate() {
            let p = pos + k as u64;
            if p < self.flushed {
                late = true;
                continue;
            }
            self.ring[(p % WINDOW) as usize][channel & 1] = table[usize::from(b)];
        }
        if late {
            bump(&self.dropped, 1);
            self.dropped_total.fetch_add(1, Relaxed);
        }
        self.end = self.end.max(pos + n);
    }

    /// Writes positions `flushed..to` (silence where nothing was placed).
    fn flush_to(&mut self, to: u64) {
        let mut chunk = [0u8; 4096];
        while self.flushed < to {
            let mut used = 0;
            while used < chunk.len() && self.flushed < to {
                let slot = &mut self.ring[(self.flushed % WINDOW) as usize];
                chunk[used..used + 2].copy_from_slice(&slot[0].to_le_bytes());
                chunk[used + 2..used + 4].copy_from_slice(&slot[1].to_le_bytes());
                *slot = [0, 0];
                used += 4;
                self.flushed += 1;
            }
            if self.failed || self.data_bytes + used as u64 > MAX_DATA {
                continue;
            }
            match self.out.write_all(&chunk[..used]) {
                Ok(()) => self.data_bytes += used as u64,
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "recording write failed; discarding the rest");
                    self.failed = true;
                }
            }
        }
    }

    /// Writes what is left, patches the RIFF and data sizes, closes the file.
    pub(crate) fn finish(mut self) {
        self.flush_to(self.end);
        let r = (|| {
            self.out.flush()?;
            let f = self.out.get_mut();
            f.seek(SeekFrom::Start(0))?;
            f.write_all(&wav_header(self.data_bytes as u32))?;
            f.flush()
        })();
        let seconds = self.data_bytes as f64 / (4 * RATE) as f64;
        match r {
            Ok(()) if !self.failed => {
                tracing::info!(path = %self.path.display(), seconds, "recording finished");
            }
            Ok(()) => tracing::warn!(path = %self.path.display(), seconds, "recording truncated by a write error"),
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "recording could not be finalised"),
        }
    }
}

fn samples(d: Duration) -> u64 {
    (d.as_nanos() * u128::from(RATE) / 1_000_000_000) as u64
}

/// A canonical 44-octet WAV header: PCM, 2 channels, 8 kHz, 16 bits.
fn wav_header(data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
    put(0, b"RIFF");
    put(4, &data_bytes.saturating_add(36).to_le_bytes());
    put(8, b"WAVE");
    put(12, b"fmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &1u16.to_le_bytes()); // PCM
    put(22, &2u16.to_le_bytes()); // channels
    put(24, &(RATE as u32).to_le_bytes());
    put(28, &(RATE as u32 * 4).to_le_bytes()); // byte rate
    put(32, &4u16.to_le_bytes()); // block align
    put(34, &16u16.to_le_bytes()); // bits per sample
    put(36, b"data");
    put(40, &data_bytes.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_rec(dir: &Path) -> (PathBuf, Recording, Arc<AtomicU64>) {
        let path = dir.join("t.wav");
        let dropped = Arc::new(AtomicU64::new(0));
        let rec = Recording::create(&path, dropped.clone(), Arc::new(AtomicU64::new(0))).unwrap();
        (path, rec, dropped)
    }

    /// Reads a file this module wrote: checks the header, returns (left, right).
    fn read(path: &Path) -> (Vec<i16>, Vec<i16>) {
        let b = std::fs::read(path).unwrap();
        assert_eq!(&b[..4], b"RIFF");
        assert_eq!(&b[8..16], b"WAVEfmt ");
        let riff = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
        let data = u32::from_le_bytes(b[40..44].try_into().unwrap()) as usize;
        assert_eq!(riff, b.len() - 8);
        assert_eq!(data, b.len() - 44);
        let (mut l, mut r) = (Vec::new(), Vec::new());
        for s in b[44..].chunks_exact(4) {
            l.push(i16::from_le_bytes([s[0], s[1]]));
            r.push(i16::from_le_bytes([s[2], s[3]]));
        }
        (l, r)
    }

    #[test]
    fn gaps_are_silence_and_channels_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut rec, dropped) = new_rec(dir.path());
        let t = Instant::now();
        // Left: frames 0, 1 and 3 (frame 2 lost), µ-law 0x80 = +32124.
        for k in [0u32, 1, 3] {
            rec.push(0, Law::Ulaw, 1, 1000 + 160 * k, t, &[0x80; 160]);
        }
        // Right: two A-law frames, 0xD5 = +8.
        for k in [0u32, 1] {
            rec.push(1, Law::Alaw, 2, 7 + 160 * k, t, &[0xD5; 160]);
        }
        rec.finish();
        let (l, r) = read(&path);
        assert_eq!(l.len(), 4 * 160);
        assert!(l[..320].iter().all(|&s| s == 32124));
        assert!(l[320..480].iter().all(|&s| s == 0), "lost frame is silence");
        assert!(l[480..].iter().all(|&s| s == 32124));
        assert!(r[..320].iter().all(|&s| s == 8));
        assert!(r[320..].iter().all(|&s| s == 0));
        assert_eq!(dropped.load(Relaxed), 0);
    }

    #[test]
    fn far_jumps_insert_bounded_silence_and_late_frames_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut rec, dropped) = new_rec(dir.path());
        let t = Instant::now();
        rec.push(0, Law::Ulaw, 1, 0, t, &[0x80; 160]);
        // A timestamp one hour later, arriving 20 ms later: placed right after.
        rec.push(
            0,
            Law::Ulaw,
            1,
            3600 * 8000,
            t + Duration::from_millis(20),
            &[0x80; 160],
        );
        // Arrival ten seconds later with a jumped timestamp: at most MAX_GAP.
        rec.push(0, Law::Ulaw, 1, 1, t + Duration::from_secs(10), &[0x80; 160]);
        let gap_end = 320 + MAX_GAP as usize;
        // Push far enough ahead to write the start out, then a late frame.
        for k in 1..=(2 * WINDOW / 160) as u32 {
            rec.push(0, Law::Ulaw, 1, 1 + 160 * k, t + Duration::from_secs(10), &[0x80; 160]);
        }
        // The right channel starts where the file is written up to; a
        // frame timestamped before its first one is too late to place.
        rec.push(1, Law::Ulaw, 2, 1000, t, &[0x80; 160]);
        assert_eq!(dropped.load(Relaxed), 0);
        rec.push(1, Law::Ulaw, 2, 840, t, &[0x80; 160]);
        assert_eq!(dropped.load(Relaxed), 1);
        rec.finish();
        let (l, _) = read(&path);
        assert!(l[..320].iter().all(|&s| s == 32124));
        assert!(l[320..gap_end].iter().all(|&s| s == 0));
        assert!(l[gap_end..gap_end + 160].iter().all(|&s| s == 32124));
    }

    #[test]
    fn empty_recording_is_a_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rec, _) = new_rec(dir.path());
        rec.finish();
        let (l, _) = read(&path);
        assert!(l.is_empty());
    }
}
