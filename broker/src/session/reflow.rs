//! Re-wrapping the main screen when the terminal's width changes, so that a
//! later replay loses no character.
//!
//! The `vt100` grid cuts rows to a narrower width and pads them to a wider
//! one. Like tmux (`grid_reflow`) and xterm.js (its buffer's reflow), the
//! screen is re-wrapped instead: its rows are read back as logical lines (a
//! row that wrapped joins the next), the grid is cleared at the new size and
//! the lines are printed again, wrapping at the new width. Lines that no
//! longer fit scroll off the top into the scrollback, as if printed there.
//! The cursor keeps its place in its line; colours and modes are kept (the
//! same parser goes on). The alternate screen of a full-screen program is
//! not re-wrapped (the program redraws it on the size change), but the main
//! screen beneath it is, for when the program exits.

use std::fmt::Write as _;
use std::num::NonZeroU16;

/// The main screen read back as logical lines, with the cursor's place.
struct Lines {
    /// Each logical line as SGR-formatted text (no other control).
    lines: Vec<String>,
    /// The cursor's line and its column within that line.
    cursor_line: usize,
    cursor_column: usize,
    /// The colours in effect for what is printed next.
    attributes: String,
}

impl Lines {
    fn read(screen: &vt100::Screen) -> Self {
        let (_, cols) = screen.size();
        let (cursor_row, cursor_col) = screen.cursor_position();
        // Rows before the cursor's that do not wrap each end a line; those
        // that do are whole rows of the cursor's line before it.
        let mut cursor_line = 0;
        let mut cursor_column = usize::from(cursor_col);
        for row in 0..cursor_row {
            if screen.row_wrapped(row) {
                cursor_column += usize::from(cols.get());
            } else {
                cursor_line += 1;
                cursor_column = usize::from(cursor_col);
            }
        }
        let mut lines: Vec<String> = screen
            .contents_formatted_basic()
            .split('\n')
            .map(str::to_owned)
            .collect();
        // Blank lines below both the cursor and the last text stay behind.
        let last_text = lines.iter().rposition(|line| !is_blank(line)).unwrap_or(0);
        lines.truncate(last_text.max(cursor_line) + 1);
        Self {
            lines,
            cursor_line,
            cursor_column,
            attributes: screen.attributes_formatted(),
        }
    }
}

/// Whether a formatted line prints nothing but spaces.
fn is_blank(line: &str) -> bool {
    vt100::capture::basic_formatted_to_plain(line).all(|text| text.trim().is_empty())
}

/// Resizes the terminal of `parser` to `rows` x `cols`, re-wrapping the main
/// screen when the width changes. `scrolls` counts the rows the parser's
/// callbacks saw scroll off the main screen.
pub(super) fn resize<C: vt100::Callbacks>(
    parser: &mut vt100::Parser<C>,
    rows: NonZeroU16,
    cols: NonZeroU16,
    scrolls: impl Fn(&C) -> u64,
) {
    let screen = parser.screen();
    if screen.size().1 == cols {
        parser.set_size(rows, cols);
        return;
    }
    // Beneath a full-screen program: switch to the main screen and back
    // (mode 47 switches without clearing either).
    let alternate = screen.alternate_screen();
    if alternate {
        parser.process(b"\x1b[?47l");
    }
    rewrap_main_screen(parser, rows, cols, scrolls);
    if alternate {
        parser.process(b"\x1b[?47h");
    }
}

