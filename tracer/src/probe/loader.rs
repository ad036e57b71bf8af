//! Loads the embedded eBPF object, fills in the kernel layout, attaches every program this
//! kernel supports and skips (and reports) the others.
//!
//! Dropping [`Probes`] detaches and unloads everything: aya closes the link and program
//! file descriptors, so nothing of ours stays in the kernel after the tracer exits.

use std::collections::BTreeMap;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, ProgramError},
};
use tracer_common::{
    ABSENT, CONFIG_GLOBAL, Config, DROP_READ_FAILED, DROP_RING_FULL, DROPS_MAP, EVENTS_MAP,
    NAME_LEN, TRACED_FROM_EXEC, TRACED_MAP,
};

use super::{
    btf::KernelBtf,
    plan::{Build, Tier},
};
use crate::event::KernelConsts;

/// The kernel programs, built by `build.rs` (empty when bpf-linker was missing).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// Errors a caller must tell apart.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "this tracer was built without its eBPF programs (bpf-linker was not on PATH, or \
         AYA_BUILD_SKIP was set, at build time): run `cargo xtask setup`, then rebuild with \
         `cargo xtask build`"
    )]
    NotBuilt,
    #[error("{}", super::PRIVILEGE_HINT)]
    Permission,
    #[error(
        "this kernel has no BTF at {path} (CONFIG_DEBUG_INFO_BTF): the tracer needs it to read kernel structs ({reason})"
    )]
    NoBtf { path: String, reason: String },
    #[error("this kernel cannot run the tracer: {0}")]
    Unsupported(String),
    #[error(
        "the kernel verifier rejected program {program} (tracepoint {tracepoint}): {error}\n--- end of the verifier log ---\n{log_tail}"
    )]
    Verifier {
        program: &'static str,
        tracepoint: &'static str,
        error: String,
        log_tail: String,
    },
    #[error("loading the eBPF object failed: {0}")]
    Load(String),
    #[error("attaching {program} to tracepoint {tracepoint} failed: {error}")]
    Attach {
        program: &'static str,
        tracepoint: &'static str,
        error: String,
    },
}

/// What to trace.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Trace children of traced processes (added in the kernel at fork).
    pub follow_forks: bool,
    /// Also start tracing any process that execs with this comm (at most 15 bytes).
    pub comm: Option<String>,
}

/// A program that was not attached, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub tracepoint: &'static str,
    pub reason: String,
    /// The kernel has this tracepoint or function (it was skipped for another reason: a
    /// layout, a refusal, a better tier), as opposed to lacking it.
    pub in_kernel: bool,
}

/// One kernel program: its function name in `tracer-ebpf`, its tracepoint, the `Config`
/// fields it reads, and whether tracing makes sense without it.
struct Spec {
    program: &'static str,
    tracepoint: &'static str,
    needs: &'static [&'static str],
    required: bool,
}

const PT_REGS: &[&str] = &[
    "pt_regs_di",
    "pt_regs_si",
    "pt_regs_dx",
    "pt_regs_r10",
    "pt_regs_r8",
    "pt_regs_r9",
];
const INODE: &[&str] = &[
    "address_space_host",
    "inode_i_ino",
    "inode_i_sb",
    "super_block_s_dev",
];

