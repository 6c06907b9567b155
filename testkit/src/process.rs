//! What tests and benchmarks read of a running process: its memory figures
//! from `/proc/<pid>/status`.

/// A figure in kB of `/proc/<pid>/status` (`field` with its colon, such as
/// `"VmRSS:"`); `None` when the process or the field is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resident memory of `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_own_resident_memory() {
        let own = std::process::id();
        let rss = rss_kib(own).unwrap();
        assert!(rss > 0);
        assert!(status_kib(own, "VmHWM:").unwrap() >= rss);
        assert_eq!(status_kib(own, "NoSuchField:"), None);
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
