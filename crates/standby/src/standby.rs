//! The standby's end: accept the primary's stream, store and acknowledge
//! it, replay it as it arrives with live devices, and take over when the
//! primary is gone.

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use samsara_engine::EngineError;
use samsara_engine::record::{RecordConfig, RecordOutcome, take_over};
use samsara_engine::replay::{LiveDevices, ReplayConfig, ReplayOutcome, ReplaySession};
use samsara_machine::clock::TakeoverClock;
use samsara_machine::tcp_console::{SwitchedOutput, TcpConsole};

use crate::protocol::{Frame, StreamError, read_frame, read_hello, send_hello};

/// What a standby does.
#[derive(Clone, Debug)]
pub struct StandbyConfig {
    /// Where the primary connects (`HOST:PORT`).
    pub listen: String,
    /// The standby's copy of the trace (and, after a takeover, the trace
    /// it records on into). The files the header names, as for `replay`,
    /// with `replay.files` overriding them.
    pub replay: ReplayConfig,
    /// Silence after which the primary is taken to be dead.
    pub failover_timeout: Duration,
    /// After a takeover: how to record (console, next standby, limits).
    /// Its guest, machine shape and trace come from the stream.
    pub record: RecordConfig,
    /// After a takeover: the console address to serve, if not the
    /// record configuration's console (bound only at takeover, so that
    /// clients never reach the standby while the primary lives).
    pub console_addr: Option<String>,
    /// Connect to this standby after a takeover (the new primary's own).
    pub next_standby: Option<String>,
    /// The disk image the primary started from, if not at the path its
    /// stream names (it must be the very same image); the standby works on
    /// its own copy next to its trace (`TRACE.disk`).
    pub disk: Option<std::path::PathBuf>,
}

/// How a standby ended.
#[derive(Debug)]
pub enum StandbyOutcome {
    /// The primary finished its recording; the replay of all of it
    /// (verified against the footer, see `ReplayOutcome::verified`).
    Followed(Box<ReplayOutcome>, Lag),
    /// The primary died; the standby took over and recorded on.
    TookOver(Box<Takeover>, Lag),
}

/// How far the replay trailed the stream, sampled every
/// [`LAG_SAMPLE`] while it ran: entries received and not yet replayed,
/// and how long the oldest of them had been waiting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lag {
    /// Samples taken.
    pub samples: u64,
    /// Mean entries behind.
    pub mean_entries: f64,
    /// Largest entries behind.
    pub max_entries: u64,
    /// Mean wait of the oldest unreplayed entry, milliseconds.
    pub mean_ms: f64,
    /// Largest such wait, milliseconds.
    pub max_ms: f64,
}

impl std::fmt::Display for Lag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "standby lag: mean {:.1} entries / {:.2} ms, max {} entries / {:.1} ms ({} samples)",
            self.mean_entries, self.mean_ms, self.max_entries, self.max_ms, self.samples
        )
    }
}

/// How often the lag is sampled.
pub const LAG_SAMPLE: Duration = Duration::from_millis(5);

/// A takeover's story.
#[derive(Debug)]
pub struct Takeover {
    /// Why the primary was taken to be dead.
    pub why: String,
    /// Entries the primary's stream held whole (replayed before going live).
    pub entries_received: u64,
    /// From noticing the primary's death to recording live.
    pub switch: Duration,
    /// The recording the standby made after taking over.
    pub record: RecordOutcome,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum StandbyError {
    /// Setting up or using the sockets.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Replay or recording.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The primary's stream.
    #[error("{0}")]
    Stream(#[from] StreamError),
    /// Stopped (Ctrl-C) before a primary connected.
    #[error("stopped before a primary connected")]
    Stopped,
    /// The primary gave this standby up (it had fallen silent) and runs
    /// on: taking over would make two live machines.
    #[error(
        "the primary dropped this standby (it heard no acknowledgement in time) and runs on alone: not taking over"
    )]
    Dropped,
}

