//! Read-ahead: a second thread reads (and gunzips) the input into owned chunks, so the kernel
//! copy and the decompression overlap with packet analysis on the calling thread.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

/// Bytes per chunk: small enough that the few buffers in circulation stay in the reading
/// core's L2 cache (the kernel copies into them faster than into cold memory), large enough
/// that the channel round trip per chunk is negligible. Measured: 64 KiB x 4 beat 256 KiB
/// and 1 MiB chunks on system time.
pub(crate) const CHUNK: usize = 1 << 16;
/// Filled chunks queued ahead of the analysing thread; bounds memory to a few chunks.
const DEPTH: usize = 4;
/// The stream head the consumer queues before it starts (`read_packets_chunked` prefetches
/// this much); the producer allocates enough buffers for it.
const HEAD: usize = crate::reader::BUFFER;

enum Msg {
    Data(Vec<u8>),
    Err(io::Error),
}

/// Consumer side: the stream as a sequence of chunks, ending at the end of the input or at
/// the first I/O error.
pub(crate) struct Chunks {
    rx: Receiver<Msg>,
    free: Sender<Vec<u8>>,
    /// Chunks (and possibly the final error) received ahead by [`Chunks::prefetch`].
    ahead: VecDeque<Msg>,
}

impl Chunks {
    /// The next non-empty chunk; `Ok(None)` at the end of the stream.
    pub(crate) fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        let msg = match self.ahead.pop_front() {
            Some(m) => m,
            None => match self.rx.recv() {
                Ok(m) => m,
                // The producer hung up: end of input.
                Err(_) => return Ok(None),
            },
        };
        match msg {
            Msg::Data(d) => Ok(Some(d)),
            Msg::Err(e) => Err(e),
        }
    }

    /// Hands a used chunk back to the producer so buffers are reused, not reallocated.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        // The producer may be gone already; the buffer is then simply dropped.
        let _ = self.free.send(buf);
    }

    /// Receives chunks until `bytes` bytes are queued or the stream ends; an I/O error met
    /// before that is returned (the old reader read its head in one go and failed as a whole).
    pub(crate) fn prefetch(&mut self, bytes: usize) -> io::Result<()> {
        let mut have: usize = self.ahead.iter().map(|m| if let Msg::Data(d) = m { d.len() } else { 0 }).sum();
        while have < bytes {
            match self.rx.recv() {
                Ok(Msg::Data(d)) => {
                    have += d.len();
                    self.ahead.push_back(Msg::Data(d));
                }
                Ok(Msg::Err(e)) => return Err(e),
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Up to `n` bytes from the start of what [`Chunks::prefetch`] queued.
    pub(crate) fn peek(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        for m in &self.ahead {
            if let Msg::Data(d) = m {
                let take = (n - out.len()).min(d.len());
                out.extend_from_slice(&d[..take]);
                if out.len() == n {
                    break;
                }
            }
        }
        out
    }
}

/// Starts the producer thread on the stream `head` then `input`, gunzipped when `gzip`;
/// chunks hold up to `chunk` bytes. The thread ends when the input does or when the returned
/// `Chunks` is dropped; join it then (see `read_packets_chunked`).
pub(crate) fn spawn<'scope, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    (head, input, gzip): (Vec<u8>, R, bool),
    chunk: usize,
) -> io::Result<(Chunks, ScopedJoinHandle<'scope, ()>)> {
    let (tx, rx) = mpsc::sync_channel(DEPTH);
    let (free, free_rx) = mpsc::channel();
    let produce = move || {
        let raw = Cursor::new(head).chain(input);
        if gzip {
            pump(flate2::read::MultiGzDecoder::new(raw), chunk.max(1), DEPTH, &tx, &free_rx);
        } else {
            pump(raw, chunk.max(1), DEPTH, &tx, &free_rx);
        }
    };
    let handle = std::thread::Builder::new().name("pcap-read".to_string()).spawn_scoped(scope, produce)?;
    Ok((Chunks { rx, free, ahead: VecDeque::new() }, handle))
}

/// Fills chunks completely (only the last one is short) so chunk boundaries do not depend on
/// how the input splits its reads.
fn pump(mut input: impl Read, chunk: usize, depth: usize, tx: &SyncSender<Msg>, free: &Receiver<Vec<u8>>) {
    // Few buffers, reused: the kernel then copies into memory still in this core's cache, and
    // fresh buffers would cost page faults and zeroing. Steady state: the queue, the buffer
    // being filled, the one being parsed and one on its way back; more while the consumer
    // queues the head before it starts recycling, dropped again afterwards.
    let steady = depth + 3;
    let head = steady.max(HEAD.div_ceil(chunk) + 1);
    let mut allocated = 0;
    let mut sent = 0;
    loop {
        let limit = if sent < HEAD { head } else { steady };
        let mut buf = match free.try_recv() {
            Ok(b) => b,
            Err(_) if allocated < limit => {
                allocated += 1;
                Vec::new()
            }
            Err(_) => match free.recv() {
                Ok(b) => b,
                // The consumer is gone.
                Err(_) => return,
            },
        };
        if allocated > limit {
            allocated -= 1;
            continue;
        }
        buf.resize(chunk, 0);
        let mut filled = 0;
        let mut error = None;
        let mut end = false;
        while filled < chunk {
            match input.read(&mut buf[filled..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                // `min`: a reader claiming more than it was given must not make this panic.
                Ok(n) => filled = (filled + n).min(chunk),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        buf.truncate(filled);
        sent += filled;
        // A failed send means the consumer stopped reading: stop too.
        if filled > 0 && tx.send(Msg::Data(buf)).is_err() {
            return;
        }
        if let Some(e) = error {
            let _ = tx.send(Msg::Err(e));
            return;
        }
        if end {
            return;
        }
    }
}

/// The chunk stream as a `Read` (for pcap-parser): every read is filled completely unless
/// the stream ends, as reads from a regular file are.
pub(crate) struct ChunkReader {
    chunks: Chunks,
    cur: Vec<u8>,
    pos: usize,
    /// An error met after part of a read was filled; returned by the next read.
    pending: Option<io::Error>,
}

impl ChunkReader {
    pub(crate) fn new(chunks: Chunks) -> Self {
        Self { chunks, cur: Vec::new(), pos: 0, pending: None }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let mut n = 0;
        while n < buf.len() {
            if self.pos == self.cur.len() {
                match self.chunks.next() {
                    Ok(Some(c)) => {
                        let old = std::mem::replace(&mut self.cur, c);
                        self.chunks.recycle(old);
                        self.pos = 0;
                    }
                    Ok(None) => break,
                    Err(e) if n > 0 => {
                        self.pending = Some(e);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let take = (buf.len() - n).min(self.cur.len() - self.pos);
            buf[n..n + take].copy_from_slice(&self.cur[self.pos..self.pos + take]);
            n += take;
            self.pos += take;
        }
        Ok(n)
    }
}
