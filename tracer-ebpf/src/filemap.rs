//! The page cache on the read side: lookups (`mm_filemap_get_pages`), insertions
//! (`mm_filemap_add_to_page_cache`), mmap fault-around and faults, and the fentry tier's
//! fexit `filemap_read`, `filemap_get_pages` and `filemap_map_pages`.

use aya_ebpf::{
    macros::{btf_tracepoint, fexit},
    programs::{BtfTracePointContext, FExitContext},
};
use tracer_common::{DROP_READ_FAILED, EVENT_ARGS, FileKey, kind};

use crate::{
    emit::{NO_NAME, count_drop, emit},
    maps::{FILES, current_traced},
    read::{Btf, Probe, file_inode, folio_order, inode_ino_dev, ld, mapping_inode, rd},
};

/// log2 of the page size (4 KiB on x86_64).
const PAGE_SHIFT: u32 = 12;

#[btf_tracepoint(function = "mm_filemap_get_pages")]
pub(crate) fn tracer_get_pages(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_get_pages(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_get_pages(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // mm_filemap_get_pages(struct address_space *mapping, pgoff_t index, pgoff_t last_index)
    let mapping: u64 = ctx.arg(0);
    let (ino, dev) = mapping_inode::<Btf>(mapping)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_get_pages::INO] = ino;
    args[kind::filemap_get_pages::DEV] = dev;
    args[kind::filemap_get_pages::INDEX] = ctx.arg(1);
    args[kind::filemap_get_pages::LAST_INDEX] = ctx.arg(2);
    emit(kind::filemap_get_pages::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "mm_filemap_add_to_page_cache")]
pub(crate) fn tracer_add_page(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_add_to_page_cache(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_add_to_page_cache(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(tgid) = current_traced() else {
        return Ok(());
    };
    // mm_filemap_add_to_page_cache(struct folio *folio)
    let folio: u64 = ctx.arg(0);
    let mapping: u64 = ld(folio, conf!(folio_mapping));
    let (ino, dev) = mapping_inode::<Btf>(mapping)?;
    let key = FileKey { dev, ino };
    // SAFETY: the value is copied out at once.
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "passing the key by value changes the verified BPF code"
    )]
    if ino != 0 && unsafe { FILES.get(&key) }.copied() != Some(tgid) {
        let _ = FILES.insert(key, tgid, 0);
    }
    let order = folio_order::<Btf>(folio)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_add_to_page_cache::INO] = ino;
    args[kind::filemap_add_to_page_cache::DEV] = dev;
    args[kind::filemap_add_to_page_cache::INDEX] = ld(folio, conf!(folio_index));
    args[kind::filemap_add_to_page_cache::ORDER] = order;
    emit(kind::filemap_add_to_page_cache::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "mm_filemap_map_pages")]