/// Serves as a hot standby until the primary's recording ends (then the
/// replay's outcome) or the primary dies (then the takeover's).
pub fn run_standby(
    config: &StandbyConfig,
    stop: &Arc<AtomicBool>,
) -> Result<StandbyOutcome, StandbyError> {
    let listener = TcpListener::bind(&config.listen).map_err(|e| {
        std::io::Error::new(e.kind(), format!("listening on {}: {e}", config.listen))
    })?;
    eprintln!(
        "samsara standby: waiting for a primary on {}",
        listener.local_addr()?
    );
    let stream = accept_primary(&listener, config.failover_timeout, stop)?;
    drop(listener);
    let trace = &config.replay.trace;
    let file = File::create(trace)
        .map_err(|e| std::io::Error::new(e.kind(), format!("creating {}: {e}", trace.display())))?;
    let receiver = Arc::new(Receiver {
        gone: Arc::new(AtomicBool::new(false)),
        why: Mutex::new(None),
        finished: AtomicBool::new(false),
        dropped: AtomicBool::new(false),
        through: AtomicU64::new(0),
        gone_at: Mutex::new(None),
        arrivals: Mutex::new(std::collections::VecDeque::new()),
    });
    let control = stream.try_clone()?;
    let rx = receiver.clone();
    let timeout = config.failover_timeout;
    std::thread::Builder::new()
        .name("standby-receive".into())
        .spawn(move || rx.receive(stream, file, timeout))?;

    let live = LiveDevices {
        clock: Arc::new(TakeoverClock::new()),
        console: SwitchedOutput::new(Box::new(std::io::sink())),
        disk: config.disk.clone(),
    };
    let result = follow(config, &receiver, stop, &live);
    // Whatever happened, the primary must hear that this standby is done
    // with its stream (it then runs on without one).
    let _ = control.shutdown(std::net::Shutdown::Both);
    let (session, lag) = match result? {
        (Followed::Finished(outcome), lag) => return Ok(StandbyOutcome::Followed(outcome, lag)),
        (Followed::Orphaned(session), lag) => (session, lag),
    };
    if receiver.dropped.load(Ordering::Acquire) {
        return Err(StandbyError::Dropped);
    }
    let why = receiver
        .why
        .lock()
        .clone()
        .unwrap_or_else(|| "the stream ended".into());
    let noticed = receiver.gone_at.lock().unwrap_or_else(Instant::now);
    let entries_received = session.position().seq - 1;
    let takeover = (*session).into_takeover()?;
    let mut record = config.record.clone();
    if let Some(addr) = &config.console_addr {
        record.console = listen_console(addr);
        record.echo |= record.console.is_none();
    }
    if let Some(next) = &config.next_standby {
        // The guest goes on whether or not its next standby is there.
        match crate::StandbyClient::connect(next, config.failover_timeout) {
            Ok(client) => record.standby = Some(Arc::new(client)),
            Err(e) => eprintln!("samsara standby: going live without a next standby: {e}"),
        }
    }
    eprintln!(
        "samsara standby: the primary is gone ({why}); replayed its {entries_received} entries, going live{}",
        record
            .console
            .as_ref()
            .and_then(TcpConsole::local_addr)
            .map(|a| format!(", console on {a}"))
            .unwrap_or_default()
    );
    let switch = noticed.elapsed();
    let record = take_over(takeover, &live, &record, stop)?;
    Ok(StandbyOutcome::TookOver(
        Box::new(Takeover {
            why,
            entries_received,
            switch,
            record,
        }),
        lag,
    ))
}

/// The console's address, once the dead primary's process has let go of
/// it (on one host the two share it).
fn listen_console(addr: &str) -> Option<TcpConsole> {
    let start = Instant::now();
    loop {
        match TcpConsole::listen(addr) {
            Ok(console) => return Some(console),
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                eprintln!("samsara standby: {e}; going live with the console on stdout");
                return None;
            }
        }
    }
}

enum Followed {
    Finished(Box<ReplayOutcome>),
    Orphaned(Box<ReplaySession>),
}

/// Replays the stream as it arrives, until it ends.
fn follow(
    config: &StandbyConfig,
    receiver: &Receiver,
    stop: &Arc<AtomicBool>,
    live: &LiveDevices,
) -> Result<(Followed, Lag), StandbyError> {
    let start = Instant::now();
    let mut session =
        ReplaySession::open_standby(&config.replay, receiver.gone.clone(), stop.clone(), live)?;
    let progress = session.progress();
    let replaying = AtomicBool::new(true);
    let (ran, lag) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut lag = Lag::default();
            let (mut sum_entries, mut sum_ms) = (0.0, 0.0);
            while replaying.load(Ordering::Relaxed) {
                std::thread::sleep(LAG_SAMPLE);
                let (behind, waited) = receiver.behind(progress.entries());
                lag.samples += 1;
                sum_entries += behind as f64;
                sum_ms += waited;
                lag.max_entries = lag.max_entries.max(behind);
                lag.max_ms = lag.max_ms.max(waited);
            }
            if lag.samples > 0 {
                lag.mean_entries = sum_entries / lag.samples as f64;
                lag.mean_ms = sum_ms / lag.samples as f64;
            }
            lag
        });
        let ran = session.run_parallel(stop);
        replaying.store(false, Ordering::Relaxed);
        (ran, sampler.join().unwrap_or_default())
    });
    ran?;
    if stop.load(Ordering::Relaxed) {
        return Err(StandbyError::Stopped);
    }
    if session.footer().is_some() || receiver.finished.load(Ordering::Acquire) {
        let outcome = session.outcome(start.elapsed());
        return Ok((Followed::Finished(Box::new(outcome)), lag));
    }
    Ok((Followed::Orphaned(Box::new(session)), lag))
}