const SPECS: &[Spec] = &[
    Spec {
        program: "tracer_sys_enter",
        tracepoint: "sys_enter",
        needs: PT_REGS,
        required: true,
    },
    Spec {
        program: "tracer_sys_exit",
        tracepoint: "sys_exit",
        needs: &["pt_regs_orig_ax"],
        required: true,
    },
    Spec {
        program: "tracer_fork",
        tracepoint: "sched_process_fork",
        needs: &["task_tgid", "task_pid"],
        required: true,
    },
    // Required: commands we start and --comm matches are traced from their exec.
    Spec {
        program: "tracer_exec",
        tracepoint: "sched_process_exec",
        needs: &[],
        required: true,
    },
    Spec {
        program: "tracer_exit",
        tracepoint: "sched_process_exit",
        needs: &[],
        required: false,
    },
    Spec {
        program: "tracer_tcp_sendmsg",
        tracepoint: "tcp_sendmsg_locked",
        needs: &[
            "msghdr_msg_iter",
            "msghdr_msg_flags",
            "iov_iter_iter_type",
            "iov_iter_count",
            "sk_buff_len",
        ],
        required: false,
    },
    Spec {
        program: "tracer_sock_send",
        tracepoint: "sock_send_length",
        needs: &[],
        required: false,
    },
    Spec {
        program: "tracer_sock_recv",
        tracepoint: "sock_recv_length",
        needs: &[],
        required: false,
    },
    Spec {
        program: "tracer_skb_copy",
        tracepoint: "skb_copy_datagram_iovec",
        needs: &[],
        required: false,
    },
    Spec {
        program: "tracer_get_pages",
        tracepoint: "mm_filemap_get_pages",
        needs: INODE,
        required: false,
    },
    Spec {
        program: "tracer_add_page",
        tracepoint: "mm_filemap_add_to_page_cache",
        needs: &[
            "folio_mapping",
            "folio_index",
            "folio_flags",
            "address_space_host",
            "inode_i_ino",
            "inode_i_sb",
            "super_block_s_dev",
        ],
        required: false,
    },
    Spec {
        program: "tracer_xmit",
        tracepoint: "net_dev_start_xmit",
        needs: &[
            "sk_buff_sk",
            "sk_buff_head",
            "sk_buff_end",
            "sk_buff_len",
            "sk_buff_data_len",
            "shinfo_flags",
            "shinfo_nr_frags",
            "net_device_name",
            "net_device_ifindex",
            "net_device_flags",
        ],
        required: false,
    },
    Spec {
        program: "tracer_rq_issue",
        tracepoint: "block_rq_issue",
        needs: &[
            "task_flags",
            "request_data_len",
            "request_sector",
            "request_cmd_flags",
            "request_bio",
            "bio_bi_io_vec",
            "bio_vec_bv_page",
            "page_mapping",
            "address_space_host",
            "inode_i_ino",
            "inode_i_sb",
            "super_block_s_dev",
        ],
        required: false,
    },
    Spec {
        program: "tracer_rq_done",
        tracepoint: "block_rq_complete",
        needs: &[],
        required: false,
    },
    Spec {
        program: "tracer_zc_receive",
        tracepoint: "netif_receive_skb",
        needs: &[
            "sk_buff_head",
            "sk_buff_end",
            "sk_buff_data_len",
            "shinfo_flags",
        ],
        required: false,
    },
    Spec {
        program: "tracer_map_pages",
        tracepoint: "mm_filemap_map_pages",
        needs: INODE,
        required: false,
    },
    Spec {
        program: "tracer_fault",
        tracepoint: "mm_filemap_fault",
        needs: INODE,
        required: false,
    },
    Spec {
        program: "tracer_write_end",
        tracepoint: "ext4_da_write_end",
        needs: &["inode_i_ino", "inode_i_sb", "super_block_s_dev"],
        required: false,
    },
    Spec {
        program: "tracer_iou_submit",
        tracepoint: "io_uring_submit_req",
        needs: &[
            "io_kiocb_opcode",
            "io_kiocb_flags",
            "io_kiocb_user_data",
            "io_kiocb_fd",
        ],
        required: false,
    },
    Spec {
        program: "tracer_iou_submit_sqe",
        tracepoint: "io_uring_submit_sqe",
        needs: &[
            "io_uring_submit_sqe_req",
            "io_kiocb_opcode",
            "io_kiocb_flags",
            "io_kiocb_user_data",
            "io_kiocb_fd",
        ],
        required: false,
    },
    Spec {
        program: "tracer_iou_complete",
        tracepoint: "io_uring_complete",
        needs: &[
            "io_uring_complete_cqe",
            "io_uring_cqe_user_data",
            "io_uring_cqe_res",
            "io_uring_cqe_flags",
        ],
        required: false,
    },
];

/// A program of the fentry tier: fexit on a kernel function.
struct FexitSpec {
    program: &'static str,
    function: &'static str,
    /// How it is named in the attach report ("fexit:filemap_read").
    label: &'static str,
    needs: &'static [&'static str],
    /// The leading parameter names the program reads its arguments by ("" for one it
    /// does not read): a kernel whose prototype differs is skipped, not misread.
    params: &'static [&'static str],
    /// The tracepoint that reports the same step as the same event kind: when this
    /// program attaches, the plan's better tier, the tracepoint is not attached.
    replaces: Option<&'static str>,
}

/// What the fexit programs that read a file's inode from a `kiocb` need.
const KIOCB_FILE: &[&str] = &[
    "kiocb_ki_filp",
    "file_f_inode",
    "inode_i_ino",
    "inode_i_mode",
];

const FEXIT_SPECS: &[FexitSpec] = &[
    FexitSpec {
        program: "tracer_filemap_read",
        function: "filemap_read",
        label: "fexit:filemap_read",
        needs: &[
            "kiocb_ki_filp",
            "file_f_inode",
            "inode_i_ino",
            "inode_i_mode",
            "iov_iter_iter_type",
        ],
        params: &["iocb", "iter", "already_read"],
        replaces: None,
    },
    FexitSpec {
        program: "tracer_tcp_sendmsg_exit",
        function: "tcp_sendmsg_locked",
        label: "fexit:tcp_sendmsg_locked",
        needs: &["msghdr_msg_iter", "msghdr_msg_flags", "iov_iter_iter_type"],
        params: &["sk", "msg"],
        replaces: None,
    },
    FexitSpec {
        program: "tracer_get_pages_exit",
        function: "filemap_get_pages",
        label: "fexit:filemap_get_pages",
        needs: &[
            "kiocb_ki_filp",
            "file_f_mapping",
            "address_space_host",
            "inode_i_ino",
            "inode_i_sb",
            "super_block_s_dev",
            "kiocb_ki_pos",
            "folio_batch_nr",
            "folio_batch_folios",
            "folio_index",
            "folio_flags",
            "get_pages_count_arg",
            "iov_iter_count",
        ],
        params: &["iocb", "", "fbatch"],
        replaces: Some("mm_filemap_get_pages"),
    },
    FexitSpec {
        program: "tracer_map_pages_exit",
        function: "filemap_map_pages",
        label: "fexit:filemap_map_pages",
        needs: &[
            "vm_fault_vma",
            "vm_fault_pte",
            "vma_vm_file",
            "file_f_mapping",
            "address_space_host",
            "inode_i_size",
            "inode_i_ino",
            "inode_i_sb",
            "super_block_s_dev",
        ],
        params: &["vmf", "start_pgoff", "end_pgoff"],
        replaces: Some("mm_filemap_map_pages"),
    },
    FexitSpec {
        program: "tracer_skb_copy_exit",
        function: "skb_copy_datagram_iter",
        label: "fexit:skb_copy_datagram_iter",
        needs: &[],
        params: &["skb", "", "", "len"],
        replaces: Some("skb_copy_datagram_iovec"),
    },
    FexitSpec {
        program: "tracer_perform_write",
        function: "generic_perform_write",
        label: "fexit:generic_perform_write",
        needs: KIOCB_FILE,
        params: &["iocb"],
        replaces: Some("ext4_da_write_end"),
    },
    FexitSpec {
        program: "tracer_copy_ubufs",
        function: "skb_copy_ubufs",
        label: "fexit:skb_copy_ubufs",
        needs: &[
            "sk_buff_head",
            "sk_buff_end",
            "sk_buff_data_len",
            "shinfo_flags",
        ],
        params: &["skb"],
        replaces: Some("netif_receive_skb"),
    },
    FexitSpec {
        program: "tracer_zerocopy_pinned",
        function: "skb_zerocopy_iter_stream",
        label: "fexit:skb_zerocopy_iter_stream",
        needs: &[],
        params: &["sk"],
        replaces: None,
    },
];

