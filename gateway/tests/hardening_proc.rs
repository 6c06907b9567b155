//! No secret of the gateway or the broker can be read through `/proc` from
//! inside a session, which runs as the same user as both processes: a
//! real broker and a real gateway run under an unprivileged uid (when the
//! tests run as root, which could read anything), a session is created
//! through the API, and a shell in it tries every file that could show
//! `TERMINAL_KEY`, `BROKER_TOKEN` or `BROKER_ADMIN_TOKEN`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{DEADLINE, GatewayProc, KEY, Terminal};
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

/// The gateway and broker binaries, where [`process_uid`] can run them:
/// linked (or copied) into `root/bin` when that uid is not the tests' own,
/// since the build's folders may be closed to other users.
fn reachable_binaries(root: &Path) -> (PathBuf, PathBuf) {
    let (gateway, broker) = (common::gateway_bin(), common::broker_bin());
    if process_uid().is_none() {
        return (gateway, broker);
    }
    let bin = root.join("bin");
    owned_dir(&bin);
    let place = |from: &Path| {
        let to = bin.join(from.file_name().unwrap());
        if std::fs::hard_link(from, &to).is_err() {
            std::fs::copy(from, &to).unwrap();
        }
        to
    };
    (place(&gateway), place(&broker))
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
    let announced = dispatch_testkit::launch::announced(&mut child, needle, DEADLINE)
        .await
        .expect("the process announces where it listens");
    (child, announced)
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
    let (gateway_bin, broker_bin) = reachable_binaries(root);
    let url = format!("unix:{}", root.join("run/broker.sock").display());
    let mut command = Command::new(&broker_bin);
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
    let (broker, _) =
        spawn_announcing(&mut command, dispatch_testkit::announce::BROKER_LISTENING).await;

    let home = root.join("home").display().to_string();
    let tmp = root.join("tmp").display().to_string();
    let state = root.join("state").display().to_string();
    let mut command = common::gateway_command_of(
        &gateway_bin,
        &[
            ("BROKER_URL", &url),
            ("BROKER_TOKEN", BROKER_TOKEN),
            ("HOME", &home),
            ("TMPDIR", &tmp),
            ("STATE_DIR", &state),
        ],
    );
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
        assert_environ_holds(gateway_pid, &[KEY]);
        assert_environ_holds(broker_pid, &[BROKER_TOKEN, ADMIN_TOKEN]);
    } else {
        eprintln!(
            "not root: the processes run as this test's own uid {}",
            nix::unistd::geteuid()
        );
    }
    let output = probe_from_a_session(&stack.gateway, &[gateway_pid, broker_pid]).await;
    assert_nothing_read(&output, &[gateway_pid, broker_pid], SECRETS);
}