/// Waits for a primary, refusing (and reporting) connections that do not
/// speak the protocol.
fn accept_primary(
    listener: &TcpListener,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<TcpStream, StandbyError> {
    listener.set_nonblocking(true)?;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(StandbyError::Stopped);
        }
        let (mut stream, peer) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.set_nodelay(true)?;
        match read_hello(&mut stream) {
            Ok(()) => {
                send_hello(&mut stream)?;
                stream.set_read_timeout(Some(timeout))?;
                eprintln!("samsara standby: primary connected from {peer}");
                return Ok(stream);
            }
            Err(e) => eprintln!("samsara standby: refused a connection from {peer}: {e}"),
        }
    }
}

/// The receiving thread's findings.
struct Receiver {
    /// Raised when the stream has ended, one way or the other.
    gone: Arc<AtomicBool>,
    /// Why it ended, if not by the primary's word.
    why: Mutex<Option<String>>,
    /// The primary said the trace is complete.
    finished: AtomicBool,
    /// The primary dropped this standby and runs on: no takeover.
    dropped: AtomicBool,
    /// The last entry acknowledged.
    through: AtomicU64,
    /// When the end was noticed.
    gone_at: Mutex<Option<Instant>>,
    /// Data frames not yet replayed past: (last entry, when it arrived).
    arrivals: Mutex<std::collections::VecDeque<(u64, Instant)>>,
}

impl Receiver {
    /// Appends every data frame to `file` and acknowledges it, until the
    /// stream ends, breaks or falls silent for `timeout`.
    fn receive(&self, mut stream: TcpStream, mut file: File, timeout: Duration) {
        let mut ack_to = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => return self.end(Some(e.to_string())),
        };
        // A primary that stops reading acknowledgements is as good as dead.
        let _ = ack_to.set_write_timeout(Some(timeout));
        let mut ack = |seq: u64| ack_to.write_all(&seq.to_le_bytes());
        loop {
            match read_frame(&mut stream) {
                Ok(Frame::Data { through_seq, bytes }) => {
                    if let Err(e) = file.write_all(&bytes) {
                        return self.end(Some(format!("storing the stream failed: {e}")));
                    }
                    // Acknowledged once in the file: the replay will run it.
                    let through = self.through.fetch_max(through_seq, Ordering::AcqRel);
                    if through_seq > through {
                        self.arrivals
                            .lock()
                            .push_back((through_seq, Instant::now()));
                    }
                    if ack(through.max(through_seq)).is_err() {
                        return self.end(Some("the primary stopped reading".into()));
                    }
                }
                Ok(Frame::Heartbeat) => {
                    if ack(self.through.load(Ordering::Acquire)).is_err() {
                        return self.end(Some("the primary stopped reading".into()));
                    }
                }
                Ok(Frame::End) => {
                    self.finished.store(true, Ordering::Release);
                    return self.end(None);
                }
                Ok(Frame::Drop) => {
                    self.dropped.store(true, Ordering::Release);
                    return self.end(Some("the primary runs on without this standby".into()));
                }
                Err(StreamError::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return self.end(Some(format!("no heartbeat for {} ms", timeout.as_millis())));
                }
                Err(StreamError::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return self.end(Some("the stream broke".into()));
                }
                Err(e) => return self.end(Some(format!("the stream failed: {e}"))),
            }
        }
    }

    /// Entries received beyond `replayed`, and how long (ms) the oldest
    /// of them has been waiting.
    fn behind(&self, replayed: u64) -> (u64, f64) {
        let mut arrivals = self.arrivals.lock();
        // Frames wholly replayed are forgotten; the first left holds the
        // oldest entry still waiting.
        while arrivals
            .front()
            .is_some_and(|&(through, _)| through <= replayed)
        {
            arrivals.pop_front();
        }
        let received = self.through.load(Ordering::Acquire);
        let waited = arrivals
            .front()
            .map_or(0.0, |(_, at)| at.elapsed().as_secs_f64() * 1e3);
        (received.saturating_sub(replayed), waited)
    }

    fn end(&self, why: Option<String>) {
        *self.gone_at.lock() = Some(Instant::now());
        *self.why.lock() = why;
        self.gone.store(true, Ordering::Release);
    }
}
