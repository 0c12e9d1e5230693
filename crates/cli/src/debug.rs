//! `samsara replay --gdb` and `samsara debug`: a recording served to gdb.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;

use anyhow::{Context, Result, bail};
use clap::Args;
use samsara_debug::gdb::serve;
use samsara_debug::{Timeline, TimelineOptions};

use crate::rr::{ReplayArgs, TraceFiles};

/// How the debugger keeps checkpoints.
#[derive(Args, Clone)]
pub(crate) struct CheckpointArgs {
    /// Memory the debugger's checkpoints may use (bytes, or with a K, M or
    /// G suffix); never exceeded.
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub checkpoint_memory: u64,
    /// Instructions (all harts together) between two checkpoints taken
    /// while replaying forward: smaller makes reverse steps faster and
    /// checkpoints more numerous.
    #[arg(long, default_value_t = 1 << 24, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_interval: u64,
}

impl CheckpointArgs {
    fn options(&self) -> TimelineOptions {
        TimelineOptions {
            checkpoint_memory: self.checkpoint_memory,
            checkpoint_interval: self.checkpoint_interval,
            parallel: true,
        }
    }
}

#[derive(Args)]
pub(crate) struct DebugArgs {
    #[command(flatten)]
    pub files: TraceFiles,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    /// Kernel symbols for gdb: a System.map (`ADDRESS TYPE NAME` lines, as
    /// /proc/kallsyms prints them) or an ELF (a vmlinux). Default for a
    /// Linux trace: System.map next to its kernel Image.
    #[arg(long, value_name = "FILE")]
    pub symbols: Option<PathBuf>,
    /// The gdb to start.
    #[arg(long, default_value = "gdb-multiarch", value_name = "PATH")]
    pub gdb_binary: PathBuf,
    /// Arguments passed on to gdb (after `--`).
    #[arg(last = true)]
    pub gdb_args: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 1G, 512M, 1048576)"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("unknown size unit in '{s}' (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn open_timeline(files: &TraceFiles, checkpoints: &CheckpointArgs) -> Result<Timeline> {
    let config = files.config(true, false);
    Timeline::open(&config, checkpoints.options())
        .with_context(|| format!("cannot open {} for debugging", files.trace.display()))
}

/// `samsara replay TRACE --gdb HOST:PORT`: serves gdb clients one after
/// another until killed.
pub(crate) fn serve_gdb(args: &ReplayArgs, address: &str) -> Result<ExitCode> {
    let timeline = open_timeline(&args.files, &args.checkpoints)?;
    let listener =
        TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))?;
    eprintln!(
        "samsara: serving {} to gdb on {} (harts are threads; writes are refused: the replay is read-only; 'monitor help' lists samsara's commands)",
        args.files.trace.display(),
        listener.local_addr()?
    );
    serve(&listener, timeline, false)?;
    Ok(ExitCode::SUCCESS)
}

