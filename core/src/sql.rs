//! Writing SQL text and messages about SQL values: the one quoting rule for
//! identifiers (used by the extension's generated queries and the sidecar's
//! LISTEN, CREATE TABLE and COPY statements) and for values shown in messages.

/// Quote an SQL identifier: `"name"`, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote a user value for a message (`'…'`, quotes doubled), shortened to 80 characters.
pub fn shown(value: &str) -> String {
    let cut: String = value.chars().take(80).collect();
    let more = if cut.len() < value.len() { "…" } else { "" };
    format!("'{}{more}'", cut.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("lamin_job"), "\"lamin_job\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("a\"; drop"), "\"a\"\"; drop\"");
    }

    #[test]
    fn shown_quotes_and_shortens() {
        assert_eq!(shown("it's"), "'it''s'");
        let long = "x".repeat(100);
        assert_eq!(shown(&long), format!("'{}…'", "x".repeat(80)));
    }
}
