//! io_uring: requests entering the ring (`io_uring_submit_req`, `io_uring_submit_sqe`
//! before 6.4) and completions posted (`io_uring_complete`).

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, S_IFMT, S_IFSOCK, kind};

use crate::{
    emit::{NO_NAME, count_drop, emit},
    maps::current_traced,
    read::{fd_file, file_inode, file_sk, rd, socket_sk},
};

/// `req->flags` bit of a request whose fd indexes the registered files (REQ_F_FIXED_FILE,
/// the same bit as IOSQE_FIXED_FILE).
const REQ_F_FIXED_FILE: u64 = 1;

/// Whether an io_uring opcode (UAPI values) sends: WRITEV, WRITE_FIXED, SENDMSG, WRITE,
/// SEND, SEND_ZC, SENDMSG_ZC.
#[inline(always)]
fn is_send(opcode: u64) -> bool {
    const IORING_OP_WRITEV: u64 = 2;
    const IORING_OP_WRITE_FIXED: u64 = 5;
    const IORING_OP_SENDMSG: u64 = 9;
    const IORING_OP_WRITE: u64 = 23;
    const IORING_OP_SEND: u64 = 26;
    const IORING_OP_SEND_ZC: u64 = 47;
    const IORING_OP_SENDMSG_ZC: u64 = 48;
    matches!(
        opcode,
        IORING_OP_WRITEV
            | IORING_OP_WRITE_FIXED
            | IORING_OP_SENDMSG
            | IORING_OP_WRITE
            | IORING_OP_SEND
            | IORING_OP_SEND_ZC
            | IORING_OP_SENDMSG_ZC
    )
}

#[btf_tracepoint(function = "io_uring_submit_req")]
pub(crate) fn tracer_iou_submit(ctx: BtfTracePointContext) -> i32 {
    if try_io_uring_submit_req(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

/// The same tracepoint under its name before 6.4: io_uring_submit_sqe(struct io_kiocb
/// *req, bool force_nonblock).
#[btf_tracepoint(function = "io_uring_submit_sqe")]
pub(crate) fn tracer_iou_submit_sqe(ctx: BtfTracePointContext) -> i32 {
    if try_io_uring_submit_req(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_io_uring_submit_req(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // io_uring_submit_req(struct io_kiocb *req), in the submitting task: req->file is not
    // assigned yet, so the fd is resolved through the submitter's fd table.
    let req: u64 = ctx.arg(0);
    // The low 32 bits (the field is 4 bytes before 6.10, 8 since).
    let flags = rd::<u32>(req, conf!(io_kiocb_flags))? as u64;
    let fd: i32 = rd(req, conf!(io_kiocb_fd))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::io_uring_submit_req::USER_DATA] = rd(req, conf!(io_kiocb_user_data))?;
    args[kind::io_uring_submit_req::OPCODE] = rd::<u8>(req, conf!(io_kiocb_opcode))? as u64;
    args[kind::io_uring_submit_req::FD] = fd as u32 as u64;
    args[kind::io_uring_submit_req::FLAGS] = flags;
    args[kind::io_uring_submit_req::REQ] = req;
    // A fixed file's fd indexes the registered files, not the fd table.
    if flags & REQ_F_FIXED_FILE == 0
        && let Some(file) = fd_file(fd)
    {
        let (ino, mode) = file_inode(file)?;
        args[kind::io_uring_submit_req::INO] = ino;
        args[kind::io_uring_submit_req::MODE] = mode as u64;
        // A send on a TCP socket: its transmits are the process's from now on, before the
        // send itself runs (kernels without the send tracepoints learn the socket nowhere
        // earlier).
        let opcode = args[kind::io_uring_submit_req::OPCODE];
        if mode & S_IFMT == S_IFSOCK && is_send(opcode) {
            args[kind::io_uring_submit_req::SK] = socket_sk(file, tgid).0;
        } else if mode & S_IFMT == S_IFSOCK {
            args[kind::io_uring_submit_req::SK] = file_sk(file);
        }
    }
    emit(kind::io_uring_submit_req::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "io_uring_complete")]
pub(crate) fn tracer_iou_complete(ctx: BtfTracePointContext) -> i32 {
    if try_io_uring_complete(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_io_uring_complete(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    let mut args = [0u64; EVENT_ARGS];
    args[kind::io_uring_complete::REQ] = ctx.arg(1);
    if conf!(io_uring_complete_cqe) == 1 {
        // io_uring_complete(struct io_ring_ctx *ctx, void *req, struct io_uring_cqe *cqe)
        let cqe: u64 = ctx.arg(2);
        args[kind::io_uring_complete::USER_DATA] = rd(cqe, conf!(io_uring_cqe_user_data))?;
        args[kind::io_uring_complete::RES] = rd::<i32>(cqe, conf!(io_uring_cqe_res))? as i64 as u64;
        args[kind::io_uring_complete::CFLAGS] = rd::<u32>(cqe, conf!(io_uring_cqe_flags))? as u64;
    } else {
        // Before ~6.10: io_uring_complete(void *ctx, void *req, u64 user_data, int res,
        // unsigned cflags, u64 extra1, u64 extra2). (The config is read-only: the verifier
        // drops the branch this kernel's prototype cannot take.)
        args[kind::io_uring_complete::USER_DATA] = ctx.arg(2);
        args[kind::io_uring_complete::RES] = ctx.arg::<i32>(3) as i64 as u64;
        args[kind::io_uring_complete::CFLAGS] = ctx.arg::<u32>(4) as u64;
    }
    emit(kind::io_uring_complete::ID, args, NO_NAME);
    Ok(())
}
