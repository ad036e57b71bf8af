//! The kernel layout from BTF: every `Config` offset tracer-common's table declares,
//! resolved on the running kernel, and which of this build's programs cannot read the
//! kernel they would run on (the planner's `Build`).

use std::collections::BTreeMap;

use tracer_common::{ABSENT, Config, FIELDS, Field, config::Source};

use crate::{
    event::KernelConsts,
    probe::{
        btf::KernelBtf,
        hooks::{self, Check, Hook, Program, Tier},
        plan::Build,
        why::{FieldMissing, Unusable},
    },
};

/// The `Config` resolved from one kernel's BTF.
pub(super) struct Resolved {
    pub config: Config,
    /// Offsets this kernel lacks, with the reason.
    pub missing: BTreeMap<Field, FieldMissing>,
}

/// Resolves every `Config` offset from BTF.
pub(super) fn resolve_config(btf: &KernelBtf) -> Resolved {
    let mut c = Config::zeroed();
    let mut missing = BTreeMap::new();
    for spec in FIELDS {
        if let Source::Member { strukt, path, size } = spec.source {
            match btf.offset(strukt, path, size) {
                Ok(off) => c.set(spec.field, off),
                Err(e) => {
                    c.set(spec.field, ABSENT);
                    missing.insert(spec.field, FieldMissing::Btf(e));
                }
            }
        }
    }
    derive(btf, &mut c, &mut missing);
    Resolved { config: c, missing }
}

/// The offsets and switches of `Source::Derived`, and the ones a missing neighbour
/// disables.
fn derive(btf: &KernelBtf, c: &mut Config, missing: &mut BTreeMap<Field, FieldMissing>) {
    // The order of a large folio: its own byte before 6.6, _flags_1's low byte since.
    c.folio_order_byte = btf
        .offset("folio", "_folio_order", 1)
        .or_else(|_| btf.offset("folio", "_flags_1", 8))
        .unwrap_or(ABSENT);
    c.iter_pipe = match btf.enum_value("iter_type", "ITER_PIPE") {
        Ok(v) if (0..256).contains(&v) => v as u32,
        _ => ABSENT,
    };
    match btf.function_params("filemap_get_pages").as_deref() {
        Some([_, second, ..]) if second == "count" => c.get_pages_count_arg = 1,
        Some([_, second, ..]) if second == "iter" => c.get_pages_count_arg = 0,
        other => {
            c.get_pages_count_arg = ABSENT;
            missing.insert(
                Field::get_pages_count_arg,
                match other {
                    Some(p) => FieldMissing::UnknownPrototype {
                        function: "filemap_get_pages",
                        params: p.to_vec(),
                    },
                    None => FieldMissing::NoFunction("filemap_get_pages"),
                },
            );
        }
    }
    if missing.contains_key(&Field::socket_sk) {
        c.file_private_data = ABSENT;
    }
    // fd_inode() in the programs walks all of these; one missing disables the walk.
    if [
        Field::task_files,
        Field::files_struct_fdt,
        Field::fdtable_max_fds,
        Field::fdtable_fd,
        Field::file_f_inode,
        Field::inode_i_mode,
    ]
    .iter()
    .any(|f| missing.contains_key(f))
    {
        c.task_files = ABSENT;
    }
    match btf.tracepoint_args("io_uring_complete") {
        Some(3) => c.io_uring_complete_cqe = 1,
        Some(7) => c.io_uring_complete_cqe = 0,
        other => {
            c.io_uring_complete_cqe = ABSENT;
            missing.insert(
                Field::io_uring_complete_cqe,
                FieldMissing::UnknownArgs {
                    tracepoint: "io_uring_complete",
                    args: other.unwrap_or(0),
                },
            );
        }
    }
    c.exit_has_group_dead = (btf.tracepoint_args("sched_process_exit") == Some(2)) as u32;
    c.retransmit_has_err = (btf.tracepoint_args("tcp_retransmit_skb") == Some(3)) as u32;
    match btf.enum_value("pageflags", "PG_head") {
        Ok(v) if (0..64).contains(&v) => c.pg_head = v as u32,
        _ => {
            // Without PG_head the folio order cannot be read: report it as unknown.
            c.folio_order_byte = ABSENT;
        }
    }
}

