//! `samsara standby`: a hot standby for `samsara record --standby`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use samsara_engine::exit::exit_status;
use samsara_engine::guest::Guest;
use samsara_engine::record::{RecordConfig, Strategy};
use samsara_engine::summary::{self, ReplaySummary};
use samsara_standby::{StandbyConfig, StandbyOutcome, run_standby};

use crate::install_ctrl_c;
use crate::rr::{GuestFiles, LiveArgs};

#[derive(Args)]
pub(crate) struct StandbyArgs {
    /// Where the primary (`samsara record --standby HOST:PORT`) connects.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: String,
    /// The standby's copy of the trace; after a takeover the recording
    /// goes on in it (a replay of it from the start goes through the
    /// takeover).
    #[arg(short, long, default_value = "standby.trace")]
    pub output: PathBuf,
    /// The guest's files (default: the paths the stream's header names;
    /// each must be the very file recorded), and how to run them.
    #[command(flatten)]
    pub guest: GuestFiles,
    /// The disk image the primary started from (default: the path the
    /// stream names); it must be that very image. The standby works on its
    /// own copy, OUTPUT.disk, which the guest goes on with after a takeover.
    #[arg(long)]
    pub disk: Option<PathBuf>,
    /// After a takeover: stop after this many seconds (status 124).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Print the summary as one JSON line on stderr.
    #[arg(long)]
    pub json: bool,
    /// `--serial tcp:HOST:PORT` is the console the standby serves once it
    /// has taken over (bound then); `--standby HOST:PORT` the next standby
    /// it streams to once live.
    #[command(flatten)]
    pub live: LiveArgs,
}

pub(crate) fn standby_command(args: &StandbyArgs) -> Result<ExitCode> {
    let stop = install_ctrl_c()?;
    let replay = args.guest.config(&args.output, false, false);
    let console_addr = args.live.tcp_console()?;
    let record = RecordConfig {
        strategy: Strategy::Chunk,
        // The stream's header says what the machine is; these are unused.
        guest: Guest::Image(PathBuf::new()),
        trace: args.output.clone(),
        harts: 1,
        ram_size: 0,
        disk: None,
        disk_readonly: false,
        chunk_size: 0,
        max_instructions: None,
        timeout: args.timeout.map(std::time::Duration::from_secs_f64),
        check_every: 0,
        perturb: None,
        echo: console_addr.is_none(),
        stdin: false,
        cpu: args.guest.cpu.into(),
        console: None,
        standby: None,
    };
    let config = StandbyConfig {
        listen: args.listen.clone(),
        replay,
        failover_timeout: args.live.failover_timeout(),
        record,
        console_addr,
        next_standby: args.live.standby.clone(),
        disk: args.disk.clone(),
    };
    match run_standby(&config, &stop)? {
        StandbyOutcome::Followed(outcome, lag) => {
            eprintln!("samsara {lag}");
            let s = ReplaySummary::of(&args.output, &outcome, false);
            if args.json {
                eprintln!("{}", summary::to_json_line(&s));
            } else {
                eprintln!("samsara standby: the primary finished its recording");
                for line in s.human(false) {
                    eprintln!("{line}");
                }
            }
            Ok(ExitCode::from(if outcome.verified() { 0 } else { 1 }))
        }
        StandbyOutcome::TookOver(t, lag) => {
            eprintln!("samsara {lag}");
            if !args.json {
                eprintln!(
                    "samsara standby: took over after entry {} ({}), live {:.1} ms after noticing",
                    t.entries_received,
                    t.why,
                    t.switch.as_secs_f64() * 1e3
                );
            }
            crate::rr::print_record_summary(&args.output, &t.record, args.json);
            Ok(ExitCode::from(exit_status(t.record.footer.exit)))
        }
    }
}
