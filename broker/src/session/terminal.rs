//! A session's terminal state: the screen (kept by a `vt100` parser) and the
//! recent scrollback, from which viewers are restored with a replay.
//!
//! Scrollback is captured line by line as rows scroll off the main screen
//! (the alternate screen of full-screen programs is not history), rendered
//! with SGR attributes only (or kept as printed, for fast-forwarded plain
//! text: see [`Terminal`]), and trimmed from the front to a byte bound. Its
//! storage grows with what was printed, so an idle session holds only its
//! screen grid.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::num::NonZeroU16;

use vt100::capture::BasicFormattedCaptureState;

pub use dispatch_proto::limits::clamp_dimension;

/// Lines that scrolled off the main screen, bounded in bytes.
pub struct Scrollback {
    text: VecDeque<u8>,
    capacity: usize,
    state: BasicFormattedCaptureState,
}

impl Scrollback {
    fn new(capacity: usize) -> Self {
        Self {
            text: VecDeque::new(),
            capacity,
            state: BasicFormattedCaptureState::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if bytes.len() >= self.capacity {
            self.text.clear();
            let start = bytes.len() - self.capacity / 2;
            self.text.extend(&bytes[start..]);
            self.trim_to_line_start();
            return;
        }
        let needed = self.text.len() + bytes.len();
        if needed > self.capacity {
            // Drop a quarter of the capacity at once so trimming stays rare.
            let excess = needed - self.capacity + self.capacity / 4;
            self.text.drain(..excess.min(self.text.len()));
            self.trim_to_line_start();
        }
        self.text.extend(bytes);
    }

    /// Drops a partial first line so the text starts at a line boundary.
    fn trim_to_line_start(&mut self) {
        match self.text.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                self.text.drain(..=newline);
            }
            None => self.text.clear(),
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Lines held (approximately: rows that did not wrap).
    pub fn lines(&self) -> usize {
        self.text.iter().filter(|&&b| b == b'\n').count() + usize::from(!self.text.is_empty())
    }

    /// Bytes allocated.
    pub fn allocated(&self) -> usize {
        self.text.capacity()
    }
}

struct Capture {
    scrollback: Scrollback,
    line: String,
    /// The last captured line awaits its line break (the capture writes
    /// it before the next line).
    line_open: bool,
    /// Rows scrolled off the main screen so far (see [`super::reflow`]).
    scrolled: u64,
}

impl Capture {
    /// Appends lines of plain text (see [`plain_lines`]) as they were
    /// printed, starting in the colours `attributes` and ending with a
    /// line break; bells are left out.
    fn push_plain(&mut self, attributes: &[u8], text: &[u8]) {
        if self.line_open {
            self.scrollback.push(b"\r\n");
            self.line_open = false;
        }
        let mut raw = Vec::with_capacity(text.len() + attributes.len() + 6);
        raw.extend_from_slice(b"\x1b[m");
        raw.extend_from_slice(attributes);
        let mut start = 0;
        for bell in memchr::memchr_iter(0x07, text) {
            raw.extend_from_slice(&text[start..bell]);
            start = bell + 1;
        }
        raw.extend_from_slice(&text[start..]);
        raw.extend_from_slice(b"\x1b[m");
        self.scrollback.push(&raw);
        // Captured lines that follow start from the default colours.
        self.scrollback.state = BasicFormattedCaptureState::new();
    }
}

impl vt100::Callbacks for Capture {
    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if alternate_screen {
            return;
        }
        self.scrolled += 1;
        self.line.clear();
        // Writing to a String cannot fail.
        let _ = contents.write_formatted_basic(&mut self.line, &mut self.scrollback.state);
        let line = std::mem::take(&mut self.line);
        self.line_open = true;
        match line.strip_prefix('\n') {
            Some(rest) => {
                self.scrollback.push(b"\r\n");
                self.scrollback.push(rest.as_bytes());
            }
            None => self.scrollback.push(line.as_bytes()),
        }
        self.line = line;
        if self.line.capacity() > 4096 {
            self.line = String::new();
        }
    }
}

