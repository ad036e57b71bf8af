//! The hooks, in one table: every place the tracer could attach (a kernel function for
//! the fentry and kprobe tiers, a tracepoint), the steps of the data path each serves and
//! how (observed, or only inferred), and this build's program for it, with the `Config`
//! offsets it reads and the prototype it expects. The planner chooses from this table
//! (`probe::plan`) and the loader attaches exactly that choice (`probe::loader`).

use std::fmt;

use serde::Serialize;
use tracer_common::Field::{self, *};

use super::steps::Step;

/// An attach mechanism, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Fentry,
    Kprobe,
    Tracepoint,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fentry => "fentry",
            Self::Kprobe => "kprobe",
            Self::Tracepoint => "tracepoint",
        }
    }
}

/// How a hook serves a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    pub step: Step,
    /// The step is observed through this hook, or only inferred.
    pub observes: bool,
    /// A kernel function whose presence means this hook does not see the step (the
    /// kernel takes that function's path instead).
    pub unless: Option<&'static str>,
}

/// The kind of a kernel program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A BTF-typed tracepoint program.
    TpBtf,
    /// fexit on a kernel function (the fentry tier).
    Fexit,
    /// kretprobe on a kernel function (the kprobe tier).
    Kretprobe,
}

/// What a program checks of the kernel's BTF before it is loaded, besides its offsets:
/// a different prototype is reported, not misread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Nothing,
    /// The function's leading parameter names ("" for one the program does not read).
    Params(&'static [&'static str]),
    /// The number of arguments the tracepoint passes (`reads`: their names; `kernels`:
    /// which pass others).
    TracepointArgs {
        args: usize,
        reads: &'static str,
        kernels: &'static str,
    },
}

/// This build's kernel program for a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    /// Its function name in `tracer-ebpf`.
    pub name: &'static str,
    pub kind: Kind,
    /// The `Config` offsets it reads: one this kernel lacks skips it.
    pub needs: &'static [Field],
    pub check: Check,
    /// Tracing makes no sense without it: one that cannot attach stops the loader.
    pub required: bool,
    /// When it attaches, the worse hooks of its steps are still attached (the model reads
    /// both); otherwise they are not needed.
    pub keeps_worse: bool,
}

/// A place the tracer could attach, the steps it serves, and this build's program for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hook {
    pub tier: Tier,
    /// The kernel function (fentry/kprobe) or the tracepoint.
    pub target: &'static str,
    pub roles: &'static [Role],
    pub program: Option<Program>,
    /// A tracepoint's history, said when a kernel lacks it ("added in 6.16").
    pub note: Option<&'static str>,
}

impl Hook {
    /// The hook's identity (tier and target).
    pub fn id(&self) -> (Tier, &'static str) {
        (self.tier, self.target)
    }

    /// How it serves `step`, if it does.
    pub fn role(&self, step: Step) -> Option<&'static Role> {
        self.roles.iter().find(|r| r.step == step)
    }

    const fn serves(self, roles: &'static [Role]) -> Self {
        Self { roles, ..self }
    }

    const fn note(self, note: &'static str) -> Self {
        Self {
            note: Some(note),
            ..self
        }
    }

    const fn program_with(self, program: Program) -> Self {
        Self {
            program: Some(program),
            ..self
        }
    }

    /// Tracing makes no sense without this hook's program.
    const fn required(self) -> Self {
        match self.program {
            Some(p) => self.program_with(Program {
                required: true,
                ..p
            }),
            None => self,
        }
    }

    /// This hook's program leaves the worse hooks of its steps attached.
    const fn keeps_worse(self) -> Self {
        match self.program {
            Some(p) => self.program_with(Program {
                keeps_worse: true,
                ..p
            }),
            None => self,
        }
    }

    /// What this hook's program checks of the kernel's BTF.
    const fn check(self, check: Check) -> Self {
        match self.program {
            Some(p) => self.program_with(Program { check, ..p }),
            None => self,
        }
    }
}