/// Why this build's fexit program cannot attach on the kernel with this BTF (a layout or
/// prototype it cannot read), if so.
fn fexit_unusable(
    spec: &FexitSpec,
    kbtf: &KernelBtf,
    missing: &BTreeMap<&'static str, String>,
) -> Option<String> {
    if let Some(why) = spec.needs.iter().find_map(|f| missing.get(f)) {
        return Some(format!("kernel layout differs: {why}"));
    }
    let params = kbtf.function_params(spec.function)?;
    let differs = spec.params.len() > params.len()
        || spec
            .params
            .iter()
            .zip(&params)
            .any(|(want, got)| !want.is_empty() && want != got);
    differs.then(|| {
        format!(
            "{}({}) is a prototype this build does not read",
            spec.function,
            params.join(", ")
        )
    })
}

/// Loads and attaches one fexit program; the error says why not, in a line.
fn attach_fexit(ebpf: &mut Ebpf, spec: &FexitSpec, btf: &Btf) -> Result<(), String> {
    let prog: &mut aya::programs::FExit = ebpf
        .program_mut(spec.program)
        .ok_or_else(|| format!("program {} is missing from the object", spec.program))?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())?;
    prog.load(spec.function, btf)
        .map_err(|e| format!("fexit {}", refusal("program load", e)))?;
    prog.attach()
        .map_err(|e| format!("fexit {}", refusal("attach", e)))?;
    Ok(())
}

/// A program of the kprobe tier: a kretprobe on a kernel function.
struct KretprobeSpec {
    program: &'static str,
    function: &'static str,
    label: &'static str,
}

const KRETPROBE_SPECS: &[KretprobeSpec] = &[KretprobeSpec {
    program: "tracer_sendpages_exit",
    function: "do_tcp_sendpages",
    label: "kretprobe:do_tcp_sendpages",
}];

/// Loads and attaches one kretprobe; the error says why not, in a line.
fn attach_kretprobe(ebpf: &mut Ebpf, spec: &KretprobeSpec) -> Result<(), String> {
    if !super::kprobes_built_in() {
        return Err("kprobes are not built into this kernel".into());
    }
    let prog: &mut aya::programs::KProbe = ebpf
        .program_mut(spec.program)
        .ok_or_else(|| format!("program {} is missing from the object", spec.program))?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())?;
    prog.load()
        .map_err(|e| format!("kretprobe {}", refusal("program load", e)))?;
    prog.attach(spec.function, 0)
        .map_err(|e| format!("kretprobe {}", refusal("attach", e)))?;
    Ok(())
}

/// The kprobe-tier programs this build has (their functions).
pub fn built_kprobes() -> Vec<&'static str> {
    KRETPROBE_SPECS.iter().map(|s| s.function).collect()
}

/// The fentry-tier programs this build has (their functions).
pub fn built_fexits() -> Vec<&'static str> {
    FEXIT_SPECS.iter().map(|s| s.function).collect()
}

/// What this build has programs for, and, on the kernel with this BTF, which of them it
/// would skip (a layout, prototype or tracepoint it cannot read) and why: the planner's
/// `Build`. The kernel's layout is resolved once.
pub fn build(kbtf: Option<&KernelBtf>) -> Build {
    let mut build = Build::tracepoints(&SPECS.iter().map(|s| s.tracepoint).collect::<Vec<_>>());
    build
        .hooks
        .extend(built_fexits().into_iter().map(|f| (Tier::Fentry, f)));
    build
        .hooks
        .extend(built_kprobes().into_iter().map(|f| (Tier::Kprobe, f)));
    let Some(kbtf) = kbtf else {
        return build;
    };
    let missing = resolve_config(kbtf).missing;
    for s in SPECS.iter().filter(|s| kbtf.has_tracepoint(s.tracepoint)) {
        if let Some(why) = skip_reason(s, kbtf, &missing) {
            build.unusable.insert((Tier::Tracepoint, s.tracepoint), why);
        }
    }
    for s in FEXIT_SPECS.iter().filter(|s| kbtf.has_function(s.function)) {
        if let Some(why) = fexit_unusable(s, kbtf, &missing) {
            build.unusable.insert((Tier::Fentry, s.function), why);
        }
    }
    build
}

