//! The console as a TCP socket (`--serial tcp:HOST:PORT`): a client program
//! talks to a service in the guest. One client at a time: its bytes are the
//! UART's input, the UART's output goes to it. Output while no client is
//! connected is dropped, as on a serial line nobody listens to (and as
//! QEMU's `-serial tcp:...,server,nowait`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::devices::uart::{SerialOutput, Uart};

/// How long an output write may wait for a client that does not read.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// A listening console.
#[derive(Clone)]
pub struct TcpConsole {
    listener: Arc<TcpListener>,
    client: Arc<Mutex<Option<TcpStream>>>,
}

impl std::fmt::Debug for TcpConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConsole")
            .field("addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl TcpConsole {
    /// Listens on `addr` (`HOST:PORT`). Nothing is accepted before
    /// [`TcpConsole::serve`].
    pub fn listen(addr: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("listening for the console on {addr}: {e}"),
            )
        })?;
        Ok(Self {
            listener: Arc::new(listener),
            client: Arc::new(Mutex::new(None)),
        })
    }

    /// The address it listens on (the port, when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The UART's output sink: bytes go to the connected client.
    pub fn output(&self) -> SerialOutput {
        Box::new(ClientOutput {
            client: self.client.clone(),
        })
    }

    /// Accepts clients, one at a time, feeding what each sends to `uart`
    /// (a new client replaces the previous one).
    pub fn serve(&self, uart: Arc<Uart>) {
        let listener = self.listener.clone();
        let client = self.client.clone();
        let _ = std::thread::Builder::new()
            .name("tcp-console".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let _ = stream.set_nodelay(true);
                    // A client that stops reading is dropped, not waited
                    // for: the guest's output must never stall the machine.
                    let _ = stream.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
                    let Ok(reader) = stream.try_clone() else {
                        continue;
                    };
                    *client.lock() = Some(stream);
                    let uart = uart.clone();
                    let _ = std::thread::Builder::new()
                        .name("tcp-console-in".into())
                        .spawn(move || feed(reader, &uart));
                }
            });
    }
}

/// Copies a client's bytes into the UART's receive queue until the client
/// goes.
fn feed(mut from: TcpStream, uart: &Uart) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        uart.push_input_all(&buf[..n]);
    }
}

struct ClientOutput {
    client: Arc<Mutex<Option<TcpStream>>>,
}

impl Write for ClientOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut client = self.client.lock();
        if let Some(stream) = client.as_mut()
            && stream.write_all(buf).is_err()
        {
            // Gone: the next client takes its place.
            *client = None;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A console sink whose destination can be replaced while the machine
/// runs: a standby's UART writes nowhere while it replays (the primary
/// already spoke) and to its own console once it goes live.
#[derive(Clone)]
pub struct SwitchedOutput(Arc<Mutex<SerialOutput>>);

impl std::fmt::Debug for SwitchedOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SwitchedOutput")
    }
}

impl SwitchedOutput {
    /// Writing to `inner` for now.
    pub fn new(inner: SerialOutput) -> Self {
        Self(Arc::new(Mutex::new(inner)))
    }

    /// From now on, writing to `inner`.
    pub fn switch(&self, inner: SerialOutput) {
        *self.0.lock() = inner;
    }
}

impl Write for SwitchedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().flush()
    }
}
