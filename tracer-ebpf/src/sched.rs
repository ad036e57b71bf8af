//! Which processes are traced: `sched_process_fork` adds children, `sched_process_exec`
//! arms commands the tracer started and adds `--comm` matches, `sched_process_exit`
//! forgets a dead thread group.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, NAME_LEN, TRACED_FROM_EXEC, kind};

use crate::{
    CONFIG,
    emit::{NO_NAME, count_drop, emit},
    maps::{TRACED, current_traced},
    read::rd,
};

#[btf_tracepoint(function = "sched_process_fork")]
pub(crate) fn tracer_fork(ctx: BtfTracePointContext) -> i32 {
    if try_sched_process_fork(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_sched_process_fork(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    if conf!(follow_forks) == 0 {
        return Ok(());
    }
    // sched_process_fork(struct task_struct *parent, struct task_struct *child)
    let child: u64 = ctx.arg(1);
    let child_tgid: i32 = rd(child, conf!(task_tgid))?;
    let child_pid: i32 = rd(child, conf!(task_pid))?;
    let child_tgid = child_tgid as u32;
    if child_tgid == tgid {
        // A new thread of a traced process: already covered by its tgid.
        return Ok(());
    }
    let _ = TRACED.insert(child_tgid, 0, 0);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::process_fork::CHILD_TGID] = child_tgid as u64;
    args[kind::process_fork::CHILD_PID] = child_pid as u32 as u64;
    emit(kind::process_fork::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "sched_process_exec")]
pub(crate) fn tracer_exec(_ctx: BtfTracePointContext) -> i32 {
    sched_process_exec();
    0
}

fn sched_process_exec() {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the flags are copied out at once.
    let flags = unsafe { TRACED.get(tgid) }.copied();
    let mut traced = flags.is_some();
    if flags.is_some_and(|f| f & TRACED_FROM_EXEC != 0) {
        // A command the tracer started: traced from here on.
        let _ = TRACED.insert(tgid, 0, 0);
    }
    if !traced && conf!(match_comm) != 0 && comm_is_target() {
        let _ = TRACED.insert(tgid, 0, 0);
        traced = true;
    }
    if traced {
        emit(kind::process_exec::ID, [0; EVENT_ARGS], NO_NAME);
    }
}

/// Whether the current task's comm, just set from the new executable's name, is
/// `CONFIG.target_comm` (`--comm`).
#[inline(always)]
fn comm_is_target() -> bool {
    let comm = bpf_get_current_comm().unwrap_or([0; NAME_LEN]);
    let mut same = true;
    let mut i = 0;
    while i < NAME_LEN {
        // SAFETY: reading a byte of a static array within bounds.
        let want = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(CONFIG.target_comm[i])) };
        if comm[i] != want {
            same = false;
            break;
        }
        if want == 0 {
            break;
        }
        i += 1;
    }
    same
}

#[btf_tracepoint(function = "sched_process_exit")]
pub(crate) fn tracer_exit(ctx: BtfTracePointContext) -> i32 {
    sched_process_exit(&ctx);
    0
}

fn sched_process_exit(ctx: &BtfTracePointContext) {
    // Forget a traced process when its whole thread group is gone, so a reused pid is not
    // traced: sched_process_exit(struct task_struct *p, bool group_dead) on 6.16+. (The
    // group leader's exit alone is not the end: it may pthread_exit, or a thread may exec.)
    if conf!(exit_has_group_dead) == 0 {
        return;
    }
    let group_dead: u8 = ctx.arg(1);
    if group_dead != 0 {
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        let _ = TRACED.remove(tgid);
    }
}
