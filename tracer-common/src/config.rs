//! The kernel layout the programs read, declared once: [`config!`] makes the `#[repr(C)]`
//! [`Config`] the programs read their offsets from (`conf!(field)` in tracer-ebpf), a
//! [`Field`] id per offset, and [`FIELDS`], where each offset comes from (a struct member
//! in BTF, or a value the loader works out), which the loader resolves from the running
//! kernel and its programs' needs refer to by id.

use crate::NAME_LEN;

/// Where a `Config` offset comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The byte offset of `strukt`'s member `path` (members separated by `.`, found
    /// through anonymous structs and unions), which must be `size` bytes (0: any size).
    Member {
        strukt: &'static str,
        path: &'static str,
        size: usize,
    },
    /// Worked out by the loader in its own way (an enum value, a prototype, a choice
    /// between two members): see `probe::loader::config` in the tracer.
    Derived,
    /// Padding: keeps the struct free of implicit holes.
    Padding,
}

/// One `Config` offset: its id, its name in the struct, and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub field: Field,
    pub name: &'static str,
    pub source: Source,
    /// The programs test it for [`crate::ABSENT`] before use, so a kernel without it
    /// skips no program (no program lists it among its needs).
    pub optional: bool,
}

/// A `Config` offset's source as the table declares it (see [`member`], [`derived`]).
#[derive(Clone, Copy, Debug)]
pub struct Declared {
    source: Source,
    optional: bool,
}

impl Declared {
    /// Marks the offset optional (see [`FieldSpec::optional`]).
    pub const fn optional(self) -> Self {
        Self {
            optional: true,
            ..self
        }
    }

    const fn spec(self, field: Field, name: &'static str) -> FieldSpec {
        FieldSpec {
            field,
            name,
            source: self.source,
            optional: self.optional,
        }
    }
}

/// The offset of `strukt`'s member `path`, `size` bytes long (0: any size).
pub const fn member(strukt: &'static str, path: &'static str, size: usize) -> Declared {
    Declared {
        source: Source::Member { strukt, path, size },
        optional: false,
    }
}

/// A value the loader works out itself.
pub const fn derived() -> Declared {
    Declared {
        source: Source::Derived,
        optional: false,
    }
}

/// Padding.
pub const fn padding() -> Declared {
    Declared {
        source: Source::Padding,
        optional: true,
    }
}