impl fmt::Display for Hook {
    /// The hook as the attach report names it: "fexit:filemap_read", "sys_enter".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match (self.program.map(|p| p.kind), self.tier) {
            (_, Tier::Tracepoint) => return f.write_str(self.target),
            (Some(Kind::Fexit), _) => "fexit",
            (Some(Kind::Kretprobe), _) => "kretprobe",
            (_, tier) => tier.name(),
        };
        write!(f, "{prefix}:{}", self.target)
    }
}

const fn observes(step: Step) -> Role {
    Role {
        step,
        observes: true,
        unless: None,
    }
}

const fn infers(step: Step) -> Role {
    Role {
        step,
        observes: false,
        unless: None,
    }
}

/// Observes `step` on kernels without function `unless`.
const fn observes_unless(step: Step, unless: &'static str) -> Role {
    Role {
        step,
        observes: true,
        unless: Some(unless),
    }
}

const fn hook(tier: Tier, target: &'static str, program: Option<Program>) -> Hook {
    Hook {
        tier,
        target,
        roles: &[],
        program,
        note: None,
    }
}

const fn program(name: &'static str, kind: Kind, needs: &'static [Field], check: Check) -> Program {
    Program {
        name,
        kind,
        needs,
        check,
        required: false,
        keeps_worse: false,
    }
}

/// An fentry-tier hook this build has no program for.
const fn fentry(target: &'static str) -> Hook {
    hook(Tier::Fentry, target, None)
}

/// A kprobe-tier hook this build has no program for.
const fn kprobe(target: &'static str) -> Hook {
    hook(Tier::Kprobe, target, None)
}

/// An fexit program: its offsets and the parameter names it reads.
const fn fexit(
    target: &'static str,
    name: &'static str,
    needs: &'static [Field],
    params: &'static [&'static str],
) -> Hook {
    hook(
        Tier::Fentry,
        target,
        Some(program(name, Kind::Fexit, needs, Check::Params(params))),
    )
}

/// A kretprobe program (return values only: no offsets).
const fn kretprobe(target: &'static str, name: &'static str) -> Hook {
    hook(
        Tier::Kprobe,
        target,
        Some(program(name, Kind::Kretprobe, &[], Check::Nothing)),
    )
}

/// A tracepoint program.
const fn tracepoint(target: &'static str, name: &'static str, needs: &'static [Field]) -> Hook {
    hook(
        Tier::Tracepoint,
        target,
        Some(program(name, Kind::TpBtf, needs, Check::Nothing)),
    )
}

const PT_REGS: &[Field] = &[
    pt_regs_di,
    pt_regs_si,
    pt_regs_dx,
    pt_regs_r10,
    pt_regs_r8,
    pt_regs_r9,
];
const INODE: &[Field] = &[
    address_space_host,
    inode_i_ino,
    inode_i_sb,
    super_block_s_dev,
];
/// What the fexit programs that read a file's inode from a `kiocb` need.
const KIOCB_FILE: &[Field] = &[kiocb_ki_filp, file_f_inode, inode_i_ino, inode_i_mode];

