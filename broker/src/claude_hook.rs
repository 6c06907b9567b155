//! How Claude Code sessions tell that they need their user: the broker
//! starts `claude` with `--settings <file>`, a settings file of its own
//! (in `PTY_ROOT/.dispatch/`, never the user's `~/.claude`) holding a
//! `Notification` hook. The hook writes an OSC 777 desktop notification to
//! the session's terminal (found through its ancestors: hooks run without a
//! controlling terminal), where the output scanner (see
//! [`crate::session::attention`]) finds it like any other; the body is the
//! notification's type (`permission_prompt`, `idle_prompt`, ...), so the
//! attention's reason follows it.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The broker's own files under `PTY_ROOT` (session ids are UUIDs, so it
/// never collides with a session directory).
const RUNTIME_DIR: &str = ".dispatch";
const SETTINGS_FILE: &str = "claude-settings.json";
const HOOK_FILE: &str = "claude-notify.sh";

/// The hook: reads the notification (JSON on stdin) and writes its type,
/// or a plain message, as an OSC 777 notification to the terminal.
const HOOK_SCRIPT: &str = r#"#!/bin/sh
# dispatch-broker: turns a Claude Code notification into a terminal
# notification (OSC 777) that dispatch detects in the session's output.
input=$(tr -d '\n')
kind=$(printf '%s' "$input" | sed -n 's/.*"notification_type" *: *"\([A-Za-z_]*\)".*/\1/p')
if [ -z "$kind" ]; then
  kind=$(printf '%s' "$input" | sed -n 's/.*"message" *: *"\([A-Za-z0-9 ,.:_-]*\)".*/\1/p')
fi
# Hooks run in a session of their own, without a controlling terminal:
# the terminal is the first ancestor's (claude's) standard input.
terminal=/dev/tty
pid=$$
while [ "${pid:-1}" -gt 1 ]; do
  link=$(readlink "/proc/$pid/fd/0" 2>/dev/null)
  case "$link" in
    /dev/pts/*) terminal=$link; break ;;
  esac
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
done
printf '\033]777;notify;Claude Code;%s\007' "${kind:-notification}" > "$terminal" 2>/dev/null
exit 0
"#;

/// Writes the settings file and its hook (when missing or changed) and
/// returns the arguments that make `claude` load them.
pub fn settings_args(pty_root: &Path) -> std::io::Result<Vec<OsString>> {
    let dir = pty_root.join(RUNTIME_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let hook = dir.join(HOOK_FILE);
    write_if_changed(&hook, HOOK_SCRIPT.as_bytes(), 0o700)?;
    let settings = dir.join(SETTINGS_FILE);
    write_if_changed(&settings, settings_json(&hook).as_bytes(), 0o600)?;
    Ok(vec!["--settings".into(), settings.into_os_string()])
}

/// Settings with one `Notification` hook (every notification type).
fn settings_json(hook: &Path) -> String {
    let command = shell_quote(&hook.display().to_string());
    serde_json::json!({
        "hooks": {
            "Notification": [{
                "matcher": "",
                "hooks": [{"type": "command", "command": command}],
            }],
        },
    })
    .to_string()
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Replaces `path` with `contents` (through a file renamed into place, so
/// a `claude` starting meanwhile never reads half of it).
fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    let partial: PathBuf = path.with_extension(format!("partial-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&partial)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_settings_and_hook_once() {
        let root = tempfile::tempdir().unwrap();
        let args = settings_args(root.path()).unwrap();
        assert_eq!(args[0], "--settings");
        let settings: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&args[1]).unwrap()).unwrap();
        let command = settings["hooks"]["Notification"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert!(command.ends_with("claude-notify.sh'"), "{command}");
        assert_eq!(settings_args(root.path()).unwrap(), args);
    }
}
