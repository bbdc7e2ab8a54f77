//! No core files: the memory of a service holds the integration key, the provider's keys and
//! the callers' tokens, and a core file (or a node's core collector, systemd-coredump) would
//! receive all of it. Every binary sets RLIMIT_CORE to 0, soft and hard, at start.

/// Sets RLIMIT_CORE to 0 (soft and hard: the process cannot raise it again). Lowering a limit
/// is always allowed, so this fails only where the kernel refuses the call.
pub fn disable() -> std::io::Result<()> {
    rlimit::Resource::CORE.set(0, 0)
}
