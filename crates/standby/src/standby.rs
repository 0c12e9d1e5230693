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
    Followed(Box<ReplayOutcome>),
    /// The primary died; the standby took over and recorded on.
    TookOver(Box<Takeover>),
}

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
        through: AtomicU64::new(0),
        gone_at: Mutex::new(None),
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
    let session = match result? {
        Followed::Finished(outcome) => return Ok(StandbyOutcome::Followed(outcome)),
        Followed::Orphaned(session) => session,
    };
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
        record.console = Some(TcpConsole::listen(addr)?);
    }
    if let Some(next) = &config.next_standby {
        let client = crate::StandbyClient::connect(next, config.failover_timeout)?;
        record.standby = Some(Arc::new(client));
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
    Ok(StandbyOutcome::TookOver(Box::new(Takeover {
        why,
        entries_received,
        switch,
        record,
    })))
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
) -> Result<Followed, StandbyError> {
    let start = Instant::now();
    let mut session =
        ReplaySession::open_standby(&config.replay, receiver.gone.clone(), stop.clone(), live)?;
    session.run_parallel(stop)?;
    if stop.load(Ordering::Relaxed) {
        return Err(StandbyError::Stopped);
    }
    if session.footer().is_some() || receiver.finished.load(Ordering::Acquire) {
        return Ok(Followed::Finished(Box::new(
            session.outcome(start.elapsed()),
        )));
    }
    Ok(Followed::Orphaned(Box::new(session)))
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
        stream.set_read_timeout(Some(timeout.max(Duration::from_secs(2))))?;
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
    /// The last entry acknowledged.
    through: AtomicU64,
    /// When the end was noticed.
    gone_at: Mutex<Option<Instant>>,
}

impl Receiver {
    /// Appends every data frame to `file` and acknowledges it, until the
    /// stream ends, breaks or falls silent for `timeout`.
    fn receive(&self, mut stream: TcpStream, mut file: File, timeout: Duration) {
        let mut ack_to = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => return self.end(Some(e.to_string())),
        };
        let mut ack = |seq: u64| ack_to.write_all(&seq.to_le_bytes());
        loop {
            match read_frame(&mut stream) {
                Ok(Frame::Data { through_seq, bytes }) => {
                    if let Err(e) = file.write_all(&bytes) {
                        return self.end(Some(format!("storing the stream failed: {e}")));
                    }
                    // Acknowledged once in the file: the replay will run it.
                    let through = self.through.fetch_max(through_seq, Ordering::AcqRel);
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

    fn end(&self, why: Option<String>) {
        *self.gone_at.lock() = Some(Instant::now());
        *self.why.lock() = why;
        self.gone.store(true, Ordering::Release);
    }
}
