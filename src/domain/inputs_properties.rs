//! Property tests for every input newtype: whatever a client sends, parsing never panics, and a
//! refusal is always `BadInput` (`BAD_USER_INPUT` at the edge) or, for credentials and queue
//! answers, their own codes: never an internal error.

use proptest::prelude::*;

use super::error::Error;
use super::inputs::{Email, IdempotencyKey, Password, Username, seat_number};
use super::money::Money;
use crate::db::ids::{ConcertId, QueueToken, ReservationId, UserId};
use crate::domain::orders::MAX_SEATS_PER_ORDER;
use crate::domain::orders::best::BestRequest;
use crate::domain::orders::hold::SeatSet;
use crate::domain::queue::challenge::Answer;

/// Text a hostile client might send: any unicode, SQL and format metacharacters, long runs.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,300}",
        "[0-9.,eE+-]{0,40}",
        Just("'; DROP TABLE users; --".to_owned()),
        Just("%s%n{}{{}}\\0".to_owned()),
        "[\\u{0}-\\u{10FFFF}]{0,64}",
        (0usize..200_000).prop_map(|n| "9".repeat(n % 5000)),
    ]
}

fn refused_as_input(result: Result<(), Error>) -> bool {
    matches!(result, Ok(()) | Err(Error::BadInput(_)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn money_never_panics_and_refuses_as_input(s in hostile()) {
        let cap: Money = "1000000.00".parse().expect("cap");
        let parsed = Money::parse_positive(&s, &cap);
        if let Ok(m) = &parsed {
            // Accepted money is positive, within the cap, and prints back with two places.
            prop_assert!(m.to_string().contains('.'));
        }
        prop_assert!(refused_as_input(parsed.map(drop)));
    }

    #[test]
    fn names_emails_and_passwords_refuse_as_input(s in hostile()) {
        prop_assert!(refused_as_input(Username::parse(&s).map(drop)));
        prop_assert!(refused_as_input(Email::parse(&s).map(drop)));
        prop_assert!(refused_as_input(Password::parse(&s).map(drop)));
        prop_assert!(refused_as_input(IdempotencyKey::parse(Some(s.clone())).map(drop)));
    }

    #[test]
    fn a_normalised_email_is_a_fixed_point(s in "\\PC{1,40}@\\PC{1,20}\\.[a-z]{2,4}") {
        // Normalising twice changes nothing: every spelling maps to one stored form.
        if let Ok(email) = Email::parse(&s) {
            let again = Email::parse(email.as_str()).map(|e| e.as_str().to_owned());
            prop_assert_eq!(again.ok(), Some(email.as_str().to_owned()));
        }
    }

    #[test]
    fn seat_numbers_are_1_to_50_or_refused(n in any::<i32>()) {
        match seat_number(n) {
            Ok(seat) => prop_assert!(seat.get() >= 1),
            Err(e) => prop_assert!(matches!(e, Error::BadInput(_))),
        }
    }

    #[test]
    fn an_order_names_1_to_100_distinct_seats_sorted_or_is_refused(
        numbers in proptest::collection::vec(1i32..200, 0..130),
    ) {
        let seats: Vec<_> = numbers.iter().filter_map(|n| seat_number(*n).ok()).collect();
        let mut distinct = seats.clone();
        distinct.sort();
        distinct.dedup();
        let valid = !seats.is_empty()
            && seats.len() <= MAX_SEATS_PER_ORDER
            && distinct.len() == seats.len();
        match SeatSet::parse(seats.clone()) {
            Ok(set) => {
                prop_assert!(valid, "accepted {:?}", seats);
                prop_assert_eq!(set.numbers(), distinct.as_slice(), "sorted, each once");
            }
            Err(e) => {
                prop_assert!(!valid, "refused {:?}", seats);
                prop_assert!(matches!(e, Error::BadInput(_)));
            }
        }
    }

    #[test]
    fn best_available_asks_for_1_to_100_seats_and_a_short_tier(
        count in prop_oneof![-5i32..110, any::<i32>()],
        tier in proptest::option::of(prop_oneof!["[A-Za-z ]{0,80}", hostile()]),
    ) {
        let trimmed = tier.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let valid = (1..=MAX_SEATS_PER_ORDER as i32).contains(&count)
            && trimmed.is_none_or(|t| t.chars().count() <= 64);
        match BestRequest::parse(count, tier.clone(), true) {
            Ok(r) => {
                prop_assert!(valid, "accepted {} {:?}", count, tier);
                prop_assert_eq!(r.count as i32, count);
                prop_assert_eq!(r.tier.as_deref(), trimmed);
            }
            Err(e) => {
                prop_assert!(!valid, "refused {} {:?}", count, tier);
                prop_assert!(matches!(e, Error::BadInput(_)));
            }
        }
    }

    #[test]
    fn ids_and_tokens_parse_only_their_own_shape(s in hostile()) {
        // Canonical, so a second parse gives the same id.
        if let Some(id) = UserId::parse(&s) {
            prop_assert_eq!(UserId::parse(id.as_str()), Some(id));
        }
        let _ = (ConcertId::parse(&s), ReservationId::parse(&s));
        if let Some(token) = QueueToken::parse(&s) {
            prop_assert_eq!(token.as_str().len(), 43);
        }
        let answer = Answer::parse(s.clone(), s);
        prop_assert!(matches!(answer, Ok(_) | Err(Error::ChallengeFailed(_))));
    }
}
