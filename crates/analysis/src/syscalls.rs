//! `syscalls`: every system call made from user mode on every hart of a
//! Linux recording — where (position, hart), who (the task's pid, thread
//! id and name, read from the kernel's `task_struct` with the layout its
//! BTF gives), what (number, name, arguments, the bytes of a `write` or a
//! path) and what came back: an `strace` of the recording.
//!
//! The harts stop at every switch into or out of user mode (the chunk
//! recorder ended a chunk at each, so this costs the replay little). A
//! trap out of user mode with cause 8 (`ecall` from U) is a call; the
//! task's next return to user mode is its return, the task being the
//! `task_struct` the kernel keeps in `sscratch` while in user mode.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use samsara_engine::replay::probe::{Finding, GuestView, ProbeConfig, UserSwitch};
use samsara_trace::Entry;
use serde_json::json;

use crate::btf::TaskLayout;

/// `scause` of an `ecall` from user mode.
const ECALL_FROM_U: u64 = 8;
/// Bytes of a buffer kept per call.
const BUFFER_BYTES: usize = 4096;
/// Bytes of a path kept.
const PATH_BYTES: usize = 512;

const SYS_READ: u64 = 63;
const SYS_WRITE: u64 = 64;
const SYS_PREAD64: u64 = 67;
const SYS_PWRITE64: u64 = 68;
const SYS_EXIT: u64 = 93;
const SYS_EXIT_GROUP: u64 = 94;
const SYS_RT_SIGRETURN: u64 = 139;
const SYS_EXECVE: u64 = 221;
const SYS_EXECVEAT: u64 = 281;

/// Names of system calls 0 to 294 (RISC-V Linux, 64-bit: the generic
/// table, `riscv_hwprobe` and `riscv_flush_icache` among the architecture's own).
const NAMES: [&str; 295] = [
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "getcwd",
    "lookup_dcookie",
    "eventfd2",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "dup",
    "dup3",
    "fcntl",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "ioctl",
    "ioprio_set",
    "ioprio_get",
    "flock",
    "mknodat",
    "mkdirat",
    "unlinkat",
    "symlinkat",
    "linkat",
    "renameat",
    "umount2",
    "mount",
    "pivot_root",
    "nfsservctl",
    "statfs",
    "fstatfs",
    "truncate",
    "ftruncate",
    "fallocate",
    "faccessat",
    "chdir",
    "fchdir",
    "chroot",
    "fchmod",
    "fchmodat",
    "fchownat",
    "fchown",
    "openat",
    "close",
    "vhangup",
    "pipe2",
    "quotactl",
    "getdents64",
    "lseek",
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "sendfile",
    "pselect6",
    "ppoll",
    "signalfd4",
    "vmsplice",
    "splice",
    "tee",
    "readlinkat",
    "newfstatat",
    "fstat",
    "sync",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "utimensat",
    "acct",
    "capget",
    "capset",
    "personality",
    "exit",
    "exit_group",
    "waitid",
    "set_tid_address",
    "unshare",
    "futex",
    "set_robust_list",
    "get_robust_list",
    "nanosleep",
    "getitimer",
    "setitimer",
    "kexec_load",
    "init_module",
    "delete_module",
    "timer_create",
    "timer_gettime",
    "timer_getoverrun",
    "timer_settime",
    "timer_delete",
    "clock_settime",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "syslog",
    "ptrace",
    "sched_setparam",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_getparam",
    "sched_setaffinity",
    "sched_getaffinity",
    "sched_yield",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "restart_syscall",
    "kill",
    "tkill",
    "tgkill",
    "sigaltstack",
    "rt_sigsuspend",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "setpriority",
    "getpriority",
    "reboot",
    "setregid",
    "setgid",
    "setreuid",
    "setuid",
    "setresuid",
    "getresuid",
    "setresgid",
    "getresgid",
    "setfsuid",
    "setfsgid",
    "times",
    "setpgid",
    "getpgid",
    "getsid",
    "setsid",
    "getgroups",
    "setgroups",
    "uname",
    "sethostname",
    "setdomainname",
    "getrlimit",
    "setrlimit",
    "getrusage",
    "umask",
    "prctl",
    "getcpu",
    "gettimeofday",
    "settimeofday",
    "adjtimex",
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "gettid",
    "sysinfo",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "msgget",
    "msgctl",
    "msgrcv",
    "msgsnd",
    "semget",
    "semctl",
    "semtimedop",
    "semop",
    "shmget",
    "shmctl",
    "shmat",
    "shmdt",
    "socket",
    "socketpair",
    "bind",
    "listen",
    "accept",
    "connect",
    "getsockname",
    "getpeername",
    "sendto",
    "recvfrom",
    "setsockopt",
    "getsockopt",
    "shutdown",
    "sendmsg",
    "recvmsg",
    "readahead",
    "brk",
    "munmap",
    "mremap",
    "add_key",
    "request_key",
    "keyctl",
    "clone",
    "execve",
    "mmap",
    "fadvise64",
    "swapon",
    "swapoff",
    "mprotect",
    "msync",
    "mlock",
    "munlock",
    "mlockall",
    "munlockall",
    "mincore",
    "madvise",
    "remap_file_pages",
    "mbind",
    "get_mempolicy",
    "set_mempolicy",
    "migrate_pages",
    "move_pages",
    "rt_tgsigqueueinfo",
    "perf_event_open",
    "accept4",
    "recvmmsg",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "riscv_hwprobe",
    "riscv_flush_icache",
    "wait4",
    "prlimit64",
    "fanotify_init",
    "fanotify_mark",
    "name_to_handle_at",
    "open_by_handle_at",
    "clock_adjtime",
    "syncfs",
    "setns",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "finit_module",
    "sched_setattr",
    "sched_getattr",
    "renameat2",
    "seccomp",
    "getrandom",
    "memfd_create",
    "bpf",
    "execveat",
    "userfaultfd",
    "membarrier",
    "mlock2",
    "copy_file_range",
    "preadv2",
    "pwritev2",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "statx",
    "io_pgetevents",
    "rseq",
    "kexec_file_load",
];