/// The `Config` resolved from one kernel's BTF.
struct Resolved {
    config: Config,
    /// Fields this kernel lacks, with the reason.
    missing: BTreeMap<&'static str, String>,
    /// Every field name resolve_config handles (for checking the specs).
    #[cfg_attr(not(test), allow(dead_code))]
    fields: Vec<&'static str>,
}

/// Resolves every `Config` offset from BTF.
fn resolve_config(btf: &KernelBtf) -> Resolved {
    let mut c = Config::zeroed();
    let mut missing = BTreeMap::new();
    let mut fields = Vec::new();
    macro_rules! field {
        ($f:ident, $s:literal, $path:literal, $size:literal) => {
            fields.push(stringify!($f));
            match btf.offset($s, $path, $size) {
                Ok(off) => c.$f = off,
                Err(e) => {
                    c.$f = ABSENT;
                    missing.insert(stringify!($f), e.to_string());
                }
            }
        };
    }
    field!(pt_regs_di, "pt_regs", "di", 8);
    field!(pt_regs_si, "pt_regs", "si", 8);
    field!(pt_regs_dx, "pt_regs", "dx", 8);
    field!(pt_regs_r10, "pt_regs", "r10", 8);
    field!(pt_regs_r8, "pt_regs", "r8", 8);
    field!(pt_regs_r9, "pt_regs", "r9", 8);
    field!(pt_regs_orig_ax, "pt_regs", "orig_ax", 8);
    field!(msghdr_msg_iter, "msghdr", "msg_iter", 0);
    field!(msghdr_msg_flags, "msghdr", "msg_flags", 4);
    field!(iov_iter_iter_type, "iov_iter", "iter_type", 1);
    field!(iov_iter_count, "iov_iter", "count", 8);
    field!(sk_buff_len, "sk_buff", "len", 4);
    field!(sk_buff_data_len, "sk_buff", "data_len", 4);
    field!(sk_buff_head, "sk_buff", "head", 8);
    // A 4-byte offset from head on 64-bit kernels (NET_SKBUFF_DATA_USES_OFFSET).
    field!(sk_buff_end, "sk_buff", "end", 4);
    field!(sk_buff_sk, "sk_buff", "sk", 8);
    field!(shinfo_flags, "skb_shared_info", "flags", 1);
    field!(shinfo_nr_frags, "skb_shared_info", "nr_frags", 1);
    field!(net_device_name, "net_device", "name", 16);
    field!(net_device_ifindex, "net_device", "ifindex", 4);
    field!(net_device_flags, "net_device", "flags", 4);
    field!(sock_family, "sock", "__sk_common.skc_family", 2);
    field!(sock_protocol, "sock", "sk_protocol", 2);
    field!(address_space_host, "address_space", "host", 8);
    field!(inode_i_ino, "inode", "i_ino", 8);
    field!(inode_i_sb, "inode", "i_sb", 8);
    field!(super_block_s_dev, "super_block", "s_dev", 4);
    field!(folio_mapping, "folio", "mapping", 8);
    field!(folio_index, "folio", "index", 8);
    field!(folio_flags, "folio", "flags", 8);
    // The order of a large folio: its own byte before 6.6, _flags_1's low byte since.
    fields.push("folio_order_byte");
    c.folio_order_byte = btf
        .offset("folio", "_folio_order", 1)
        .or_else(|_| btf.offset("folio", "_flags_1", 8))
        .unwrap_or(ABSENT);
    field!(file_f_mapping, "file", "f_mapping", 8);
    field!(inode_i_size, "inode", "i_size", 8);
    field!(request_data_len, "request", "__data_len", 4);
    field!(request_sector, "request", "__sector", 8);
    field!(request_cmd_flags, "request", "cmd_flags", 4);
    field!(request_bio, "request", "bio", 8);
    field!(bio_bi_io_vec, "bio", "bi_io_vec", 8);
    field!(bio_vec_bv_page, "bio_vec", "bv_page", 8);
    field!(page_mapping, "page", "mapping", 8);
    field!(task_tgid, "task_struct", "tgid", 4);
    field!(task_pid, "task_struct", "pid", 4);
    field!(task_files, "task_struct", "files", 8);
    field!(files_struct_fdt, "files_struct", "fdt", 8);
    field!(fdtable_max_fds, "fdtable", "max_fds", 4);
    field!(fdtable_fd, "fdtable", "fd", 8);
    field!(file_f_inode, "file", "f_inode", 8);
    field!(inode_i_mode, "inode", "i_mode", 2);
    field!(io_kiocb_opcode, "io_kiocb", "opcode", 1);
    // 4 bytes before 6.10 (io_req_flags_t is 8 since): the programs read the low 32 bits,
    // which hold REQ_F_FIXED_FILE (bit 0), on either (x86_64 is little-endian).
    field!(io_kiocb_flags, "io_kiocb", "flags", 0);
    field!(io_kiocb_user_data, "io_kiocb", "cqe.user_data", 8);
    field!(io_kiocb_fd, "io_kiocb", "cqe.fd", 4);
    field!(io_uring_cqe_user_data, "io_uring_cqe", "user_data", 8);
    field!(io_uring_cqe_res, "io_uring_cqe", "res", 4);
    field!(io_uring_cqe_flags, "io_uring_cqe", "flags", 4);
    field!(file_private_data, "file", "private_data", 8);
    field!(socket_sk, "socket", "sk", 8);
    field!(sock_flags, "sock", "__sk_common.skc_flags", 8);
    field!(sock_route_caps, "sock", "sk_route_caps", 8);
    field!(msghdr_msg_ubuf, "msghdr", "msg_ubuf", 8);
    field!(task_flags, "task_struct", "flags", 4);
    field!(kiocb_ki_filp, "kiocb", "ki_filp", 8);
    field!(kiocb_ki_pos, "kiocb", "ki_pos", 8);
    field!(folio_batch_nr, "folio_batch", "nr", 1);
    field!(folio_batch_folios, "folio_batch", "folios", 0);
    field!(vm_fault_vma, "vm_fault", "vma", 8);
    field!(vm_fault_pte, "vm_fault", "pte", 8);
    field!(vma_vm_file, "vm_area_struct", "vm_file", 8);
    fields.push("iter_pipe");
    c.iter_pipe = match btf.enum_value("iter_type", "ITER_PIPE") {
        Ok(v) if (0..256).contains(&v) => v as u32,
        _ => ABSENT,
    };
    fields.push("get_pages_count_arg");
    match btf.function_params("filemap_get_pages").as_deref() {
        Some([_, second, ..]) if second == "count" => c.get_pages_count_arg = 1,
        Some([_, second, ..]) if second == "iter" => c.get_pages_count_arg = 0,
        other => {
            c.get_pages_count_arg = ABSENT;
            missing.insert(
                "get_pages_count_arg",
                match other {
                    Some(p) => format!(
                        "filemap_get_pages({}) is a prototype this build does not know",
                        p.join(", ")
                    ),
                    None => "filemap_get_pages is not in this kernel's BTF".into(),
                },
            );
        }
    }
    if missing.contains_key("socket_sk") {
        c.file_private_data = ABSENT;
    }
    // fd_inode() in the programs walks all of these; one missing disables the walk.
    if [
        "task_files",
        "files_struct_fdt",
        "fdtable_max_fds",
        "fdtable_fd",
        "file_f_inode",
        "inode_i_mode",
    ]
    .iter()
    .any(|f| missing.contains_key(f))
    {
        c.task_files = ABSENT;
    }
    // io_uring_submit_sqe(req, force_nonblock) in 6.0-6.3; 5.x passed (ctx, req,
    // user_data, opcode, flags, force_nonblock, sq_thread), which the program does not read.
    fields.push("io_uring_submit_sqe_req");
    if let Some(n) = btf.tracepoint_args("io_uring_submit_sqe")
        && n != 2
    {
        missing.insert(
            "io_uring_submit_sqe_req",
            format!(
                "io_uring_submit_sqe passes {n} arguments, not (req, force_nonblock) (kernels before 6.0)"
            ),
        );
    }
    fields.push("io_uring_complete_cqe");
    match btf.tracepoint_args("io_uring_complete") {
        Some(3) => c.io_uring_complete_cqe = 1,
        Some(7) => c.io_uring_complete_cqe = 0,
        other => {
            c.io_uring_complete_cqe = ABSENT;
            missing.insert(
                "io_uring_complete_cqe",
                format!(
                    "io_uring_complete passes {} arguments, a prototype this build does not know",
                    other.unwrap_or(0)
                ),
            );
        }
    }
    c.exit_has_group_dead = (btf.tracepoint_args("sched_process_exit") == Some(2)) as u32;
    match btf.enum_value("pageflags", "PG_head") {
        Ok(v) if (0..64).contains(&v) => c.pg_head = v as u32,
        _ => {
            // Without PG_head the folio order cannot be read: report it as unknown.
            c.folio_order_byte = ABSENT;
        }
    }
    Resolved {
        config: c,
        missing,
        fields,
    }
}

