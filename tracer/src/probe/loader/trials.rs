//! Hook trials with the build's empty probe programs (`tracer doctor`).

use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{BtfTracePoint, FEntry, KProbe, ProgramError},
};
use tracer_common::EVENTS_MAP;

use super::{OBJECT, ProbeError, attach::refusal};
use crate::probe::why::{Stage, TrialError};

/// Whether this kernel lets an fentry or a kprobe program attach on a kernel function,
/// tried with empty programs. An error is the kernel's answer. Each trial detaches and
/// unloads what it attached.
pub struct Trials {
    ebpf: Ebpf,
    btf: Btf,
}

/// This build's probe program `name` as type `T`, or `missing` when it is not there.
fn probe_program<'a, T>(
    ebpf: &'a mut Ebpf,
    name: &str,
    missing: &str,
) -> Result<&'a mut T, TrialError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| TrialError::Other(missing.into()))?
        .try_into()
        .map_err(|e: ProgramError| TrialError::Other(e.to_string()))
}

impl Trials {
    /// Loads the object for trials; the error says why it cannot.
    pub fn new() -> Result<Self, String> {
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
        Ok(Self { ebpf, btf })
    }

    /// Loads and attaches the empty fentry program on `target`.
    pub fn fentry(&mut self, target: &str) -> Result<(), TrialError> {
        let prog: &mut FEntry = probe_program(
            &mut self.ebpf,
            "tracer_fentry_probe",
            "the fentry probe program is missing from the object",
        )?;
        let refused = |at, e| TrialError::Refused {
            by: None,
            refusal: refusal(at, e),
        };
        prog.load(target, &self.btf)
            .map_err(|e| refused(Stage::ProgramLoad, e))?;
        let attached = prog
            .attach()
            .map(|_| ())
            .map_err(|e| refused(Stage::Attach, e));
        drop(prog.unload());
        attached
    }

    /// Loads (without attaching) the tracepoint tier's sys_exit program: whether this
    /// kernel takes `tp_btf` programs.
    pub fn tp_btf(&mut self) -> Result<(), TrialError> {
        let prog: &mut BtfTracePoint = probe_program(
            &mut self.ebpf,
            "tracer_sys_exit",
            "the sys_exit program is missing from the object",
        )?;
        prog.load("sys_exit", &self.btf)
            .map_err(|e| TrialError::Refused {
                by: None,
                refusal: refusal(Stage::ProgramLoad, e),
            })?;
        drop(prog.unload());
        Ok(())
    }

    /// Loads the empty kretprobe program (the kind this build's kprobe tier uses) and
    /// attaches it on `target`.
    pub fn kprobe(&mut self, target: &str) -> Result<(), TrialError> {
        let prog: &mut KProbe = probe_program(
            &mut self.ebpf,
            "tracer_kretprobe_probe",
            "the kretprobe probe program is missing from the object",
        )?;
        let refused = |at, e| TrialError::Refused {
            by: Some("kprobe"),
            refusal: refusal(at, e),
        };
        prog.load().map_err(|e| refused(Stage::ProgramLoad, e))?;
        let attached = prog
            .attach(target, 0)
            .map(|_| ())
            .map_err(|e| refused(Stage::Attach, e));
        drop(prog.unload());
        attached
    }
}
