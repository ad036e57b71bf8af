//! The probe planner (pure): from what a kernel allows (`Caps`) and what this build has
//! programs for, choose for every step of KERNEL_PATHS.md the best hook — fentry/fexit,
//! then kprobe/kretprobe, then a tracepoint — and say for every better hook not used why
//! not. `tracer doctor` prints the plan; the loader follows it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

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
            Tier::Fentry => "fentry",
            Tier::Kprobe => "kprobe",
            Tier::Tracepoint => "tracepoint",
        }
    }
}

/// One candidate hook of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Hook {
    pub tier: Tier,
    /// The kernel function (fentry/kprobe) or the tracepoint.
    pub target: &'static str,
    /// What the step is, seen through this hook: observed, or only inferred.
    pub observes: bool,
    /// A kernel function whose presence means this hook does not see the step (the
    /// kernel takes that function's path instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unless: Option<&'static str>,
}

/// A step of the data path and its candidate hooks, best first.
pub struct StepSpec {
    pub step: &'static str,
    /// Methods it matters for (all when empty).
    pub methods: &'static [&'static str],
    pub hooks: &'static [Hook],
    /// How the step is known when no hook attaches.
    pub fallback: &'static str,
}

const fn f(target: &'static str) -> Hook {
    Hook {
        tier: Tier::Fentry,
        target,
        observes: true,
        unless: None,
    }
}
const fn k(target: &'static str) -> Hook {
    Hook {
        tier: Tier::Kprobe,
        target,
        observes: true,
        unless: None,
    }
}
const fn t(target: &'static str) -> Hook {
    Hook {
        tier: Tier::Tracepoint,
        target,
        observes: true,
        unless: None,
    }
}
/// A tracepoint that only lets the step be inferred.
const fn ti(target: &'static str) -> Hook {
    Hook {
        tier: Tier::Tracepoint,
        target,
        observes: false,
        unless: None,
    }
}
/// A hook that sees the step only on kernels without function `unless`.
const fn unless(hook: Hook, unless: &'static str) -> Hook {
    Hook {
        unless: Some(unless),
        ..hook
    }
}

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

/// Every method that sends over a socket (all but copy-file-range).
const SOCKET_METHODS: &[&str] = &[
    "read-write",
    "read-send",
    "mmap-write",
    "sendfile",
    "splice",
    "msg-zerocopy",
    "io-uring",
];