/// Names of system calls from 424 on (added to every architecture at once).
const NAMES_FROM_424: [&str; 39] = [
    "pidfd_send_signal",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "pidfd_open",
    "clone3",
    "close_range",
    "openat2",
    "pidfd_getfd",
    "faccessat2",
    "process_madvise",
    "epoll_pwait2",
    "mount_setattr",
    "quotactl_fd",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
    "set_mempolicy_home_node",
    "cachestat",
    "fchmodat2",
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "mseal",
];

/// The name of RISC-V Linux system call `nr`, if it has one.
pub fn name(nr: u64) -> Option<&'static str> {
    let name = match nr {
        0..=294 => NAMES[nr as usize],
        424.. => NAMES_FROM_424.get((nr - 424) as usize).copied()?,
        _ => return None,
    };
    (!name.is_empty()).then_some(name)
}

/// Which argument of call `nr` is a path (a NUL-terminated string).
fn path_argument(nr: u64) -> Option<usize> {
    match name(nr)? {
        "openat" | "openat2" | "mkdirat" | "mknodat" | "unlinkat" | "faccessat" | "faccessat2"
        | "fchmodat" | "fchmodat2" | "fchownat" | "newfstatat" | "statx" | "readlinkat"
        | "utimensat" | "execveat" | "renameat" | "renameat2" | "symlinkat" | "linkat" => Some(1),
        "execve" | "chdir" | "chroot" | "acct" | "swapon" | "swapoff" | "umount2" | "statfs"
        | "truncate" | "getxattr" | "setxattr" | "listxattr" | "removexattr" | "mount" => Some(0),
        _ => None,
    }
}

/// The task a switch happened in, read from the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Task {
    /// Thread id (`task_struct.pid`).
    pub tid: u32,
    /// Process id (`task_struct.tgid`).
    pub pid: u32,
    /// `task_struct.comm`.
    pub comm: String,
}

