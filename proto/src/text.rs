//! What text shown to people may hold, for both ends: [`is_invisible`]
//! names the characters that display as nothing or reorder the text around
//! them, which neither a session name (the broker) nor a conversation shown
//! in the browser (the gateway) may carry.

/// Bidirectional embeddings, overrides, isolates and marks (which reorder
/// the text around them), zero-width characters, line and paragraph
/// separators, and the invisible tag characters. Control characters are
/// each caller's own rule (a name refuses them all, a transcript keeps line
/// breaks and tabs).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_characters_are_invisible_and_letters_are_not() {
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{061C}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'é', '中', ' ', '\u{2030}', '\u{1F600}'] {
            assert!(!is_invisible(c), "U+{:04X}", u32::from(c));
        }
    }
}