/// The steps of KERNEL_PATHS.md §3 and §7, with their hooks best first.
pub const STEPS: &[StepSpec] = &[
    StepSpec {
        step: "mode switch user -> kernel (syscall entry)",
        methods: &[],
        hooks: &[t("sys_enter")],
        fallback: "none: the tracer needs the syscall tracepoints",
    },
    StepSpec {
        step: "mode switch kernel -> user (syscall return)",
        methods: &[],
        hooks: &[t("sys_exit")],
        fallback: "none: the tracer needs the syscall tracepoints",
    },
    StepSpec {
        step: "page-cache lookup (hit or miss)",
        methods: &[],
        hooks: &[
            f("filemap_get_pages"),
            k("filemap_get_pages"),
            t("mm_filemap_get_pages"),
        ],
        fallback: "not seen: hits and misses are not counted",
    },
    StepSpec {
        step: "DMA disk -> page cache (miss)",
        methods: &[],
        hooks: &[
            f("blk_mq_start_request"),
            k("blk_mq_start_request"),
            t("block_rq_issue"),
        ],
        fallback: "not seen",
    },
    StepSpec {
        step: "CPU copy page cache -> user (read)",
        methods: &["read-write", "read-send", "msg-zerocopy", "io-uring"],
        hooks: &[
            f("filemap_read"),
            k("filemap_read"),
            f("copy_page_to_iter"),
            ti("sys_exit"),
        ],
        fallback: "inferred from read()'s return value",
    },
    StepSpec {
        step: "copy / reference / pin decision of a TCP send",
        methods: SOCKET_METHODS,
        hooks: &[
            f("tcp_sendmsg_locked"),
            k("tcp_sendmsg_locked"),
            t("tcp_sendmsg_locked"),
        ],
        fallback: "inferred from the syscall (sendfile/splice reference pages, MSG_ZEROCOPY pins) and confirmed per skb at transmit",
    },
    StepSpec {
        step: "bytes of a TCP send",
        methods: SOCKET_METHODS,
        hooks: &[
            f("tcp_sendmsg_locked"),
            k("tcp_sendmsg_locked"),
            t("sock_send_length"),
        ],
        fallback: "inferred from the syscall's return value",
    },
    StepSpec {
        step: "page references into the skb (sendfile, splice)",
        methods: &["sendfile", "splice"],
        hooks: &[
            f("skb_splice_from_iter"),
            k("skb_splice_from_iter"),
            k("do_tcp_sendpages"),
            ti("net_dev_start_xmit"),
        ],
        fallback: "inferred from the skb's SHARED_FRAG flag at transmit",
    },
    StepSpec {
        step: "pinned user pages into the skb (MSG_ZEROCOPY, SEND_ZC)",
        methods: &["msg-zerocopy", "io-uring"],
        hooks: &[
            f("skb_zerocopy_iter_stream"),
            k("skb_zerocopy_iter_stream"),
            ti("net_dev_start_xmit"),
        ],
        fallback: "inferred from the skb's zero-copy flag at transmit",
    },
    StepSpec {
        step: "transmit (DMA to the NIC, or the loopback hand-off)",
        methods: SOCKET_METHODS,
        hooks: &[
            f("dev_hard_start_xmit"),
            k("dev_hard_start_xmit"),
            t("net_dev_start_xmit"),
        ],
        fallback: "not seen",
    },
    StepSpec {
        step: "loopback's deferred copy of pinned pages",
        methods: &["msg-zerocopy", "io-uring"],
        hooks: &[
            f("skb_copy_ubufs"),
            k("skb_copy_ubufs"),
            ti("netif_receive_skb"),
        ],
        fallback: "a zero-copy skb reaching netif_receive_skb is copied (skb_copy_ubufs)",
    },
    StepSpec {
        step: "CPU copy skb -> user (the receiver)",
        methods: SOCKET_METHODS,
        hooks: &[
            f("skb_copy_datagram_iter"),
            k("skb_copy_datagram_iter"),
            t("skb_copy_datagram_iovec"),
        ],
        fallback: "inferred from the receive's return value",
    },
    StepSpec {
        step: "page references into a pipe (splice)",
        methods: &["splice"],
        hooks: &[
            f("splice_folio_into_pipe"),
            k("splice_folio_into_pipe"),
            // Before 6.5 (no filemap_splice_read) a splice read goes through filemap_read
            // into a pipe iterator.
            unless(f("filemap_read"), "filemap_splice_read"),
            ti("sys_exit"),
        ],
        fallback: "inferred from splice()'s return value",
    },
    StepSpec {
        step: "CPU copy page cache -> page cache (copy_file_range)",
        methods: &["copy-file-range"],
        hooks: &[
            f("generic_perform_write"),
            k("generic_perform_write"),
            t("ext4_da_write_end"),
        ],
        fallback: "inferred from the syscall's return value",
    },
    StepSpec {
        step: "mmap faults mapping page-cache pages",
        methods: &["mmap-write"],
        hooks: &[
            f("filemap_map_pages"),
            k("filemap_map_pages"),
            t("mm_filemap_map_pages"),
        ],
        fallback: "not seen: hits and misses of the mapping are not counted",
    },
    StepSpec {
        step: "io_uring requests",
        methods: &["io-uring"],
        hooks: &[
            f("io_issue_sqe"),
            k("io_issue_sqe"),
            t("io_uring_submit_req"),
            // Its name before 6.4.
            t("io_uring_submit_sqe"),
        ],
        fallback: "not seen: io_uring cannot be traced",
    },
    StepSpec {
        step: "io_uring completions (and SEND_ZC's notifications)",
        methods: &["io-uring"],
        hooks: &[t("io_uring_complete")],
        fallback: "not seen: io_uring cannot be traced",
    },
    StepSpec {
        step: "the copy helpers themselves (_copy_to_iter, _copy_from_iter, copy_page_to_iter, _copy_to_user, _copy_from_user)",
        methods: &[],
        hooks: &[
            f("_copy_to_iter"),
            f("_copy_from_iter"),
            f("copy_page_to_iter"),
            f("_copy_to_user"),
            f("_copy_from_user"),
            k("_copy_to_iter"),
            k("_copy_from_iter"),
            k("copy_page_to_iter"),
            k("_copy_to_user"),
            k("_copy_from_user"),
        ],
        fallback: "observed at their traceable callers instead",
    },
];