/// Output held unparsed beyond this is compacted (see [`Terminal::push`]).
pub const BACKLOG_MAX: usize = 2 << 20;
/// Output kept after a compaction.
const BACKLOG_KEEP: usize = 1 << 20;
/// A backlog bigger than this is fast-forwarded, when it can be, before
/// it is parsed.
const FAST_FORWARD_MIN: usize = 64 << 10;
/// Output parsed per step when catching up.
pub const CATCH_UP_STEP: usize = 64 << 10;

/// The screen and scrollback of one session.
///
/// Output is parsed lazily: it is queued as a backlog (cheap to append) and
/// parsed when the PTY goes quiet, before a snapshot or resize, or when the
/// backlog exceeds [`BACKLOG_MAX`]. In that last case a prefix made only of
/// plain text lines (printable characters, CR LF, tabs, colour and
/// erase-line sequences) is fast-forwarded: it only scrolls lines through, so
/// its effect on the screen is recreated without parsing each line, and its
/// lines join the scrollback as they were printed. Anything else is parsed
/// in full.
pub struct Terminal {
    parser: vt100::Parser<Capture>,
    backlog: VecDeque<bytes::Bytes>,
    backlog_bytes: usize,
    /// Whether catching up already found the backlog not plain text (so
    /// it is not checked again until more output is queued).
    fast_forward_tried: bool,
    /// The last snapshot of an ended session and its size, kept instead of
    /// the parser's grid and scrollback (see [`Terminal::freeze`]).
    frozen: Option<(Snapshot, (u16, u16))>,
}

/// What a viewer needs to restore the terminal.
#[derive(Clone)]
pub struct Snapshot {
    pub scrollback: bytes::Bytes,
    pub screen: bytes::Bytes,
}

impl Terminal {
    pub fn new(cols: u16, rows: u16, scrollback_bytes: usize) -> Self {
        let capture = Capture {
            scrollback: Scrollback::new(scrollback_bytes.max(1024)),
            line: String::new(),
            line_open: false,
            scrolled: 0,
        };
        Self {
            parser: vt100::Parser::new_with_callbacks(nonzero(rows), nonzero(cols), 0, capture),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            fast_forward_tried: false,
            frozen: None,
        }
    }

    /// Keeps only the final snapshot, for a session whose output ended:
    /// an ended session costs its replay's bytes rather than a screen grid
    /// and a scrollback buffer. Later snapshots return it.
    pub fn freeze(&mut self) {
        let frozen = (self.snapshot(), self.size());
        *self = Self::new(1, 1, 0);
        self.frozen = Some(frozen);
    }

    /// Bytes held for the scrollback (allocated, or in the final snapshot).
    pub fn scrollback_bytes(&self) -> usize {
        match &self.frozen {
            Some((snapshot, _)) => snapshot.scrollback.len(),
            None => self.scrollback().allocated(),
        }
    }

    /// Feeds output of the PTY at once.
    pub fn process(&mut self, bytes: &[u8]) {
        self.catch_up();
        self.parser.process(bytes);
    }

    /// Queues output of the PTY, compacting the backlog when it is too big.
    pub fn push(&mut self, chunk: bytes::Bytes) {
        self.fast_forward_tried = false;
        self.backlog_bytes += chunk.len();
        self.backlog.push_back(chunk);
        if self.backlog_bytes > BACKLOG_MAX {
            self.compact();
        }
    }

    /// Bytes queued but not parsed yet.
    pub fn backlog(&self) -> usize {
        self.backlog_bytes
    }

    /// Parses up to about `limit` bytes of the backlog; returns whether
    /// some is left. A backlog of plain text is first fast-forwarded up to
    /// its last line break, so that catching up after bulk output parses
    /// about a screenful rather than all of it.
    pub fn catch_up_some(&mut self, limit: usize) -> bool {
        if self.backlog_bytes > FAST_FORWARD_MIN && !self.fast_forward_tried {
            self.fast_forward_tried = true;
            let prefix = self.take_prefix(0);
            if !self.try_fast_forward(&prefix) && !prefix.is_empty() {
                self.backlog_bytes += prefix.len();
                self.backlog.push_front(prefix.into());
            }
        }
        let mut done = 0;
        while done < limit {
            let Some(chunk) = self.backlog.pop_front() else {
                break;
            };
            self.backlog_bytes -= chunk.len();
            done += chunk.len();
            self.parser.process(&chunk);
        }
        if self.backlog.is_empty() {
            self.backlog = VecDeque::new();
        }
        !self.backlog.is_empty()
    }

