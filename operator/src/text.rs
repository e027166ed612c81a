//! Text from outside (API server messages, MCP servers' answers) made safe to show in a status,
//! a condition, an Event or a log line: bounded, on one line, without control characters.

/// `text` cut to at most `max` bytes (on a character boundary, marked with `…`), with control
/// characters and line breaks turned into spaces.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = |c: char| if c.is_control() { ' ' } else { c };
    if text.len() <= max {
        return text.chars().map(one_line).collect();
    }
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = one_line(c);
        if out.len() + c.len_utf8() > max.saturating_sub('…'.len_utf8()) {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_passes_on_one_line() {
        assert_eq!(clip("a\nb\tc", 100), "a b c");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_within_the_limit() {
        let long = "é".repeat(100);
        let cut = clip(&long, 21);
        assert!(cut.len() <= 21, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
    }
}
