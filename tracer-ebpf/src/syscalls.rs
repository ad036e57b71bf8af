//! `raw_syscalls`: every syscall's entry and exit in a traced process; at the entry, the
//! files behind its fd arguments.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, MSG_ZEROCOPY, S_IFMT, S_IFSOCK, kind, sysno};

use crate::{
    emit::{NO_NAME, count_drop, emit},
    maps::current_traced,
    read::{Probe, fd_file, file_inode, ld, sock_zc_inputs, socket_sk},
};

#[btf_tracepoint(function = "sys_enter")]
pub(crate) fn tracer_sys_enter(ctx: BtfTracePointContext) -> i32 {
    if try_sys_enter(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_sys_enter(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // sys_enter(struct pt_regs *regs, long id): `regs` is BTF-typed, read directly.
    let regs: u64 = ctx.arg(0);
    let id: i64 = ctx.arg(1);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::sys_enter::NR] = id as u64;
    args[kind::sys_enter::ARG0] = ld::<u64>(regs, conf!(pt_regs_di));
    args[kind::sys_enter::ARG0 + 1] = ld::<u64>(regs, conf!(pt_regs_si));
    args[kind::sys_enter::ARG0 + 2] = ld::<u64>(regs, conf!(pt_regs_dx));
    args[kind::sys_enter::ARG0 + 3] = ld::<u64>(regs, conf!(pt_regs_r10));
    args[kind::sys_enter::ARG0 + 4] = ld::<u64>(regs, conf!(pt_regs_r8));
    args[kind::sys_enter::ARG0 + 5] = ld::<u64>(regs, conf!(pt_regs_r9));
    // The kind of file behind each fd argument (regular file, socket, pipe) comes from the
    // kernel's fd table: the tracer never guesses it from fd numbers.
    let (a, b) = tracer_common::fd_args(id as u64);
    // The fd a send goes out through: write, pwrite64, writev, sendto, sendmsg and
    // sendfile's out_fd are the first; splice's fd_out the second.
    let (send_a, send_b) = match id as u64 {
        sysno::WRITE
        | sysno::PWRITE64
        | sysno::WRITEV
        | sysno::SENDFILE
        | sysno::SENDTO
        | sysno::SENDMSG => (true, false),
        sysno::SPLICE => (false, true),
        _ => (false, false),
    };
    // sendto(fd, buf, len, flags, ..) and sendmsg(fd, msg, flags) with MSG_ZEROCOPY.
    let zerocopy = match tracer_common::send_flags_arg(id as u64) {
        Some(i) => args[kind::sys_enter::ARG0 + (i & 7)] & MSG_ZEROCOPY != 0,
        None => false,
    };
    let mut modes = 0u64;
    if let Some(i) = a {
        let (ino, mode, not_tcp, zc) = fd_info(
            args[kind::sys_enter::ARG0 + (i & 7)] as i32,
            send_a,
            zerocopy,
            tgid,
        );
        args[kind::sys_enter::FD_A_INO] = ino;
        modes |= mode as u64;
        if not_tcp {
            modes |= kind::sys_enter::FD_A_NOT_TCP;
        }
        modes |= (zc as u64) << kind::sys_enter::FD_SEND_ZC_SHIFT;
    }
    if let Some(i) = b {
        let (ino, mode, not_tcp, _) = fd_info(
            args[kind::sys_enter::ARG0 + (i & 7)] as i32,
            send_b,
            false,
            tgid,
        );
        args[kind::sys_enter::FD_B_INO] = ino;
        modes |= (mode as u64) << 16;
        if not_tcp {
            modes |= kind::sys_enter::FD_B_NOT_TCP;
        }
    }
    args[kind::sys_enter::FD_MODES] = modes;
    emit(kind::sys_enter::ID, args, NO_NAME);
    Ok(())
}

/// (i_ino, i_mode, not TCP, zero-copy inputs) of the file behind `fd`; when `sending` and
/// it is a socket, its `sk` is recorded as the traced process's in `SOCKS`, so its
/// transmits are attributed on kernels without the send tracepoints (before 6.3 / 6.16)
/// too, and for a MSG_ZEROCOPY send (`zerocopy`) the socket's zero-copy inputs are read.
#[inline(always)]
fn fd_info(fd: i32, sending: bool, zerocopy: bool, tgid: u32) -> (u64, u16, bool, u8) {
    let Some(file) = fd_file(fd) else {
        return (0, 0, false, 0);
    };
    let mut zc = 0u8;
    let (ino, mode) = file_inode(file).unwrap_or((0, 0));
    let mut not_tcp = false;
    // Only for the fd a send goes out through: every other syscall skips these reads.
    if sending && mode & S_IFMT == S_IFSOCK {
        let (sk, tcp) = socket_sk(file, tgid);
        not_tcp = sk != 0 && !tcp;
        if tcp && zerocopy {
            zc = sock_zc_inputs::<Probe>(sk).unwrap_or(0) as u8;
        }
    }
    (ino, mode, not_tcp, zc)
}

#[btf_tracepoint(function = "sys_exit")]
pub(crate) fn tracer_sys_exit(ctx: BtfTracePointContext) -> i32 {
    if try_sys_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_sys_exit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // sys_exit(struct pt_regs *regs, long ret); the number is regs->orig_ax on x86.
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::sys_exit::NR] = ld::<u64>(regs, conf!(pt_regs_orig_ax));
    args[kind::sys_exit::RET] = ret as u64;
    emit(kind::sys_exit::ID, args, NO_NAME);
    Ok(())
}
