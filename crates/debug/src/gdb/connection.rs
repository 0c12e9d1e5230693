//! A buffered gdb connection. gdbstub's own `TcpStream` connection writes
//! each byte of a reply with its own `send` (with `TCP_NODELAY`, its own
//! segment) and reads byte by byte with an `ioctl` before each read: a
//! `g` reply of ~120 registers cost thousands of system calls, and a gdb
//! `stepi` (six packets) several milliseconds. Here replies are sent
//! whole when gdbstub flushes them, and reads fill a buffer.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use gdbstub::conn::{Connection, ConnectionExt};

const READ_CHUNK: usize = 4096;

pub struct GdbConnection {
    stream: TcpStream,
    outgoing: Vec<u8>,
    incoming: Vec<u8>,
    /// How much of `incoming` has been consumed.
    consumed: usize,
}

impl GdbConnection {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            outgoing: Vec::with_capacity(READ_CHUNK),
            incoming: Vec::with_capacity(READ_CHUNK),
            consumed: 0,
        }
    }

    /// The socket itself (for a watcher that peeks at it while a command
    /// runs).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Whether gdb's bytes are already buffered here, unread.
    pub fn has_buffered_input(&self) -> bool {
        self.consumed < self.incoming.len()
    }

    /// Reads whatever the socket has (blocking unless `nonblocking`) into
    /// the buffer; `Ok(false)` when nothing was there to read.
    fn fill(&mut self, nonblocking: bool) -> io::Result<bool> {
        self.stream.set_nonblocking(nonblocking)?;
        self.incoming.clear();
        self.consumed = 0;
        self.incoming.resize(READ_CHUNK, 0);
        let result = loop {
            match Read::read(&mut self.stream, &mut self.incoming) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        if nonblocking {
            self.stream.set_nonblocking(false)?;
        }
        match result {
            Ok(0) => {
                self.incoming.clear();
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "gdb closed the connection",
                ))
            }
            Ok(n) => {
                self.incoming.truncate(n);
                Ok(true)
            }
            Err(e) if nonblocking && e.kind() == io::ErrorKind::WouldBlock => {
                self.incoming.clear();
                Ok(false)
            }
            Err(e) => {
                self.incoming.clear();
                Err(e)
            }
        }
    }
}

impl GdbConnection {
    /// Sends `text` to gdb's console (an `O` packet), as a stub may while
    /// the target runs.
    pub fn console(&mut self, text: &str) -> io::Result<()> {
        let body = format!("O{}", hex::encode(text));
        let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
        self.write_all(format!("${body}#{sum:02x}").as_bytes())?;
        self.flush()
    }
}

impl Connection for GdbConnection {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.outgoing.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.outgoing.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.outgoing.is_empty() {
            Write::write_all(&mut self.stream, &self.outgoing)?;
            self.outgoing.clear();
        }
        Ok(())
    }

    fn on_session_start(&mut self) -> io::Result<()> {
        // Replies leave whole on flush: no reason to wait for more.
        self.stream.set_nodelay(true)
    }
}

impl ConnectionExt for GdbConnection {
    fn read(&mut self) -> io::Result<u8> {
        // A reply still buffered must reach gdb before waiting on it.
        self.flush()?;
        if !self.has_buffered_input() {
            self.fill(false)?;
        }
        let byte = self.incoming[self.consumed];
        self.consumed += 1;
        Ok(byte)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        if !self.has_buffered_input() && !self.fill(true)? {
            return Ok(None);
        }
        Ok(Some(self.incoming[self.consumed]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (GdbConnection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (GdbConnection::new(server), client)
    }

    #[test]
    fn replies_leave_on_flush_and_reads_come_in_order() {
        let (mut conn, mut client) = pair();
        conn.write_all(b"$OK#9a").unwrap();
        conn.write(b'+').unwrap();
        conn.flush().unwrap();
        let mut got = [0u8; 7];
        Read::read_exact(&mut client, &mut got).unwrap();
        assert_eq!(&got, b"$OK#9a+");

        assert_eq!(conn.peek().unwrap(), None);
        Write::write_all(&mut client, b"$g#67").unwrap();
        let read: Vec<u8> = (0..5).map(|_| conn.read().unwrap()).collect();
        assert_eq!(read, b"$g#67");
        assert!(!conn.has_buffered_input());
    }

    #[test]
    fn a_closed_peer_is_an_error_not_a_hang() {
        let (mut conn, client) = pair();
        drop(client);
        assert!(conn.read().is_err());
    }
}
