//! Buffered writes into the page cache: ext4's `ext4_da_write_end` tracepoint and the
//! fentry tier's fexit `generic_perform_write`.

use aya_ebpf::{
    macros::{btf_tracepoint, fexit},
    programs::{BtfTracePointContext, FExitContext},
};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, kind};

use crate::{
    emit::{NO_NAME, count_drop, emit},
    maps::current_traced,
    read::{Btf, file_inode, inode_ino_dev, rd},
};

#[btf_tracepoint(function = "ext4_da_write_end")]
pub(crate) fn tracer_write_end(ctx: BtfTracePointContext) -> i32 {
    if try_ext4_da_write_end(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_ext4_da_write_end(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // ext4_da_write_end(struct inode *inode, loff_t pos, unsigned int len, unsigned int copied)
    let (ino, dev) = inode_ino_dev::<Btf>(ctx.arg(0))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::ext4_da_write_end::INO] = ino;
    args[kind::ext4_da_write_end::DEV] = dev;
    args[kind::ext4_da_write_end::POS] = ctx.arg::<i64>(1) as u64;
    args[kind::ext4_da_write_end::LEN] = ctx.arg::<u32>(2) as u64;
    args[kind::ext4_da_write_end::COPIED] = ctx.arg::<u32>(3) as u64;
    emit(kind::ext4_da_write_end::ID, args, NO_NAME);
    Ok(())
}

/// The fentry tier's buffered-write copy (user or pipe pages -> page cache) on any
/// filesystem using the generic write path: fexit generic_perform_write.
#[fexit(function = "generic_perform_write")]
pub(crate) fn tracer_perform_write(ctx: FExitContext) -> u32 {
    if try_perform_write(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_perform_write(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // ssize_t generic_perform_write(struct kiocb *iocb, struct iov_iter *i)
    let ret: i64 = ctx.ret().map_err(|e| e as i64)?;
    if ret <= 0 {
        return Ok(());
    }
    let iocb: u64 = ctx.arg(0);
    let (ino, _) = file_inode(rd(iocb, conf!(kiocb_ki_filp))?)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::perform_write::INO] = ino;
    args[kind::perform_write::BYTES] = ret as u64;
    emit(kind::perform_write::ID, args, NO_NAME);
    Ok(())
}