/// `samsara debug TRACE`: a free local port, and gdb-multiarch on it.
pub(crate) fn debug_command(args: &DebugArgs) -> Result<ExitCode> {
    let timeline = open_timeline(&args.files, &args.checkpoints)?;
    let header = timeline.session().header();
    let image = PathBuf::from(&header.image_path);
    let kernel = args
        .files
        .guest
        .kernel
        .clone()
        .or_else(|| header.kernel.as_ref().map(|k| PathBuf::from(&k.path)));
    let symbols = kernel_symbols(args.symbols.as_deref(), kernel.as_deref())?;
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot listen on a local port")?;
    let address = listener.local_addr()?;
    let script = tempfile_path("samsara-debug", ".gdb");
    fs::write(
        &script,
        gdb_script(
            &args.files,
            &image,
            symbols.as_ref().map(|s| s.path()),
            &address.to_string(),
        ),
    )
    .with_context(|| format!("cannot write {}", script.display()))?;
    eprintln!(
        "samsara: debugging {} in {} (the replay is read-only: writes are refused; 'monitor help' lists samsara's commands, 'seek' is defined)",
        args.files.trace.display(),
        args.gdb_binary.display()
    );
    // Ctrl-C belongs to gdb, which forwards it as an interrupt.
    ctrlc::set_handler(|| {}).context("cannot install the Ctrl-C handler")?;
    let server = thread::spawn(move || serve(&listener, timeline, true));
    let status = Command::new(&args.gdb_binary)
        .arg("-q")
        .arg("-x")
        .arg(&script)
        .args(&args.gdb_args)
        .status();
    let _ = fs::remove_file(&script);
    drop(symbols);
    let status = status.with_context(|| {
        format!(
            "cannot start {} (scripts/setup.sh installs gdb-multiarch)",
            args.gdb_binary.display()
        )
    })?;
    if server.is_finished() {
        match server.join() {
            Ok(Err(e)) => bail!("the gdb server failed: {e}"),
            Err(_) => bail!("the gdb server panicked"),
            Ok(Ok(())) => {}
        }
    }
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

/// The ELF of kernel symbols gdb loads: `explicit` (a System.map,
/// converted, or an ELF), else the System.map next to `kernel`.
enum Symbols {
    /// An ELF given as is.
    Elf(PathBuf),
    /// Converted from a System.map: removed when dropped.
    Converted(PathBuf),
}

impl Symbols {
    fn path(&self) -> &Path {
        match self {
            Symbols::Elf(p) | Symbols::Converted(p) => p,
        }
    }
}

impl Drop for Symbols {
    fn drop(&mut self) {
        if let Symbols::Converted(p) = self {
            let _ = fs::remove_file(p);
        }
    }
}

fn convert_system_map(map: &Path) -> Result<Symbols> {
    let text = fs::read_to_string(map).with_context(|| format!("cannot read {}", map.display()))?;
    let elf = samsara_debug::symbols::system_map_to_elf(&text)
        .with_context(|| format!("{} is not a usable System.map", map.display()))?;
    let out = tempfile_path("samsara-debug-symbols", ".elf");
    fs::write(&out, elf).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Symbols::Converted(out))
}

fn kernel_symbols(explicit: Option<&Path>, kernel: Option<&Path>) -> Result<Option<Symbols>> {
    if let Some(file) = explicit {
        if is_elf(file) {
            return Ok(Some(Symbols::Elf(file.to_path_buf())));
        }
        return convert_system_map(file).map(Some);
    }
    let Some(kernel) = kernel else {
        return Ok(None);
    };
    let map = kernel.with_file_name("System.map");
    if !map.is_file() {
        eprintln!(
            "samsara: no kernel symbols: no {} (scripts/setup-linux.sh makes it; or give --symbols FILE)",
            map.display()
        );
        return Ok(None);
    }
    match convert_system_map(&map) {
        Ok(symbols) => {
            eprintln!("samsara: kernel symbols from {}", map.display());
            Ok(Some(symbols))
        }
        Err(e) => {
            eprintln!("samsara: no kernel symbols: {e:#}");
            Ok(None)
        }
    }
}

/// The gdb commands `samsara debug` starts with.
fn gdb_script(files: &TraceFiles, image: &Path, symbols: Option<&Path>, address: &str) -> String {
    let image = files.guest.image.as_deref().unwrap_or(image);
    // A long `monitor seek` on a loaded host may keep gdb waiting past its
    // default 2 s (the seek prints a dot per hop to restart its timer).
    let mut s = String::from("set pagination off\nset confirm off\nset remotetimeout 30\n");
    if let Some(symbols) = symbols {
        s.push_str(&format!("symbol-file {}\n", symbols.display()));
    } else if is_elf(image) {
        s.push_str(&format!("file {}\n", image.display()));
    }
    s.push_str(&format!("target remote {address}\n"));
    // gdb caches registers across `monitor`: a seek must flush them.
    s.push_str(
        "define seek\n  monitor seek $arg0\n  maintenance flush register-cache\nend\n\
         document seek\nseek ENTRY[+STEP] | hartN:COUNT | P% -- jump anywhere in the recording.\nend\n",
    );
    s
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

fn tempfile_path(prefix: &str, suffix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{prefix}-{}{suffix}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
    }
}
