//! Starting `dispatch-broker` and `dispatch-gateway` for tests and
//! benchmarks, one way: [`command`] clears every variable the binary reads
//! (learned from its own `--help`, so a setting is scrubbed from the day it
//! is added, and the machine's environment never leaks into a harness), and
//! [`announced`] waits for the line with which it says where it listens
//! (see [`crate::announce`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Variables that change a binary without being a flag: the gateway's
/// default `STATE_DIR` is under `XDG_STATE_HOME`; the broker reads its admin
/// secret from the environment only.
const INDIRECT: &[&str] = &["XDG_STATE_HOME", "BROKER_ADMIN_TOKEN"];

/// A command for `bin` with none of the variables it reads set (set them
/// with `.env`), stdin closed, stdout piped (for [`announced`]) and the
/// process killed when the handle is dropped. Stderr is the caller's choice.
pub fn command(bin: &Path) -> Command {
    let mut command = Command::new(bin);
    for name in variables_of(bin)
        .iter()
        .map(String::as_str)
        .chain(INDIRECT.iter().copied())
    {
        command.env_remove(name);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The environment variables `bin` reads, from the `[env: NAME]` notes of
/// its `--help` (subcommands' included); asked once per binary.
pub fn variables_of(bin: &Path) -> Vec<String> {
    static KNOWN: OnceLock<Mutex<HashMap<PathBuf, Vec<String>>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
    known
        .entry(bin.to_path_buf())
        .or_insert_with(|| {
            let help = std::process::Command::new(bin)
                .arg("--help")
                .env_clear()
                .output()
                .unwrap_or_else(|e| panic!("cannot run {} --help: {e}", bin.display()));
            let names = env_notes(&String::from_utf8_lossy(&help.stdout));
            assert!(
                !names.is_empty(),
                "{} --help names no variable",
                bin.display()
            );
            names
        })
        .clone()
}

/// The names in `[env: NAME]` and `[env: NAME=value]` notes of help text.
fn env_notes(help: &str) -> Vec<String> {
    let mut names: Vec<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| {
            let end =
                rest.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))?;
            (end > 0).then(|| rest[..end].to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Waits (at most `limit`) for the line of `child`'s piped stdout that
/// starts with `prefix` and returns the rest of it; later lines are read and
/// dropped in the background, so the child never blocks on a full pipe.
pub async fn announced(child: &mut Child, prefix: &str, limit: Duration) -> anyhow::Result<String> {
    let mut found = announced_all(child, &[prefix], limit).await?;
    Ok(found.remove(0))
}

/// [`announced`] for a line that ends with a socket address (the
/// gateway's URL, the egress proxy's or the broker's TCP address).
pub async fn announced_addr(
    child: &mut Child,
    prefix: &str,
    limit: Duration,
) -> anyhow::Result<SocketAddr> {
    let rest = announced(child, prefix, limit).await?;
    crate::announce::socket_addr(&rest).with_context(|| format!("no address in {rest:?}"))
}

/// [`announced`] for several lines, in any order: the rest of each, in the
/// order of `prefixes`.
pub async fn announced_all(
    child: &mut Child,
    prefixes: &[&str],
    limit: Duration,
) -> anyhow::Result<Vec<String>> {
    let stdout = child
        .stdout
        .take()
        .context("the child's stdout is not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
    tokio::time::timeout(limit, async {
        while found.iter().any(Option::is_none) {
            let Some(line) = lines.next_line().await? else {
                bail!("the process exited before announcing {prefixes:?}");
            };
            for (prefix, slot) in prefixes.iter().zip(&mut found) {
                if let Some(rest) = line.strip_prefix(prefix) {
                    *slot = Some(rest.trim_end().to_owned());
                }
            }
        }
        Ok(())
    })
    .await
    .with_context(|| format!("no {prefixes:?} line within {limit:?}"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(found.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_variables_of_help_text() {
        let help = "  --port <PORT>  TCP port [env: PORT=] [default: 3000]\n  \
                    --key <KEY>  secret [env: TERMINAL_KEY]\n  --x  [env: LT_HOST=example]\n  \
                    --again [env: PORT=]";
        assert_eq!(env_notes(help), ["LT_HOST", "PORT", "TERMINAL_KEY"]);
    }

    #[tokio::test]
    async fn waits_for_each_announcement_and_keeps_draining() {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "echo noise; echo 'b: 2'; echo 'a: 1'; yes | head -c 1000000",
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let found = announced_all(&mut child, &["a: ", "b: "], Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(found, ["1", "2"]);
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        assert!(status.unwrap().unwrap().success(), "the pipe was drained");
    }

    #[tokio::test]
    async fn a_silent_exit_is_an_error() {
        let mut child = Command::new("true").stdout(Stdio::piped()).spawn().unwrap();
        let error = announced(&mut child, "listening on ", Duration::from_secs(10)).await;
        assert!(error.unwrap_err().to_string().contains("exited before"));
    }
}
