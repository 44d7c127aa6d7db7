//! Showing what a stranger wrote (mention text, author names, matched words) on a staff
//! surface without letting it format, link, ping or control anything: one function per
//! surface. A review that says `[verify your login](https://evil.example)` must read as
//! those characters, never as a disguised link inside an internal case card.

/// Bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) can make a card
/// read differently from what it says ("Trojan Source"): shown as U+FFFD on every surface.
fn unbidi(text: &str) -> std::borrow::Cow<'_, str> {
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if text.chars().any(bidi) {
        text.chars().map(|c| if bidi(c) { '\u{FFFD}' } else { c }).collect::<String>().into()
    } else {
        text.into()
    }
}

/// Slack mrkdwn: `&`, `<` and `>` are the only characters Slack lets you escape, and they
/// are the ones that make links (`<https://…|text>`) and mentions (`<!channel>`, `<@U…>`).
/// A run of three backticks would open a code block that swallows the rest of the card; a
/// zero-width space breaks the run.
pub fn slack(text: &str) -> String {
    unbidi(text).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace("```", "`\u{200B}`\u{200B}`")
}

/// Discord markdown: every character that formats, links, quotes, heads a line or
/// mentions is backslash-escaped, so masked links (`[text](url)`), headings (`# …`), code
/// blocks, spoilers and `@everyone` / `<@id>` show as typed. Raw URLs stay visible as
/// what they are.
pub fn discord(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut line_start = true;
    for c in unbidi(text).chars() {
        let always = matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '<' | '>' | '@');
        // Headings, quotes and lists only start a line.
        let at_start = line_start && matches!(c, '#' | '-' | '+');
        if always || at_start {
            out.push('\\');
        }
        out.push(c);
        if c == '\n' {
            line_start = true;
        } else if !c.is_whitespace() {
            line_start = false;
        }
    }
    out
}

/// The terminal: control characters (escape sequences that recolour, move the cursor or
/// retitle the window) become visible `\u{…}` text; newlines and tabs stay.
pub fn console(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in unbidi(text).chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "[verify your login here](https://attacker.example/reset) **urgent**";
    const MENTIONS: &str = "@everyone @here <@123456789> <!channel> <@U024BE7LH>";
    const HEADING: &str = "# Urgent notice\n> quoted";
    const CODE: &str = "```\nrm -rf\n```";

    #[test]
    fn slack_text_cannot_link_mention_or_open_a_code_block() {
        let s = slack(LINK);
        assert!(!s.contains('<') && !s.contains('>'));
        let s = slack("<https://attacker.example|verify your login>");
        assert_eq!(s, "&lt;https://attacker.example|verify your login&gt;");
        let s = slack(MENTIONS);
        assert!(!s.contains("<!channel>") && !s.contains("<@U024BE7LH>"), "{s}");
        assert!(!slack(CODE).contains("```"));
        assert!(slack(HEADING).starts_with("# Urgent") && slack(HEADING).contains("&gt; quoted"));
    }

    #[test]
    fn discord_text_cannot_mask_a_link_head_a_line_ping_or_open_a_code_block() {
        let d = discord(LINK);
        assert!(d.starts_with("\\[verify your login here\\]\\(https://attacker.example/reset\\)"), "{d}");
        assert!(d.contains("\\*\\*urgent\\*\\*"));
        let d = discord(MENTIONS);
        assert!(d.contains("\\@everyone") && d.contains("\\<\\@123456789\\>"), "{d}");
        assert!(discord(HEADING).starts_with("\\# Urgent") && discord(HEADING).contains("\n\\> quoted"));
        assert!(!discord(CODE).contains("```"));
        assert_eq!(discord("Case #12 - ok"), "Case #12 - ok", "mid-line # and - stay as they are");
        // Nothing unescaped survives: removing the escapes gives the original back.
        let round: String = {
            let mut out = String::new();
            let mut esc = false;
            for c in discord(LINK).chars() {
                if c == '\\' && !esc {
                    esc = true;
                    continue;
                }
                esc = false;
                out.push(c);
            }
            out
        };
        assert_eq!(round, LINK);
    }

    #[test]
    fn bidirectional_overrides_cannot_reorder_a_card_on_any_surface() {
        let text = "refund \u{202E}gnp.exe\u{202C} now";
        for shown in [slack(text), discord(text), console(text)] {
            assert!(!shown.contains('\u{202E}') && shown.contains('\u{FFFD}'), "{shown:?}");
        }
    }

    #[test]
    fn console_text_cannot_send_escape_sequences() {
        let c = console("red \u{1b}[31malert\u{1b}]0;title\u{7} done\nnext\tcol");
        assert!(!c.contains('\u{1b}') && !c.contains('\u{7}'), "{c:?}");
        assert!(c.contains("\\u{1b}[31malert") && c.contains("done\nnext\tcol"));
    }
}
