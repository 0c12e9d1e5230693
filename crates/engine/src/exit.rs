//! How a recording ended, in the trace's terms ([`RecordedExit`]), from the
//! supervisor's classification ([`Ending`], shared with `samsara run`), and
//! the process exit status that reports it.

use samsara_machine::devices::test_device::MachineExit;
use samsara_machine::supervisor::Ending;
use samsara_trace::RecordedExit;

/// The trace's name for a supervised recording's ending; `None` (the
/// supervisor knows no reason: the recorder stopped on its own) is
/// [`RecordedExit::Aborted`].
pub fn recorded_exit(ending: Option<Ending>) -> RecordedExit {
    match ending {
        Some(Ending::Guest(MachineExit::Poweroff)) => RecordedExit::Poweroff,
        Some(Ending::Guest(MachineExit::Fail(code))) => RecordedExit::Fail(code),
        Some(Ending::Guest(MachineExit::Reset)) => RecordedExit::Reset,
        Some(Ending::KernelPanic) => RecordedExit::KernelPanic,
        Some(Ending::InstructionLimit) => RecordedExit::InstructionLimit,
        Some(Ending::Timeout) => RecordedExit::Timeout,
        Some(Ending::Interrupted) => RecordedExit::Interrupted,
        None => RecordedExit::Aborted,
    }
}

/// The ending a trace records (`None` for [`RecordedExit::Aborted`]).
pub fn ending(exit: RecordedExit) -> Option<Ending> {
    Some(match exit {
        RecordedExit::Poweroff => Ending::Guest(MachineExit::Poweroff),
        RecordedExit::Fail(code) => Ending::Guest(MachineExit::Fail(code)),
        RecordedExit::Reset => Ending::Guest(MachineExit::Reset),
        RecordedExit::KernelPanic => Ending::KernelPanic,
        RecordedExit::InstructionLimit => Ending::InstructionLimit,
        RecordedExit::Timeout => Ending::Timeout,
        RecordedExit::Interrupted => Ending::Interrupted,
        RecordedExit::Aborted => return None,
    })
}

/// The process exit status that reports a recorded exit, as `samsara run`
/// reports the same ending ([`Ending::exit_status`]); 2 for a recording
/// that aborted.
pub fn exit_status(exit: RecordedExit) -> u8 {
    ending(exit).map_or(2, Ending::exit_status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_exits_round_trip_and_keep_their_statuses() {
        let all = [
            RecordedExit::Poweroff,
            RecordedExit::Fail(0x100),
            RecordedExit::Fail(5),
            RecordedExit::Reset,
            RecordedExit::InstructionLimit,
            RecordedExit::Interrupted,
            RecordedExit::Timeout,
            RecordedExit::KernelPanic,
            RecordedExit::Aborted,
        ];
        for exit in all {
            assert_eq!(recorded_exit(ending(exit)), exit);
        }
        let statuses: Vec<u8> = all.into_iter().map(exit_status).collect();
        assert_eq!(statuses, [0, 1, 5, 0, 124, 130, 124, 1, 2]);
    }
}
