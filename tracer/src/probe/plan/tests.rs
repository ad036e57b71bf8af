use super::*;
use crate::probe::hooks::HOOKS;
use crate::probe::why::{Answer, Refusal, Stage};

/// Every tracepoint the steps name.
fn all_tracepoints() -> BTreeSet<String> {
    hooks::step_tracepoints().map(str::to_string).collect()
}

/// A build with a program for every hook of the steps.
fn build_all() -> Build {
    Build {
        hooks: HOOKS
            .iter()
            .filter(|h| !h.roles.is_empty())
            .map(|h| h.id())
            .collect(),
        unusable: BTreeMap::new(),
    }
}

fn chosen<'a>(p: &'a [Planned], step: &str) -> &'a Planned {
    p.iter().find(|s| s.step.starts_with(step)).unwrap()
}

/// The chosen hook's tier, target and `unless`.
fn used(p: &Planned) -> Option<(Tier, &'static str, Option<&'static str>)> {
    p.hook.map(|c| (c.hook.tier, c.hook.target, c.unless))
}

fn f(target: &'static str) -> Option<(Tier, &'static str, Option<&'static str>)> {
    Some((Tier::Fentry, target, None))
}

fn t(target: &'static str) -> Option<(Tier, &'static str, Option<&'static str>)> {
    Some((Tier::Tracepoint, target, None))
}

fn refused(errno: i32, at: Stage) -> TrialError {
    TrialError::Refused {
        by: None,
        refusal: Refusal {
            at,
            answer: Answer::Errno(errno),
        },
    }
}

fn not_built_in() -> Lack {
    Lack::NotBuiltIn {
        evidence: "no kprobe PMU",
    }
}

fn absent() -> FunctionLack {
    FunctionLack::NotInBtf { era: None }
}

/// This project's CI kernel: no kprobes, fentry refused, every tracepoint.
fn linux_6_18_here() -> Caps {
    Caps {
        kernel: "6.18".into(),
        fentry: Some(Lack::Refused(refused(libc::EPERM, Stage::ProgramLoad))),
        kprobes: Some(not_built_in()),
        tracepoints: all_tracepoints(),
        ..Caps::default()
    }
}

#[test]
fn a_tracepoint_only_kernel_uses_tracepoints_and_says_why_not_better() {
    let p = plan(&linux_6_18_here(), &build_all());
    let send = chosen(&p, "copy / reference / pin decision");
    assert_eq!(send.hook.map(|c| c.hook.tier), Some(Tier::Tracepoint));
    assert_eq!(send.not_used.len(), 2);
    assert_eq!(
        send.not_used[0].1,
        Unused::Tier {
            tier: Tier::Fentry,
            lack: Lack::Refused(refused(libc::EPERM, Stage::ProgramLoad)),
        },
        "{:?}",
        send.not_used
    );
    assert_eq!(
        send.not_used[1].1,
        Unused::Tier {
            tier: Tier::Kprobe,
            lack: not_built_in(),
        },
        "{:?}",
        send.not_used
    );
    let read = chosen(&p, "CPU copy page cache -> user");
    assert!(
        matches!(read.evidence, PlanEvidence::Inferred(Fallback::Inferred(from)) if from == "from read()'s return value"),
        "{:?}",
        read.evidence
    );
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
        functions.insert(
            absent.to_string(),
            FunctionLack::NotInBtf {
                era: Some("before 6.5"),
            },
        );
    }
    functions.insert("filemap_splice_read".to_string(), absent());
    // Measured on Debian's 6.1: none of the copy helpers is in
    // available_filter_functions.
    for helper in [
        "_copy_to_iter",
        "_copy_from_iter",
        "copy_page_to_iter",
        "_copy_to_user",
        "_copy_from_user",
    ] {
        functions.insert(helper.to_string(), FunctionLack::Notrace);
    }
    let caps = Caps {
        kernel: "6.1".into(),
        tracepoints: tps,
        functions,
        ..Caps::default()
    };
    let p = plan(&caps, &build_all());
    assert_eq!(
        used(chosen(&p, "CPU copy page cache -> user")),
        f("filemap_read")
    );
    let send = chosen(&p, "copy / reference / pin");
    assert_eq!(used(send), f("tcp_sendmsg_locked"));
    // Before 6.5, sendfile and splice go through ->sendpage: not seen there.
    assert!(!send.methods.contains(&Method::Sendfile) && send.methods.contains(&Method::ReadWrite));
    let refs = chosen(&p, "page references into the skb");
    assert_eq!(used(refs), Some((Tier::Kprobe, "do_tcp_sendpages", None)));
    assert_eq!(
        refs.not_used[0].1,
        Unused::Function(FunctionLack::NotInBtf {
            era: Some("before 6.5")
        })
    );
    // Before 6.5 a splice read goes through filemap_read into the pipe.
    assert_eq!(
        used(chosen(&p, "page references into a pipe")),
        Some((Tier::Fentry, "filemap_read", Some("filemap_splice_read")))
    );
    let helpers = chosen(&p, "the copy helpers");
    assert_eq!(helpers.hook, None);
    let spec = STEPS.iter().find(|s| s.step == helpers.id).unwrap();
    assert_eq!(helpers.evidence, PlanEvidence::NoHook(spec.fallback));
    assert!(
        helpers
            .not_used
            .iter()
            .all(|(_, why)| *why == Unused::Function(FunctionLack::Notrace))
    );
}