/// Reads the `enum iter_type` numbering (it changed three times in 6.x).
fn kernel_consts(btf: &KernelBtf) -> KernelConsts {
    let iter_types = btf
        .enum_values("iter_type")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(n, v)| {
            let name = n.strip_prefix("ITER_")?.to_ascii_lowercase();
            u8::try_from(v).ok().map(|v| (name, v))
        })
        .collect();
    KernelConsts { iter_types }
}

/// The loaded and attached programs and their maps.
pub struct Probes {
    ebpf: Ebpf,
    /// Tracepoints attached, in load order.
    pub attached: Vec<&'static str>,
    /// Tracepoints this kernel lacks or refused, with the reason.
    pub skipped: Vec<Skipped>,
    /// Kernel constants the decoder needs.
    pub consts: KernelConsts,
}

fn verifier_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn is_permission_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
        {
            return true;
        }
        cur = err.source();
    }
    false
}

impl Probes {
    /// Loads and attaches the programs this kernel supports.
    pub fn load(opts: &LoadOptions) -> Result<Probes, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NotBuilt);
        }
        if !cfg!(target_arch = "x86_64") {
            return Err(ProbeError::Unsupported(
                "only x86_64 is supported so far (syscall arguments are read from x86 pt_regs)"
                    .into(),
            ));
        }
        if !super::has_bpf_privileges() {
            return Err(ProbeError::Permission);
        }
        let path = super::VMLINUX_BTF;
        let kbtf =
            KernelBtf::from_file(std::path::Path::new(path)).map_err(|e| ProbeError::NoBtf {
                path: path.into(),
                reason: e.to_string(),
            })?;
        let aya_btf = Btf::from_sys_fs().map_err(|e| ProbeError::NoBtf {
            path: path.into(),
            reason: e.to_string(),
        })?;

        let Resolved {
            mut config,
            missing,
            ..
        } = resolve_config(&kbtf);
        config.follow_forks = opts.follow_forks as u32;
        if let Some(comm) = &opts.comm {
            let bytes = comm.as_bytes();
            let n = bytes.len().min(NAME_LEN - 1);
            config.target_comm[..n].copy_from_slice(&bytes[..n]);
            config.match_comm = 1;
        }

        let mut ebpf = EbpfLoader::new()
            .btf(Some(&aya_btf))
            .override_global(CONFIG_GLOBAL, &config, true)
            .load(OBJECT)
            .map_err(|e| {
                if is_permission_error(&e) {
                    ProbeError::Permission
                } else {
                    ProbeError::Load(e.to_string())
                }
            })?;

        let mut attached = Vec::new();
        let mut skipped = Vec::new();
        // The fentry tier first, where this kernel allows it (a refusal is reported, not
        // fatal: the tracepoint tier covers the step, or lets it be inferred). A program
        // that attaches takes the place of the tracepoint reporting the same step, as the
        // plan (`probe::plan`) chooses the better tier.
        let mut replaced = BTreeMap::new();
        for spec in FEXIT_SPECS {
            let why = match fexit_unusable(spec, &kbtf, &missing) {
                Some(why) => Some(why),
                None => attach_fexit(&mut ebpf, spec, &aya_btf).err(),
            };
            match why {
                None => {
                    attached.push(spec.label);
                    if let Some(tp) = spec.replaces {
                        replaced.insert(tp, spec.label);
                    }
                }
                Some(reason) => skipped.push(Skipped {
                    tracepoint: spec.label,
                    reason,
                    in_kernel: kbtf.has_function(spec.function),
                }),
            }
        }
        for spec in SPECS {
            let reason = skip_reason(spec, &kbtf, &missing).or_else(|| {
                replaced
                    .get(spec.tracepoint)
                    .map(|by| format!("not needed: {by} sees the same step (a better tier)"))
            });
            if let Some(reason) = reason {
                if spec.required {
                    return Err(ProbeError::Unsupported(reason));
                }
                skipped.push(Skipped {
                    tracepoint: spec.tracepoint,
                    reason,
                    in_kernel: kbtf.has_tracepoint(spec.tracepoint),
                });
                continue;
            }
            let program: &mut BtfTracePoint = ebpf
                .program_mut(spec.program)
                .ok_or_else(|| {
                    ProbeError::Load(format!(
                        "program {} is missing from the object",
                        spec.program
                    ))
                })?
                .try_into()
                .map_err(|e: ProgramError| ProbeError::Load(e.to_string()))?;
            if let Err(e) = program.load(spec.tracepoint, &aya_btf) {
                return Err(match e {
                    ProgramError::LoadError {
                        io_error,
                        verifier_log,
                    } => ProbeError::Verifier {
                        // (The privileges were checked above: a refusal here is the
                        // verifier's or the kernel's.)
                        program: spec.program,
                        tracepoint: spec.tracepoint,
                        error: io_error.to_string(),
                        log_tail: verifier_tail(&verifier_log.to_string(), 20),
                    },
                    other => ProbeError::Load(format!("{}: {other}", spec.program)),
                });
            }
            match program.attach() {
                Ok(_link) => attached.push(spec.tracepoint),
                Err(e) if !spec.required => skipped.push(Skipped {
                    tracepoint: spec.tracepoint,
                    reason: format!("attach refused: {e}"),
                    in_kernel: true,
                }),
                Err(e) => {
                    return Err(ProbeError::Attach {
                        program: spec.program,
                        tracepoint: spec.tracepoint,
                        error: e.to_string(),
                    });
                }
            }
        }
        // The kprobe tier (no kernel layout needed: return values only).
        for spec in KRETPROBE_SPECS {
            let attach = if kbtf.has_function(spec.function) {
                attach_kretprobe(&mut ebpf, spec)
            } else {
                // do_tcp_sendpages went away in 6.5 (sendfile and splice reach
                // tcp_sendmsg_locked instead).
                Err(format!("{} is not in this kernel", spec.function))
            };
            match attach {
                Ok(()) => attached.push(spec.label),
                Err(reason) => skipped.push(Skipped {
                    tracepoint: spec.label,
                    reason,
                    in_kernel: kbtf.has_function(spec.function),
                }),
            }
        }
        Ok(Probes {
            ebpf,
            attached,
            skipped,
            consts: kernel_consts(&kbtf),
        })
    }

    /// Starts tracing a process (by tgid).
    pub fn trace_pid(&mut self, tgid: u32) -> anyhow::Result<()> {
        self.insert_traced(tgid, 0)
    }

    /// Traces a process from its next exec on (a command we forked and hold).
    pub fn trace_pid_from_exec(&mut self, tgid: u32) -> anyhow::Result<()> {
        self.insert_traced(tgid, TRACED_FROM_EXEC)
    }

    fn insert_traced(&mut self, tgid: u32, flags: u32) -> anyhow::Result<()> {
        let map = self
            .ebpf
            .map_mut(TRACED_MAP)
            .ok_or_else(|| anyhow::anyhow!("map {TRACED_MAP} missing"))?;
        let mut traced: HashMap<_, u32, u32> = HashMap::try_from(map)?;
        traced.insert(tgid, flags, 0)?;
        Ok(())
    }

    /// Takes the event ring buffer (once).
    pub fn take_events(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(EVENTS_MAP)
            .ok_or_else(|| anyhow::anyhow!("map {EVENTS_MAP} missing or already taken"))?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Events lost in the kernel: (ring buffer full, a kernel memory read failed).
    pub fn drops(&self) -> anyhow::Result<(u64, u64)> {
        let map = self
            .ebpf
            .map(DROPS_MAP)
            .ok_or_else(|| anyhow::anyhow!("map {DROPS_MAP} missing"))?;
        let drops: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
        let sum = |slot: u32| -> anyhow::Result<u64> { Ok(drops.get(&slot, 0)?.iter().sum()) };
        Ok((sum(DROP_RING_FULL)?, sum(DROP_READ_FAILED)?))
    }
}