/// Every hook. Within a step, an earlier row is a better hook: the plan takes the first
/// one this kernel and this build allow, and the loader attaches exactly that choice.
pub static HOOKS: &[Hook] = &[
    // Before 6.5 (no filemap_splice_read) a splice read goes through filemap_read into a
    // pipe iterator.
    fentry("splice_folio_into_pipe").serves(&[observes(Step::PipePageRefs)]),
    kprobe("splice_folio_into_pipe").serves(&[observes(Step::PipePageRefs)]),
    fexit(
        "filemap_read",
        "tracer_filemap_read",
        &[
            kiocb_ki_filp,
            file_f_inode,
            inode_i_ino,
            inode_i_mode,
            iov_iter_iter_type,
        ],
        &["iocb", "iter", "already_read"],
    )
    .serves(&[
        observes(Step::ReadCopy),
        observes_unless(Step::PipePageRefs, "filemap_splice_read"),
    ]),
    kprobe("filemap_read").serves(&[observes(Step::ReadCopy)]),
    // The copy helpers: notrace on the kernels measured (Debian's 6.1).
    fentry("_copy_to_iter").serves(&[observes(Step::CopyHelpers)]),
    fentry("_copy_from_iter").serves(&[observes(Step::CopyHelpers)]),
    fentry("copy_page_to_iter").serves(&[observes(Step::ReadCopy), observes(Step::CopyHelpers)]),
    fentry("_copy_to_user").serves(&[observes(Step::CopyHelpers)]),
    fentry("_copy_from_user").serves(&[observes(Step::CopyHelpers)]),
    kprobe("_copy_to_iter").serves(&[observes(Step::CopyHelpers)]),
    kprobe("_copy_from_iter").serves(&[observes(Step::CopyHelpers)]),
    kprobe("copy_page_to_iter").serves(&[observes(Step::CopyHelpers)]),
    kprobe("_copy_to_user").serves(&[observes(Step::CopyHelpers)]),
    kprobe("_copy_from_user").serves(&[observes(Step::CopyHelpers)]),
    // A whole send call at its end. The send tracepoints stay attached where it attaches:
    // tcp_sendmsg_locked fires inside the call, before its transmits, where the model
    // learns the socket's transfer (it reads both).
    fexit(
        "tcp_sendmsg_locked",
        "tracer_tcp_sendmsg_exit",
        &[msghdr_msg_iter, msghdr_msg_flags, iov_iter_iter_type],
        &["sk", "msg"],
    )
    .keeps_worse()
    .serves(&[observes(Step::SendDecision), observes(Step::SendBytes)]),
    kprobe("tcp_sendmsg_locked").serves(&[observes(Step::SendDecision), observes(Step::SendBytes)]),
    fexit(
        "filemap_get_pages",
        "tracer_get_pages_exit",
        &[
            kiocb_ki_filp,
            file_f_mapping,
            address_space_host,
            inode_i_ino,
            inode_i_sb,
            super_block_s_dev,
            kiocb_ki_pos,
            folio_batch_nr,
            folio_batch_folios,
            folio_index,
            folio_flags,
            get_pages_count_arg,
            iov_iter_count,
        ],
        &["iocb", "", "fbatch"],
    )
    .serves(&[observes(Step::PageCacheLookup)]),
    kprobe("filemap_get_pages").serves(&[observes(Step::PageCacheLookup)]),
    fexit(
        "filemap_map_pages",
        "tracer_map_pages_exit",
        &[
            vm_fault_vma,
            vm_fault_pte,
            vma_vm_file,
            file_f_mapping,
            address_space_host,
            inode_i_size,
            inode_i_ino,
            inode_i_sb,
            super_block_s_dev,
        ],
        &["vmf", "start_pgoff", "end_pgoff"],
    )
    .serves(&[observes(Step::MmapFaults)]),
    kprobe("filemap_map_pages").serves(&[observes(Step::MmapFaults)]),
    fexit(
        "skb_copy_datagram_iter",
        "tracer_skb_copy_exit",
        &[],
        &["skb", "", "", "len"],
    )
    .serves(&[observes(Step::ReceiveCopy)]),
    kprobe("skb_copy_datagram_iter").serves(&[observes(Step::ReceiveCopy)]),
    fexit(
        "generic_perform_write",
        "tracer_perform_write",
        KIOCB_FILE,
        &["iocb"],
    )
    .serves(&[observes(Step::CopyFileRange)]),
    kprobe("generic_perform_write").serves(&[observes(Step::CopyFileRange)]),
    fexit(
        "skb_copy_ubufs",
        "tracer_copy_ubufs",
        &[sk_buff_head, sk_buff_end, sk_buff_data_len, shinfo_flags],
        &["skb"],
    )
    .serves(&[observes(Step::LoopbackCopy)]),
    kprobe("skb_copy_ubufs").serves(&[observes(Step::LoopbackCopy)]),
    fexit(
        "skb_zerocopy_iter_stream",
        "tracer_zerocopy_pinned",
        &[],
        &["sk"],
    )
    .serves(&[observes(Step::SkbPins)]),
    kprobe("skb_zerocopy_iter_stream").serves(&[observes(Step::SkbPins)]),
    fentry("skb_splice_from_iter").serves(&[observes(Step::SkbPageRefs)]),
    kprobe("skb_splice_from_iter").serves(&[observes(Step::SkbPageRefs)]),
    // Before 6.5, sendfile and splice send page references through ->sendpage, one page
    // per call.
    kretprobe("do_tcp_sendpages", "tracer_sendpages_exit").serves(&[observes(Step::SkbPageRefs)]),
    fentry("blk_mq_start_request").serves(&[observes(Step::DiskDma)]),
    kprobe("blk_mq_start_request").serves(&[observes(Step::DiskDma)]),
    fentry("dev_hard_start_xmit").serves(&[observes(Step::Transmit)]),
    kprobe("dev_hard_start_xmit").serves(&[observes(Step::Transmit)]),
    fentry("io_issue_sqe").serves(&[observes(Step::IoUringRequests)]),
    kprobe("io_issue_sqe").serves(&[observes(Step::IoUringRequests)]),
    // The tracepoint tier.
    tracepoint("sys_enter", "tracer_sys_enter", PT_REGS)
        .required()
        .serves(&[observes(Step::SyscallEntry)]),
    tracepoint("sys_exit", "tracer_sys_exit", &[pt_regs_orig_ax])
        .required()
        .serves(&[
            observes(Step::SyscallReturn),
            infers(Step::ReadCopy),
            infers(Step::PipePageRefs),
        ]),
    tracepoint("sched_process_fork", "tracer_fork", &[task_tgid, task_pid]).required(),
    // Required: commands we start and --comm matches are traced from their exec.
    tracepoint("sched_process_exec", "tracer_exec", &[]).required(),
    tracepoint("sched_process_exit", "tracer_exit", &[]),
    tracepoint(
        "tcp_sendmsg_locked",
        "tracer_tcp_sendmsg",
        &[
            msghdr_msg_iter,
            msghdr_msg_flags,
            iov_iter_iter_type,
            iov_iter_count,
            sk_buff_len,
        ],
    )
    .note("added in 6.16")
    // Its flags are the send's decision, which the model's page-reference and pin steps
    // are observed by (MSG_SPLICE_PAGES, MSG_ZEROCOPY with the socket's inputs).
    .serves(&[
        observes(Step::SendDecision),
        observes(Step::SkbPageRefs),
        observes(Step::SkbPins),
    ]),
    tracepoint("sock_send_length", "tracer_sock_send", &[])
        .note("added in 6.3")
        .serves(&[observes(Step::SendBytes)]),
    tracepoint("sock_recv_length", "tracer_sock_recv", &[]),
    tracepoint("skb_copy_datagram_iovec", "tracer_skb_copy", &[])
        .serves(&[observes(Step::ReceiveCopy)]),
    tracepoint("mm_filemap_get_pages", "tracer_get_pages", INODE)
        .note("added around 6.11")
        .serves(&[observes(Step::PageCacheLookup)]),
    tracepoint(
        "mm_filemap_add_to_page_cache",
        "tracer_add_page",
        &[
            folio_mapping,
            folio_index,
            folio_flags,
            address_space_host,
            inode_i_ino,
            inode_i_sb,
            super_block_s_dev,
        ],
    ),
    tracepoint(
        "net_dev_start_xmit",
        "tracer_xmit",
        &[
            sk_buff_sk,
            sk_buff_head,
            sk_buff_end,
            sk_buff_len,
            sk_buff_data_len,
            sk_buff_data,
            sk_buff_transport_header,
            shinfo_flags,
            shinfo_nr_frags,
            net_device_name,
            net_device_ifindex,
            net_device_flags,
            net_device_parent,
        ],
    )
    .serves(&[
        infers(Step::SkbPageRefs),
        infers(Step::SkbPins),
        observes(Step::Transmit),
    ]),
    // Retransmits of traced sockets, counted apart from their first transmits.
    tracepoint("tcp_retransmit_skb", "tracer_retransmit", &[sk_buff_len]),
    tracepoint(
        "block_rq_issue",
        "tracer_rq_issue",
        &[
            task_flags,
            request_data_len,
            request_sector,
            request_cmd_flags,
            request_bio,
            bio_bi_io_vec,
            bio_vec_bv_page,
            page_mapping,
            address_space_host,
            inode_i_ino,
            inode_i_sb,
            super_block_s_dev,
        ],
    )
    .serves(&[observes(Step::DiskDma)]),
    tracepoint("block_rq_complete", "tracer_rq_done", &[]),
    tracepoint(
        "netif_receive_skb",
        "tracer_zc_receive",
        &[sk_buff_head, sk_buff_end, sk_buff_data_len, shinfo_flags],
    )
    .serves(&[infers(Step::LoopbackCopy)]),
    tracepoint("mm_filemap_map_pages", "tracer_map_pages", INODE)
        .note("added around 6.11")
        .serves(&[observes(Step::MmapFaults)]),
    tracepoint("mm_filemap_fault", "tracer_fault", INODE),
    tracepoint(
        "ext4_da_write_end",
        "tracer_write_end",
        &[inode_i_ino, inode_i_sb, super_block_s_dev],
    )
    .serves(&[observes(Step::CopyFileRange)]),
    tracepoint(
        "io_uring_submit_req",
        "tracer_iou_submit",
        &[
            io_kiocb_opcode,
            io_kiocb_flags,
            io_kiocb_user_data,
            io_kiocb_fd,
        ],
    )
    .note("named io_uring_submit_sqe before 6.4")
    .serves(&[observes(Step::IoUringRequests)]),
    // Its name before 6.4, with (req, force_nonblock) in 6.0-6.3; 5.x passed (ctx, req,
    // user_data, opcode, flags, force_nonblock, sq_thread), which the program does not read.
    tracepoint(
        "io_uring_submit_sqe",
        "tracer_iou_submit_sqe",
        &[
            io_kiocb_opcode,
            io_kiocb_flags,
            io_kiocb_user_data,
            io_kiocb_fd,
        ],
    )
    .check(Check::TracepointArgs {
        args: 2,
        reads: "req, force_nonblock",
        kernels: "kernels before 6.0",
    })
    .note("renamed io_uring_submit_req in 6.4")
    .serves(&[observes(Step::IoUringRequests)]),
    tracepoint(
        "io_uring_complete",
        "tracer_iou_complete",
        &[
            io_uring_complete_cqe,
            io_uring_cqe_user_data,
            io_uring_cqe_res,
            io_uring_cqe_flags,
        ],
    )
    .serves(&[observes(Step::IoUringCompletions)]),
];

