//! The recording strategies the suites compare (`samsara record
//! --strategy`), and which of them a samsara binary offers.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

pub use samsara_trace::Strategy;

/// The strategies this samsara binary accepts: the possible values its
/// `record -h` lists for `--strategy`. A strategy that is added later
/// (CREW) is picked up without touching the bench.
pub fn implemented_strategies(samsara: &Path) -> Result<Vec<Strategy>> {
    let out = Command::new(samsara)
        .args(["record", "-h"])
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
