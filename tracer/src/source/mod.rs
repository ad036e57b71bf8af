//! Where events come from. Today: the kernel ring buffer.

pub mod kernel;

pub use kernel::KernelSource;
