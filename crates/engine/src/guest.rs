//! What a recording boots — [`Guest`] and [`LinuxFiles`], re-exported from
//! `samsara_machine::guest` (the `run` mode uses them too) — and how replay
//! finds the same files again: the trace header names every file with its
//! size and BLAKE3, replay reloads them (from the recorded paths or the
//! caller's overrides) and refuses any that differs, naming it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use samsara_machine::board::BoardConfig;
use samsara_machine::clock::Clock;
use samsara_machine::devices::uart::SerialOutput;
use samsara_machine::devices::virtio::block::CompletionSink;
use samsara_machine::machine::{LinuxBoot, Machine};
use samsara_trace::{TraceFile, TraceHeader};

pub use samsara_machine::guest::{Guest, LinuxFiles};

use crate::digest::blake3_hex;
use crate::{EngineError, FileMismatch};

/// A guest's files, read into memory.
pub(crate) enum LoadedGuest {
    Image(Vec<u8>),
    Linux(LinuxBoot),
}

/// Which file of the trace header a replay override replaces.
#[derive(Clone, Debug, Default)]
pub struct FileOverrides {
    /// The image entered at reset: the guest, or a Linux boot's firmware.
    pub image: Option<PathBuf>,
    /// The kernel Image.
    pub kernel: Option<PathBuf>,
    /// The initrd.
    pub initrd: Option<PathBuf>,
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, EngineError> {
    Ok(samsara_machine::guest::read_guest_file(what, path)?)
}

fn describe(path: &Path, bytes: &[u8]) -> TraceFile {
    TraceFile {
        path: path.display().to_string(),
        len: bytes.len() as u64,
        blake3: blake3_hex(bytes),
    }
}

impl LoadedGuest {
    /// Read `guest`'s files and describe them in `header` (image, kernel,
    /// initrd, command line).
    pub(crate) fn from_guest(
        guest: &Guest,
        header: &mut TraceHeader,
    ) -> Result<LoadedGuest, EngineError> {
        let (reset_path, loaded) = match guest {
            Guest::Image(path) => (path, LoadedGuest::Image(read("guest image", path)?)),
            Guest::Linux(files) => {
                let boot = files.load()?;
                header.kernel = Some(describe(&files.kernel, &boot.kernel));
                header.initrd = files
                    .initrd
                    .as_deref()
                    .zip(boot.initrd.as_deref())
                    .map(|(p, b)| describe(p, b));
                header.bootargs = boot.bootargs.clone();
                (&files.firmware, LoadedGuest::Linux(boot))
            }
        };
        let reset = describe(reset_path, loaded.reset_image());
        header.image_path = reset.path;
        header.image_len = reset.len;
        header.image_blake3 = reset.blake3;
        Ok(loaded)
    }
}

/// Reads a file the trace names (or its override) and checks it is the
/// one recorded.
fn reload(
    what: &'static str,
    recorded: &TraceFile,
    given: Option<&Path>,
) -> Result<Vec<u8>, EngineError> {
    let path = given.map_or_else(|| PathBuf::from(&recorded.path), Path::to_path_buf);
    let bytes = read(what, &path)?;
    let found = blake3_hex(&bytes);
    if found != recorded.blake3 {
        return Err(EngineError::ImageMismatch(Box::new(FileMismatch {
            what,
            path: path.display().to_string(),
            recorded_path: recorded.path.clone(),
            recorded: recorded.blake3.clone(),
            recorded_len: recorded.len,
            found,
            found_len: bytes.len() as u64,
        })));
    }
    Ok(bytes)
}

impl LoadedGuest {
    /// The files `header` names, from their recorded paths or `overrides`,
    /// each checked against its recorded BLAKE3.
    pub(crate) fn from_header(
        header: &TraceHeader,
        overrides: &FileOverrides,
    ) -> Result<Self, EngineError> {
        let reset = TraceFile {
            path: header.image_path.clone(),
            len: header.image_len,
            blake3: header.image_blake3.clone(),
        };
        let Some(kernel) = &header.kernel else {
            if overrides.kernel.is_some() || overrides.initrd.is_some() {
                return Err(EngineError::Options(format!(
                    "--kernel and --initrd apply to Linux traces; this trace records the bare-metal guest {}",
                    header.image_path
                )));
            }
            let image = reload("guest image", &reset, overrides.image.as_deref())?;
            return Ok(LoadedGuest::Image(image));
        };
        let firmware = reload("firmware", &reset, overrides.image.as_deref())?;
        let kernel_bytes = reload("kernel", kernel, overrides.kernel.as_deref())?;
        let initrd = match &header.initrd {
            Some(initrd) => Some(reload("initrd", initrd, overrides.initrd.as_deref())?),
            None => None,
        };
        Ok(LoadedGuest::Linux(LinuxBoot {
            firmware,
            kernel: kernel_bytes,
            kernel_name: kernel.path.clone(),
            initrd,
            bootargs: header.bootargs.clone(),
        }))
    }

    /// The bytes the harts enter at reset.
    fn reset_image(&self) -> &[u8] {
        match self {
            LoadedGuest::Image(bytes) => bytes,
            LoadedGuest::Linux(boot) => &boot.firmware,
        }
    }

    /// Build the machine at its reset state.
    pub(crate) fn build(
        &self,
        config: &BoardConfig,
        clock: Arc<dyn Clock>,
        console: SerialOutput,
        sink: Option<Arc<dyn CompletionSink>>,
    ) -> Result<Machine, EngineError> {
        Ok(match self {
            LoadedGuest::Image(bytes) => {
                Machine::with_completion_sink(config, bytes, clock, console, sink)?
            }
            LoadedGuest::Linux(boot) => Machine::boot_linux(config, boot, clock, console, sink)?.0,
        })
    }
}
