//! The process table as `/proc` shows it, read in one place: the fields of
//! `/proc/<pid>/stat` (state, session id, CPU times), resident memory, open
//! files and environment. Used to find and kill every process of a session
//! (see [`crate::session::pty`]) and for the CPU and memory figures of the
//! Admin service: every process whose session id is the session leader's
//! pid (the leader runs `setsid`), so background jobs in their own process
//! groups count too.

use std::path::Path;
use std::time::Duration;

use nix::unistd::Pid;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, fixed at
/// 100 in the Linux user ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// Summed figures of a session's processes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessTotals {
    pub processes: u32,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

/// Figures of every live process in session `leader`.
pub fn session_totals(leader: u32) -> ProcessTotals {
    let mut totals = ProcessTotals::default();
    if leader == 0 {
        return totals;
    }
    for (pid, stat) in live_processes() {
        if stat.session != leader {
            continue;
        }
        totals.processes += 1;
        totals.cpu_seconds += stat.cpu_seconds();
        totals.rss_bytes += rss_bytes(pid).unwrap_or(0);
    }
    totals
}

/// CPU time (user and system) `pid` has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    read_stat(pid).map(|stat| Duration::from_secs_f64(stat.cpu_seconds()))
}

/// Processes other than the broker and zombies for which
/// `keep(pid, session id)` holds.
pub fn processes(mut keep: impl FnMut(u32, u32) -> bool) -> Vec<Pid> {
    let own = std::process::id();
    live_processes()
        .filter(|&(pid, ref stat)| pid != own && keep(pid, stat.session))
        .map(|(pid, _)| Pid::from_raw(pid as i32))
        .collect()
}

/// Processes whose session id is `leader`, other than zombies.
pub fn session_members(leader: Pid) -> Vec<Pid> {
    let leader = leader.as_raw() as u32;
    processes(|_, session| session == leader)
}

/// Whether `pid` has `path` open.
pub fn holds(pid: u32, path: &Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
    })
}

/// Whether `pid` was started with the environment entry `entry`
/// (`NAME=value`).
pub fn carries(pid: u32, entry: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|environ| environ.split(|&b| b == 0).any(|e| e == entry))
}

/// Every process other than zombies, with its `stat` fields.
fn live_processes() -> impl Iterator<Item = (u32, Stat)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .filter(|(_, stat)| stat.state != 'Z')
}

/// The fields of `/proc/<pid>/stat` used here.
#[derive(Debug, PartialEq)]
struct Stat {
    state: char,
    session: u32,
    utime: u64,
    stime: u64,
}

impl Stat {
    fn cpu_seconds(&self) -> f64 {
        (self.utime + self.stime) as f64 / TICKS_PER_SECOND
    }
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses `/proc/<pid>/stat`; the command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) session(6) ... utime(14) stime(15).
    Some(Stat {
        state: fields.first()?.chars().next()?,
        session: fields.get(3)?.parse().ok()?,
        utime: fields.get(11)?.parse().ok()?,
        stime: fields.get(12)?.parse().ok()?,
    })
}

/// Resident memory from `/proc/<pid>/status` (`VmRSS`, in kB).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 34816 4242 4194304 100 0 0 0 250 50 0 0 20 0 1 0 1000 1000000 300 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                session: 4242,
                utime: 250,
                stime: 50
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_new_session_counts_its_leader() {
        // `setsid` (not a group leader when spawned) becomes the leader of a
        // new session in place and then runs `sleep`.
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        let leader = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read_stat(leader).map(|stat| stat.session) != Some(leader) {
            assert!(std::time::Instant::now() < deadline, "no new session");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let totals = session_totals(leader);
        let cpu = cpu_time(leader);
        let members = session_members(Pid::from_raw(leader as i32));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(totals.processes, 1);
        assert!(cpu.is_some_and(|cpu| cpu.as_secs_f64() <= totals.cpu_seconds + 0.01));
        assert_eq!(cpu_time(u32::MAX), None);
        assert!(totals.rss_bytes > 0);
        assert_eq!(members, vec![Pid::from_raw(leader as i32)]);
        assert_eq!(session_totals(0), ProcessTotals::default());
    }

    #[test]
    fn finds_what_a_process_holds_and_carries() {
        let own = std::process::id();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(holds(own, file.path()));
        assert!(!holds(own, &exe.with_extension("not-open")));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("PROCFS_TEST_MARK", "yes")
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !carries(pid, b"PROCFS_TEST_MARK=yes") {
            assert!(std::time::Instant::now() < deadline, "environment not seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!carries(pid, b"PROCFS_TEST_MARK=no"));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
