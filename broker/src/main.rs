//! `dispatch-broker`: the binary; its body is [`dispatch_broker::binary`].

fn main() -> std::process::ExitCode {
    dispatch_broker::binary::main()
}
