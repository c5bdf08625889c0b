//! Custom scalars. `Decimal` is string-only on purpose: async-graphql's built-in decimal accepts
//! JSON numbers, which pass through f64 and can lose cents. `Date` is a calendar date
//! ("2026-12-24"). `DateTime` is async-graphql's chrono scalar (RFC 3339, UTC).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{Datelike, NaiveDate};

use crate::domain::money::Money;

/// Money, parsed once here into [`Money`] and carried as that to the use case, which applies
/// its own rules (positive, within a cap); sent back with two places, e.g. "50000.00".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(pub Money);

/// Money: a decimal string with at most two places, e.g. "50000.00". JSON numbers are refused.
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Money::parse(&s)
                .map(Self)
                .map_err(|e| InputValueError::custom(e.to_string())),
            _ => Err(InputValueError::custom(
                "Decimal must be a string such as \"50000.00\", not a number",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

impl From<&Money> for Decimal {
    fn from(m: &Money) -> Self {
        Self(m.clone())
    }
}

impl From<Money> for Decimal {
    fn from(m: Money) -> Self {
        Self(m)
    }
}

/// A calendar date, "YYYY-MM-DD".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

/// A calendar date, "2026-12-24".
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // Years outside 1000..=9999 are not dates anyone books, and MariaDB's DATE cannot
            // store them (a negative year failed in the driver, as INTERNAL_SERVER_ERROR).
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .filter(|d| (1000..=9999).contains(&d.year()))
                .map(Self)
                .ok_or_else(|| {
                    InputValueError::custom(format!(
                        "{s:?} is not a date in the form \"2026-12-24\""
                    ))
                }),
            _ => Err(InputValueError::custom(
                "Date must be a string such as \"2026-12-24\"",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_refuses_json_numbers() {
        assert!(<Decimal as ScalarType>::parse(Value::from(10.5)).is_err());
        // Parsed once, here: a third decimal or a sign never reaches a use case.
        assert!(<Decimal as ScalarType>::parse(Value::from("10.505")).is_err());
        assert!(<Decimal as ScalarType>::parse(Value::from("-1")).is_err());
        assert_eq!(
            <Decimal as ScalarType>::parse(Value::from("10.50")).ok(),
            Some(Decimal("10.50".parse().expect("money")))
        );
    }

    #[test]
    fn date_parses_only_iso_calendar_dates() {
        assert!(<Date as ScalarType>::parse(Value::from("2026-12-24")).is_ok());
        for bad in [
            "2026-13-01",
            "24/12/2026",
            "2026-12-24T00:00:00Z",
            "",
            "-0001-01-01",
            "0999-12-31",
            "+10000-01-01",
        ] {
            assert!(
                <Date as ScalarType>::parse(Value::from(bad)).is_err(),
                "{bad}"
            );
        }
        let date = NaiveDate::from_ymd_opt(2026, 12, 24)
            .map(Date)
            .expect("valid");
        assert_eq!(date.to_value(), Value::from("2026-12-24"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_date_is_a_real_calendar_day_in_four_digit_years_or_refused(s in any::<String>(), y in -300_000i32..300_000, m in 0u32..14, d in 0u32..33) {
            for text in [s, format!("{y}-{m:02}-{d:02}")] {
                if let Ok(Date(date)) = <Date as ScalarType>::parse(Value::String(text)) {
                    prop_assert!((1000..=9999).contains(&date.year()));
                }
            }
            prop_assert!(<Decimal as ScalarType>::parse(Value::from(1.5)).is_err());
        }
    }
}