/// Declares `Config`: its leading fields set from the user's options, then one `u32` per
/// kernel offset with where it comes from; makes [`Field`], [`FIELDS`] and the accessors.
macro_rules! config {
    (
        $(#[$attr:meta])*
        pub struct Config {
            $( $(#[$oattr:meta])* $opt:ident : $oty:ty, )*
        }
        kernel {
            $( $(#[$kattr:meta])* $field:ident = $declared:expr, )*
        }
    ) => {
        $(#[$attr])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Config {
            $( $(#[$oattr])* pub $opt: $oty, )*
            $( $(#[$kattr])* pub $field: u32, )*
        }

        /// A kernel offset of [`Config`], named as its field.
        #[expect(non_camel_case_types, reason = "variants are named as the Config fields")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Field {
            $( $field, )*
        }

        /// Every kernel offset of [`Config`], in the struct's order.
        pub const FIELDS: &[FieldSpec] = &[
            $( $declared.spec(Field::$field, stringify!($field)), )*
        ];

        impl Config {
            /// The value of a kernel offset.
            pub const fn get(&self, field: Field) -> u32 {
                match field {
                    $( Field::$field => self.$field, )*
                }
            }

            /// Sets a kernel offset.
            pub const fn set(&mut self, field: Field, value: u32) {
                match field {
                    $( Field::$field => self.$field = value, )*
                }
            }
        }

        // No implicit padding (which `aya::Pod` and the eBPF side's reads rely on): the
        // fields' sizes add up to the struct's.
        const _: () = assert!(
            core::mem::size_of::<Config>()
                == 0 $( + core::mem::size_of::<$oty>() )* $( + { let _ = Field::$field; 4 } )*
        );
    };
}

config! {
    /// Offsets (in bytes) of kernel struct fields and kernel constants, resolved from BTF at
    /// load time and passed in as the global [`crate::CONFIG_GLOBAL`]. A field a program
    /// needs that this kernel does not have means that program is not loaded (the loader
    /// reports it).
    pub struct Config {
        /// Follow children and `--comm` matches (1) or only the listed tgids (0).
        follow_forks: u32,
        /// 1 when `target_comm` is set: processes that exec with that comm become traced.
        match_comm: u32,
        target_comm: [u8; NAME_LEN],
    }
    kernel {
        // struct pt_regs (x86_64)
        pt_regs_di = member("pt_regs", "di", 8),
        pt_regs_si = member("pt_regs", "si", 8),
        pt_regs_dx = member("pt_regs", "dx", 8),
        pt_regs_r10 = member("pt_regs", "r10", 8),
        pt_regs_r8 = member("pt_regs", "r8", 8),
        pt_regs_r9 = member("pt_regs", "r9", 8),
        pt_regs_orig_ax = member("pt_regs", "orig_ax", 8),

        // struct msghdr / struct iov_iter
        msghdr_msg_iter = member("msghdr", "msg_iter", 0),
        msghdr_msg_flags = member("msghdr", "msg_flags", 4),
        iov_iter_iter_type = member("iov_iter", "iter_type", 1),
        iov_iter_count = member("iov_iter", "count", 8),

        // struct sk_buff / skb_shared_info / net_device
        sk_buff_len = member("sk_buff", "len", 4),
        sk_buff_data_len = member("sk_buff", "data_len", 4),
        sk_buff_head = member("sk_buff", "head", 8),
        // A 4-byte offset from head on 64-bit kernels (NET_SKBUFF_DATA_USES_OFFSET).
        sk_buff_end = member("sk_buff", "end", 4),
        sk_buff_sk = member("sk_buff", "sk", 8),
        /// `skb->data` (at a transmit, the link-layer header) and `skb->transport_header`
        /// (an offset from head; 0xffff when unset): where the TCP header is.
        sk_buff_data = member("sk_buff", "data", 8),
        sk_buff_transport_header = member("sk_buff", "transport_header", 2),
        shinfo_flags = member("skb_shared_info", "flags", 1),
        shinfo_nr_frags = member("skb_shared_info", "nr_frags", 1),
        net_device_name = member("net_device", "name", 16),
        net_device_ifindex = member("net_device", "ifindex", 4),
        net_device_flags = member("net_device", "flags", 4),
        /// `dev->dev.parent`: the bus device under a NIC; none under a software device
        /// (loopback, veth, tun), which has no DMA engine.
        net_device_parent = member("net_device", "dev.parent", 8),

        // struct sock
        sock_family = member("sock", "__sk_common.skc_family", 2).optional(),
        sock_protocol = member("sock", "sk_protocol", 2).optional(),

        // page cache: address_space, inode, super_block, folio
        address_space_host = member("address_space", "host", 8),
        inode_i_ino = member("inode", "i_ino", 8),
        inode_i_sb = member("inode", "i_sb", 8),
        super_block_s_dev = member("super_block", "s_dev", 4),
        folio_mapping = member("folio", "mapping", 8),
        folio_index = member("folio", "index", 8),
        folio_flags = member("folio", "flags", 8),
        /// Offset of the byte holding a large folio's order: `folio->_folio_order` (before
        /// 6.6) or `folio->_flags_1`'s low byte (6.6+); `u32::MAX` when neither is known.
        folio_order_byte = derived().optional(),
        /// Value of `enum pageflags` PG_head.
        pg_head = derived().optional(),

        // block layer: request, bio, bio_vec, page
        request_data_len = member("request", "__data_len", 4),
        request_sector = member("request", "__sector", 8),
        request_cmd_flags = member("request", "cmd_flags", 4),
        request_bio = member("request", "bio", 8),
        bio_bi_io_vec = member("bio", "bi_io_vec", 8),
        bio_vec_bv_page = member("bio_vec", "bv_page", 8),
        page_mapping = member("page", "mapping", 8),

        // struct task_struct
        task_tgid = member("task_struct", "tgid", 4),
        task_pid = member("task_struct", "pid", 4),

        // fd -> file -> inode: task->files->fdt->fd[fd]->f_inode (one missing disables the
        // walk: task_files is then ABSENT)
        task_files = member("task_struct", "files", 8).optional(),
        files_struct_fdt = member("files_struct", "fdt", 8).optional(),
        fdtable_max_fds = member("fdtable", "max_fds", 4).optional(),
        fdtable_fd = member("fdtable", "fd", 8).optional(),
        file_f_inode = member("file", "f_inode", 8),
        inode_i_mode = member("inode", "i_mode", 2),

        // io_uring: struct io_kiocb, struct io_uring_cqe
        io_kiocb_opcode = member("io_kiocb", "opcode", 1),
        // 4 bytes before 6.10 (io_req_flags_t is 8 since): the programs read the low 32
        // bits, which hold REQ_F_FIXED_FILE (bit 0), on either (x86_64 is little-endian).
        io_kiocb_flags = member("io_kiocb", "flags", 0),
        io_kiocb_user_data = member("io_kiocb", "cqe.user_data", 8),
        io_kiocb_fd = member("io_kiocb", "cqe.fd", 4),
        io_uring_cqe_user_data = member("io_uring_cqe", "user_data", 8),
        io_uring_cqe_res = member("io_uring_cqe", "res", 4),
        io_uring_cqe_flags = member("io_uring_cqe", "flags", 4),
        /// 1 when `io_uring_complete` passes the CQE pointer (6.10+ prototype `(ctx, req,
        /// cqe)`), 0 when it passes the fields by value (`(ctx, req, user_data, res, cflags,
        /// extra1, extra2)`, about 5.19 to 6.9), `u32::MAX` for a prototype this build does
        /// not know.
        io_uring_complete_cqe = derived(),

        // socket fds and zero-copy: file->private_data (struct socket) ->sk; sock flags
        // (without socket.sk, file_private_data is ABSENT)
        file_private_data = member("file", "private_data", 8).optional(),
        socket_sk = member("socket", "sk", 8).optional(),
        /// `sock.__sk_common.skc_flags` (SOCK_ZEROCOPY is bit 18), `u32::MAX` when absent.
        sock_flags = member("sock", "__sk_common.skc_flags", 8).optional(),
        /// `sock.sk_route_caps` (NETIF_F_SG is bit 0), `u32::MAX` when absent.
        sock_route_caps = member("sock", "sk_route_caps", 8).optional(),
        /// `msghdr.msg_ubuf`, `u32::MAX` when absent.
        msghdr_msg_ubuf = member("msghdr", "msg_ubuf", 8).optional(),
        /// `task_struct.flags`.
        task_flags = member("task_struct", "flags", 4),
        /// `kiocb.ki_filp`.
        kiocb_ki_filp = member("kiocb", "ki_filp", 8),
        /// `kiocb.ki_pos`.
        kiocb_ki_pos = member("kiocb", "ki_pos", 8),
        /// `folio_batch.nr` (a byte) and `folio_batch.folios`.
        folio_batch_nr = member("folio_batch", "nr", 1),
        folio_batch_folios = member("folio_batch", "folios", 0),
        /// 1 when `filemap_get_pages` takes the byte count as its second argument (the
        /// newer prototype `(iocb, count, fbatch, need_uptodate)`), 0 when it takes the
        /// iterator (`(iocb, iter, fbatch)`, as in 6.1).
        get_pages_count_arg = derived(),
        /// `enum iter_type`'s ITER_PIPE (kernels before 6.5), `u32::MAX` when absent.
        iter_pipe = derived().optional(),
        /// `vm_fault.vma`, `vm_fault.pte`, `vm_area_struct.vm_file`.
        vm_fault_vma = member("vm_fault", "vma", 8),
        vm_fault_pte = member("vm_fault", "pte", 8),
        vma_vm_file = member("vm_area_struct", "vm_file", 8),
        /// `file.f_mapping`, `inode.i_size`.
        file_f_mapping = member("file", "f_mapping", 8),
        inode_i_size = member("inode", "i_size", 8),
        _pad2 = padding(),
        /// 1 when `sched_process_exit` passes `group_dead` (6.16+): a process leaves `TRACED`
        /// when its whole thread group is gone. Without it, entries stay until the trace
        /// ends.
        exit_has_group_dead = derived().optional(),
        /// 1 when `tcp_retransmit_skb` passes the transmit's `err` (6.12+: it fires for
        /// failed attempts too); 0 on older kernels, where it fires after a successful
        /// retransmit only.
        retransmit_has_err = derived().optional(),
    }
}

const _: () = assert!(size_of::<Config>().is_multiple_of(8));

impl Config {
    /// An all-zero config (the value compiled into the object file).
    pub const fn zeroed() -> Self {
        // SAFETY: Config is plain integers and byte arrays, for which all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}
