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