/// Why this build's `program` for `hook` cannot attach on the kernel with this BTF (a
/// layout or prototype it cannot read), if so; `None` too where the kernel lacks the
/// hook (the plan says that).
pub(super) fn unusable(
    hook: &Hook,
    program: &Program,
    kbtf: &KernelBtf,
    missing: &BTreeMap<Field, FieldMissing>,
) -> Option<Unusable> {
    let in_kernel = match hook.tier {
        Tier::Tracepoint => kbtf.has_tracepoint(hook.target),
        _ => kbtf.has_function(hook.target),
    };
    if !in_kernel {
        return None;
    }
    if let Check::TracepointArgs {
        args,
        reads,
        kernels,
    } = program.check
        && let Some(n) = kbtf.tracepoint_args(hook.target)
        && n != args
    {
        return Some(Unusable::Arguments {
            tracepoint: hook.target,
            args: n,
            reads,
            kernels,
        });
    }
    if let Some(why) = program.needs.iter().find_map(|f| missing.get(f)) {
        return Some(Unusable::Layout(why.clone()));
    }
    let Check::Params(want) = program.check else {
        return None;
    };
    let params = kbtf.function_params(hook.target)?;
    let differs = want.len() > params.len()
        || want
            .iter()
            .zip(&params)
            .any(|(want, got)| !want.is_empty() && want != got);
    differs.then_some(Unusable::Prototype {
        function: hook.target,
        params,
    })
}

/// What this build has programs for, and, on the kernel with this BTF, which of them it
/// would skip (a layout, prototype or tracepoint it cannot read) and why: the planner's
/// `Build`. The kernel's layout is resolved once.
pub fn build(kbtf: Option<&KernelBtf>) -> Build {
    let mut build = Build::programs();
    if let Some(kbtf) = kbtf {
        build_on(&mut build, kbtf, &resolve_config(kbtf).missing);
    }
    build
}

/// Marks the programs of `build` that cannot attach on this kernel.
pub(super) fn build_on(
    build: &mut Build,
    kbtf: &KernelBtf,
    missing: &BTreeMap<Field, FieldMissing>,
) {
    for (hook, program) in hooks::programs() {
        if let Some(why) = unusable(hook, program, kbtf, missing) {
            build.unusable.insert(hook.id(), why);
        }
    }
}

/// Reads the `enum iter_type` numbering (it changed three times in 6.x).
pub(super) fn kernel_consts(btf: &KernelBtf) -> KernelConsts {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::probe::{btf::running_kernel_btf, plan};

    #[test]
    fn a_field_is_optional_exactly_when_no_program_needs_it() {
        // An optional field is one the programs test for ABSENT themselves: needing it
        // would skip a program for nothing. A field that is not optional is read as it is:
        // a program that reads it must skip where it is missing.
        let needed: BTreeSet<Field> = hooks::programs()
            .flat_map(|(_, p)| p.needs.iter().copied())
            .collect();
        for spec in FIELDS.iter().filter(|s| s.source != Source::Padding) {
            assert_eq!(
                spec.optional,
                !needed.contains(&spec.field),
                "{} is {}optional",
                spec.name,
                if spec.optional { "" } else { "not " }
            );
        }
    }

    #[test]
    fn a_prototype_or_name_the_build_does_not_read_is_reported_not_misread() {
        let btf = running_kernel_btf();
        let missing = resolve_config(&btf).missing;
        let hook = plan::find(Tier::Fentry, "filemap_read").unwrap();
        let wrong = Program {
            needs: &[],
            check: Check::Params(&["not_the_iocb"]),
            ..hook.program.unwrap()
        };
        let why = unusable(hook, &wrong, &btf, &missing);
        assert!(
            matches!(
                &why,
                Some(Unusable::Prototype { function: "filemap_read", params })
                    if matches!(params.as_slice(), [first, _, ..] if first == "iocb")
            ),
            "{why:?}"
        );
        // This build's own programs read the running kernel's prototypes.
        for (hook, program) in hooks::programs() {
            let why = unusable(hook, program, &btf, &missing);
            assert!(
                !matches!(why, Some(Unusable::Prototype { .. })),
                "{hook}: {why:?}"
            );
        }
    }

    #[test]
    fn resolves_the_x86_64_abi_layout_from_btf() {
        let btf = running_kernel_btf();
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
        let btf = running_kernel_btf();
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
