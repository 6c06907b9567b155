//! `dispatch-gateway`: the binary; its body is [`dispatch_gateway::binary`].

fn main() -> std::process::ExitCode {
    dispatch_gateway::binary::main()
}
