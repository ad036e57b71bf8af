//! Rebuild the eBPF object when bpf-linker changes (a new LLVM means new code).
fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => println!(
            "cargo:warning=bpf-linker is not on PATH; run `cargo xtask setup` to install it"
        ),
    }
}
