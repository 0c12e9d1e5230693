//! What a machine boots — a bare-metal image, or firmware, Linux kernel,
//! initrd and command line — as named on the command line, shared by the
//! `run` mode and the recorder (which also describes the files in its trace
//! header; see `samsara_engine::guest`).

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::machine::LinuxBoot;

/// A file of the guest (image, firmware, kernel, initrd) could not be read.
#[derive(Debug, Error)]
#[error("cannot read {what} {path}")]
pub struct GuestFileError {
    /// Which file: "guest image", "firmware", "kernel", "initrd".
    pub what: &'static str,
    /// The path.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Where scripts/setup-linux.sh put the bundled Linux files (firmware,
/// kernel, initrd): $SAMSARA_LINUX_DIR, else linux/build under the current
/// directory, else under the source tree samsara was built from. Absolute,
/// so that a trace names files replay finds from anywhere.
pub fn bundled_linux_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SAMSARA_LINUX_DIR") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("linux/build");
    let dir = if local.is_dir() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../linux/build"))
    };
    dir.canonicalize().unwrap_or(dir)
}

/// Reads the guest file `path`; `what` names it in the error.
pub fn read_guest_file(what: &'static str, path: &Path) -> Result<Vec<u8>, GuestFileError> {
    std::fs::read(path).map_err(|source| GuestFileError {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// The files of a Linux boot (see [`LinuxBoot`]).
#[derive(Clone, Debug)]
pub struct LinuxFiles {
    /// Firmware entered in M-mode at reset (OpenSBI `fw_dynamic`).
    pub firmware: PathBuf,
    /// The kernel Image.
    pub kernel: PathBuf,
    /// The initial RAM disk.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub bootargs: Option<String>,
}

impl LinuxFiles {
    /// Read the files.
    pub fn load(&self) -> Result<LinuxBoot, GuestFileError> {
        Ok(LinuxBoot {
            firmware: read_guest_file("firmware", &self.firmware)?,
            kernel: read_guest_file("kernel", &self.kernel)?,
            kernel_name: self.kernel.display().to_string(),
            initrd: self
                .initrd
                .as_deref()
                .map(|p| read_guest_file("initrd", p))
                .transpose()?,
            bootargs: self.bootargs.clone(),
        })
    }
}

/// What the machine boots.
#[derive(Clone, Debug)]
pub enum Guest {
    /// A bare-metal image (RV64 ELF or raw binary) entered at reset.
    Image(PathBuf),
    /// Firmware that starts a Linux kernel.
    Linux(LinuxFiles),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let files = LinuxFiles {
            firmware: PathBuf::from("/nonexistent/fw.bin"),
            kernel: PathBuf::from("/nonexistent/Image"),
            initrd: None,
            bootargs: None,
        };
        let e = files.load().unwrap_err();
        assert_eq!(e.what, "firmware");
        assert_eq!(e.to_string(), "cannot read firmware /nonexistent/fw.bin");
        // The cause stays an io::Error, the error's source.
        let source = std::error::Error::source(&e).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