    /// Parses the whole backlog.
    pub fn catch_up(&mut self) {
        self.catch_up_some(usize::MAX);
    }

    /// Reduces the backlog to about [`BACKLOG_KEEP`] bytes.
    fn compact(&mut self) {
        let prefix = self.take_prefix(BACKLOG_KEEP);
        if !self.try_fast_forward(&prefix) {
            self.parser.process(&prefix);
        }
    }

    /// Takes the backlog's output down to about `keep` bytes, cut after its
    /// last CR LF (what follows stays queued).
    fn take_prefix(&mut self, keep: usize) -> Vec<u8> {
        let mut prefix = Vec::with_capacity(self.backlog_bytes.saturating_sub(keep) + READ_SLACK);
        while self.backlog_bytes - prefix.len() > keep {
            let Some(chunk) = self.backlog.pop_front() else {
                break;
            };
            prefix.extend_from_slice(&chunk);
        }
        self.backlog_bytes -= prefix.len();
        let cut = prefix
            .windows(2)
            .rposition(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        if cut < prefix.len() {
            let rest = bytes::Bytes::copy_from_slice(&prefix[cut..]);
            self.backlog_bytes += rest.len();
            self.backlog.push_front(rest);
            prefix.truncate(cut);
        }
        prefix
    }

    /// Fast-forwards `prefix` (see [`Terminal::fast_forward`]) when it is
    /// plain text of more than a screenful; returns whether it did.
    fn try_fast_forward(&mut self, prefix: &[u8]) -> bool {
        let rows = usize::from(self.size().1);
        let lines = (!self.parser.screen().alternate_screen())
            .then(|| plain_lines(prefix))
            .flatten();
        match lines {
            Some(lines) if lines > rows => {
                self.fast_forward(prefix, rows);
                true
            }
            _ => false,
        }
    }

    /// Applies `prefix`, plain text of more than `rows` lines ending with a
    /// line break, as if parsed: the screen's lines scroll off, all but the
    /// last `rows` lines of `prefix` join the scrollback as printed, and
    /// those last lines are parsed onto a cleared screen, which they fill.
    fn fast_forward(&mut self, prefix: &[u8], rows: usize) {
        let tail_start = memchr::memrchr_iter(b'\n', prefix)
            .nth(rows)
            .map_or(0, |newline| newline + 1);
        let (head, tail) = prefix.split_at(tail_start);
        let screen = self.parser.screen();
        let attributes = screen.attributes_formatted();
        let (cursor_row, cursor_col) = screen.cursor_position();
        let (_, cols) = self.size();
        let cursor_line_blank = cursor_col == 0
            && screen
                .contents_between(cursor_row, 0, cursor_row, cols)
                .is_empty();
        // Scroll off the lines above the cursor, and the cursor's line when
        // it holds text (a line the prefix started on is broken there).
        let scrolls = if cursor_line_blank { rows - 1 } else { rows };
        self.parser.process("\r\n".repeat(scrolls).as_bytes());
        self.parser
            .callbacks_mut()
            .push_plain(attributes.as_bytes(), head);
        self.parser.process(b"\x1b[m\x1b[2J\x1b[H");
        self.parser.process(attributes.as_bytes());
        self.parser.process(&final_attributes(head));
        self.parser.process(tail);
    }

    /// Resizes the screen, re-wrapping its lines to a new width (see
    /// [`super::reflow`]).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.catch_up();
        super::reflow::resize(&mut self.parser, nonzero(rows), nonzero(cols), |capture| {
            capture.scrolled
        });
    }

    pub fn size(&self) -> (u16, u16) {
        if let Some((_, size)) = self.frozen {
            return size;
        }
        let (rows, cols) = self.parser.screen().size();
        (cols.get(), rows.get())
    }

    pub fn scrollback(&self) -> &Scrollback {
        &self.parser.callbacks().scrollback
    }