/// One system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// Where the `ecall` is: entry and step.
    pub seq: u64,
    /// ...
    pub step: u64,
    /// The hart it was made on ...
    pub hart: u8,
    /// ... and the hart it returned on (`None`: it did not return).
    pub returned_on: Option<u8>,
    /// Where it returned (entry and step of the first user instruction).
    pub returned_at: Option<(u64, u64)>,
    /// The `ecall`'s address.
    pub pc: u64,
    /// The kernel's `task_struct` (virtual address).
    pub task_struct: u64,
    /// pid, tid and name (`None`: the kernel's layout is unknown).
    pub task: Option<Task>,
    /// a7.
    pub nr: u64,
    /// a0..a5.
    pub args: [u64; 6],
    /// a0 on return (`None`: no return seen).
    pub ret: Option<i64>,
    /// Bytes passed in (`write`'s buffer, a path) or out (`read`'s).
    pub data: Vec<u8>,
    /// How it returned, if not to the instruction after the `ecall`.
    pub note: Option<&'static str>,
}

/// The analysis.
pub struct Syscalls {
    layout: Option<TaskLayout>,
    /// Calls made and not yet returned, by `task_struct`.
    pending: HashMap<u64, Syscall>,
    /// Calls, in the order they returned (or, at the end, were made).
    pub calls: Vec<Syscall>,
    /// Switches out of user mode that were not calls (interrupts, faults).
    pub other_traps: u64,
}

/// What the reader keeps of a switch: the task, then the bytes.
fn encode_task(view: &dyn GuestView, layout: Option<TaskLayout>, task: u64, out: &mut Vec<u8>) {
    let mut record = [0u8; 24];
    if let Some(l) = layout {
        let mut word = [0u8; 4];
        let ok = view.read_virt(task.wrapping_add(l.pid), &mut word) == 4;
        record[0..4].copy_from_slice(&word);
        let ok = ok && view.read_virt(task.wrapping_add(l.tgid), &mut word) == 4;
        record[4..8].copy_from_slice(&word);
        let ok = ok && view.read_virt(task.wrapping_add(l.comm), &mut record[8..24]) == 16;
        if !ok {
            record = [0; 24];
        }
    }
    out.push(u8::from(layout.is_some() && record != [0; 24]));
    out.extend_from_slice(&record);
}

fn decode_task(memory: &[u8]) -> (Option<Task>, &[u8]) {
    if memory.len() < 25 {
        return (None, &[]);
    }
    let (head, rest) = memory.split_at(25);
    if head[0] == 0 {
        return (None, rest);
    }
    let word = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    let comm = &head[9..25];
    let comm = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(16)];
    let task = Task {
        tid: word(1),
        pid: word(5),
        comm: String::from_utf8_lossy(comm).into_owned(),
    };
    (Some(task), rest)
}

/// Reads `len` bytes at `addr`, or up to the first NUL with `string`.
fn read_bytes(view: &dyn GuestView, addr: u64, len: usize, string: bool) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let got = view.read_virt(addr, &mut buf);
    buf.truncate(got);
    if string && let Some(end) = buf.iter().position(|&b| b == 0) {
        buf.truncate(end);
    }
    buf
}

impl Syscalls {
    /// With `layout`, the kernel's `task_struct` layout (from its BTF).
    pub fn new(layout: Option<TaskLayout>) -> Self {
        Self {
            layout,
            pending: HashMap::new(),
            calls: Vec::new(),
            other_traps: 0,
        }
    }

    /// What the harts must show: every user switch, with the task and
    /// the call's bytes read there and then.
    pub fn probe(&self) -> ProbeConfig {
        let layout = self.layout;
        ProbeConfig {
            user_switches: Some(Arc::new(move |s: &UserSwitch, view: &dyn GuestView| {
                let mut out = Vec::new();
                encode_task(view, layout, s.scratch, &mut out);
                let nr = s.a[7];
                if !s.to_user {
                    if s.cause != ECALL_FROM_U {
                        return out;
                    }
                    if matches!(nr, SYS_WRITE | SYS_PWRITE64) {
                        let len = (s.a[2] as usize).min(BUFFER_BYTES);
                        out.extend(read_bytes(view, s.a[1], len, false));
                    } else if let Some(k) = path_argument(nr) {
                        out.extend(read_bytes(view, s.a[k], PATH_BYTES, true));
                    }
                } else if matches!(nr, SYS_READ | SYS_PREAD64) && (s.a[0] as i64) > 0 {
                    // a1 still holds the buffer (only a0 changes on return).
                    let len = (s.a[0] as usize).min(BUFFER_BYTES);
                    out.extend(read_bytes(view, s.a[1], len, false));
                }
                out
            })),
            ..ProbeConfig::default()
        }
    }

