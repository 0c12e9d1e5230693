//! The stream between a primary and its standby, over one TCP connection.
//!
//! ```text
//! hello    = "SAMSARA-STANDBY\0" version:u32          (each side, primary first)
//! primary -> standby: frame*
//! frame    = kind:u8 len:u32 payload[len]
//!   kind 1 DATA      payload = through_seq:u64 trace-bytes
//!   kind 2 HEARTBEAT payload empty
//!   kind 3 END       payload empty: the trace is complete (footer sent)
//!   kind 4 DROP      payload empty: the primary runs on without this
//!                    standby (it fell silent); the standby must not take over
//! standby -> primary: ack*
//! ack      = through_seq:u64   every entry up to it is in the standby's file
//! ```
//! All integers little-endian. The trace bytes are exactly the trace
//! file's: the standby's copy is a trace any `samsara` command reads.

use std::io::{Read, Write};
use std::time::Duration;

/// First 16 bytes each side sends.
pub(crate) const HELLO_MAGIC: &[u8; 16] = b"SAMSARA-STANDBY\0";
/// Protocol version.
pub(crate) const VERSION: u32 = 1;
/// Largest frame payload accepted (a trace block is at most a few hundred
/// MiB in theory; the writer sends whole blocks).
pub(crate) const MAX_FRAME: u32 = 1 << 30;

pub(crate) const KIND_DATA: u8 = 1;
pub(crate) const KIND_HEARTBEAT: u8 = 2;
pub(crate) const KIND_END: u8 = 3;
pub(crate) const KIND_DROP: u8 = 4;

/// The primary sends a heartbeat when it has sent nothing for this long;
/// the standby acknowledges every frame, so both sides hear from the other
/// at least this often.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);
/// Silence after which either side takes the other to be dead.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_millis(500);

/// What went wrong on the stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The other side does not speak this protocol.
    #[error("not a samsara standby stream: {0}")]
    Foreign(String),
}

pub(crate) fn send_hello(w: &mut impl Write) -> std::io::Result<()> {
    let mut hello = [0u8; 20];
    hello[..16].copy_from_slice(HELLO_MAGIC);
    hello[16..].copy_from_slice(&VERSION.to_le_bytes());
    w.write_all(&hello)?;
    w.flush()
}

pub(crate) fn read_hello(r: &mut impl Read) -> Result<(), StreamError> {
    let mut hello = [0u8; 20];
    r.read_exact(&mut hello).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            StreamError::Foreign("the connection closed before the greeting".into())
        } else {
            StreamError::Io(e)
        }
    })?;
    if &hello[..16] != HELLO_MAGIC {
        return Err(StreamError::Foreign(format!(
            "greeting {:?} instead of {:?}",
            String::from_utf8_lossy(&hello[..16]),
            String::from_utf8_lossy(HELLO_MAGIC)
        )));
    }
    let version = u32::from_le_bytes([hello[16], hello[17], hello[18], hello[19]]);
    if version != VERSION {
        return Err(StreamError::Foreign(format!(
            "protocol version {version}, this build speaks {VERSION}"
        )));
    }
    Ok(())
}

/// Writes one frame.
pub(crate) fn write_frame(
    w: &mut impl Write,
    kind: u8,
    through_seq: Option<u64>,
    bytes: &[u8],
) -> std::io::Result<()> {
    let extra = if through_seq.is_some() { 8 } else { 0 };
    let len = u32::try_from(bytes.len() + extra)
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("a frame over the protocol's limit"))?;
    let mut head = Vec::with_capacity(13);
    head.push(kind);
    head.extend_from_slice(&len.to_le_bytes());
    if let Some(seq) = through_seq {
        head.extend_from_slice(&seq.to_le_bytes());
    }
    w.write_all(&head)?;
    w.write_all(bytes)?;
    w.flush()
}

/// A frame as read.
#[derive(Debug)]
pub(crate) enum Frame {
    Data { through_seq: u64, bytes: Vec<u8> },
    Heartbeat,
    End,
    Drop,
}

/// Reads one frame; errors name what was wrong.
pub(crate) fn read_frame(r: &mut impl Read) -> Result<Frame, StreamError> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(StreamError::Foreign(format!(
            "a frame of {len} bytes (at most {MAX_FRAME})"
        )));
    }
    match head[0] {
        KIND_DATA => {
            if len < 8 {
                return Err(StreamError::Foreign(format!("a data frame of {len} bytes")));
            }
            let mut seq = [0u8; 8];
            r.read_exact(&mut seq)?;
            let mut bytes = vec![0u8; (len - 8) as usize];
            r.read_exact(&mut bytes)?;
            Ok(Frame::Data {
                through_seq: u64::from_le_bytes(seq),
                bytes,
            })
        }
        KIND_HEARTBEAT if len == 0 => Ok(Frame::Heartbeat),
        KIND_END if len == 0 => Ok(Frame::End),
        KIND_DROP if len == 0 => Ok(Frame::Drop),
        kind => Err(StreamError::Foreign(format!(
            "frame kind {kind} of {len} bytes"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_as_written() {
        let mut buf = Vec::new();
        send_hello(&mut buf).unwrap();
        write_frame(&mut buf, KIND_DATA, Some(7), b"abc").unwrap();
        write_frame(&mut buf, KIND_HEARTBEAT, None, &[]).unwrap();
        write_frame(&mut buf, KIND_END, None, &[]).unwrap();
        let mut r = &buf[..];
        read_hello(&mut r).unwrap();
        match read_frame(&mut r).unwrap() {
            Frame::Data { through_seq, bytes } => {
                assert_eq!(through_seq, 7);
                assert_eq!(bytes, b"abc");
            }
            _ => panic!("a data frame"),
        }
        assert!(matches!(read_frame(&mut r).unwrap(), Frame::Heartbeat));
        assert!(matches!(read_frame(&mut r).unwrap(), Frame::End));
    }

    #[test]
    fn foreign_streams_are_refused_by_name() {
        let mut r: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let e = read_hello(&mut r).unwrap_err();
        assert!(
            e.to_string().contains("not a samsara standby stream"),
            "{e}"
        );
        let mut r: &[u8] = &[9, 0, 0, 0, 0];
        assert!(
            read_frame(&mut r)
                .unwrap_err()
                .to_string()
                .contains("frame kind 9")
        );
        let mut r: &[u8] = &[1, 0xff, 0xff, 0xff, 0xff];
        assert!(
            read_frame(&mut r)
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }
}