    /// Bytes that, fed to a freshly reset terminal of the same size, restore
    /// the recent scrollback and then exactly the current screen: contents,
    /// colours, cursor position and visibility, alternate screen and input
    /// modes.
    pub fn snapshot(&mut self) -> Snapshot {
        if let Some((snapshot, _)) = &self.frozen {
            return snapshot.clone();
        }
        self.catch_up();
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let (rows, cols) = (rows.get(), cols.get());
        let history = &self.scrollback().text;
        // Sized once: a replay's copy of the history never doubles.
        let mut scrollback = Vec::with_capacity(history.len() + 64 + usize::from(rows));
        if !history.is_empty() {
            scrollback.extend_from_slice(b"\x1b[m");
            let (front, back) = history.as_slices();
            scrollback.extend_from_slice(front);
            scrollback.extend_from_slice(back);
            scrollback.extend_from_slice(b"\x1b[m\r\n");
            // Scroll what was just written off the visible area, so that the
            // screen below starts from a blank page and the history stays in
            // the viewer's own scrollback.
            let on_screen = visible_rows_used(history, cols).min(usize::from(rows));
            let _ = write!(
                StrBuf(&mut scrollback),
                "\x1b[{rows};1H{}",
                "\n".repeat(on_screen)
            );
        }
        let mut redraw = String::new();
        if screen.alternate_screen() {
            redraw.push_str("\x1b[?1049h");
        }
        redraw.push_str(&screen.state_formatted());
        Snapshot {
            scrollback: scrollback.into(),
            screen: redraw.into_bytes().into(),
        }
    }
}

/// Slack for a partial chunk when compacting.
const READ_SLACK: usize = 64 << 10;

/// The line count of `text` if it only prints lines (see [`Terminal`]):
/// printable characters, CR, LF, tab, backspace, bell, and CSI sequences
/// ending in `m` (colours) or `K` (erase in line).
fn plain_lines(text: &[u8]) -> Option<usize> {
    let mut rest = text;
    while let Some(escape) = memchr::memchr(0x1b, rest) {
        if !only_printing(&rest[..escape]) {
            return None;
        }
        let sequence = csi_at(&rest[escape..])?;
        if !matches!(sequence.last(), Some(b'm' | b'K')) {
            return None;
        }
        rest = &rest[escape + sequence.len()..];
    }
    only_printing(rest).then(|| memchr::memchr_iter(b'\n', text).count())
}

/// The colour sequences in effect after `text` (plain text), from its last
/// reset if it has one.
fn final_attributes(text: &[u8]) -> Vec<u8> {
    let mut attributes = Vec::new();
    let mut rest = text;
    while let Some(escape) = memchr::memchr(0x1b, rest) {
        let Some(sequence) = csi_at(&rest[escape..]) else {
            rest = &rest[escape + 1..];
            continue;
        };
        if sequence == b"\x1b[m" || sequence == b"\x1b[0m" {
            attributes.clear();
            attributes.extend_from_slice(b"\x1b[m");
        } else if sequence.ends_with(b"m") && attributes.len() < 4096 {
            attributes.extend_from_slice(sequence);
        }
        rest = &rest[escape + sequence.len()..];
    }
    attributes
}

/// The CSI sequence with numeric parameters at the start of `text`
/// (which starts with ESC), if it is one.
fn csi_at(text: &[u8]) -> Option<&[u8]> {
    if text.get(1) != Some(&b'[') {
        return None;
    }
    let parameters = text[2..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b';' || **b == b':')
        .count();
    let end = 2 + parameters;
    text.get(end).filter(|b| b.is_ascii_alphabetic())?;
    Some(&text[..=end])
}

/// Whether `text` has no control character but CR, LF, tab, backspace and
/// bell (checked a block at a time, without branches inside a block).
fn only_printing(text: &[u8]) -> bool {
    let allowed = |b: u8| {
        (b >= 0x20 && b != 0x7f)
            | (b == b'\n')
            | (b == b'\r')
            | (b == b'\t')
            | (b == 0x08)
            | (b == 0x07)
    };
    text.chunks(64)
        .all(|block| block.iter().fold(true, |ok, &b| ok & allowed(b)))
}