    /// Entry `seq` with the probe's findings.
    pub fn see(&mut self, seq: u64, entry: &Entry, findings: &[Finding]) {
        let Entry::Chunk(c) = entry else { return };
        for f in findings {
            let Finding::Switch(s) = f else { continue };
            let (task, data) = decode_task(&s.memory);
            if !s.to_user {
                if s.cause != ECALL_FROM_U {
                    self.other_traps += 1;
                    continue;
                }
                let call = Syscall {
                    seq,
                    step: s.step.saturating_sub(1),
                    hart: c.hart,
                    returned_on: None,
                    returned_at: None,
                    pc: s.epc,
                    task_struct: s.scratch,
                    task,
                    nr: s.a[7],
                    args: [s.a[0], s.a[1], s.a[2], s.a[3], s.a[4], s.a[5]],
                    ret: None,
                    data: data.to_vec(),
                    note: None,
                };
                // exit and exit_group never return (and the task's
                // `task_struct` may soon be another task's); exit_group
                // ends the calls its process's other threads were in.
                if matches!(call.nr, SYS_EXIT | SYS_EXIT_GROUP) {
                    if call.nr == SYS_EXIT_GROUP
                        && let Some(pid) = call.task.as_ref().map(|t| t.pid)
                    {
                        let ended: Vec<u64> = self
                            .pending
                            .iter()
                            .filter(|(_, c)| c.task.as_ref().is_some_and(|t| t.pid == pid))
                            .map(|(&k, _)| k)
                            .collect();
                        for k in ended {
                            let mut c = self.pending.remove(&k).expect("listed");
                            c.note = Some("ended by its process's exit_group");
                            self.calls.push(c);
                        }
                    }
                    self.calls.push(call);
                    continue;
                }
                // A task blocked in a call makes no other: one pending left
                // over means its return was never seen.
                if let Some(old) = self.pending.insert(s.scratch, call) {
                    self.calls.push(old);
                }
                continue;
            }
            let Some(mut call) = self.pending.remove(&s.scratch) else {
                // A new task's first return (a clone child), or a return
                // from an interrupt or fault.
                continue;
            };
            // The `task_struct` of a task that died in its call, reused:
            // this is another task's first return.
            if let (Some(was), Some(now)) = (&call.task, &task)
                && was.tid != now.tid
            {
                call.note = Some("its task ended in the call");
                self.calls.push(call);
                continue;
            }
            // Restarted (no handler to run): the task goes back to its
            // `ecall`, which will be seen as a new call.
            if s.pc == call.pc {
                call.note = Some("restarted");
                self.calls.push(call);
                continue;
            }
            call.returned_on = Some(c.hart);
            call.returned_at = Some((seq, s.step));
            call.ret = Some(s.a[0] as i64);
            if call.nr == SYS_READ || call.nr == SYS_PREAD64 {
                call.data = data.to_vec();
            }
            if s.pc != call.pc.wrapping_add(4) {
                call.note = Some(match call.nr {
                    SYS_EXECVE | SYS_EXECVEAT => "into the new program",
                    SYS_RT_SIGRETURN => "to the interrupted code",
                    _ => "to a signal handler",
                });
                if matches!(call.nr, SYS_EXECVE | SYS_EXECVEAT) {
                    call.ret = Some(0);
                }
            }
            self.calls.push(call);
        }
    }

    /// After the replay: calls that never returned (`exit_group`, or the
    /// recording ended first) join the list; all sorted by position.
    pub fn finish(&mut self) {
        self.calls.extend(self.pending.drain().map(|(_, c)| c));
        self.calls.sort_by_key(|c| (c.seq, c.step));
    }