#[tokio::test]
async fn sessions_cannot_read_the_local_brokers_secrets() {
    // The gateway's own broker gets a token generated at start; only root
    // can look it up to check that it stays out of the session's reach.
    if process_uid().is_none() {
        eprintln!(
            "skipped: needs root, to start the gateway under another uid and read the generated BROKER_TOKEN"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    owned_dir(root);
    for sub in ["home", "sessions", "tmp", "state"] {
        owned_dir(&root.join(sub));
    }
    let path = |sub: &str| root.join(sub).display().to_string();
    let (home, sessions, tmp, state) = (path("home"), path("sessions"), path("tmp"), path("state"));
    let (gateway_bin, broker_bin) = reachable_binaries(root);
    let broker_bin = broker_bin.display().to_string();
    let mut command = common::gateway_command_of(
        &gateway_bin,
        &[
            ("BROKER_BIN", &broker_bin),
            ("BROKER_ADMIN_TOKEN", ADMIN_TOKEN),
            ("HOME", &home),
            ("PTY_ROOT", &sessions),
            ("TMPDIR", &tmp),
            ("STATE_DIR", &state),
            ("SHELL", "/bin/bash"),
        ],
    );
    run_as(&mut command);
    let gateway = GatewayProc::spawn(command).await;
    common::wait_ready(&gateway, "the gateway's own broker is up").await;
    let gateway_pid = gateway.pid();
    let broker_pid = child_of(gateway_pid, "dispatch-broker");
    let broker_token = environ_variable(broker_pid, "BROKER_TOKEN");
    assert!(broker_token.len() >= 32, "a generated token");
    assert_environ_holds(gateway_pid, &[KEY]);
    assert_environ_holds(broker_pid, &[ADMIN_TOKEN]);
    assert!(
        !common::contains(&environ(broker_pid), KEY.as_bytes()),
        "the broker child never gets TERMINAL_KEY"
    );
    let output = probe_from_a_session(&gateway, &[gateway_pid, broker_pid]).await;
    assert_nothing_read(
        &output,
        &[gateway_pid, broker_pid],
        &[
            ("TERMINAL_KEY", KEY),
            ("BROKER_TOKEN", &broker_token),
            ("BROKER_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
}

/// A process's environment block, as root reads it.
fn environ(pid: i32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/environ")).unwrap()
}

fn assert_environ_holds(pid: i32, values: &[&str]) {
    let environ = environ(pid);
    for value in values {
        assert!(common::contains(&environ, value.as_bytes()), "{pid}");
    }
}

fn environ_variable(pid: i32, name: &str) -> String {
    let prefix = format!("{name}=");
    environ(pid)
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_else(|| panic!("no {name} in the environment of {pid}"))
}

/// The child of `parent` named `name`.
fn child_of(parent: i32, name: &str) -> i32 {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // pid (comm) state ppid ...
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            comm.ends_with(&format!("({name}"))
                && rest.split(' ').nth(1) == Some(parent.to_string().as_str())
        })
        .unwrap_or_else(|| panic!("no {name} child of {parent}"))
}

/// Creates a session through the API and, in its shell, prints what it
/// can read of each of `pids`'s files, then every environment and command
/// line readable anywhere in /proc (the session's own included).
async fn probe_from_a_session(gateway: &GatewayProc, pids: &[i32]) -> String {
    let cookie = common::login(gateway).await;
    let session = common::create_session(gateway, &cookie, serde_json::json!({})).await;
    let id = session["id"].as_str().unwrap();
    let mut terminal = Terminal::attach(gateway, &cookie, id, (200, 50)).await;
    let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
    let probe = format!(
        "for p in {}; do for f in environ cmdline mem maps; do \
         printf '\\n== %s %s: ' $p $f; tr '\\0' ' ' < /proc/$p/$f | head -c 4000; done; \
         for f in /proc/$p/task/*/environ; do tr '\\0' ' ' < $f; done; done; \
         printf '\\n== %s: ' self; env | tr '\\n' ' '; printf ' ==\\n'; \
         echo '== all'; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do \
         tr '\\0' ' ' < $f; echo; done 2>/dev/null; echo probe-$((6*7))-done\r",
        pids.join(" ")
    );
    terminal.type_text(&probe).await;
    terminal.wait_for("probe-42-done").await;
    String::from_utf8_lossy(&terminal.screen).into_owned()
}

/// No secret in the probe's output, and each private file was refused.
fn assert_nothing_read(output: &str, pids: &[i32], secrets: &[(&str, &str)]) {
    let own_environment = output
        .split("== self: ")
        .nth(1)
        .and_then(|rest| rest.split(" ==").next())
        .unwrap_or_else(|| panic!("no session environment in:\n{output}"));
    assert!(own_environment.contains("TERM="), "{own_environment}");
    for (name, secret) in secrets {
        assert!(
            !output.contains(secret),
            "{name} was read from inside the session:\n{output}"
        );
        // The session's own environment does not carry the names either.
        assert!(
            !own_environment.contains(&format!("{name}=")),
            "{name} in the session's environment: {own_environment}"
        );
    }
    for pid in pids {
        for file in ["environ", "mem", "maps"] {
            let section = format!("== {pid} {file}: ");
            let shown = output
                .split(&section)
                .nth(1)
                .unwrap_or_else(|| panic!("no {section:?} in:\n{output}"));
            let refused = shown.find("Permission denied");
            assert!(
                refused.is_some() && refused < shown.find("=="),
                "/proc/{pid}/{file} is readable from the session:\n{shown:.600}"
            );
        }
    }
    // The probe read the right processes: their command lines are public.
    assert!(output.contains("dispatch-gateway"), "{output}");
    assert!(output.contains("dispatch-broker"), "{output}");
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
