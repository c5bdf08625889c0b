//! The first look at a GraphQL document, before any parser sees it: one loop over its bytes,
//! no recursion, that measures how deep `{`, `[` and `(` nest and how many tokens it has.
//!
//! Why before the parser: async-graphql's parser bounds the depth of selection sets but not of
//! values, and its value parsing recurses once per level. `{ concert(id: [[[[ … ]]]]) { id } }`
//! with ~2,000 levels (4 KB) overflowed a worker thread's stack, and a stack overflow aborts the
//! whole process, not the request: one anonymous request took an instance down. Every limit that
//! runs after parsing (`query_limits`) comes too late for that, so this pass runs first on every
//! path a document takes in: POST, GET (before its mutation check parses), websocket payloads of
//! both subprotocols (through the schema's extension), and persisted-query registration.
//!
//! Strings (`"…"`, `"""…"""`) and comments (`# …`) are skipped, so brackets inside them do not
//! count. The measure is lexical and forgiving: a document it passes may still fail to parse,
//! which the parser then reports; it only guarantees that nothing recursive sees a document
//! nested deeper than `QUERY_MAX_NESTING` or longer than `QUERY_MAX_TOKENS` tokens.
//!
//! Variables are JSON, parsed by serde_json, whose own recursion limit (128 levels) refuses a
//! deeper body before anything else sees it (`BAD_REQUEST` over HTTP; over a websocket the
//! message is not a protocol message).

use async_graphql::ServerError;

use super::error::{ErrorCode, coded};
use crate::config::QueryLimits;

/// Why a document was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Brackets nest deeper than the limit.
    TooDeep { limit: u32 },
    /// More tokens than the limit.
    TooLong { limit: u32 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooDeep { limit } => write!(
                f,
                "the document nests brackets ({{, [ or () deeper than {limit} (QUERY_MAX_NESTING)"
            ),
            Self::TooLong { limit } => write!(
                f,
                "the document has more than {limit} tokens (QUERY_MAX_TOKENS)"
            ),
        }
    }
}

/// Checks `document` against the nesting and token limits; a GraphQL error with code
/// `GRAPHQL_VALIDATION_FAILED` when it is over one.
pub fn check(document: &str, limits: &QueryLimits) -> Result<(), ServerError> {
    measure(document, limits.max_nesting, limits.max_tokens).map_err(|refusal| {
        coded(
            ServerError::new(refusal.to_string(), None),
            ErrorCode::GraphqlValidationFailed,
        )
    })
}

/// The lexical pass: stops at the first limit passed, so its work is bounded by the limits as
/// well as by the document's length.
pub fn measure(document: &str, max_nesting: u32, max_tokens: u32) -> Result<(), Refusal> {
    let bytes = document.as_bytes();
    let mut depth: u32 = 0;
    let mut tokens: u32 = 0;
    let mut i = 0;
    let token = |tokens: &mut u32| {
        *tokens = tokens.saturating_add(1);
        if *tokens > max_tokens {
            Err(Refusal::TooLong { limit: max_tokens })
        } else {
            Ok(())
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            // Insignificant: white space, line ends, commas.
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                token(&mut tokens)?;
                i = skip_string(bytes, i);
            }
            b'{' | b'[' | b'(' => {
                token(&mut tokens)?;
                depth += 1;
                if depth > max_nesting {
                    return Err(Refusal::TooDeep { limit: max_nesting });
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                token(&mut tokens)?;
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'!' | b'$' | b'&' | b':' | b'=' | b'@' | b'|' => {
                token(&mut tokens)?;
                i += 1;
            }
            b'.' => {
                token(&mut tokens)?;
                while i < bytes.len() && bytes[i] == b'.' {
                    i += 1;
                }
            }
            // A name, a number, or something the parser will refuse: one token up to the next
            // byte that ends it.
            _ => {
                token(&mut tokens)?;
                while i < bytes.len() && !ends_word(bytes[i]) {
                    i += 1;
                }
            }
        }
    }
    Ok(())
}

fn ends_word(byte: u8) -> bool {
    matches!(
        byte,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | b','
            | b'#'
            | b'"'
            | b'.'
            | b'{'
            | b'['
            | b'('
            | b'}'
            | b']'
            | b')'
            | b'!'
            | b'$'
            | b'&'
            | b':'
            | b'='
            | b'@'
            | b'|'
    )
}

/// The index just past the string starting at `start` (a `"`), or the end of the document when
/// it is not closed (the parser reports that).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        // A block string: ends at the next `"""` not escaped as `\"""`.
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // A string cannot span lines; what follows is the parser's to refuse.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, levels: usize) -> String {
        format!(
            "{{ concert(id: {}\"x\"{}) {{ id }} }}",
            open.repeat(levels),
            close.repeat(levels)
        )
    }

    #[test]
    fn deep_values_of_every_kind_are_refused_before_parsing() {
        for (open, close) in [("[", "]"), ("{a: ", "}")] {
            let deep = nested(open, close, 2_000);
            assert_eq!(
                measure(&deep, 32, 100_000),
                Err(Refusal::TooDeep { limit: 32 }),
                "{open}"
            );
            assert!(measure(&nested(open, close, 10), 32, 100_000).is_ok());
        }
        let selections = format!("{}id{}", "{a".repeat(100), "}".repeat(100));
        assert!(measure(&selections, 32, 100_000).is_err());
        let arguments = format!("{{ a{} }}", "(x: ".repeat(100));
        assert!(measure(&arguments, 32, 100_000).is_err());
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let quoted = format!("{{ concert(id: \"{}\") {{ id }} }}", "[".repeat(500));
        assert!(measure(&quoted, 4, 1_000).is_ok());
        let escaped = format!("{{ concert(id: \"\\\"{}\") {{ id }} }}", "[".repeat(500));
        assert!(measure(&escaped, 4, 1_000).is_ok());
        let block = format!("{{ a(x: \"\"\" \\\"\"\" {} \"\"\") }}", "{".repeat(500));
        assert!(measure(&block, 4, 1_000).is_ok());
        let comment = format!("# {}\n{{ id }}", "(".repeat(500));
        assert!(measure(&comment, 4, 1_000).is_ok());
        // An unterminated string ends the count; the parser refuses the document.
        assert!(measure("{ a(x: \"[[[[[[", 4, 1_000).is_ok());
    }

    #[test]
    fn tokens_are_counted_and_bounded() {
        let many: String = (0..200).map(|i| format!("a{i}: __typename ")).collect();
        let query = format!("{{ {many} }}");
        // Each aliased field is three tokens (alias, colon, name), plus the braces.
        assert!(measure(&query, 32, 602).is_ok());
        assert_eq!(
            measure(&query, 32, 601),
            Err(Refusal::TooLong { limit: 601 })
        );
        assert!(measure("query Q($a: [Int!]!) { ...F @skip(if: true) }", 32, 23).is_ok());
        assert!(measure("query Q($a: [Int!]!) { ...F @skip(if: true) }", 32, 22).is_err());
        // Spreads glued to a name are still one token each.
        let glued = format!("{{a{}}}", "...F".repeat(100));
        assert!(measure(&glued, 32, 150).is_err());
    }

    #[test]
    fn a_document_over_the_limit_is_a_coded_error() {
        let error = check(&nested("[", "]", 2_000), &QueryLimits::default()).expect_err("deep");
        assert_eq!(
            super::super::error::error_code_of(&error),
            Some(ErrorCode::GraphqlValidationFailed)
        );
        assert!(
            error.message.contains("QUERY_MAX_NESTING"),
            "{}",
            error.message
        );
    }
}
