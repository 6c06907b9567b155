//! A session's shell starts with a prompt that fits a phone (bash trims a
//! long working directory to its last two parts), unless the user's own shell
//! configuration says otherwise. Through the real broker binary and the
//! generated gRPC client.

mod common;

use common::*;

/// A prompt of just the working directory, shown after `cd` into a deep one.
const DEEP_PROMPT: &str = "PS1='[\\w]\\$ '; mkdir -p one/two/three/four && cd one/two/three/four\r";

#[tokio::test]
async fn the_prompt_shows_the_last_two_directories() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input(DEEP_PROMPT).await;
    viewer.wait_for_output("[.../three/four]").await;
    viewer.input("echo trim=$PROMPT_DIRTRIM.\r").await;
    viewer.wait_for_output("trim=2.").await;
}

#[tokio::test]
async fn the_users_own_shell_configuration_wins() {
    let broker = TestBroker::start().await;
    let home = broker.root.path().join("home");
    std::fs::write(home.join(".bashrc"), "PROMPT_DIRTRIM=3\n").unwrap();
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input(DEEP_PROMPT).await;
    viewer.wait_for_output("[.../two/three/four]").await;
}

/// The working directory as a prompt's `\w` shows it in a new session's
/// own folder (bash's `${var@P}` expands a prompt string).
const SHOW_PROMPT_DIR: &str = "P='\\w'; echo \"shown=${P@P}|\"\r";

#[tokio::test]
async fn a_new_sessions_folder_fits_a_phone_prompt() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input(SHOW_PROMPT_DIR).await;
    viewer
        .wait_for_output(&format!("{}|", &session.id[..8]))
        .await;
    let output = String::from_utf8_lossy(&viewer.output).into_owned();
    let start = output.rfind("shown=").unwrap() + "shown=".len();
    let shown = &output[start..start + output[start..].find('|').unwrap()];
    // A phone shows about 47 columns: the user, host and command need the rest.
    assert!(
        shown.chars().count() <= 24,
        "the prompt's directory {shown:?} is too long for a phone"
    );
    assert!(
        shown.ends_with(&session.id[..8]),
        "{shown:?} names the session"
    );
}