    /// `strace`-like lines.
    pub fn listing(&self, out: &mut impl Write) -> std::io::Result<()> {
        for c in &self.calls {
            let who = match &c.task {
                Some(t) => format!("[pid {} tid {} {}]", t.pid, t.tid, t.comm),
                None => format!("[task {:#x}]", c.task_struct),
            };
            let ret = match (c.ret, c.nr) {
                (Some(r), _) if (-4095..0).contains(&r) => format!("-{}", -r),
                (Some(r), _) if r.unsigned_abs() >= 1 << 32 => format!("{:#x}", r as u64),
                (Some(r), _) => r.to_string(),
                (None, SYS_EXIT | SYS_EXIT_GROUP) => "?".to_string(),
                (None, _) => "? (no return seen)".to_string(),
            };
            let note = c.note.map(|n| format!(" ({n})")).unwrap_or_default();
            writeln!(
                out,
                "{:>10}.{:<6} hart {} {who} {} = {ret}{note}",
                c.seq,
                c.step,
                c.hart,
                self.call_text(c)
            )?;
        }
        Ok(())
    }

    fn call_text(&self, c: &Syscall) -> String {
        let name = name(c.nr).map_or(format!("syscall_{}", c.nr), str::to_string);
        let quoted = |bytes: &[u8]| {
            let shown: String = bytes
                .iter()
                .take(64)
                .flat_map(|&b| std::ascii::escape_default(b))
                .map(char::from)
                .collect();
            let more = if bytes.len() > 64 { "..." } else { "" };
            format!("\"{shown}\"{more}")
        };
        let a = &c.args;
        match c.nr {
            SYS_WRITE | SYS_PWRITE64 | SYS_READ | SYS_PREAD64 => {
                let buf = if c.nr == SYS_READ || c.nr == SYS_PREAD64 {
                    if c.ret.is_some_and(|r| r > 0) {
                        quoted(&c.data)
                    } else {
                        format!("{:#x}", a[1])
                    }
                } else {
                    quoted(&c.data)
                };
                format!("{name}({}, {buf}, {})", a[0] as i64, a[2])
            }
            SYS_EXIT | SYS_EXIT_GROUP => format!("{name}({})", a[0] as i64),
            nr => match path_argument(nr) {
                Some(k) => {
                    let mut args: Vec<String> = a[..4].iter().map(|v| format!("{v:#x}")).collect();
                    if k == 1 && nr != SYS_EXECVE {
                        args[0] = (a[0] as i64).to_string();
                    }
                    args[k] = quoted(&c.data);
                    format!("{name}({})", args.join(", "))
                }
                None => {
                    let args: Vec<String> = a.iter().map(|v| format!("{v:#x}")).collect();
                    format!("{name}({})", args.join(", "))
                }
            },
        }
    }

    /// A few lines for people.
    pub fn summary(&self) -> Vec<String> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for c in &self.calls {
            *counts.entry(name(c.nr).unwrap_or("?")).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = counts
            .iter()
            .take(8)
            .map(|(n, k)| format!("{n} {k}"))
            .collect();
        let tasks: std::collections::BTreeSet<u64> =
            self.calls.iter().map(|c| c.task_struct).collect();
        let mut lines = vec![format!(
            "syscalls: {} calls by {} tasks ({}); {} other traps from user mode",
            self.calls.len(),
            tasks.len(),
            top.join(", "),
            self.other_traps
        )];
        if self.layout.is_none() {
            lines.push(
                "syscalls: the kernel's task_struct layout is unknown (no BTF in its image): tasks are shown by address"
                    .to_string(),
            );
        }
        lines
    }

