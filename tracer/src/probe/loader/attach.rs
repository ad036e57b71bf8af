//! Loading and attaching one program of each kind, and the kernel's refusals in types.

use aya::{
    Btf, Ebpf,
    programs::{BtfTracePoint, FExit, KProbe, ProgramError},
};

use super::{ProbeError, verifier_tail};
use crate::probe::{
    hooks::{Hook, Kind, Program},
    why::{Answer, Refusal, Stage, TrialError},
};

/// How the kernel refused a program at `at`, from aya's error.
pub(super) fn refusal(at: Stage, e: ProgramError) -> Refusal {
    let answer = match &e {
        ProgramError::LoadError { io_error, .. }
        | ProgramError::SyscallError(aya::sys::SyscallError { io_error, .. }) => {
            match io_error.raw_os_error() {
                Some(n) => Answer::Errno(n),
                None => Answer::Io(io_error.to_string()),
            }
        }
        _ => Answer::Failed(e.to_string()),
    };
    Refusal { at, answer }
}

/// The kernel's refusal of a program, said with its type.
fn refused(by: &'static str, at: Stage, e: ProgramError) -> TrialError {
    TrialError::Refused {
        by: Some(by),
        refusal: refusal(at, e),
    }
}

/// The program `name` of this build's object, as type `T`; the error says why not.
pub(super) fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, String>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| format!("program {name} is missing from the object"))?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())
}

/// Loads and attaches `hook`'s program: `Ok(Err(why))` when the kernel refused it (the
/// plan then moves its steps to the next hook), `Err` when tracing cannot go on (a
/// tracepoint program the verifier rejects, a required one that does not attach).
pub(super) fn attach(
    ebpf: &mut Ebpf,
    hook: &'static Hook,
    program: &'static Program,
    btf: &Btf,
) -> Result<Result<(), TrialError>, ProbeError> {
    match program.kind {
        Kind::Fexit => Ok(attach_fexit(ebpf, hook.target, program.name, btf)),
        Kind::Kretprobe => Ok(attach_kretprobe(ebpf, hook.target, program.name)),
        Kind::TpBtf => attach_tracepoint(ebpf, hook.target, program, btf),
    }
}

/// Loads and attaches one fexit program.
fn attach_fexit(ebpf: &mut Ebpf, function: &str, name: &str, btf: &Btf) -> Result<(), TrialError> {
    let prog: &mut FExit = program_mut(ebpf, name).map_err(TrialError::Other)?;
    prog.load(function, btf)
        .map_err(|e| refused("fexit", Stage::ProgramLoad, e))?;
    prog.attach()
        .map_err(|e| refused("fexit", Stage::Attach, e))?;
    Ok(())
}

/// Loads and attaches one kretprobe.
fn attach_kretprobe(ebpf: &mut Ebpf, function: &str, name: &str) -> Result<(), TrialError> {
    let prog: &mut KProbe = program_mut(ebpf, name).map_err(TrialError::Other)?;
    prog.load()
        .map_err(|e| refused("kretprobe", Stage::ProgramLoad, e))?;
    prog.attach(function, 0)
        .map_err(|e| refused("kretprobe", Stage::Attach, e))?;
    Ok(())
}

/// Loads and attaches one tracepoint program: a load failure stops the loader (the
/// privileges were checked before, so it is the verifier's or the kernel's), and so does
/// a required one that does not attach.
fn attach_tracepoint(
    ebpf: &mut Ebpf,
    tracepoint: &'static str,
    program: &'static Program,
    btf: &Btf,
) -> Result<Result<(), TrialError>, ProbeError> {
    let prog: &mut BtfTracePoint = program_mut(ebpf, program.name).map_err(ProbeError::Load)?;
    if let Err(e) = prog.load(tracepoint, btf) {
        return Err(match e {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => ProbeError::Verifier {
                program: program.name,
                tracepoint,
                error: io_error.to_string(),
                log_tail: verifier_tail(&verifier_log.to_string(), 20),
            },
            other => ProbeError::Load(format!("{}: {other}", program.name)),
        });
    }
    match prog.attach() {
        Ok(_link) => Ok(Ok(())),
        Err(e) if !program.required => Ok(Err(TrialError::AttachRefused(e.to_string()))),
        Err(e) => Err(ProbeError::Attach {
            program: program.name,
            tracepoint,
            error: e.to_string(),
        }),
    }
}
