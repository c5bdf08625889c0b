//! Validated inputs. Each `parse` is the only way to build the value, so a use case that takes a
//! `Username` or a `SeatNumber` never re-checks it.

use super::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self> {
        let name = input.trim();
        let ok_len = (3..=32).contains(&name.chars().count());
        let ok_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok_len || !ok_chars {
            return Err(Error::bad_input(
                "username must be 3 to 32 characters: letters, digits, '_', '-' or '.'",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address as an identity: one value however it is spelt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalised once, here at the edge: trimmed, Unicode NFKC, lower-cased (Unicode's full
    /// lower-case mapping) and normalised again, so `ACCOUNT@…`, full-width `ａｃｃｏｕｎｔ@…`
    /// and a decomposed `á` are the address they look like. Invisible characters (a zero-width
    /// space, a bidi override, a soft hyphen, fillers, variation selectors, unassigned code
    /// points) are refused rather than dropped: an address that shows like another must be
    /// neither a way into it nor a second identity. Stored in a binary-collated unique column
    /// and compared byte for byte, so the database adds no equivalences of its own (its
    /// accent-insensitive collation once signed `áccount@…` in to `account@…`). Otherwise a
    /// deliberately modest check: one '@', a dot in the domain, no spaces, at most 254 bytes.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid =
            || Error::bad_input(format!("{:?} is not a valid email address", short(input)));
        let trimmed = input.trim();
        if trimmed.chars().any(is_invisible) {
            return Err(Error::bad_input(
                "an email address cannot contain invisible characters (such as a zero-width space)",
            ));
        }
        let email = fold_email(trimmed);
        let valid = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && !email.chars().any(char::is_whitespace)
                    && !email.chars().any(is_invisible)
                    && email.len() <= 254
            }
            None => false,
        };
        if !valid {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Unicode NFKC, lower-cased (the full mapping), NFKC again: the one spelling of an address that
/// accounts are stored under.
fn fold_email(trimmed: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = trimmed.nfkc().collect::<String>().to_lowercase();
    folded.nfkc().collect()
}

/// Part of an e-mail address to search accounts by: trimmed, 1 to 254 characters, folded as
/// [`Email`] folds addresses, so it matches stored addresses whatever the case it was typed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailFragment(String);

impl EmailFragment {
    pub fn parse(input: &str) -> Result<Self> {
        let trimmed = input.trim();
        if !(1..=254).contains(&trimmed.chars().count()) {
            return Err(Error::bad_input(
                "email must be 1 to 254 characters of an address",
            ));
        }
        Ok(Self(fold_email(trimmed)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that show as nothing (or as a blank) and so could make two addresses look alike.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control
            | G::Format
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
    ) || matches!(
        c,
        // Combining grapheme joiner, Hangul and Khmer fillers, Mongolian variation selectors,
        // variation selectors, Braille blank.
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// At most 64 characters of `input`, for quoting it back.
fn short(input: &str) -> String {
    input.chars().take(64).collect()
}

/// The longest password accepted: long enough for any passphrase, short enough that hashing it
/// costs nothing extra.
pub const MAX_PASSWORD_CHARS: usize = 128;

#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(input: &str) -> Result<Self> {
        let len = input.chars().count();
        if !(8..=MAX_PASSWORD_CHARS).contains(&len) {
            return Err(Error::bad_input("password must be 8 to 128 characters"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

pub use crate::db::ids::SeatNumber;

/// A seat number from a client: 1 or more (`BAD_USER_INPUT` otherwise). Whether the concert has
/// that seat is the use case's to say.
pub fn seat_number(input: i32) -> Result<SeatNumber> {
    SeatNumber::new(input).ok_or_else(|| {
        Error::bad_input(format!(
            "seatNumber must be a seat of the concert (from 1), got {input}"
        ))
    })
}

/// An entity id from a client: a UUID. Anything else cannot name a row, so it is refused before
/// it reaches a query.
pub fn parse_id<T>(input: &str, field: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(input).ok_or_else(|| Error::bad_input(format!("{field} {input:?} is not a valid id")))
}

/// An idempotency key: 1 to 128 printable characters, scoped to the user who sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(input: Option<String>) -> Result<Option<Self>> {
        match input {
            None => Ok(None),
            // No surrounding spaces: MySQL's PAD SPACE collations compare "k" and "k " as equal.
            Some(key)
                if !key.is_empty()
                    && key.len() <= 128
                    && !key.chars().any(char::is_control)
                    && key.trim() == key =>
            {
                Ok(Some(Self(key)))
            }
            Some(_) => Err(Error::bad_input(
                "idempotencyKey must be 1 to 128 printable characters, without surrounding spaces",
            )),
        }
    }

    /// A key the operation cannot go without (money that a blind retry would move twice).
    pub fn required(input: String) -> Result<Self> {
        Self::parse(Some(input))?.ok_or_else(|| Error::bad_input("idempotencyKey is required"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("fan_01").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn an_email_fragment_is_folded_like_an_address_and_bounded() {
        let folded = EmailFragment::parse(" ANN%@Ｆans ").map(|f| f.as_str().to_owned());
        assert_eq!(folded.ok(), Some("ann%@fans".into()));
        assert!(EmailFragment::parse("   ").is_err());
        assert!(EmailFragment::parse(&"a".repeat(254)).is_ok());
        assert!(EmailFragment::parse(&"a".repeat(255)).is_err());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            Email::parse(" Fan@Example.COM ")
                .map(|e| e.as_str().to_owned())
                .ok(),
            Some("fan@example.com".into())
        );
        for bad in [
            "",
            "fan",
            "fan@",
            "@example.com",
            "fan@example",
            "fan@.com",
            "f an@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn look_alike_spellings_are_one_identity_or_refused() {
        let normal = |s: &str| Email::parse(s).map(|e| e.as_str().to_owned()).ok();
        let account = Some("account@fans.test".to_owned());
        assert_eq!(normal("ACCOUNT@FANS.TEST"), account);
        assert_eq!(
            normal("ａｃｃｏｕｎｔ@ｆａｎｓ.ｔｅｓｔ"),
            account,
            "full width"
        );
        // A composed and a decomposed accent are one address; an accent is not no accent.
        assert_eq!(
            normal("\u{e1}ccount@fans.test"),
            normal("a\u{301}ccount@fans.test")
        );
        assert_ne!(normal("\u{e1}ccount@fans.test"), account);
        assert_eq!(
            normal("\u{c1}CCOUNT@fans.test"),
            normal("\u{e1}ccount@fans.test")
        );
        for hidden in [
            "acc\u{200b}ount@fans.test",
            "acc\u{200d}ount@fans.test",
            "\u{feff}account@fans.test",
            "account\u{202e}@fans.test",
            "acc\u{ad}ount@fans.test",
            "acc\u{34f}ount@fans.test",
            "acc\u{fe0f}ount@fans.test",
            "acc\u{3164}ount@fans.test",
            "account@fans\u{2060}.test",
            "acc\u{e0041}ount@fans.test",
        ] {
            assert!(
                matches!(Email::parse(hidden), Err(Error::BadInput(_))),
                "{hidden:?}"
            );
        }
    }

    #[test]
    fn passwords_have_a_length_window_and_never_print() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        let pw = Password::parse("long enough").map(|p| format!("{p:?}"));
        assert_eq!(pw.ok(), Some("Password(***)".into()));
    }

    #[test]
    fn seat_numbers_run_from_1_to_50() {
        assert!(seat_number(1).is_ok());
        assert!(seat_number(50).is_ok());
        for bad in [0, 32768, -1, i32::MAX] {
            assert!(seat_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_must_be_uuids() {
        use crate::db::ids::ConcertId;
        let id = "0193a0b4-7d1e-7c3a-9f00-000000000001";
        assert!(parse_id(id, "concertId", ConcertId::parse).is_ok());
        let refused = parse_id("1", "concertId", ConcertId::parse);
        assert!(matches!(refused, Err(Error::BadInput(m)) if m.contains("concertId")));
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(IdempotencyKey::parse(None).ok(), Some(None));
        assert!(IdempotencyKey::parse(Some(String::new())).is_err());
        assert!(IdempotencyKey::parse(Some("k".repeat(129))).is_err());
        assert!(IdempotencyKey::parse(Some("order-42".into())).is_ok());
        assert!(IdempotencyKey::parse(Some("order-42 ".into())).is_err());
    }
}