    /// One JSON object per call.
    pub fn jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        for c in &self.calls {
            let line = json!({
                "analysis": "syscalls",
                "seq": c.seq,
                "step": c.step,
                "hart": c.hart,
                "returned_on": c.returned_on,
                "returned_at": c.returned_at.map(|(s, k)| json!({"seq": s, "step": k})),
                "pc": c.pc,
                "task_struct": c.task_struct,
                "pid": c.task.as_ref().map(|t| t.pid),
                "tid": c.task.as_ref().map(|t| t.tid),
                "comm": c.task.as_ref().map(|t| t.comm.clone()),
                "nr": c.nr,
                "name": name(c.nr),
                "args": c.args,
                "ret": c.ret,
                "data": String::from_utf8_lossy(&c.data),
                "note": c.note,
            });
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use samsara_trace::{ChunkRecord, Truncation};

    use super::*;

    /// A switch of task `task_struct` (thread `tid` of process `pid`).
    fn switch(
        to_user: bool,
        task_struct: u64,
        tid: u32,
        pid: u32,
        pc: u64,
        a: [u64; 8],
    ) -> Finding {
        let mut memory = vec![1];
        memory.extend_from_slice(&tid.to_le_bytes());
        memory.extend_from_slice(&pid.to_le_bytes());
        memory.extend_from_slice(b"task\0\0\0\0\0\0\0\0\0\0\0\0");
        Finding::Switch(Box::new(UserSwitch {
            step: 1,
            to_user,
            pc,
            cause: if to_user { 0 } else { ECALL_FROM_U },
            epc: if to_user { 0 } else { pc },
            a,
            scratch: task_struct,
            memory,
        }))
    }

    fn nr(n: u64, a0: u64) -> [u64; 8] {
        [a0, 0, 0, 0, 0, 0, 0, n]
    }

    #[test]
    fn returns_match_their_task_and_exits_restarts_and_reuse_are_told_apart() {
        let layout = Some(TaskLayout {
            pid: 0,
            tgid: 4,
            comm: 8,
        });
        let mut calls = Syscalls::new(layout);
        let entry = Entry::Chunk(ChunkRecord {
            hart: 0,
            steps: 1,
            back: 0,
            reason: Truncation::Trap,
            exclusive: false,
            events: vec![],
            check: None,
        });
        let futex = 98;
        let findings = [
            // Thread 11 of process 10 blocks in futex; thread 10 calls
            // getpid, which returns; then exit_group.
            switch(false, 0xb000, 11, 10, 0x1000, nr(futex, 0)),
            switch(false, 0xa000, 10, 10, 0x2000, nr(172, 0)),
            switch(true, 0xa000, 10, 10, 0x2004, nr(172, 10)),
            switch(false, 0xa000, 10, 10, 0x2008, nr(SYS_EXIT_GROUP, 3)),
            // Task 20 makes a read that is restarted, then made again.
            switch(false, 0xc000, 20, 20, 0x3000, nr(SYS_READ, 0)),
            switch(true, 0xc000, 20, 20, 0x3000, nr(SYS_READ, 0)),
            // Task 30 dies in nanosleep; its task_struct goes to task 31,
            // whose first return is not nanosleep's.
            switch(false, 0xd000, 30, 30, 0x4000, nr(101, 0)),
            switch(true, 0xd000, 31, 31, 0x5000, nr(0, 0)),
        ];
        // Each switch a step later than the one before.
        let findings: Vec<Finding> = findings
            .into_iter()
            .enumerate()
            .map(|(k, mut f)| {
                if let Finding::Switch(s) = &mut f {
                    s.step = k as u64 + 1;
                }
                f
            })
            .collect();
        calls.see(1, &entry, &findings);
        calls.finish();
        let shown: Vec<(u64, Option<i64>, Option<&str>)> =
            calls.calls.iter().map(|c| (c.nr, c.ret, c.note)).collect();
        assert_eq!(
            shown,
            vec![
                (futex, None, Some("ended by its process's exit_group")),
                (172, Some(10), None),
                (SYS_EXIT_GROUP, None, None),
                (SYS_READ, None, Some("restarted")),
                (101, None, Some("its task ended in the call")),
            ]
        );
        assert_eq!(calls.calls[0].task.as_ref().map(|t| t.tid), Some(11));
    }

    #[test]
    fn names_follow_the_riscv_linux_numbering() {
        assert_eq!(name(63), Some("read"));
        assert_eq!(name(64), Some("write"));
        assert_eq!(name(93), Some("exit"));
        assert_eq!(name(94), Some("exit_group"));
        assert_eq!(name(172), Some("getpid"));
        assert_eq!(name(220), Some("clone"));
        assert_eq!(name(221), Some("execve"));
        assert_eq!(name(222), Some("mmap"));
        assert_eq!(name(258), Some("riscv_hwprobe"));
        assert_eq!(name(260), Some("wait4"));
        assert_eq!(name(293), Some("rseq"));
        assert_eq!(name(435), Some("clone3"));
        assert_eq!(name(462), Some("mseal"));
        assert_eq!(name(250), None);
        assert_eq!(name(300), None);
        assert_eq!(name(u64::MAX), None);
    }
}