#[test]
fn the_socket_methods_are_every_method_but_copy_file_range() {
    let socket: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|m| *m != Method::CopyFileRange)
        .collect();
    assert_eq!(crate::probe::steps::SOCKET_METHODS, socket.as_slice());
}

#[test]
fn a_function_the_fentry_trial_was_refused_on_falls_to_the_next_tier() {
    let mut caps = Caps {
        kernel: "6.1".into(),
        tracepoints: all_tracepoints(),
        ..Caps::default()
    };
    // (A made-up kernel's words: the errno names the loader knows leave EBUSY a number.)
    caps.fentry_refused.insert(
        "skb_copy_datagram_iter".into(),
        TrialError::Other("refused with EBUSY at attach".into()),
    );
    caps.kprobe_refused.insert(
        "skb_copy_datagram_iter".into(),
        TrialError::Refused {
            by: Some("kprobe"),
            refusal: Refusal {
                at: Stage::Attach,
                answer: Answer::Failed("blacklisted".into()),
            },
        },
    );
    let p = plan(&caps, &build_all());
    let rx = chosen(&p, "CPU copy skb -> user");
    assert_eq!(used(rx), t("skb_copy_datagram_iovec"));
    assert_eq!(
        rx.not_used
            .iter()
            .map(|(c, why)| (c.hook.tier, why.to_string()))
            .collect::<Vec<_>>(),
        [
            (
                Tier::Fentry,
                "tried here: refused with EBUSY at attach".to_string()
            ),
            (
                Tier::Kprobe,
                "tried here: kprobe failed at attach: blacklisted".to_string()
            ),
        ]
    );
    // Other steps keep the fentry tier.
    assert_eq!(
        used(chosen(&p, "CPU copy page cache -> user")),
        f("filemap_read")
    );
}

#[test]
fn filemap_read_does_not_see_splice_reads_where_filemap_splice_read_exists() {
    // A 6.8 kernel that allows fentry but where splice_folio_into_pipe is inlined.
    let mut functions = BTreeMap::new();
    functions.insert("splice_folio_into_pipe".to_string(), absent());
    let caps = Caps {
        kernel: "6.8".into(),
        tracepoints: all_tracepoints(),
        functions,
        ..Caps::default()
    };
    let p = plan(&caps, &build_all());
    let pipe = chosen(&p, "page references into a pipe");
    assert_eq!(
        pipe.hook.map(|c| (c.hook.target, c.observes)),
        Some(("sys_exit", false))
    );
    assert_eq!(
        pipe.not_used[2].1,
        Unused::GoesThrough {
            function: "filemap_splice_read",
            target: "filemap_read",
        },
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
        fentry: Some(Lack::Refused(refused(libc::EPERM, Stage::ProgramLoad))),
        kprobes: Some(not_built_in()),
        tracepoints: tps,
        ..Caps::default()
    };
    let p = plan(&caps, &build_all());
    let send = chosen(&p, "copy / reference / pin decision");
    assert_eq!(send.hook, None);
    assert!(
        matches!(send.evidence, PlanEvidence::NoHook(Fallback::Inferred(_))),
        "{:?}",
        send.evidence
    );
    assert_eq!(
        send.not_used[2].1,
        Unused::TracepointMissing {
            tracepoint: "tcp_sendmsg_locked",
            note: Some("added in 6.16"),
        }
    );
    // The bytes still come from sock_send_length.
    assert_eq!(
        used(chosen(&p, "bytes of a TCP send")),
        t("sock_send_length")
    );
}