/// Resizes both screens, printing the main one's lines again at the new width.
fn rewrap_main_screen<C: vt100::Callbacks>(
    parser: &mut vt100::Parser<C>,
    rows: NonZeroU16,
    cols: NonZeroU16,
    scrolls: impl Fn(&C) -> u64,
) {
    let read = Lines::read(parser.screen());
    // The grid takes the new size without scrolling anything off: every row
    // is printed again below.
    parser.screen_mut().set_size(rows, cols);
    parser.process(b"\x1b[m\x1b[H\x1b[2J");
    let mut cursor_start = (0, 0);
    for (index, line) in read.lines.iter().enumerate() {
        if index > 0 {
            parser.process(b"\r\n");
        }
        if index == read.cursor_line {
            cursor_start = (
                parser.screen().cursor_position().0,
                scrolls(parser.callbacks()),
            );
        }
        parser.process(line.as_bytes());
    }
    // The cursor's line started on `cursor_start.0`, less the rows scrolled
    // off since.
    let width = usize::from(cols.get());
    let scrolled = scrolls(parser.callbacks()) - cursor_start.1;
    let row = (usize::from(cursor_start.0) + read.cursor_column / width)
        .saturating_sub(usize::try_from(scrolled).unwrap_or(usize::MAX))
        .min(usize::from(rows.get()) - 1);
    let col = read.cursor_column % width;
    let mut restore = String::new();
    let _ = write!(
        restore,
        "\x1b[m{}\x1b[{};{}H",
        read.attributes,
        row + 1,
        col + 1
    );
    parser.process(restore.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the rows scrolled off the main screen.
    #[derive(Default)]
    struct Scrolls(u64);

    impl vt100::Callbacks for Scrolls {
        fn on_scroll(&mut self, _: vt100::capture::RowContents<'_>, alternate_screen: bool) {
            self.0 += u64::from(!alternate_screen);
        }
    }

    fn terminal(cols: u16, rows: u16) -> vt100::Parser<Scrolls> {
        let nz = |v| NonZeroU16::new(v).unwrap();
        vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, Scrolls::default())
    }

    fn resized(parser: &mut vt100::Parser<Scrolls>, cols: u16, rows: u16) {
        let nz = |v| NonZeroU16::new(v).unwrap();
        resize(parser, nz(rows), nz(cols), |scrolls| scrolls.0);
    }

    /// 120 distinct characters.
    fn long_line() -> String {
        (0..120)
            .map(|i| char::from(b'!' + (i % 90) as u8))
            .collect()
    }

    #[test]
    fn a_narrower_screen_wraps_a_long_line_instead_of_cutting_it() {
        let mut parser = terminal(120, 10);
        let line = long_line();
        parser.process(format!("{line}\r\n$ ").as_bytes());
        resized(&mut parser, 40, 10);
        let screen = parser.screen();
        let rows: Vec<String> = screen.rows(0, 40).collect();
        assert_eq!(rows[..3], [&line[..40], &line[40..80], &line[80..]]);
        assert!(screen.row_wrapped(0) && screen.row_wrapped(1) && !screen.row_wrapped(2));
        assert_eq!(rows[3], "$ ");
        assert_eq!(
            screen.cursor_position(),
            (3, 2),
            "the cursor stays after the prompt"
        );
        // Wider again: the line is whole on one row.
        resized(&mut parser, 120, 10);
        assert_eq!(parser.screen().rows(0, 120).next().unwrap(), line);
        assert_eq!(parser.screen().cursor_position(), (1, 2));
    }

    #[test]
    fn lines_that_no_longer_fit_scroll_into_the_scrollback() {
        let mut parser = terminal(120, 4);
        let line = long_line();
        parser.process(format!("{line}\r\nsecond\r\nthird\r\n$ ").as_bytes());
        resized(&mut parser, 40, 4);
        // Six rows for four: the long line's first two went off the top.
        assert_eq!(parser.callbacks().0, 2);
        let rows: Vec<String> = parser.screen().rows(0, 40).collect();
        assert_eq!(rows, [&line[80..], "second", "third", "$ "]);
        assert_eq!(parser.screen().cursor_position(), (3, 2));
    }

    #[test]
    fn colours_and_the_cursor_in_the_middle_of_a_line_are_kept() {
        let mut parser = terminal(60, 6);
        parser.process(b"\x1b[31mred\x1b[m plain \x1b[1mbold");
        // The cursor back on "plain".
        parser.process(b"\x1b[1;6H");
        resized(&mut parser, 20, 6);
        let screen = parser.screen();
        assert_eq!(screen.contents(), "red plain bold");
        assert_eq!(screen.cell(0, 0).unwrap().fgcolor(), vt100::Color::Idx(1));
        assert!(screen.cell(0, 10).unwrap().bold());
        assert_eq!(screen.cursor_position(), (0, 5));
        assert!(screen.bold(), "what is printed next is still bold");
    }

    #[test]
    fn beneath_a_full_screen_program_the_main_screen_is_rewrapped() {
        let mut parser = terminal(80, 10);
        let line = &long_line()[..70];
        parser.process(format!("{line}\r\n$ \x1b[?1049hfull screen").as_bytes());
        resized(&mut parser, 40, 10);
        let screen = parser.screen();
        assert!(screen.alternate_screen());
        assert_eq!(screen.size().1.get(), 40);
        assert_eq!(screen.contents(), "full screen");
        // The program exits: the main screen has the whole line.
        parser.process(b"\x1b[?1049l");
        let rows: Vec<String> = parser.screen().rows(0, 40).take(3).collect();
        assert_eq!(rows, [&line[..40], &line[40..], "$ "]);
    }

    #[test]
    fn a_height_change_is_left_to_the_grid() {
        let mut parser = terminal(80, 10);
        parser.process(b"one\r\ntwo");
        resized(&mut parser, 80, 5);
        assert_eq!(parser.screen().contents(), "one\ntwo");
        assert_eq!(parser.callbacks().0, 0);
    }
}
