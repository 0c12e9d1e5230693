//! The interactive console of `samsara run`: the host terminal in raw mode
//! feeds the UART, as QEMU's `-nographic` does. Ctrl-A X leaves (QEMU's
//! escape), Ctrl-A H lists the commands, Ctrl-A Ctrl-A sends a Ctrl-A;
//! every other byte, Ctrl-C included, goes to the guest.
//!
//! And the console's watcher: the output sink that notices a Linux kernel
//! panic, so a run can stop and say so instead of hanging.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::devices::uart::{SerialOutput, Uart};

/// The escape byte: Ctrl-A.
const ESCAPE: u8 = 0x01;

/// The terminal on stdin in raw mode for as long as this lives; its
/// previous settings come back on drop.
pub struct RawTerminal {
    saved: libc::termios,
}

impl RawTerminal {
    /// Put stdin's terminal in raw mode (QEMU's stdio settings: no echo, no
    /// line editing, no signals, output processing kept so `\n` still
    /// returns the carriage). `None` when stdin is not a terminal.
    pub fn enter() -> Option<Self> {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) } != 1 {
            return None;
        }
        // SAFETY: termios is plain old data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a valid pointer.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        raw.c_iflag &= !(libc::IGNBRK
            | libc::BRKINT
            | libc::PARMRK
            | libc::ISTRIP
            | libc::INLCR
            | libc::IGNCR
            | libc::ICRNL
            | libc::IXON);
        raw.c_oflag |= libc::OPOST;
        raw.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::IEXTEN | libc::ISIG);
        raw.c_cflag &= !(libc::CSIZE | libc::PARENB);
        raw.c_cflag |= libc::CS8;
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: a valid descriptor and a valid termios.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter`.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}

/// What the escape decoder wants done with one input byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// Send this byte to the guest.
    Guest(u8),
    /// Nothing (the escape byte itself, or an unknown escape command).
    Nothing,
    /// Ctrl-A X: leave.
    Quit,
    /// Ctrl-A H: list the escape commands.
    Help,
}

/// What Ctrl-A H prints (raw terminal: explicit carriage returns).
const HELP: &str = "\r\nsamsara console: C-a h  this help\r\n                 C-a x  exit samsara\r\n                 C-a C-a  send C-a to the guest\r\n";

/// QEMU's mux escape: Ctrl-A then X quits, Ctrl-A Ctrl-A sends Ctrl-A.
#[derive(Default)]
struct EscapeDecoder {
    pending: bool,
}

impl EscapeDecoder {
    fn feed(&mut self, byte: u8) -> Key {
        if std::mem::take(&mut self.pending) {
            return match byte {
                b'x' | b'X' => Key::Quit,
                b'h' | b'H' | b'?' => Key::Help,
                ESCAPE => Key::Guest(ESCAPE),
                _ => Key::Nothing,
            };
        }
        if byte == ESCAPE {
            self.pending = true;
            Key::Nothing
        } else {
            Key::Guest(byte)
        }
    }
}

/// Feed stdin to the UART from a background thread, decoding Ctrl-A X
/// (which raises `quit`). Ends at EOF; a blocked read does not keep the
/// process alive.
pub fn spawn_interactive_feeder(uart: Arc<Uart>, quit: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            let mut decoder = EscapeDecoder::default();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut bytes = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    match decoder.feed(b) {
                        Key::Guest(b) => bytes.push(b),
                        Key::Nothing => {}
                        Key::Help => {
                            let mut err = std::io::stderr();
                            let _ = err.write_all(HELP.as_bytes());
                            let _ = err.flush();
                        }
                        Key::Quit => {
                            quit.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let taken = uart.push_input(rest);
                    rest = &rest[taken..];
                    if taken == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        });
}

/// The start of the line Linux prints when it panics.
const PANIC_MARK: &[u8] = b"Kernel panic - not syncing";
/// The line that ends a Linux panic report.
const PANIC_END_MARK: &[u8] = b"---[ end Kernel panic";
/// Longest line kept for the report.
const MAX_LINE: usize = 512;

/// What the watcher saw.
#[derive(Default, Debug)]
pub struct PanicWatch {
    line: Mutex<Option<String>>,
    seen: AtomicBool,
    ended: AtomicBool,
}

impl PanicWatch {
    /// Whether a kernel panic line has been printed.
    pub fn seen(&self) -> bool {
        self.seen.load(Ordering::Relaxed)
    }

    /// Whether the panic report is complete (its end line was printed).
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// The panic line (from "Kernel panic" on), once seen.
    pub fn line(&self) -> Option<String> {
        self.line.lock().clone()
    }
}

/// A console sink that passes everything on to `inner` and watches the
/// lines for a Linux kernel panic.
pub struct WatchedOutput {
    inner: SerialOutput,
    current: Vec<u8>,
    watch: Arc<PanicWatch>,
}

impl WatchedOutput {
    /// Wrap `inner`; the findings go to the returned [`PanicWatch`].
    pub fn new(inner: SerialOutput) -> (Self, Arc<PanicWatch>) {
        let watch = Arc::new(PanicWatch::default());
        (
            Self {
                inner,
                current: Vec::new(),
                watch: watch.clone(),
            },
            watch,
        )
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.current);
        if let Some(at) = find(&line, PANIC_MARK) {
            if !self.watch.seen() {
                let text = String::from_utf8_lossy(&line[at..]).trim_end().to_owned();
                *self.watch.line.lock() = Some(text);
                self.watch.seen.store(true, Ordering::Relaxed);
            }
            if find(&line, PANIC_END_MARK).is_some() {
                self.watch.ended.store(true, Ordering::Relaxed);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Write for WatchedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                self.end_line();
            } else if self.current.len() < MAX_LINE {
                self.current.push(b);
            }
        }
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::uart::SharedOutput;

    #[test]
    fn escape_sequences_as_qemu() {
        let mut d = EscapeDecoder::default();
        assert_eq!(d.feed(b'a'), Key::Guest(b'a'));
        assert_eq!(d.feed(3), Key::Guest(3), "Ctrl-C goes to the guest");
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(ESCAPE), Key::Guest(ESCAPE));
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(b'h'), Key::Help);
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(b'z'), Key::Nothing);
        assert_eq!(d.feed(b'x'), Key::Guest(b'x'));
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(b'x'), Key::Quit);
    }

    #[test]
    fn the_watcher_finds_a_panic_and_passes_output_on() {
        let out = SharedOutput::new();
        let (mut w, watch) = WatchedOutput::new(Box::new(out.clone()));
        w.write_all(b"[ 1.0] Run /init as init process\r\n")
            .unwrap();
        assert!(!watch.seen());
        w.write_all(b"[ 1.2] Kernel panic - not syncing: No working init found.\r\n")
            .unwrap();
        assert!(watch.seen() && !watch.ended());
        assert_eq!(
            watch.line().unwrap(),
            "Kernel panic - not syncing: No working init found."
        );
        w.write_all(b"[ 1.3] ---[ end Kernel panic - not syncing: No working init found. ]---\r\n")
            .unwrap();
        assert!(watch.ended());
        assert!(out.contents().starts_with(b"[ 1.0] Run /init"));
    }
}