pub(crate) fn tracer_map_pages(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_map_pages(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_map_pages(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // mm_filemap_map_pages(struct address_space *mapping, pgoff_t start, pgoff_t end)
    let (ino, dev) = mapping_inode::<Btf>(ctx.arg(0))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_map_pages::INO] = ino;
    args[kind::filemap_map_pages::DEV] = dev;
    args[kind::filemap_map_pages::START] = ctx.arg(1);
    args[kind::filemap_map_pages::END] = ctx.arg(2);
    emit(kind::filemap_map_pages::ID, args, NO_NAME);
    Ok(())
}

#[btf_tracepoint(function = "mm_filemap_fault")]
pub(crate) fn tracer_fault(ctx: BtfTracePointContext) -> i32 {
    if try_filemap_fault(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_fault(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // mm_filemap_fault(struct address_space *mapping, pgoff_t index)
    let (ino, dev) = mapping_inode::<Btf>(ctx.arg(0))?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_fault::INO] = ino;
    args[kind::filemap_fault::DEV] = dev;
    args[kind::filemap_fault::INDEX] = ctx.arg(1);
    emit(kind::filemap_fault::ID, args, NO_NAME);
    Ok(())
}

#[fexit(function = "filemap_read")]
pub(crate) fn tracer_filemap_read(ctx: FExitContext) -> u32 {
    if try_filemap_read(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_filemap_read(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // ssize_t filemap_read(struct kiocb *iocb, struct iov_iter *iter, ssize_t already_read):
    // its return is what it copied from the page cache (plus already_read).
    let ret: i64 = ctx.ret().map_err(|e| e as i64)?;
    if ret <= 0 {
        return Ok(());
    }
    let iocb: u64 = ctx.arg(0);
    let already: i64 = ctx.arg(2);
    let file: u64 = rd(iocb, conf!(kiocb_ki_filp))?;
    let (ino, _) = file_inode(file)?;
    let iter_type: u8 = rd(ctx.arg::<u64>(1), conf!(iov_iter_iter_type)).unwrap_or(0);
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_read::PIPE] = (iter_type as u32 == conf!(iter_pipe)) as u64;
    args[kind::filemap_read::INO] = ino;
    args[kind::filemap_read::BYTES] = ret as u64;
    args[kind::filemap_read::ALREADY] = already as u64;
    emit(kind::filemap_read::ID, args, NO_NAME);
    Ok(())
}

/// The fentry tier's page-cache lookup, for kernels without the mm_filemap_get_pages
/// tracepoint (before ~6.11): the pages the returned batch holds, clipped to the bytes
/// asked for (the range the tracepoint reports).
#[fexit(function = "filemap_get_pages")]
pub(crate) fn tracer_get_pages_exit(ctx: FExitContext) -> u32 {
    if try_get_pages_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_get_pages_exit(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // int filemap_get_pages(struct kiocb *iocb, struct iov_iter *iter, struct folio_batch
    // *fbatch) in 6.1; (iocb, size_t count, fbatch, bool need_uptodate) later.
    let ret: i32 = ctx.ret().map_err(|e| e as i64)?;
    if ret != 0 {
        return Ok(());
    }
    let iocb: u64 = ctx.arg(0);
    let fbatch: u64 = ctx.arg(2);
    let nr: u8 = rd(fbatch, conf!(folio_batch_nr))?;
    if nr == 0 {
        return Ok(());
    }
    let folios = conf!(folio_batch_folios);
    let first: u64 = rd(fbatch, folios)?;
    let last: u64 = rd(fbatch, folios + (nr as u32 - 1) * 8)?;
    let order = folio_order::<Probe>(last)?;
    let last_pages = if order > 20 { 1 } else { 1u64 << order };
    let got_first: u64 = rd(first, conf!(folio_index))?;
    let got_last: u64 = rd::<u64>(last, conf!(folio_index))? + last_pages - 1;
    let pos: i64 = rd(iocb, conf!(kiocb_ki_pos))?;
    let count: u64 = if conf!(get_pages_count_arg) == 1 {
        ctx.arg(1)
    } else {
        rd(ctx.arg::<u64>(1), conf!(iov_iter_count))?
    };
    let pos = pos.max(0) as u64;
    let want_first = pos >> PAGE_SHIFT;
    let want_last = (pos + count.max(1) - 1) >> PAGE_SHIFT;
    let index = got_first.max(want_first);
    let last_index = got_last.min(want_last);
    if last_index < index {
        return Ok(());
    }
    let file: u64 = rd(iocb, conf!(kiocb_ki_filp))?;
    // The mapping's host, as mm_filemap_add_to_page_cache names the file.
    let (ino, dev) = mapping_inode::<Probe>(rd(file, conf!(file_f_mapping))?)?;
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_get_pages::INO] = ino;
    args[kind::filemap_get_pages::DEV] = dev;
    args[kind::filemap_get_pages::INDEX] = index;
    args[kind::filemap_get_pages::LAST_INDEX] = last_index;
    args[kind::filemap_get_pages::VIA] = kind::VIA_FEXIT;
    emit(kind::filemap_get_pages::ID, args, NO_NAME);
    Ok(())
}

/// The fentry tier's mmap fault-around, for kernels without the mm_filemap_map_pages
/// tracepoint (before ~6.11): reported where the tracepoint would fire, once the PTE table
/// was mapped (`vmf->pte` set; a fault-around that found no page up to date leaves it
/// unset and lets filemap_fault read the page).
#[fexit(function = "filemap_map_pages")]
pub(crate) fn tracer_map_pages_exit(ctx: FExitContext) -> u32 {
    if try_map_pages_exit(&ctx).is_err() {
        count_drop(DROP_READ_FAILED);
    }
    0
}

fn try_map_pages_exit(ctx: &FExitContext) -> Result<(), i64> {
    if current_traced().is_none() {
        return Ok(());
    }
    // vm_fault_t filemap_map_pages(struct vm_fault *vmf, pgoff_t start_pgoff, pgoff_t
    // end_pgoff)
    let vmf: u64 = ctx.arg(0);
    let pte: u64 = rd(vmf, conf!(vm_fault_pte))?;
    if pte == 0 {
        return Ok(());
    }
    let vma: u64 = rd(vmf, conf!(vm_fault_vma))?;
    let file: u64 = rd(vma, conf!(vma_vm_file))?;
    let mapping: u64 = rd(file, conf!(file_f_mapping))?;
    let host: u64 = rd(mapping, conf!(address_space_host))?;
    let (ino, dev) = inode_ino_dev::<Probe>(host)?;
    // The window stops at the file's last page, as the function clamps it (fexit sees
    // the arguments as they were passed).
    let size: i64 = if host == 0 {
        0
    } else {
        rd(host, conf!(inode_i_size))?
    };
    if size <= 0 {
        return Ok(());
    }
    let start: u64 = ctx.arg(1);
    let end = ctx.arg::<u64>(2).min((size as u64 - 1) >> PAGE_SHIFT);
    if end < start {
        return Ok(());
    }
    let mut args = [0u64; EVENT_ARGS];
    args[kind::filemap_map_pages::INO] = ino;
    args[kind::filemap_map_pages::DEV] = dev;
    args[kind::filemap_map_pages::START] = start;
    args[kind::filemap_map_pages::END] = end;
    args[kind::filemap_map_pages::VIA] = kind::VIA_FEXIT;
    emit(kind::filemap_map_pages::ID, args, NO_NAME);
    Ok(())
}