/// Tracepoints renamed between kernels: (old name, new name).
pub const RENAMED: &[(&str, &str)] = &[("io_uring_submit_sqe", "io_uring_submit_req")];

/// The other name of a renamed tracepoint, if `tp` is one.
pub fn other_name(tp: &str) -> Option<&'static str> {
    RENAMED.iter().find_map(|&(old, new)| {
        if old == tp {
            Some(new)
        } else if new == tp {
            Some(old)
        } else {
            None
        }
    })
}

/// Whether `tp` is the old name of a renamed tracepoint.
pub fn is_old_name(tp: &str) -> bool {
    RENAMED.iter().any(|(old, _)| *old == tp)
}

/// The hooks that serve a step, best first.
pub fn candidates(step: Step) -> impl Iterator<Item = (&'static Hook, &'static Role)> {
    HOOKS
        .iter()
        .filter_map(move |h| h.role(step).map(|r| (h, r)))
}

/// Every tracepoint a step can use.
pub fn step_tracepoints() -> impl Iterator<Item = &'static str> {
    HOOKS
        .iter()
        .filter(|h| h.tier == Tier::Tracepoint && !h.roles.is_empty())
        .map(|h| h.target)
}

/// The kernel functions the steps name: their fentry/kprobe targets and `unless`
/// functions.
pub fn step_functions() -> impl Iterator<Item = &'static str> {
    HOOKS
        .iter()
        .filter(|h| h.tier != Tier::Tracepoint)
        .flat_map(|h| std::iter::once(h.target).chain(h.roles.iter().filter_map(|r| r.unless)))
}

/// The hooks this build has programs for, with their programs.
pub fn programs() -> impl Iterator<Item = (&'static Hook, &'static Program)> {
    HOOKS
        .iter()
        .filter_map(|h| h.program.as_ref().map(|p| (h, p)))
}
