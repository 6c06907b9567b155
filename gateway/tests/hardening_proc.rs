//! No secret of the gateway or the broker can be read through `/proc` from
//! inside a session, which runs as the same user as both processes: a
//! real broker and a real gateway run under an unprivileged uid (when the
//! tests run as root, which could read anything), a session is created
//! through the API, and a shell in it tries every file that could show
//! `TERMINAL_KEY`, `BROKER_TOKEN` or `BROKER_ADMIN_TOKEN`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::{DEADLINE, GatewayProc, KEY, Terminal};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BROKER_TOKEN: &str = "broker-secret-0c4b8e2f9a71";
const ADMIN_TOKEN: &str = "admin-secret-5d93a0e6b2c8";
/// A uid without a passwd entry (so sessions get the default shell).
const UNPRIVILEGED_UID: u32 = 54_321;

/// The uid the processes run as: an unprivileged one when the tests run as
/// root (root reads every process's files whatever their settings), else
/// the tests' own.
fn process_uid() -> Option<u32> {
    nix::unistd::geteuid().is_root().then_some(UNPRIVILEGED_UID)
}

/// Runs `command` as [`process_uid`].
fn run_as(command: &mut Command) {
    if let Some(uid) = process_uid() {
        command.uid(uid).gid(uid);
    }
}

/// A directory the processes' user owns.
fn owned_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    if let Some(uid) = process_uid() {
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(uid)),
        )
        .unwrap();
    }
}

/// Spawns `command` and waits for the stdout line containing `needle`.
async fn spawn_announcing(command: &mut Command, needle: &str) -> (Child, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("exited before printing {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} within {DEADLINE:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, line)
}

/// A broker and a gateway in front of it, both as [`process_uid`], with
/// every secret set.
struct Stack {
    broker: Child,
    gateway: GatewayProc,
    _dir: tempfile::TempDir,
}

async fn start_stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    owned_dir(root);
    for sub in ["home", "sessions", "tmp", "state"] {
        owned_dir(&root.join(sub));
    }
    let url = format!("unix:{}", root.join("run/broker.sock").display());
    let mut command = Command::new(common::broker_bin());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BROKER_LISTEN", &url)
        .env("BROKER_TOKEN", BROKER_TOKEN)
        .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PTY_ROOT", root.join("sessions"))
        .env("HOME", root.join("home"))
        .env("TMPDIR", root.join("tmp"))
        .env("SHELL", "/bin/bash")
        .env("RUST_LOG", "warn");
    run_as(&mut command);
    let (broker, _) = spawn_announcing(&mut command, "dispatch-broker listening on").await;

    let home = root.join("home").display().to_string();
    let tmp = root.join("tmp").display().to_string();
    let state = root.join("state").display().to_string();
    let mut command = common::gateway_command(&[
        ("BROKER_URL", &url),
        ("BROKER_TOKEN", BROKER_TOKEN),
        ("HOME", &home),
        ("TMPDIR", &tmp),
        ("STATE_DIR", &state),
    ]);
    run_as(&mut command);
    let gateway = GatewayProc::spawn(command).await;
    common::wait_ready(&gateway, "the gateway reaches the broker").await;
    Stack {
        broker,
        gateway,
        _dir: dir,
    }
}

/// Every secret, with the process that holds it.
const SECRETS: &[(&str, &str)] = &[
    ("TERMINAL_KEY", KEY),
    ("BROKER_TOKEN", BROKER_TOKEN),
    ("BROKER_ADMIN_TOKEN", ADMIN_TOKEN),
];

#[tokio::test]
async fn sessions_cannot_read_secrets_through_proc() {
    let stack = start_stack().await;
    let gateway_pid = stack.gateway.pid();
    let broker_pid = stack.broker.id().unwrap() as i32;
    if process_uid().is_some() {
        // Root can still look: the secrets are there to be stolen.
        let environ = |pid: i32| std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(common::contains(&environ(gateway_pid), KEY.as_bytes()));
        let broker_environ = environ(broker_pid);
        assert!(common::contains(&broker_environ, BROKER_TOKEN.as_bytes()));
        assert!(common::contains(&broker_environ, ADMIN_TOKEN.as_bytes()));
    } else {
        eprintln!(
            "not root: the processes run as this test's own uid {}",
            nix::unistd::geteuid()
        );
    }

    let cookie = common::login(&stack.gateway).await;
    let session = common::create_session(&stack.gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(&stack.gateway, &cookie, id, (200, 50)).await;
    // Each file of both processes, then every environment and command line
    // this user can read anywhere in /proc (the session's own included).
    let probe = format!(
        "for p in {gateway_pid} {broker_pid}; do for f in environ cmdline mem maps; do \
         printf '\\n== %s %s: ' $p $f; tr '\\0' ' ' < /proc/$p/$f | head -c 4000; done; \
         for f in /proc/$p/task/*/environ; do tr '\\0' ' ' < $f; done; done; \
         echo; echo '== all'; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do \
         tr '\\0' ' ' < $f; echo; done 2>/dev/null; echo probe-$((6*7))-done\r"
    );
    terminal.type_text(&probe).await;
    terminal.wait_for("probe-42-done").await;
    let output = String::from_utf8_lossy(&terminal.screen).into_owned();

    for (name, secret) in SECRETS {
        assert!(
            !output.contains(secret),
            "{name} was read from inside the session:\n{output}"
        );
    }
    for pid in [gateway_pid, broker_pid] {
        for file in ["environ", "mem", "maps"] {
            let section = format!("== {pid} {file}: ");
            let shown = output
                .split(&section)
                .nth(1)
                .unwrap_or_else(|| panic!("no {section:?} in:\n{output}"));
            assert!(
                shown.trim_start().contains("Permission denied")
                    && shown.find("Permission denied") < shown.find("=="),
                "/proc/{pid}/{file} is readable from the session:\n{shown:.600}"
            );
        }
    }
    // The probe read the right processes: their command lines are public.
    assert!(output.contains("dispatch-gateway"), "{output}");
    assert!(output.contains("dispatch-broker"), "{output}");
    // A session's own environment carries none of the secrets' names either.
    for (name, _) in SECRETS {
        assert!(
            !output.contains(&format!("{name}=")),
            "{name} in:\n{output}"
        );
    }
}

#[tokio::test]
async fn secrets_given_as_flags_are_refused() {
    // Unlike the environment, a command line is readable by every local
    // user (ps, /proc/<pid>/cmdline), whatever the process's settings.
    for flag in ["--terminal-key", "--broker-token"] {
        let mut command = common::gateway_command(&[]);
        command.args([flag, "visible-to-ps-0123456789"]);
        let output = tokio::time::timeout(DEADLINE, command.output())
            .await
            .unwrap_or_else(|_| panic!("the gateway started with {flag}"))
            .unwrap();
        assert!(!output.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("environment variable instead"),
            "{flag}: {stderr}"
        );
        assert!(!stderr.contains("visible-to-ps"), "{flag}: {stderr}");
    }
}
