//! Flow control: a detached session never blocks; a stalled viewer neither
//! slows a reading one nor grows the broker's memory.

mod common;

use std::time::Duration;

use common::*;
use dispatch_proto::v1 as pb;

#[tokio::test]
async fn detached_session_keeps_running() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer
        .input("sleep 0.5; for i in $(seq 1 3000); do echo detached-$i; done; echo all-''done\r")
        .await;
    // The shell got the line (it echoes it); detach before the output comes.
    viewer.wait_for_output("all-''done").await;
    viewer.detach().await;
    drop(viewer);
    // Nobody reads: the program must still finish on its own.
    let mut late = None;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let v = Viewer::attach(&mut client, &session.id, 80, 24, false).await;
        if v.screen.screen().contents().contains("all-done") {
            late = Some(v);
            break;
        }
    }
    let late = late.expect("the detached program completed");
    assert!(late.screen.screen().contents().contains("detached-3000"));
}

/// 100 MB through a session with two viewers: one reads and acknowledges
/// everything, the other never reads its stream. The reader gets every byte
/// in order without a resynchronisation, and the broker's memory stays
/// bounded instead of buffering for the stalled viewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_reach_a_reader_beside_a_stalled_viewer() {
    const LAST: u64 = 12_500_000; // `seq 1 LAST` prints about 100 MB
    const RSS_GROWTH_LIMIT_KIB: u64 = 96 * 1024;
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let session = create_shell(&mut client, 80, 24).await;
    let mut reader = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    let _stalled = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    reader.drain(Duration::from_millis(300)).await;
    let baseline_kib = broker.rss_kib();

    reader.input("stty -echo; seq 1 12500000\r").await;
    let mut expected = 1u64;
    let mut line = Vec::new();
    let mut peak_kib = baseline_kib;
    let mut received = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while expected <= LAST {
        assert!(tokio::time::Instant::now() < deadline, "output in time");
        let message = tokio::time::timeout(DEADLINE, reader.rx.message())
            .await
            .expect("output keeps coming")
            .expect("stream healthy")
            .expect("stream open");
        match message.kind {
            Some(pb::attach_response::Kind::Output(output)) => {
                assert_eq!(output.end_offset, reader.offset + output.data.len() as u64);
                reader.offset = output.end_offset;
                reader.ack(output.end_offset).await;
                received += output.data.len() as u64;
                for &byte in output.data.iter() {
                    match byte {
                        b'\n' => {
                            let text = String::from_utf8_lossy(&line);
                            let text = text.trim();
                            if let Ok(n) = text.parse::<u64>() {
                                assert_eq!(n, expected, "lines arrive complete and in order");
                                expected += 1;
                            }
                            line.clear();
                        }
                        // A carriage return ends what the shell drew before
                        // the numbers (prompt, mode switches).
                        b'\r' if !line.iter().all(u8::is_ascii_digit) => line.clear(),
                        b'\r' => {}
                        _ => line.push(byte),
                    }
                }
                if received % (8 << 20) < output.data.len() as u64 {
                    peak_kib = peak_kib.max(broker.rss_kib());
                }
            }
            Some(pb::attach_response::Kind::Replay(_)) => {
                panic!("a reading viewer is never resynchronised (after {received} bytes)")
            }
            _ => {}
        }
    }
    assert!(received > 95_000_000, "about 100 MB arrived: {received}");
    peak_kib = peak_kib.max(broker.rss_kib());
    assert!(
        peak_kib < baseline_kib + RSS_GROWTH_LIMIT_KIB,
        "broker memory bounded: {baseline_kib} KiB before, peak {peak_kib} KiB"
    );
}