/// What a kernel allows, as `probe::caps` measured it (or a test made up).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Caps {
    pub kernel: String,
    /// `None` when the kernel has BTF.
    pub no_btf: Option<String>,
    /// fentry/fexit as a whole (BTF trampolines): refused here, or why not.
    pub fentry: Option<String>,
    /// kprobes as a whole: not built in, or why not.
    pub kprobes: Option<String>,
    /// BPF ring buffers (5.8+), which the tracer needs: `None` when supported.
    pub ringbuf: Option<String>,
    /// BPF program types and whether this kernel supports them ("yes", "no", or why it is
    /// not known; empty: not probed).
    pub program_types: BTreeMap<String, String>,
    /// Functions an fentry trial was refused on, and how (where fentry works elsewhere).
    pub fentry_refused: BTreeMap<String, String>,
    /// Functions a kprobe trial was refused on, and how.
    pub kprobe_refused: BTreeMap<String, String>,
    /// How many functions each tier was tried on (fentry, kprobe).
    pub tried: (usize, usize),
    /// The function the first fentry trial (fentry at all) was made on.
    pub fentry_tried_on: Option<String>,
    /// Tracepoints with BTF prototypes (`btf_trace_<name>`).
    pub tracepoints: BTreeSet<String>,
    /// Kernel functions: why one cannot be hooked (absent, inlined, notrace); absent from
    /// this map means it can.
    pub functions: BTreeMap<String, String>,
}

