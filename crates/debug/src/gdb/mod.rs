//! The gdb remote protocol over a timeline (`gdbstub`): one connection at
//! a time, each starting at the recording's start; a command that runs
//! long is interrupted by Ctrl-C (or any byte gdb sends, or its leaving).

pub mod arch;
mod connection;
mod memory;
mod monitor;
mod single_step;
mod target;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use samsara_engine::EngineError;

pub use monitor::HELP as MONITOR_HELP;
pub use target::Debuggee;

use crate::timeline::Timeline;
use connection::GdbConnection;

/// gdb's `g` reply for ~120 registers is larger than gdbstub's default
/// 4 KiB packet buffer.
const PACKET_BUFFER: usize = 0x4000;

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gdb connection: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Replay(#[from] EngineError),
}

/// Serves `timeline` to gdb clients on `listener`, one after another,
/// until `once` is set after a session ends (then returns).
pub fn serve(listener: &TcpListener, timeline: Timeline, once: bool) -> Result<(), ServeError> {
    let mut debuggee = Debuggee::new(timeline);
    loop {
        let (stream, peer) = listener.accept()?;
        stream.set_nodelay(true)?;
        eprintln!("samsara: gdb connected from {peer}");
        match serve_one(&mut debuggee, stream) {
            Ok(reason) => eprintln!("samsara: gdb session ended ({reason})"),
            Err(ServeError::Io(e)) => eprintln!("samsara: gdb session lost: {e}"),
            Err(e) => return Err(e),
        }
        if once {
            return Ok(());
        }
        debuggee.reset()?;
    }
}

fn serve_one(debuggee: &mut Debuggee, stream: TcpStream) -> Result<String, ServeError> {
    let stub = GdbStub::<Debuggee, GdbConnection>::builder(GdbConnection::new(stream))
        .packet_buffer_size(PACKET_BUFFER)
        .build()
        .map_err(|e| io::Error::other(e.to_string()))?;
    match stub.run_blocking::<EventLoop>(debuggee) {
        Ok(DisconnectReason::Disconnect) => Ok("detached".into()),
        Ok(DisconnectReason::Kill) => Ok("killed".into()),
        Ok(other) => Ok(format!("{other:?}")),
        Err(e) if e.is_target_error() => Err(ServeError::Replay(
            e.into_target_error().expect("checked: a target error"),
        )),
        Err(e) => Err(ServeError::Io(io::Error::other(e.to_string()))),
    }
}

enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = Debuggee;
    type Connection = GdbConnection;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut Debuggee,
        conn: &mut GdbConnection,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<EngineError, io::Error>> {
        // The resume command's ack (outside no-ack mode) must not wait for
        // the stop.
        conn.flush().map_err(WaitForStopReasonError::Connection)?;
        // Bytes gdb sent after the resume (Ctrl-C) interrupt it at once.
        target
            .interrupt
            .store(conn.has_buffered_input(), Ordering::Relaxed);
        let watching = Arc::new(AtomicBool::new(true));
        let watcher = watch_for_input(
            conn.stream(),
            Arc::clone(&target.interrupt),
            Arc::clone(&watching),
        )
        .map_err(WaitForStopReasonError::Connection)?;
        let landed = target.run_command();
        watching.store(false, Ordering::Relaxed);
        let _ = watcher.join();
        conn.stream()
            .set_read_timeout(None)
            .map_err(WaitForStopReasonError::Connection)?;
        let landing = landed.map_err(WaitForStopReasonError::Target)?;
        if target.interrupt.load(Ordering::Relaxed) {
            // gdb sent something (Ctrl-C is 0x03) or left: hand it over;
            // gdbstub asks `on_interrupt` for the stop on 0x03.
            target.last = Some(landing);
            return conn
                .read()
                .map(Event::IncomingData)
                .map_err(WaitForStopReasonError::Connection);
        }
        if let Some(note) = target.console_note.take() {
            conn.console(&note)
                .map_err(WaitForStopReasonError::Connection)?;
        }
        target.command = None;
        Ok(Event::TargetStopped(target.stop_reason(&landing)))
    }

    fn on_interrupt(target: &mut Debuggee) -> Result<Option<Self::StopReason>, EngineError> {
        target.command = None;
        let hart = target.last.map_or(target.timeline.focus(), |l| l.hart);
        Ok(Some(MultiThreadStopReason::SignalWithThread {
            tid: target::tid(hart),
            signal: Signal::SIGINT,
        }))
    }
}

/// Raises `interrupt` when a byte from gdb arrives (or it leaves) while
/// a command runs; stops when `watching` is cleared.
fn watch_for_input(
    conn: &TcpStream,
    interrupt: Arc<AtomicBool>,
    watching: Arc<AtomicBool>,
) -> io::Result<thread::JoinHandle<()>> {
    let peer = conn.try_clone()?;
    // The socket's read timeout is shared with `conn`: reset by the caller.
    // Short: the command waits for this thread to notice it is done.
    peer.set_read_timeout(Some(Duration::from_millis(2)))?;
    Ok(thread::spawn(move || {
        let mut byte = [0u8];
        while watching.load(Ordering::Relaxed) {
            match peer.peek(&mut byte) {
                Ok(_) => {
                    interrupt.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    interrupt.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }))
}
