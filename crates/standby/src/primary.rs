//! The primary's end: [`StandbyClient`] connects to a standby, mirrors
//! the trace to it, sends heartbeats, reads acknowledgements and holds
//! console output until the entry that produced it is acknowledged. A
//! standby that goes away (the connection breaks, or no acknowledgement
//! for the failover timeout) is dropped: the primary runs on without one,
//! says so, and releases held output (no output rule without a standby).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use samsara_engine::record::StandbyLink;
use samsara_machine::devices::uart::SerialOutput;
use samsara_trace::BlockSink;

use crate::protocol::{
    HEARTBEAT_INTERVAL, KIND_DATA, KIND_DROP, KIND_END, KIND_HEARTBEAT, StreamError, read_hello,
    send_hello, write_frame,
};

/// The connection to a standby (a [`StandbyLink`] for the recorder).
#[derive(Clone)]
pub struct StandbyClient {
    link: Arc<Link>,
}

impl std::fmt::Debug for StandbyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandbyClient")
            .field("addr", &self.link.addr)
            .finish_non_exhaustive()
    }
}

struct Link {
    addr: String,
    timeout: Duration,
    stream: Mutex<Option<TcpStream>>,
    /// When a frame was last sent.
    last_sent: Mutex<Instant>,
    /// Every entry up to this one is in the standby's file.
    acked: AtomicU64,
    /// The highest `through_seq` sent.
    sent: AtomicU64,
    lost: AtomicBool,
    /// The trace is complete and the standby told so: its going away
    /// after that is no loss.
    ended: AtomicBool,
    /// Output waiting for its entry's acknowledgement, and where it goes.
    held: Mutex<Held>,
    changed: Condvar,
    /// Stream statistics.
    bytes_sent: AtomicU64,
    started: Instant,
}

#[derive(Default)]
struct Held {
    /// (entry, when written, bytes), in the order written.
    queue: VecDeque<(u64, Instant, Vec<u8>)>,
    /// Where released output goes (the console).
    sink: Option<SerialOutput>,
    /// Longest any output waited to be released.
    max_delay: Duration,
}

/// What a primary's stream did, for its report.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    /// Bytes sent (trace bytes and framing).
    pub bytes: u64,
    /// Seconds since the connection.
    pub seconds: f64,
    /// The last entry the standby acknowledged.
    pub acked: u64,
    /// Whether the standby was lost on the way.
    pub lost: bool,
}

impl StandbyClient {
    /// Connects to the standby listening on `addr` (retrying for up to
    /// `timeout` while it starts) and greets it.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Self, StreamError> {
        let deadline = Instant::now() + timeout.max(Duration::from_secs(5));
        let stream = loop {
            let target = addr
                .to_socket_addrs()
                .map_err(|e| {
                    StreamError::Io(std::io::Error::new(
                        e.kind(),
                        format!("standby address {addr}: {e}"),
                    ))
                })?
                .next()
                .ok_or_else(|| StreamError::Foreign(format!("{addr} names no address")))?;
            match TcpStream::connect_timeout(&target, timeout) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(StreamError::Io(std::io::Error::new(
                        e.kind(),
                        format!("connecting to the standby at {addr}: {e}"),
                    )));
                }
            }
        };
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        // The greeting may wait behind another connection the standby is
        // still sizing up; after it, silence means death.
        stream.set_read_timeout(Some(timeout.max(Duration::from_secs(5))))?;
        let mut greet = stream.try_clone()?;
        send_hello(&mut greet)?;
        read_hello(&mut greet)?;
        stream.set_read_timeout(Some(timeout))?;
        let link = Arc::new(Link {
            addr: addr.to_string(),
            timeout,
            stream: Mutex::new(Some(stream)),
            last_sent: Mutex::new(Instant::now()),
            acked: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            held: Mutex::new(Held::default()),
            changed: Condvar::new(),
            bytes_sent: AtomicU64::new(0),
            started: Instant::now(),
        });
        let reader = link.clone();
        std::thread::Builder::new()
            .name("standby-acks".into())
            .spawn(move || reader.read_acks(greet))?;
        let beater = Arc::downgrade(&link);
        std::thread::Builder::new()
            .name("standby-heartbeat".into())
            .spawn(move || {
                while let Some(link) = beater.upgrade() {
                    if link.lost.load(Ordering::Acquire) || link.ended.load(Ordering::Acquire) {
                        break;
                    }
                    if link.last_sent.lock().elapsed() >= HEARTBEAT_INTERVAL {
                        link.send(KIND_HEARTBEAT, None, &[]);
                    }
                    drop(link);
                    std::thread::sleep(HEARTBEAT_INTERVAL / 2);
                }
            })?;
        Ok(Self { link })
    }

    /// Waits (at most `timeout`) until every held byte is released: the
    /// standby acknowledged the trace's end, or it is gone. Call after
    /// the recording, before exiting.
    pub fn finish(&self, timeout: Duration) -> StreamStats {
        let link = &self.link;
        let deadline = Instant::now() + timeout;
        let mut held = link.held.lock();
        while !held.queue.is_empty() && !link.lost.load(Ordering::Acquire) {
            if link.changed.wait_until(&mut held, deadline).timed_out() {
                break;
            }
        }
        drop(held);
        link.ended.store(true, Ordering::Release);
        link.send(KIND_END, None, &[]);
        self.stats()
    }

    /// The stream so far.
    pub fn stats(&self) -> StreamStats {
        let link = &self.link;
        StreamStats {
            bytes: link.bytes_sent.load(Ordering::Relaxed),
            seconds: link.started.elapsed().as_secs_f64(),
            acked: link.acked.load(Ordering::Acquire),
            lost: link.lost.load(Ordering::Acquire),
        }
    }

    /// The longest any output waited for its acknowledgement.
    pub fn max_output_delay(&self) -> Duration {
        self.link.held.lock().max_delay
    }
}