/// Hooks this build has kernel programs for.
#[derive(Clone, Debug, Default)]
pub struct Build {
    pub hooks: BTreeSet<(Tier, &'static str)>,
    /// Programs this build has but cannot attach on this kernel, and why (a struct layout
    /// or tracepoint prototype it cannot read).
    pub unusable: BTreeMap<(Tier, &'static str), String>,
}

impl Build {
    /// What the tracer built here carries: the tracepoint tier.
    pub fn tracepoints(names: &[&'static str]) -> Build {
        Build {
            hooks: names.iter().map(|n| (Tier::Tracepoint, *n)).collect(),
            unusable: BTreeMap::new(),
        }
    }
}

/// A step's choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub step: &'static str,
    pub methods: Vec<&'static str>,
    /// The hook used, if any.
    pub hook: Option<Hook>,
    /// `observed` or `inferred`, and how.
    pub evidence: String,
    /// Every better hook not used, and why.
    #[serde(serialize_with = "not_used_json")]
    pub not_used: Vec<(Hook, String)>,
}

/// `not_used` in JSON: `[{"tier", "target", "why"}]`.
fn not_used_json<S: serde::Serializer>(v: &[(Hook, String)], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct NotUsed<'a> {
        tier: Tier,
        target: &'a str,
        why: &'a str,
    }
    s.collect_seq(v.iter().map(|(h, why)| NotUsed {
        tier: h.tier,
        target: h.target,
        why,
    }))
}

/// Why `hook` cannot be used on this kernel with this build; `None` when it can.
fn refusal(hook: &Hook, caps: &Caps, build: &Build) -> Option<String> {
    match hook.tier {
        Tier::Fentry | Tier::Kprobe => {
            // A function the kernel does not have: that is the reason, whatever the tier.
            if !present(caps, hook.target) {
                return caps.functions.get(hook.target).cloned();
            }
            if hook.tier == Tier::Fentry {
                if let Some(why) = &caps.no_btf {
                    return Some(format!("fentry needs BTF: {why}"));
                }
                if let Some(why) = &caps.fentry {
                    return Some(format!("fentry {why}"));
                }
            } else if let Some(why) = &caps.kprobes {
                return Some(why.clone());
            }
            if let Some(why) = caps.functions.get(hook.target) {
                return Some(why.clone());
            }
            let refused = if hook.tier == Tier::Fentry {
                &caps.fentry_refused
            } else {
                &caps.kprobe_refused
            };
            if let Some(why) = refused.get(hook.target) {
                return Some(format!("tried here: {why}"));
            }
            if let Some(other) = hook.unless
                && present(caps, other)
            {
                return Some(format!(
                    "{other} is in this kernel: the step goes through it, not {}",
                    hook.target
                ));
            }
        }
        Tier::Tracepoint => {
            if !caps.tracepoints.contains(hook.target) {
                let since = match hook.target {
                    "tcp_sendmsg_locked" => " (added in 6.16)",
                    "sock_send_length" => " (added in 6.3)",
                    "mm_filemap_get_pages" | "mm_filemap_map_pages" => " (added around 6.11)",
                    "io_uring_submit_req" => " (named io_uring_submit_sqe before 6.4)",
                    "io_uring_submit_sqe" => " (renamed io_uring_submit_req in 6.4)",
                    _ => "",
                };
                return Some(format!(
                    "this kernel has no {} tracepoint{since}",
                    hook.target
                ));
            }
        }
    }
    if let Some(why) = build.unusable.get(&(hook.tier, hook.target)) {
        return Some(format!("this build's program cannot attach here: {why}"));
    }
    if !build.hooks.contains(&(hook.tier, hook.target)) {
        return Some(format!(
            "this kernel would allow it, but this build has no {} program for it",
            hook.tier.name()
        ));
    }
    None
}

/// Whether kernel function `name` exists (it may still be untraceable): `Caps::functions`
/// names the absent ones.
fn present(caps: &Caps, name: &str) -> bool {
    caps.functions
        .get(name)
        .is_none_or(|why| !why.starts_with(ABSENT_BTF) && !why.starts_with(ABSENT_SYMBOL))
}

/// How `probe::caps` words an absent function.
pub const ABSENT_BTF: &str = "not in this kernel's BTF";
pub const ABSENT_SYMBOL: &str = "not a kernel symbol";

/// The plan for every step.
pub fn plan(caps: &Caps, build: &Build) -> Vec<Planned> {
    // Before 6.5 (no skb_splice_from_iter) sendfile and splice reach TCP through
    // ->sendpage, not tcp_sendmsg_locked: its hooks do not see them.
    let sendpage_era = !present(caps, "skb_splice_from_iter");
    STEPS
        .iter()
        .map(|spec| {
            let mut not_used = Vec::new();
            let mut chosen = None;
            for hook in spec.hooks {
                match refusal(hook, caps, build) {
                    None => {
                        chosen = Some(*hook);
                        break;
                    }
                    Some(why) => not_used.push((*hook, why)),
                }
            }
            let evidence = match chosen {
                Some(h) if h.observes => "observed".to_string(),
                Some(_) if spec.fallback.starts_with("inferred") => spec.fallback.to_string(),
                Some(_) => format!("inferred: {}", spec.fallback),
                None => format!("no hook: {}", spec.fallback),
            };
            let through_sendmsg = spec.hooks.iter().any(|h| h.target == "tcp_sendmsg_locked");
            let methods = spec
                .methods
                .iter()
                .copied()
                .filter(|m| {
                    !(sendpage_era && through_sendmsg && matches!(*m, "sendfile" | "splice"))
                })
                .collect();
            Planned {
                step: spec.step,
                methods,
                hook: chosen,
                evidence,
                not_used,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tracepoint the steps name.
    fn all_tracepoints() -> BTreeSet<String> {
        STEPS
            .iter()
            .flat_map(|s| s.hooks)
            .filter(|h| h.tier == Tier::Tracepoint)
            .map(|h| h.target.to_string())
            .collect()
    }

    fn build_all() -> Build {
        Build {
            hooks: STEPS
                .iter()
                .flat_map(|s| s.hooks)
                .map(|h| (h.tier, h.target))
                .collect(),
            unusable: BTreeMap::new(),
        }
    }

    fn chosen<'a>(p: &'a [Planned], step: &str) -> &'a Planned {
        p.iter().find(|s| s.step.starts_with(step)).unwrap()
    }

    /// This project's CI kernel: no kprobes, fentry refused, every tracepoint.
    fn linux_6_18_here() -> Caps {
        Caps {
            kernel: "6.18".into(),
            fentry: Some("refused with EPERM at program load (tried on tcp_sendmsg_locked)".into()),
            kprobes: Some("kprobes are not built into this kernel (no kprobe PMU)".into()),
            tracepoints: all_tracepoints(),
            ..Caps::default()
        }
    }

    #[test]
    fn a_tracepoint_only_kernel_uses_tracepoints_and_says_why_not_better() {
        let p = plan(&linux_6_18_here(), &build_all());
        let send = chosen(&p, "copy / reference / pin decision");
        assert_eq!(send.hook.map(|h| h.tier), Some(Tier::Tracepoint));
        assert_eq!(send.not_used.len(), 2);
        assert!(send.not_used[0].1.contains("EPERM"), "{:?}", send.not_used);
        assert!(
            send.not_used[1].1.contains("not built into"),
            "{:?}",
            send.not_used
        );
        let read = chosen(&p, "CPU copy page cache -> user");
        assert_eq!(read.evidence, "inferred from read()'s return value");
    }

    #[test]
    fn a_distro_kernel_with_fentry_observes_the_copies() {
        // Debian's 6.1: fentry and kprobes work; no tcp_sendmsg_locked tracepoint, no
        // mm_filemap_get_pages, no skb_splice_from_iter (pre-6.5 sendpage era), and the
        // copy helpers are notrace.
        let mut tps = all_tracepoints();
        for tp in [
            "tcp_sendmsg_locked",
            "mm_filemap_get_pages",
            "sock_send_length",
            "mm_filemap_map_pages",
        ] {
            tps.remove(tp);
        }
        let mut functions = BTreeMap::new();
        for absent in ["skb_splice_from_iter", "splice_folio_into_pipe"] {
            functions.insert(absent.to_string(), format!("{ABSENT_BTF} (before 6.5)"));
        }
        functions.insert(
            "filemap_splice_read".to_string(),
            format!("{ABSENT_BTF} (absent, or inlined everywhere)"),
        );
        // Measured on Debian's 6.1: none of the copy helpers is in
        // available_filter_functions.
        for helper in [
            "_copy_to_iter",
            "_copy_from_iter",
            "copy_page_to_iter",
            "_copy_to_user",
            "_copy_from_user",
        ] {
            functions.insert(
                helper.to_string(),
                "notrace: not in available_filter_functions".to_string(),
            );
        }
        let caps = Caps {
            kernel: "6.1".into(),
            tracepoints: tps,
            functions,
            ..Caps::default()
        };
        let p = plan(&caps, &build_all());
        assert_eq!(
            chosen(&p, "CPU copy page cache -> user").hook,
            Some(f("filemap_read"))
        );
        let send = chosen(&p, "copy / reference / pin");
        assert_eq!(send.hook, Some(f("tcp_sendmsg_locked")));
        // Before 6.5, sendfile and splice go through ->sendpage: not seen there.
        assert!(!send.methods.contains(&"sendfile") && send.methods.contains(&"read-write"));
        let refs = chosen(&p, "page references into the skb");
        assert_eq!(refs.hook, Some(k("do_tcp_sendpages")));
        assert!(refs.not_used[0].1.contains("before 6.5"));
        // Before 6.5 a splice read goes through filemap_read into the pipe.
        assert_eq!(
            chosen(&p, "page references into a pipe").hook,
            Some(unless(f("filemap_read"), "filemap_splice_read"))
        );
        let helpers = chosen(&p, "the copy helpers");
        assert_eq!(helpers.hook, None);
        assert!(
            helpers.evidence.contains("traceable callers"),
            "{}",
            helpers.evidence
        );
        assert!(
            helpers
                .not_used
                .iter()
                .all(|(_, why)| why.contains("notrace"))
        );
    }

    #[test]
    fn every_method_a_step_names_is_a_method() {
        // doctor --method filters steps by these names: a typo would hide a step.
        use crate::workload::Method;
        for spec in STEPS {
            for m in spec.methods {
                assert!(Method::from_name(m).is_some(), "{}: {m}", spec.step);
            }
        }
        let socket: Vec<&str> = Method::ALL
            .iter()
            .filter(|m| **m != Method::CopyFileRange)
            .map(|m| m.name())
            .collect();
        assert_eq!(SOCKET_METHODS, socket.as_slice());
    }

    #[test]
    fn a_function_the_fentry_trial_was_refused_on_falls_to_the_next_tier() {
        let mut caps = Caps {
            kernel: "6.1".into(),
            tracepoints: all_tracepoints(),
            ..Caps::default()
        };
        caps.fentry_refused.insert(
            "skb_copy_datagram_iter".into(),
            "refused with EBUSY at attach".into(),
        );
        caps.kprobe_refused.insert(
            "skb_copy_datagram_iter".into(),
            "kprobe failed at attach: blacklisted".into(),
        );
        let p = plan(&caps, &build_all());
        let rx = chosen(&p, "CPU copy skb -> user");
        assert_eq!(rx.hook, Some(t("skb_copy_datagram_iovec")));
        assert_eq!(
            rx.not_used
                .iter()
                .map(|(h, why)| (h.tier, why.as_str()))
                .collect::<Vec<_>>(),
            [
                (Tier::Fentry, "tried here: refused with EBUSY at attach"),
                (
                    Tier::Kprobe,
                    "tried here: kprobe failed at attach: blacklisted"
                ),
            ]
        );
        // Other steps keep the fentry tier.
        assert_eq!(
            chosen(&p, "CPU copy page cache -> user").hook,
            Some(f("filemap_read"))
        );
    }

    #[test]
    fn filemap_read_does_not_see_splice_reads_where_filemap_splice_read_exists() {
        // A 6.8 kernel that allows fentry but where splice_folio_into_pipe is inlined.
        let mut functions = BTreeMap::new();
        functions.insert(
            "splice_folio_into_pipe".to_string(),
            format!("{ABSENT_BTF} (absent, or inlined everywhere)"),
        );
        let caps = Caps {
            kernel: "6.8".into(),
            tracepoints: all_tracepoints(),
            functions,
            ..Caps::default()
        };
        let p = plan(&caps, &build_all());
        let pipe = chosen(&p, "page references into a pipe");
        assert_eq!(pipe.hook, Some(ti("sys_exit")));
        assert!(
            pipe.not_used[2]
                .1
                .contains("filemap_splice_read is in this kernel"),
            "{:?}",
            pipe.not_used
        );
    }

    #[test]
    fn a_6_8_kernel_without_the_send_tracepoint_infers_the_decision() {
        let mut tps = all_tracepoints();
        tps.remove("tcp_sendmsg_locked");
        let caps = Caps {
            kernel: "6.8".into(),
            fentry: Some("refused with EPERM at program load".into()),
            kprobes: Some("kprobes are not built into this kernel".into()),
            tracepoints: tps,
            ..Caps::default()
        };
        let p = plan(&caps, &build_all());
        let send = chosen(&p, "copy / reference / pin decision");
        assert_eq!(send.hook, None);
        assert!(
            send.evidence
                .starts_with("no hook: inferred from the syscall"),
            "{}",
            send.evidence
        );
        assert!(
            send.not_used[2]
                .1
                .contains("no tcp_sendmsg_locked tracepoint")
        );
        // The bytes still come from sock_send_length.
        assert_eq!(
            chosen(&p, "bytes of a TCP send").hook,
            Some(t("sock_send_length"))
        );
    }

    #[test]
    fn without_btf_fentry_is_out_and_says_so() {
        let caps = Caps {
            kernel: "5.15".into(),
            no_btf: Some("no /sys/kernel/btf/vmlinux".into()),
            kprobes: Some("kprobes are not built into this kernel".into()),
            ..Caps::default()
        };
        let p = plan(&caps, &build_all());
        for s in &p {
            assert_eq!(s.hook, None, "{}", s.step);
            for (h, why) in &s.not_used {
                if h.tier == Tier::Fentry {
                    assert!(why.contains("needs BTF"), "{why}");
                }
            }
        }
    }

    #[test]
    fn a_hook_the_kernel_allows_but_this_build_lacks_is_named_as_such() {
        let caps = Caps {
            kernel: "6.1".into(),
            tracepoints: all_tracepoints(),
            ..Caps::default()
        };
        let p = plan(
            &caps,
            &Build::tracepoints(&["sys_enter", "sys_exit", "tcp_sendmsg_locked"]),
        );
        let send = chosen(&p, "copy / reference / pin decision");
        assert_eq!(send.hook, Some(t("tcp_sendmsg_locked")));
        assert!(
            send.not_used[0]
                .1
                .contains("this build has no fentry program")
        );
    }
}
