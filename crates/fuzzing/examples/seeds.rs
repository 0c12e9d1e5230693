//! Writes the trace reader's seed inputs for a trace file: the file as is
//! (raw mode) and its framed description, into a corpus directory.
//!
//! `cargo run -p samsara-fuzzing --example seeds -- TRACE OUT_DIR`

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [trace, out] = args.as_slice() else {
        eprintln!("usage: seeds TRACE OUT_DIR");
        std::process::exit(2);
    };
    let file = std::fs::read(trace)?;
    let stem = std::path::Path::new(trace)
        .file_stem()
        .map_or("trace".into(), |s| s.to_string_lossy().into_owned());
    std::fs::create_dir_all(out)?;
    let mut raw = vec![0u8];
    raw.extend_from_slice(&file);
    std::fs::write(format!("{out}/{stem}-raw"), raw)?;
    match samsara_fuzzing::trace::describe(&file) {
        Some(d) => std::fs::write(format!("{out}/{stem}-framed"), d)?,
        None => eprintln!("{trace}: no framed description (not a complete trace, or too large)"),
    }
    Ok(())
}
