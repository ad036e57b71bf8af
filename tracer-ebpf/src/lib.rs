//! Nothing for the host: the programs are the `tracer` binary of this crate, built for the
//! bpf target by `tracer/build.rs`. This empty library lets `tracer` name the crate as a
//! build-dependency, so cargo rebuilds it when the programs change.
#![no_std]
