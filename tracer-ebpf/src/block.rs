//! Block requests: `block_rq_issue` (DMA starts; a kernel worker's request is matched to
//! a traced reader by its file) and `block_rq_complete` (in interrupt context, attributed
//! through `REQUESTS`).

use aya_ebpf::{
    helpers::bpf_get_current_task, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, FileKey, PF_KTHREAD, kind};

use crate::{
    emit::{NO_NAME, count_drop, emit},
    maps::{FILES, REQUESTS, TRACED, current_traced},
    read::{Probe, mapping_inode, rd},
};

/// The low bits of `page->mapping` that tag anonymous and movable pages
/// (PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE).
const PAGE_MAPPING_FLAGS: u64 = 3;
/// The `REQ_OP_*` bits of `rq->cmd_flags`.
const REQ_OP_MASK: u32 = 0xff;

/// (i_ino, s_dev) of the file a block request reads or writes:
/// rq->bio->bi_io_vec[0].bv_page->mapping->host; (0, 0) for none. Anonymous and movable
/// mappings tag the low bits of page->mapping; those have no inode.
#[inline(always)]
fn rq_file(rq: u64) -> Result<(u64, u64), i64> {
    let bio: u64 = rd(rq, conf!(request_bio))?;
    if bio == 0 {
        return Ok((0, 0));
    }
    let vec: u64 = rd(bio, conf!(bio_bi_io_vec))?;
    if vec == 0 {
        return Ok((0, 0));
    }
    let page: u64 = rd(vec, conf!(bio_vec_bv_page))?;
    if page == 0 {
        return Ok((0, 0));
    }
    let mapping: u64 = rd(page, conf!(page_mapping))?;
    if mapping & PAGE_MAPPING_FLAGS != 0 {
        return Ok((0, 0));
    }
    mapping_inode::<Probe>(mapping)
}

#[btf_tracepoint(function = "block_rq_issue")]
pub(crate) fn tracer_rq_issue(ctx: BtfTracePointContext) -> i32 {
    if try_block_rq_issue(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_block_rq_issue(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let current = current_traced();
    if current.is_none() {
        // Only a kernel worker (kblockd flushing a plug) issues I/O on a traced
        // process's behalf; another process's requests cost this one read.
        // SAFETY: the current task pointer, only read through rd().
        let task = unsafe { bpf_get_current_task() };
        let flags: u32 = rd(task, conf!(task_flags))?;
        if flags & PF_KTHREAD == 0 {
            return Ok(());
        }
    }
    // block_rq_issue(struct request *rq)
    let rq: u64 = ctx.arg(0);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::block_rq_issue::RQ] = rq;
    args[kind::block_rq_issue::BYTES] = rd::<u32>(rq, conf!(request_data_len))? as u64;
    args[kind::block_rq_issue::SECTOR] = rd::<u64>(rq, conf!(request_sector))?;
    args[kind::block_rq_issue::OP] =
        (rd::<u32>(rq, conf!(request_cmd_flags))? & REQ_OP_MASK) as u64;
    let (ino, dev) = rq_file(rq)?;
    args[kind::block_rq_issue::INO] = ino;
    args[kind::block_rq_issue::DEV] = dev;
    let tgid = match current {
        Some(tgid) => tgid,
        None => {
            // A kernel worker: the request counts when its file is a traced process's.
            if ino == 0 {
                return Ok(());
            }
            let key = FileKey { dev, ino };
            // SAFETY: the values are copied out at once.
            match unsafe { FILES.get(key) } {
                Some(&t) if unsafe { TRACED.get(t) }.is_some() => t,
                _ => return Ok(()),
            }
        }
    };
    let _ = REQUESTS.insert(rq, tgid, 0);
    args[kind::block_rq_issue::OWNER_TGID] = tgid as u64;
    emit(kind::block_rq_issue::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "block_rq_complete")]
pub(crate) fn tracer_rq_done(ctx: BtfTracePointContext) -> i32 {
    block_rq_complete(&ctx);
    0
}

fn block_rq_complete(ctx: &BtfTracePointContext) {
    // block_rq_complete(struct request *rq, blk_status_t error, unsigned int nr_bytes)
    // Runs in interrupt context: the owner comes from the issue.
    let rq: u64 = ctx.arg(0);
    // SAFETY: the value is copied out at once.
    let owner = match unsafe { REQUESTS.get(rq) } {
        Some(tgid) => *tgid,
        None => return,
    };
    let _ = REQUESTS.remove(rq);
    let error: u8 = ctx.arg(1);
    let nr_bytes: u32 = ctx.arg(2);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::block_rq_complete::RQ] = rq;
    args[kind::block_rq_complete::NR_BYTES] = nr_bytes as u64;
    args[kind::block_rq_complete::ERROR] = error as u64;
    args[kind::block_rq_complete::OWNER_TGID] = owner as u64;
    emit(kind::block_rq_complete::ID, args, NO_NAME);
}
