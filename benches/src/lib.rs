//! Shared helpers for Agora benchmarks (fixtures live in the bench files).