/// Why `spec` cannot be attached on this kernel, if it cannot.
fn skip_reason(
    spec: &Spec,
    kbtf: &KernelBtf,
    missing: &BTreeMap<&'static str, String>,
) -> Option<String> {
    if !kbtf.has_tracepoint(spec.tracepoint) {
        // A tracepoint renamed between kernels: its other name's program runs instead.
        Some(match super::plan::other_name(spec.tracepoint) {
            Some(other) if kbtf.has_tracepoint(other) => {
                format!("not in this kernel under this name: it is {other} here")
            }
            _ => format!("tracepoint {} is not in this kernel", spec.tracepoint),
        })
    } else {
        spec.needs
            .iter()
            .find_map(|f| missing.get(f))
            .map(|why| format!("kernel layout differs: {why}"))
    }
}

/// Hook trials with the build's empty probe programs: whether this kernel lets an fentry
/// or a kprobe program attach on a kernel function. An error is the kernel's answer, in
/// words. Each trial detaches and unloads what it attached.
pub struct Trials {
    ebpf: Ebpf,
    btf: Btf,
}

impl Trials {
    pub fn new() -> Result<Trials, String> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NotBuilt.to_string());
        }
        let btf = Btf::from_sys_fs().map_err(|e| format!("no BTF: {e}"))?;
        let ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            // Trials emit nothing: no need for the full-size ring buffer.
            .map_max_entries(EVENTS_MAP, 4096)
            .load(OBJECT)
            .map_err(|e| format!("loading the object: {e}"))?;
        Ok(Trials { ebpf, btf })
    }

    /// Loads and attaches the empty fentry program on `target`.
    pub fn fentry(&mut self, target: &str) -> Result<(), String> {
        let prog: &mut aya::programs::FEntry = self
            .ebpf
            .program_mut("tracer_fentry_probe")
            .ok_or("the fentry probe program is missing from the object")?
            .try_into()
            .map_err(|e: ProgramError| e.to_string())?;
        prog.load(target, &self.btf)
            .map_err(|e| refusal("program load", e))?;
        let attached = prog.attach().map(|_| ()).map_err(|e| refusal("attach", e));
        let _ = prog.unload();
        attached
    }

    /// Loads (without attaching) the tracepoint tier's sys_exit program: whether this
    /// kernel takes `tp_btf` programs.
    pub fn tp_btf(&mut self) -> Result<(), String> {
        let prog: &mut BtfTracePoint = self
            .ebpf
            .program_mut("tracer_sys_exit")
            .ok_or("the sys_exit program is missing from the object")?
            .try_into()
            .map_err(|e: ProgramError| e.to_string())?;
        prog.load("sys_exit", &self.btf)
            .map_err(|e| refusal("program load", e))?;
        let _ = prog.unload();
        Ok(())
    }

    /// Loads the empty kretprobe program (the kind this build's kprobe tier uses) and
    /// attaches it on `target`.
    pub fn kprobe(&mut self, target: &str) -> Result<(), String> {
        let prog: &mut aya::programs::KProbe = self
            .ebpf
            .program_mut("tracer_kretprobe_probe")
            .ok_or("the kretprobe probe program is missing from the object")?
            .try_into()
            .map_err(|e: ProgramError| e.to_string())?;
        prog.load()
            .map_err(|e| format!("kprobe {}", refusal("program load", e)))?;
        let attached = prog
            .attach(target, 0)
            .map(|_| ())
            .map_err(|e| format!("kprobe {}", refusal("attach", e)));
        let _ = prog.unload();
        attached
    }
}

