//! The recording strategies the suites compare (`samsara record
//! --strategy`), and which of them a samsara binary offers.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

/// How `samsara record` records memory interleaving (`--strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// Samsara's chunks.
    Chunk,
    /// One host thread, round-robin quanta (QEMU's and rr's way).
    Serial,
    /// Concurrent-read exclusive-write page ownership (SMP-ReVirt).
    Crew,
}

impl Strategy {
    /// Every strategy the tables have columns for, in column order.
    pub const ALL: [Strategy; 3] = [Strategy::Chunk, Strategy::Serial, Strategy::Crew];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Chunk => "chunk",
            Strategy::Serial => "serial",
            Strategy::Crew => "crew",
        }
    }
}

/// The strategies this samsara binary accepts: the possible values its
/// `record --help` lists for `--strategy`. A strategy that is added later
/// (CREW) is picked up without touching the bench.
pub fn implemented_strategies(samsara: &Path) -> Result<Vec<Strategy>> {
    let out = Command::new(samsara)
        .args(["record", "--help"])
        .output()
        .with_context(|| format!("cannot run {} record --help", samsara.display()))?;
    let help = String::from_utf8_lossy(&out.stdout);
    Ok(parse_strategies(&help))
}

pub fn parse_strategies(help: &str) -> Vec<Strategy> {
    let values = help
        .find("--strategy")
        .map(|at| &help[at..])
        .and_then(|rest| rest.split_once("[possible values: "))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("chunk", |(list, _)| list);
    let names: Vec<&str> = values.split(',').map(str::trim).collect();
    Strategy::ALL
        .into_iter()
        .filter(|s| names.contains(&s.name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_come_from_the_help_text() {
        let help = "      --check-every <N>\n          ... [default: 0]\n      --strategy \
                    <STRATEGY>\n          How ... [default: chunk] [possible values: chunk, \
                    serial]\n      --perturb <PERTURB>\n";
        assert_eq!(
            parse_strategies(help),
            vec![Strategy::Chunk, Strategy::Serial]
        );
        let help = help.replace("chunk, serial]", "chunk, serial, crew]");
        assert_eq!(parse_strategies(&help), Strategy::ALL.to_vec());
        assert_eq!(parse_strategies("nothing"), vec![Strategy::Chunk]);
    }
}
