//! What counts as a user typing, shared by the broker (input clears a
//! session's attention) and the gateway (no webhook for a session the user
//! types in): any input except what a terminal emulator sends by itself:
//! focus reports (`CSI I`, `CSI O`, sent when a page loses or gains focus),
//! answers to queries (cursor position `CSI row;col R`, device attributes
//! `CSI ? ... c` / `CSI > ... c`, mode reports `CSI ? ... $ y`, status
//! `CSI ... n`) and OSC/DCS strings (colour and version answers).

const ESC: u8 = 0x1b;

/// Whether `input` is something the user typed (not only terminal reports).
pub fn is_typing(input: &[u8]) -> bool {
    let mut rest = input;
    while !rest.is_empty() {
        match report_len(rest) {
            Some(len) => rest = &rest[len..],
            None => return true,
        }
    }
    false
}

/// The length of the terminal report `input` starts with, if it does.
fn report_len(input: &[u8]) -> Option<usize> {
    if input.first() != Some(&ESC) {
        return None;
    }
    match input.get(1)? {
        b'[' => {
            let final_at = input[2..].iter().position(|b| (0x40..=0x7e).contains(b))? + 2;
            let params = &input[2..final_at];
            let reply = match input[final_at] {
                b'I' | b'O' => params.is_empty(),
                b'R' | b'n' => params.iter().all(|b| b.is_ascii_digit() || *b == b';'),
                b'c' => params.first().is_some_and(|b| matches!(b, b'?' | b'>')),
                b'y' => params.first() == Some(&b'?') && params.last() == Some(&b'$'),
                _ => false,
            };
            reply.then_some(final_at + 1)
        }
        b']' | b'P' => string_len(input),
        _ => None,
    }
}

/// The length of an OSC or DCS string up to its BEL or ST terminator.
fn string_len(input: &[u8]) -> Option<usize> {
    let mut at = 2;
    while at < input.len() {
        match input[at] {
            0x07 => return Some(at + 1),
            ESC if input.get(at + 1) == Some(&b'\\') => return Some(at + 2),
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::is_typing;

    #[test]
    fn terminal_reports_are_not_typing() {
        for report in [
            &b"\x1b[I"[..],
            b"\x1b[O",
            b"\x1b[12;40R",
            b"\x1b[?1;2c",
            b"\x1b[>0;276;0c",
            b"\x1b[?2004;1$y",
            b"\x1bP>|xterm.js(5.5.0)\x1b\\",
            b"\x1b]11;rgb:0000/0000/0000\x07\x1b[I",
        ] {
            assert!(!is_typing(report), "{report:?}");
        }
    }

    #[test]
    fn keys_are_typing() {
        for keys in [
            &b"1"[..],
            b"\r",
            b"\x1b[A",
            b"\x1b",
            b"\x03",
            b"\x1b[Ia",
            b"\x1b[3~",
        ] {
            assert!(is_typing(keys), "{keys:?}");
        }
    }
}