/// Upper bound of the screen rows the last lines of `history` occupy once
/// written (long lines wrap).
fn visible_rows_used(history: &VecDeque<u8>, cols: u16) -> usize {
    let cols = usize::from(cols.max(1));
    let mut rows: usize = 1; // the line the cursor ends on
    let mut width: usize = 0;
    for &byte in history.iter().rev() {
        if byte == b'\n' {
            rows += width.div_ceil(cols).max(1);
            width = 0;
            if rows > 1000 {
                break;
            }
        } else if byte != b'\r' {
            width += 1;
        }
    }
    rows + width.div_ceil(cols)
}

struct StrBuf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for StrBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn nonzero(value: u16) -> NonZeroU16 {
    NonZeroU16::new(value.max(1)).unwrap_or(NonZeroU16::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catching_up_fast_forwards_a_plain_backlog() {
        let text = numbered_lines(BACKLOG_MAX / 2);
        let mut lazy = queued(&text);
        assert_eq!(lazy.backlog(), text.len(), "below the compaction bound");
        lazy.catch_up();
        assert_eq!(lazy.backlog(), 0);
        // Erase-in-line is kept only by fast-forwarded lines (as printed);
        // lines parsed one by one are captured without it.
        let scrollback = lazy.snapshot().scrollback;
        assert!(memchr::memmem::find(&scrollback, b"\x1b[K").is_some());
        let (full, _) = restored_beside_full(&mut lazy, &text);
        let numbers = history_before_screen(&scrollback, &full);
        assert_eq!(numbers.first(), Some(&1));
    }

    /// Numbered lines in changing colours, `bytes` of them or a line more.
    fn numbered_lines(bytes: usize) -> Vec<u8> {
        let mut text = Vec::new();
        let mut i = 0;
        while text.len() < bytes {
            i += 1;
            text.extend_from_slice(format!("\x1b[3{}mline {i}\x1b[K\r\n", i % 8).as_bytes());
        }
        text
    }

    /// An 80x24 terminal with `text` queued in read-sized chunks.
    fn queued(text: &[u8]) -> Terminal {
        let mut terminal = Terminal::new(80, 24, 2 << 20);
        for chunk in text.chunks(4000) {
            terminal.push(bytes::Bytes::copy_from_slice(chunk));
        }
        terminal
    }

    /// A terminal fed all of `text` and one restored from `lazy`'s
    /// snapshot, checked to show the same screen.
    fn restored_beside_full(lazy: &mut Terminal, text: &[u8]) -> (vt100::Parser, vt100::Parser) {
        let mut full = vt100::Parser::new(nonzero(24), nonzero(80), 0);
        full.process(text);
        let restored = restore(&lazy.snapshot(), 80, 24);
        assert_eq!(
            restored.screen().contents_formatted(),
            full.screen().contents_formatted()
        );
        (full, restored)
    }

    /// The numbers of the `line N` lines in `scrollback`, checked to be
    /// consecutive and to end right before the first line on `full`'s
    /// screen.
    fn history_before_screen(scrollback: &[u8], full: &vt100::Parser) -> Vec<usize> {
        let numbers: Vec<usize> = printed_lines(scrollback)
            .iter()
            .filter(|line| !line.is_empty())
            .map(|line| line.strip_prefix("line ").unwrap().parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
        let first_on_screen = full.screen().contents().lines().next().unwrap().to_owned();
        assert_eq!(
            format!("line {}", numbers.last().unwrap() + 1),
            first_on_screen
        );
        numbers
    }

    #[test]
    fn fast_forward_matches_full_parsing() {
        let mut text = numbered_lines(3 * BACKLOG_MAX);
        text.extend_from_slice(b"\x1b[1;44mtail");
        let mut lazy = queued(&text);
        assert!(lazy.backlog() <= BACKLOG_MAX);
        let (full, restored) = restored_beside_full(&mut lazy, &text);
        assert_eq!(
            restored.screen().cursor_position(),
            full.screen().cursor_position()
        );
        // The scrollback holds the lines before the screen's, every one.
        let numbers = history_before_screen(&lazy.snapshot().scrollback, &full);
        assert!(numbers.len() > 10_000, "{} lines", numbers.len());
    }

    /// The text of each line of `bytes`, CSI sequences left out.
    fn printed_lines(bytes: &[u8]) -> Vec<String> {
        let mut text = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while let Some((&byte, after)) = rest.split_first() {
            rest = after;
            if byte == 0x1b && rest.first() == Some(&b'[') {
                let end = rest
                    .iter()
                    .position(|b| (0x40..0x7f).contains(b) && *b != b'[');
                rest = &rest[end.map_or(rest.len(), |e| e + 1)..];
            } else {
                text.push(byte);
            }
        }
        String::from_utf8_lossy(&text)
            .split("\r\n")
            .map(|line| line.trim_end().to_owned())
            .collect()
    }

    #[test]
    fn non_plain_output_is_parsed_in_full() {
        let mut lazy = Terminal::new(80, 24, 1 << 16);
        let mut full = vt100::Parser::new(nonzero(24), nonzero(80), 0);
        let mut text = Vec::new();
        for i in 0..200_000 {
            text.extend_from_slice(format!("\x1b[{};{}H{i}", i % 24 + 1, i % 70 + 1).as_bytes());
        }
        text.extend_from_slice(b"\x1b[?1049h\x1b[5;5Halt");
        for chunk in text.chunks(4000) {
            lazy.push(bytes::Bytes::copy_from_slice(chunk));
        }
        full.process(&text);
        let restored = restore(&lazy.snapshot(), 80, 24);
        assert_eq!(
            restored.screen().contents_formatted(),
            full.screen().contents_formatted()
        );
    }

    fn restore(snapshot: &Snapshot, cols: u16, rows: u16) -> vt100::Parser {
        let mut parser = vt100::Parser::new(nonzero(rows), nonzero(cols), 0);
        parser.process(&snapshot.scrollback);
        parser.process(&snapshot.screen);
        parser
    }

    #[test]
    fn snapshot_restores_screen_and_alternate_screen() {
        let mut term = Terminal::new(40, 10, 1 << 16);
        let _ = &mut term;
        let mut reference = vt100::Parser::new(nonzero(10), nonzero(40), 0);
        let mut feed = |bytes: &[u8]| {
            term.process(bytes);
            reference.process(bytes);
        };
        for i in 0..50 {
            feed(format!("line {i}\r\n").as_bytes());
        }
        feed(b"\x1b[?1049h\x1b[2J\x1b[3;5H\x1b[1;31mred\x1b[0m\x1b[?1h\x1b[7;2H");
        let restored = restore(&term.snapshot(), 40, 10);
        assert_eq!(
            restored.screen().contents_formatted(),
            reference.screen().contents_formatted()
        );
        assert_eq!(restored.screen().cursor_position(), (6, 1));
        assert!(restored.screen().alternate_screen());
        assert!(restored.screen().application_cursor());
        assert!(term.scrollback().lines() >= 40);
    }

    #[test]
    fn scrollback_is_bounded_and_starts_at_a_line() {
        let mut term = Terminal::new(80, 24, 4096);
        for i in 0..10_000 {
            term.process(format!("some output line number {i}\r\n").as_bytes());
        }
        let len = term.scrollback().len();
        assert!(len <= 4096, "{len}");
        assert!(len > 1024);
        let snapshot = term.snapshot();
        let text = String::from_utf8_lossy(&snapshot.scrollback);
        assert!(
            text.starts_with("\x1b[msome output line number"),
            "{}",
            &text[..40]
        );
        assert!(text.contains("line number 9975"));
    }

    #[test]
    fn a_frozen_terminal_keeps_its_last_snapshot_only() {
        let mut term = Terminal::new(100, 30, 1 << 20);
        for i in 0..5_000 {
            term.process(format!("\x1b[32mline {i}\x1b[m\r\n").as_bytes());
        }
        term.push(bytes::Bytes::from_static(b"queued \x1b[1mtail"));
        let before = term.snapshot();
        term.freeze();
        let after = term.snapshot();
        assert_eq!(after.scrollback, before.scrollback);
        assert_eq!(after.screen, before.screen);
        assert_eq!(term.size(), (100, 30));
        assert_eq!(term.scrollback_bytes(), before.scrollback.len());
        assert_eq!(term.scrollback().allocated(), 0);
    }
}
