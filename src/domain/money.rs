//! Money as exact decimals with two places. Client input arrives as strings and is parsed here,
//! so an amount with a third decimal, a sign or an exponent never reaches a use case.

use std::fmt;
use std::str::FromStr;

use bigdecimal::{BigDecimal, Signed, Zero};

use super::error::{Error, Result};

/// The largest balance a DECIMAL(14,2) column holds.
pub const MAX_BALANCE: &str = "999999999999.99";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(BigDecimal);

impl Money {
    /// A stored amount (may be zero or negative, as ledger entries are).
    pub fn from_stored(value: BigDecimal) -> Self {
        Self(value.with_scale(2))
    }

    pub fn zero() -> Self {
        Self(BigDecimal::zero().with_scale(2))
    }

    /// Parses a client amount: plain digits with at most two decimals, strictly positive, at most
    /// `cap`.
    pub fn parse_positive(input: &str, cap: &Money) -> Result<Self> {
        Self::parse(input)?.positive_within(cap)
    }

    /// Parses a client amount, once, at the edge (the GraphQL `Decimal` scalar): plain digits
    /// with at most two decimals. No sign, no exponent, no third decimal gets past this.
    pub fn parse(input: &str) -> Result<Self> {
        let trimmed = input.trim();
        let well_formed = !trimmed.is_empty()
            && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.')
            && trimmed.matches('.').count() <= 1
            && !trimmed.starts_with('.')
            && !trimmed.ends_with('.');
        if !well_formed {
            return Err(Error::bad_input(format!(
                "amount must be a decimal string such as \"50000.00\", got {input:?}"
            )));
        }
        let decimals = trimmed.split_once('.').map_or(0, |(_, frac)| frac.len());
        if decimals > 2 {
            return Err(Error::bad_input("amount has more than 2 decimal places"));
        }
        let value = BigDecimal::from_str(trimmed)
            .map_err(|_| Error::bad_input(format!("amount {input:?} is not a number")))?;
        Ok(Self::from_stored(value))
    }

    /// The rule for an amount a client pays or charges: greater than zero, at most `cap`.
    pub fn positive_within(self, cap: &Money) -> Result<Self> {
        if !self.0.is_positive() {
            return Err(Error::bad_input("amount must be greater than zero"));
        }
        if &self > cap {
            return Err(Error::bad_input(format!(
                "amount exceeds the limit of {cap} per charge"
            )));
        }
        Ok(self)
    }

    /// The sum of `amounts` (zero for none).
    pub fn sum<'a>(amounts: impl IntoIterator<Item = &'a Money>) -> Self {
        Self::from_stored(amounts.into_iter().map(|m| &m.0).sum())
    }

    pub fn as_decimal(&self) -> &BigDecimal {
        &self.0
    }

    pub fn negated(&self) -> Self {
        Self(-self.0.clone())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:.2}`, not `with_scale(2)`: bigdecimal prints a zero as "0" whatever its scale.
        write!(f, "{:.2}", self.0)
    }
}

impl FromStr for Money {
    type Err = bigdecimal::ParseBigDecimalError;

    /// Parses configuration values (trusted, may be any non-negative amount).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        BigDecimal::from_str(s).map(Self::from_stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap() -> Money {
        "1000000.00".parse().expect("valid cap")
    }

    #[test]
    fn accepts_whole_and_two_place_amounts() {
        assert_eq!(
            Money::parse_positive("50000", &cap())
                .map(|m| m.to_string())
                .ok(),
            Some("50000.00".into())
        );
        assert_eq!(
            Money::parse_positive("0.01", &cap())
                .map(|m| m.to_string())
                .ok(),
            Some("0.01".into())
        );
        assert_eq!(
            Money::parse_positive("1000000.00", &cap())
                .map(|m| m.to_string())
                .ok(),
            Some("1000000.00".into())
        );
    }

    #[test]
    fn refuses_zero_negative_extra_decimals_exponents_and_junk() {
        for bad in [
            "0", "0.00", "-5", "1.001", "1e3", "", " ", "abc", "1.2.3", ".5", "5.", "+5", "NaN",
        ] {
            assert!(
                matches!(Money::parse_positive(bad, &cap()), Err(Error::BadInput(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn refuses_amounts_over_the_cap() {
        assert!(matches!(
            Money::parse_positive("1000000.01", &cap()),
            Err(Error::BadInput(_))
        ));
    }

    #[test]
    fn displays_two_places() {
        assert_eq!(Money::from_stored(BigDecimal::from(7)).to_string(), "7.00");
        assert_eq!(
            Money::from_stored(BigDecimal::from(-7)).to_string(),
            "-7.00"
        );
    }
}
