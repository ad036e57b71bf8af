//! Builds the kernel programs (`tracer-ebpf`) for the bpf target through aya-build and puts
//! the object in `OUT_DIR/tracer`, which the loader embeds.
//!
//! Without bpf-linker (or with `AYA_BUILD_SKIP=1`) the object is an empty placeholder, so
//! the user side still builds and its unit tests run on any machine; the loader then says
//! that the programs were not built and how to fix it.
use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("tracer");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    println!("cargo:rerun-if-env-changed=PATH");

    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip || which::which("bpf-linker").is_err() {
        let why = if skip {
            "AYA_BUILD_SKIP is set"
        } else {
            "bpf-linker is not on PATH"
        };
        println!(
            "cargo:warning=the eBPF programs are not built ({why}): the tracer will refuse to \
             trace. Run `cargo xtask setup` (or use `cargo xtask build`)."
        );
        fs::write(&object, []).context("writing the placeholder eBPF object")?;
        return Ok(());
    }

    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "tracer-ebpf")
        .ok_or_else(|| anyhow!("tracer-ebpf package not found in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("tracer-ebpf manifest has no parent directory"))?;
    // aya-build passes every line of the nested cargo's stderr on as a `warning:` line
    // ("Compiling core ...", "Finished ..."), which reads as trouble in a normal build:
    // quiet, the nested cargo prints only its real warnings and errors.
    // SAFETY: the build script is single-threaded here.
    unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
    aya_build::build_ebpf(
        [Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::default(),
    )
    .context(
        "building the eBPF programs failed; `cargo xtask setup` installs the nightly rust-src \
         component and bpf-linker they need",
    )
}