#[test]
fn without_btf_fentry_is_out_and_says_so() {
    let caps = Caps {
        kernel: "5.15".into(),
        no_btf: Some(NoBtf("no /sys/kernel/btf/vmlinux".into())),
        kprobes: Some(not_built_in()),
        ..Caps::default()
    };
    let p = plan(&caps, &build_all());
    for s in &p {
        assert_eq!(s.hook, None, "{}", s.step);
        for (c, why) in &s.not_used {
            if c.hook.tier == Tier::Fentry {
                assert_eq!(
                    *why,
                    Unused::NoBtf(NoBtf("no /sys/kernel/btf/vmlinux".into())),
                    "{why}"
                );
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
    assert_eq!(used(send), t("tcp_sendmsg_locked"));
    assert_eq!(send.not_used[0].1, Unused::NoProgram(Tier::Fentry));
}

/// The loader's view of a kernel with every tracepoint where fentry works.
fn fentry_everywhere() -> Caps {
    Caps {
        kernel: "6.16".into(),
        tracepoints: HOOKS
            .iter()
            .filter(|h| h.tier == Tier::Tracepoint && !hooks::is_old_name(h.target))
            .map(|h| h.target.to_string())
            .collect(),
        ..Caps::default()
    }
}

fn choice(caps: &Caps, tier: Tier, target: &str) -> Result<(), String> {
    let build = Build::programs();
    let p = plan(caps, &build);
    let hook = find(tier, target).unwrap();
    attach_choice(hook, &p, caps, &build).map_err(|why| why.to_string())
}

#[test]
fn a_tracepoint_whose_step_an_attached_fexit_sees_is_not_needed() {
    let mut caps = fentry_everywhere();
    assert_eq!(
        choice(&caps, Tier::Tracepoint, "skb_copy_datagram_iovec"),
        Err("not needed: fexit:skb_copy_datagram_iter sees the same step (a better tier)".into())
    );
    assert_eq!(
        choice(&caps, Tier::Fentry, "skb_copy_datagram_iter"),
        Ok(())
    );
    // Refused: the step falls back to the tracepoint.
    let hook = find(Tier::Fentry, "skb_copy_datagram_iter").unwrap();
    caps.refuse(hook, refused(libc::EPERM, Stage::ProgramLoad));
    assert_eq!(
        choice(&caps, Tier::Fentry, "skb_copy_datagram_iter"),
        Err("tried here: refused with EPERM at program load".into())
    );
    assert_eq!(
        choice(&caps, Tier::Tracepoint, "skb_copy_datagram_iovec"),
        Ok(())
    );
}

#[test]
fn the_send_tracepoints_stay_beside_fexit_tcp_sendmsg_locked() {
    let caps = fentry_everywhere();
    assert_eq!(choice(&caps, Tier::Fentry, "tcp_sendmsg_locked"), Ok(()));
    assert_eq!(
        choice(&caps, Tier::Tracepoint, "tcp_sendmsg_locked"),
        Ok(())
    );
    assert_eq!(choice(&caps, Tier::Tracepoint, "sock_send_length"), Ok(()));
}

#[test]
fn bookkeeping_programs_attach_and_missing_ones_say_why() {
    let mut caps = fentry_everywhere();
    assert_eq!(
        choice(&caps, Tier::Tracepoint, "sched_process_fork"),
        Ok(())
    );
    caps.tracepoints.remove("sock_recv_length");
    assert_eq!(
        choice(&caps, Tier::Tracepoint, "sock_recv_length"),
        Err("this kernel has no sock_recv_length tracepoint".into())
    );
    // A renamed tracepoint under the name this kernel does not use.
    assert_eq!(
        attach_choice(
            find(Tier::Tracepoint, "io_uring_submit_sqe").unwrap(),
            &plan(&caps, &Build::programs()),
            &caps,
            &Build::programs()
        ),
        Err(Unused::Renamed {
            tracepoint: "io_uring_submit_sqe",
            note: Some("renamed io_uring_submit_req in 6.4"),
            here: "io_uring_submit_req",
        })
    );
}
