//! Kernel struct layouts and enum values from the running kernel's BTF.
//!
//! aya has no CO-RE relocations for Rust eBPF programs, so every field a program reads is
//! looked up here at load time and passed in through `tracer_common::Config`. Nothing is
//! taken from the kernel this was written on.

use std::path::Path;

use btf_rs::{Btf, Type};

/// The kernel's BTF, with lookups by struct member path and enum name.
pub struct KernelBtf {
    btf: Btf,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfLookupError {
    #[error("struct {0} is not in this kernel's BTF")]
    NoStruct(String),
    #[error("{0} has no member {1}")]
    NoMember(String, String),
    #[error("{0}.{1} is a bit field")]
    BitField(String, String),
    #[error("{0}.{1} is {2} bytes, expected {3}")]
    Size(String, String, usize, usize),
    #[error("enum {0} has no value {1}")]
    NoEnumValue(String, String),
    #[error("BTF: {0}")]
    Btf(String),
}

fn btf_err(e: impl std::fmt::Display) -> BtfLookupError {
    BtfLookupError::Btf(e.to_string())
}

impl KernelBtf {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            // mmap is fastest (0.1 s instead of 0.3 s at startup), but kernels before 6.16
            // refuse to mmap the sysfs BTF file (ENODEV): read it there.
            btf: match Btf::from_file_with_backend(path, btf_rs::Backend::Mmap) {
                Ok(btf) => btf,
                Err(_) => Btf::from_file_with_backend(path, btf_rs::Backend::Cache)?,
            },
        })
    }

    /// Whether the kernel has a function `name` (a BTF FUNC; inlined-only functions have
    /// none).
    pub fn has_function(&self, name: &str) -> bool {
        self.btf
            .resolve_types_by_name(name)
            .is_ok_and(|types| types.iter().any(|t| matches!(t, Type::Func(_))))
    }

    /// The parameter names of kernel function `name` (its BTF FUNC's prototype), if it
    /// has one.
    pub fn function_params(&self, name: &str) -> Option<Vec<String>> {
        let types = self.btf.resolve_types_by_name(name).ok()?;
        let func = types.into_iter().find(|t| matches!(t, Type::Func(_)))?;
        let Type::Func(func) = func else {
            return None;
        };
        match self.btf.resolve_chained_type(&func).ok()? {
            Type::FuncProto(p) => Some(
                p.parameters
                    .iter()
                    .map(|param| self.btf.resolve_name(param).unwrap_or_default())
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Whether a `tp_btf` program can attach to this tracepoint (its `btf_trace_<name>`
    /// typedef exists).
    pub fn has_tracepoint(&self, name: &str) -> bool {
        self.tracepoint_args(name).is_some()
    }

    /// Number of arguments a tracepoint passes its programs (its `btf_trace_<name>`
    /// prototype, less the leading `void *` context), if it exists.
    pub fn tracepoint_args(&self, name: &str) -> Option<usize> {
        let types = self
            .btf
            .resolve_types_by_name(&format!("btf_trace_{name}"))
            .ok()?;
        let typedef = types.into_iter().find(|t| matches!(t, Type::Typedef(_)))?;
        let mut t = self.strip(typedef).ok()?;
        if let Type::Ptr(p) = &t {
            t = self.btf.resolve_chained_type(p).ok()?;
        }
        match t {
            Type::FuncProto(f) => Some(f.parameters.len().saturating_sub(1)),
            _ => None,
        }
    }

    fn find_struct(&self, name: &str) -> Result<btf_rs::Struct, BtfLookupError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|_not_found| BtfLookupError::NoStruct(name.to_string()))?;
        // Prefer the definition with members over forward declarations or empty copies.
        types
            .into_iter()
            .filter_map(|t| match t {
                Type::Struct(s) | Type::Union(s) => Some(s),
                _ => None,
            })
            .max_by_key(|s| s.members.len())
            .ok_or_else(|| BtfLookupError::NoStruct(name.to_string()))
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn strip(&self, mut t: Type) -> Result<Type, BtfLookupError> {
        loop {
            t = match &t {
                Type::Typedef(x) => self.btf.resolve_chained_type(x).map_err(btf_err)?,
                Type::Volatile(x) | Type::Const(x) | Type::Restrict(x) => {
                    self.btf.resolve_chained_type(x).map_err(btf_err)?
                }
                Type::TypeTag(x) => self.btf.resolve_chained_type(x).map_err(btf_err)?,
                _ => return Ok(t),
            };
        }
    }

    fn type_size(&self, t: &Type) -> Option<usize> {
        match t {
            Type::Int(i) => Some(i.size()),
            Type::Ptr(_) => Some(8),
            Type::Enum(e) => Some(e.size()),
            Type::Enum64(e) => Some(e.size()),
            Type::Struct(s) | Type::Union(s) => Some(s.size()),
            Type::Array(a) => {
                let elem = self.strip(self.btf.resolve_chained_type(a).ok()?).ok()?;
                Some(a.len() * self.type_size(&elem)?)
            }
            _ => None,
        }
    }

    /// Searches `s` for a member named `name`, looking through anonymous struct and union
    /// members. Returns the byte offset and the member's (stripped) type.
    fn find_member(
        &self,
        s: &btf_rs::Struct,
        name: &str,
        owner: &str,
    ) -> Result<Option<(u32, Type)>, BtfLookupError> {
        for m in &s.members {
            let m_name = self.btf.resolve_name(m).unwrap_or_default();
            if m_name == name {
                if m.bitfield_size().is_some_and(|b| b != 0) || m.bit_offset() % 8 != 0 {
                    return Err(BtfLookupError::BitField(
                        owner.to_string(),
                        name.to_string(),
                    ));
                }
                let t = self.strip(self.btf.resolve_chained_type(m).map_err(btf_err)?)?;
                return Ok(Some((m.bit_offset() / 8, t)));
            }
            if m_name.is_empty() {
                let t = self.strip(self.btf.resolve_chained_type(m).map_err(btf_err)?)?;
                if let Type::Struct(inner) | Type::Union(inner) = &t
                    && let Some((off, t)) = self.find_member(inner, name, owner)?
                {
                    return Ok(Some((m.bit_offset() / 8 + off, t)));
                }
            }
        }
        Ok(None)
    }

    /// Byte offset of `path` (members separated by `.`) in `struct strukt`; when `size` is
    /// not 0, the member must be that many bytes.
    pub fn offset(&self, strukt: &str, path: &str, size: usize) -> Result<u32, BtfLookupError> {
        let mut s = self.find_struct(strukt)?;
        let mut total = 0u32;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let (off, t) = self
                .find_member(&s, part, strukt)?
                .ok_or_else(|| BtfLookupError::NoMember(strukt.to_string(), path.to_string()))?;
            total += off;
            if i + 1 == parts.len() {
                if size != 0 {
                    let got = self.type_size(&t).unwrap_or(0);
                    if got != size {
                        return Err(BtfLookupError::Size(
                            strukt.to_string(),
                            path.to_string(),
                            got,
                            size,
                        ));
                    }
                }
            } else {
                s = match t {
                    Type::Struct(inner) | Type::Union(inner) => inner,
                    _ => {
                        return Err(BtfLookupError::NoMember(
                            strukt.to_string(),
                            path.to_string(),
                        ));
                    }
                };
            }
        }
        Ok(total)
    }

    /// All values of `enum name` as (enumerator, value).
    pub fn enum_values(&self, name: &str) -> Result<Vec<(String, i64)>, BtfLookupError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|_not_found| BtfLookupError::NoEnumValue(name.to_string(), String::new()))?;
        for t in types {
            match t {
                Type::Enum(e) => {
                    return e
                        .members
                        .iter()
                        .map(|m| {
                            let n = self.btf.resolve_name(m).map_err(btf_err)?;
                            let v = if e.is_signed() {
                                m.val() as i32 as i64
                            } else {
                                m.val() as i64
                            };
                            Ok((n, v))
                        })
                        .collect();
                }
                Type::Enum64(e) => {
                    return e
                        .members
                        .iter()
                        .map(|m| Ok((self.btf.resolve_name(m).map_err(btf_err)?, m.val() as i64)))
                        .collect();
                }
                _ => {}
            }
        }
        Err(BtfLookupError::NoEnumValue(name.to_string(), String::new()))
    }

    /// The value of enumerator `variant` of `enum name`.
    pub fn enum_value(&self, name: &str, variant: &str) -> Result<i64, BtfLookupError> {
        self.enum_values(name)?
            .into_iter()
            .find(|(n, _)| n == variant)
            .map(|(_, v)| v)
            .ok_or_else(|| BtfLookupError::NoEnumValue(name.to_string(), variant.to_string()))
    }
}

/// The running kernel's BTF, for tests that read real layouts and prototypes. Every
/// machine this project tests on (CI, the developers', the VM) has it, so a test that
/// needs it fails when it is missing instead of passing without checking anything.
#[cfg(test)]
pub(crate) fn running_kernel_btf() -> KernelBtf {
    let path = Path::new(super::VMLINUX_BTF);
    KernelBtf::from_file(path).unwrap_or_else(|e| {
        panic!(
            "this test reads the running kernel's BTF, and {} cannot be read ({e:#}): \
             run it on a kernel built with CONFIG_DEBUG_INFO_BTF=y",
            path.display()
        )
    })
}