/// How the kernel refused a program, in words: "refused with EPERM at program load".
fn refusal(at: &str, e: ProgramError) -> String {
    match &e {
        ProgramError::LoadError { io_error, .. }
        | ProgramError::SyscallError(aya::sys::SyscallError { io_error, .. }) => {
            format!("refused with {} at {at}", errno_name(io_error))
        }
        _ => format!("failed at {at}: {e}"),
    }
}

fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(524) => "ENOTSUPP".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_tail_keeps_the_last_lines() {
        let log = "a\n\nb\nc\nd\n";
        assert_eq!(verifier_tail(log, 2), "c\nd");
        assert_eq!(verifier_tail(log, 10), "a\nb\nc\nd");
    }

    fn running_kernel_btf() -> Option<KernelBtf> {
        KernelBtf::from_file(std::path::Path::new(crate::probe::VMLINUX_BTF)).ok()
    }

    #[test]
    fn every_needed_field_is_one_resolve_config_fills() {
        // A typo in a Spec would otherwise never match a missing field and go unnoticed.
        let Some(btf) = running_kernel_btf() else {
            eprintln!("no kernel BTF here; skipping");
            return;
        };
        let resolved = resolve_config(&btf);
        let needs = SPECS
            .iter()
            .map(|s| (s.program, s.needs))
            .chain(FEXIT_SPECS.iter().map(|s| (s.program, s.needs)));
        for (program, needs) in needs {
            for need in needs {
                assert!(
                    resolved.fields.contains(need),
                    "{program} needs unknown field {need}"
                );
            }
        }
    }

    #[test]
    fn a_prototype_or_name_the_build_does_not_read_is_reported_not_misread() {
        let Some(btf) = running_kernel_btf() else {
            eprintln!("no kernel BTF here; skipping");
            return;
        };
        let missing = resolve_config(&btf).missing;
        let wrong = FexitSpec {
            program: "tracer_filemap_read",
            function: "filemap_read",
            label: "fexit:filemap_read",
            needs: &[],
            params: &["not_the_iocb"],
            replaces: None,
        };
        let why = fexit_unusable(&wrong, &btf, &missing).unwrap();
        assert!(
            why.starts_with("filemap_read(iocb, ")
                && why.ends_with("a prototype this build does not read"),
            "{why}"
        );
        // This build's own specs read the running kernel's prototypes.
        for spec in FEXIT_SPECS.iter().filter(|s| btf.has_function(s.function)) {
            let why = fexit_unusable(spec, &btf, &missing);
            assert!(
                !why.as_deref().unwrap_or("").contains("prototype"),
                "{why:?}"
            );
        }
        // A renamed tracepoint under the name this kernel does not use.
        let (old, new) = super::super::plan::RENAMED[0];
        let (absent, present) = if btf.has_tracepoint(new) {
            (old, new)
        } else {
            (new, old)
        };
        let spec = SPECS.iter().find(|s| s.tracepoint == absent).unwrap();
        assert_eq!(
            skip_reason(spec, &btf, &missing).unwrap(),
            format!("not in this kernel under this name: it is {present} here")
        );
    }

    #[test]
    fn resolves_the_x86_64_abi_layout_from_btf() {
        let Some(btf) = running_kernel_btf() else {
            eprintln!("no kernel BTF here; skipping");
            return;
        };
        let r = resolve_config(&btf);
        // struct pt_regs is fixed by the x86_64 ABI: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx
        // dx si di orig_ax.
        let c = r.config;
        assert_eq!(
            (
                c.pt_regs_r10,
                c.pt_regs_r9,
                c.pt_regs_r8,
                c.pt_regs_dx,
                c.pt_regs_si,
                c.pt_regs_di,
                c.pt_regs_orig_ax
            ),
            (56, 64, 72, 96, 104, 112, 120)
        );
        // iter_type is the first member of struct iov_iter since 5.14.
        assert_eq!(c.iov_iter_iter_type, 0);
        // Found through anonymous unions: sk_buff.sk and iov_iter.count.
        assert_ne!(c.sk_buff_sk, ABSENT);
        assert_ne!(c.iov_iter_count, ABSENT);
        assert!(c.iov_iter_count > 0);
        // And a layout the kernel does not have is reported, not guessed.
        assert!(btf.offset("sk_buff", "no_such_member", 0).is_err());
        assert!(btf.offset("no_such_struct_zz", "x", 0).is_err());
        assert!(
            btf.offset("sk_buff", "len", 8).is_err(),
            "sk_buff.len is 4 bytes"
        );
    }

    #[test]
    fn reads_the_iter_type_numbering_from_btf() {
        let Some(btf) = running_kernel_btf() else {
            eprintln!("no kernel BTF here; skipping");
            return;
        };
        let consts = kernel_consts(&btf);
        let ubuf = consts
            .iter_types
            .iter()
            .find(|(n, _)| n == "ubuf")
            .map(|(_, v)| *v);
        let bvec = consts
            .iter_types
            .iter()
            .find(|(n, _)| n == "bvec")
            .map(|(_, v)| *v);
        assert!(ubuf.is_some() && bvec.is_some(), "{consts:?}");
        assert_ne!(ubuf, bvec);
    }
}