impl Link {
    /// Sends a frame; a failure loses the standby.
    fn send(&self, kind: u8, through_seq: Option<u64>, bytes: &[u8]) -> bool {
        let mut stream = self.stream.lock();
        let Some(s) = stream.as_mut() else {
            return false;
        };
        match write_frame(s, kind, through_seq, bytes) {
            Ok(()) => {
                *self.last_sent.lock() = Instant::now();
                let framing = 5 + if through_seq.is_some() { 8 } else { 0 };
                self.bytes_sent
                    .fetch_add((bytes.len() + framing) as u64, Ordering::Relaxed);
                true
            }
            Err(e) => {
                drop(stream);
                self.lose(&format!("sending to it failed: {e}"));
                false
            }
        }
    }

    /// Reads acknowledgements until the connection ends.
    fn read_acks(&self, mut stream: TcpStream) {
        let mut ack = [0u8; 8];
        loop {
            match stream.read_exact(&mut ack) {
                Ok(()) => {
                    let seq = u64::from_le_bytes(ack);
                    if seq > self.sent.load(Ordering::Acquire) {
                        self.lose(&format!(
                            "it acknowledged entry {seq}, which was never sent"
                        ));
                        return;
                    }
                    self.acked.fetch_max(seq, Ordering::AcqRel);
                    self.release(seq);
                }
                Err(e) => {
                    let why = match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                            format!("no acknowledgement for {} ms", self.timeout.as_millis())
                        }
                        std::io::ErrorKind::UnexpectedEof => "it closed the connection".into(),
                        _ => e.to_string(),
                    };
                    self.lose(&why);
                    return;
                }
            }
        }
    }

    /// Releases held output of entries up to `seq`.
    fn release(&self, seq: u64) {
        let mut held = self.held.lock();
        let Held {
            queue,
            sink,
            max_delay,
        } = &mut *held;
        // In order, under the lock: a newer write must not overtake them.
        // (The console's own writes give up on a client that stops reading.)
        while queue.front().is_some_and(|(s, _, _)| *s <= seq) {
            if let Some((_, since, bytes)) = queue.pop_front() {
                *max_delay = (*max_delay).max(since.elapsed());
                if let Some(sink) = sink {
                    let _ = sink.write_all(&bytes);
                    let _ = sink.flush();
                }
            }
        }
        self.changed.notify_all();
    }

    /// The standby is gone, or too slow to count on: run on without one,
    /// telling it so (it then never goes live: see `docs/standby.md` on
    /// split brain).
    fn lose(&self, why: &str) {
        if self.lost.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(mut s) = self.stream.lock().take() {
            // A standby that is merely slow must not take over beside a
            // primary that runs on: it is told (if it can still hear).
            let _ = write_frame(&mut s, KIND_DROP, None, &[]);
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if self.ended.load(Ordering::Acquire) {
            self.release(u64::MAX);
            return;
        }
        eprintln!(
            "samsara: lost the standby at {} ({why}); recording on without one, console output is no longer held",
            self.addr
        );
        self.release(u64::MAX);
    }
}

impl StandbyLink for StandbyClient {
    fn mirror(&self) -> Box<dyn BlockSink> {
        Box::new(Mirror {
            link: self.link.clone(),
        })
    }

    fn hold_output(
        &self,
        inner: SerialOutput,
        producing: Arc<AtomicU64>,
        held: Arc<dyn Fn() + Send + Sync>,
    ) -> SerialOutput {
        self.link.held.lock().sink = Some(inner);
        Box::new(HeldOutput {
            link: self.link.clone(),
            producing,
            held,
        })
    }
}

/// The trace writer's mirror: every block becomes a data frame.
struct Mirror {
    link: Arc<Link>,
}

impl BlockSink for Mirror {
    fn send(&mut self, bytes: &[u8], through_seq: u64) -> std::io::Result<()> {
        let link = &self.link;
        if link.lost.load(Ordering::Acquire) {
            return Err(std::io::Error::other("standby lost"));
        }
        link.sent.fetch_max(through_seq, Ordering::AcqRel);
        if link.send(KIND_DATA, Some(through_seq), bytes) {
            Ok(())
        } else {
            Err(std::io::Error::other("standby lost"))
        }
    }
}

/// A console sink under the output rule.
struct HeldOutput {
    link: Arc<Link>,
    producing: Arc<AtomicU64>,
    /// Tells the recorder that output waits (its entry should be sent now).
    held: Arc<dyn Fn() + Send + Sync>,
}

impl Write for HeldOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let link = &self.link;
        let seq = self.producing.load(Ordering::Acquire);
        let mut held = link.held.lock();
        let released =
            link.lost.load(Ordering::Acquire) || link.acked.load(Ordering::Acquire) >= seq;
        if released && held.queue.is_empty() {
            if let Some(sink) = &mut held.sink {
                let _ = sink.write_all(buf);
                let _ = sink.flush();
            }
            return Ok(buf.len());
        }
        match held.queue.back_mut() {
            Some((s, _, bytes)) if *s == seq => bytes.extend_from_slice(buf),
            _ => held.queue.push_back((seq, Instant::now(), buf.to_vec())),
        }
        drop(held);
        (self.held)();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
