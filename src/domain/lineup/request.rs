//! What an operator asks for when making a concert, checked before anything is written: text
//! lengths, distinct future-able dates, a seat count, rows, a fair share, and price tiers that
//! cover every seat once.

use chrono::NaiveDate;

use crate::db::ids::SeatNumber;
use crate::domain::catalog;
use crate::domain::error::{Error, Result};
use crate::domain::money::Money;

/// Most dates one concert may have, and tiers one concert may define.
pub const MAX_DATES: usize = 366;
pub const MAX_TIERS: usize = 50;
/// Most seats one request may create (dates x seats per date): a request's cost is bounded
/// before any of it is written.
pub const MAX_SEATS_PER_REQUEST: i64 = 100_000;
/// The largest seat price.
const MAX_PRICE: &str = "9999999999.99";
/// The tier name of a concert sold at one price.
pub const SINGLE_TIER: &str = "General";

/// What an operator asks for, as sent.
#[derive(Debug, Clone)]
pub struct ConcertRequest {
    pub title: String,
    pub venue: String,
    pub description: Option<String>,
    pub dates: Vec<NaiveDate>,
    pub seats_per_date: i32,
    /// Seats per row, numbered from the stage (None: the whole date is one row).
    pub seats_per_row: Option<i32>,
    /// The concert's fair share (None: `MAX_TICKETS_PER_FAN`).
    pub max_tickets_per_fan: Option<i32>,
    /// One price for every seat (when there are no tiers).
    pub price: Option<Money>,
    pub tiers: Option<Vec<TierRequest>>,
}

#[derive(Debug, Clone)]
pub struct TierRequest {
    pub name: String,
    pub from_seat: i32,
    pub to_seat: i32,
    pub price: Money,
}

/// A concert checked and ready to write: tiers cover 1..=seats_per_date exactly once.
#[derive(Debug, Clone)]
pub struct NewConcert {
    pub(super) title: String,
    pub(super) venue: String,
    pub(super) description: Option<String>,
    pub(super) dates: Vec<NaiveDate>,
    pub(super) seats_per_date: i16,
    pub(super) seats_per_row: Option<i16>,
    pub(super) max_tickets_per_fan: Option<i16>,
    pub(super) tiers: Vec<catalog::PriceTier>,
}

impl NewConcert {
    /// Checks a request against the rules; `max_seats` is the configured bound per date.
    pub fn parse(request: ConcertRequest, max_seats: u16) -> Result<Self> {
        let title = text(&request.title, "title", 200)?;
        let venue = text(&request.venue, "venue", 200)?;
        let description = match request.description.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) if d.chars().count() > 4000 => {
                return Err(Error::bad_input(
                    "description may have at most 4000 characters",
                ));
            }
            Some(d) => Some(d.to_owned()),
        };
        let dates = distinct_dates(&request.dates)?;
        let seats_per_date = match i16::try_from(request.seats_per_date) {
            Ok(n) if n >= 1 && n as u16 <= max_seats => n,
            _ => {
                return Err(Error::bad_input(format!(
                    "seatsPerDate must be between 1 and {max_seats}, got {}",
                    request.seats_per_date
                )));
            }
        };
        check_size(dates.len(), seats_per_date)?;
        let seats_per_row = match request.seats_per_row {
            None => None,
            Some(n) => Some(
                i16::try_from(n)
                    .ok()
                    .filter(|n| (1..=seats_per_date).contains(n))
                    .ok_or_else(|| {
                        Error::bad_input(format!(
                            "seatsPerRow must be between 1 and seatsPerDate ({seats_per_date}), got {n}"
                        ))
                    })?,
            ),
        };
        let max_tickets_per_fan = request.max_tickets_per_fan.map(fair_share).transpose()?;
        let cap: Money = MAX_PRICE
            .parse()
            .map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
        let tiers = match (request.price, request.tiers) {
            (Some(price), None) => vec![catalog::PriceTier {
                name: SINGLE_TIER.into(),
                from_seat: SeatNumber::FIRST,
                to_seat: SeatNumber::new(seats_per_date.into())
                    .ok_or_else(|| Error::corrupt("seats per date below 1"))?,
                price: price.positive_within(&cap)?,
            }],
            (None, Some(tiers)) => parse_tiers(tiers, seats_per_date.into(), &cap)?,
            (Some(_), Some(_)) => {
                return Err(Error::bad_input(
                    "give either price or priceTiers, not both",
                ));
            }
            (None, None) => {
                return Err(Error::bad_input("give a price or priceTiers"));
            }
        };
        Ok(Self {
            title,
            venue,
            description,
            dates,
            seats_per_date,
            seats_per_row,
            max_tickets_per_fan,
            tiers,
        })
    }

    /// 50 seats a date at one price (the demo seed, tests, benches).
    pub fn single_price(title: &str, venue: &str, price: &Money, dates: &[NaiveDate]) -> Self {
        Self {
            title: title.to_owned(),
            venue: venue.to_owned(),
            description: None,
            dates: dates.to_vec(),
            seats_per_date: 50,
            seats_per_row: None,
            max_tickets_per_fan: None,
            tiers: vec![catalog::PriceTier {
                name: SINGLE_TIER.into(),
                from_seat: SeatNumber::FIRST,
                to_seat: SeatNumber::new(50).unwrap_or(SeatNumber::FIRST),
                price: price.clone(),
            }],
        }
    }
}

/// The most tickets a concert may allow one fan.
pub const MAX_FAIR_SHARE: i32 = 1000;

/// A concert's fair share as an operator sets it: 1 to [`MAX_FAIR_SHARE`].
pub(super) fn fair_share(n: i32) -> Result<i16> {
    i16::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_FAIR_SHARE as i16).contains(n))
        .ok_or_else(|| {
            Error::bad_input(format!(
                "maxTicketsPerFan must be between 1 and {MAX_FAIR_SHARE}, got {n}"
            ))
        })
}

pub(super) fn check_size(dates: usize, seats_per_date: i16) -> Result<()> {
    let seats = dates as i64 * i64::from(seats_per_date);
    if seats > MAX_SEATS_PER_REQUEST {
        return Err(Error::bad_input(format!(
            "{dates} dates of {seats_per_date} seats is {seats} seats; one request may create at \
             most {MAX_SEATS_PER_REQUEST} (add dates in several requests)"
        )));
    }
    Ok(())
}

fn text(input: &str, field: &str, max: usize) -> Result<String> {
    let t = input.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(Error::bad_input(format!(
            "{field} must be 1 to {max} characters"
        )));
    }
    Ok(t.to_owned())
}

pub(super) fn distinct_dates(dates: &[NaiveDate]) -> Result<Vec<NaiveDate>> {
    if dates.is_empty() || dates.len() > MAX_DATES {
        return Err(Error::bad_input(format!(
            "dates must list 1 to {MAX_DATES} dates"
        )));
    }
    let mut sorted = dates.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != dates.len() {
        return Err(Error::bad_input("dates lists the same date twice"));
    }
    Ok(sorted)
}

/// Tiers sorted by first seat must run 1..=seats without a gap or an overlap.
fn parse_tiers(
    tiers: Vec<TierRequest>,
    seats: i32,
    cap: &Money,
) -> Result<Vec<catalog::PriceTier>> {
    if tiers.is_empty() || tiers.len() > MAX_TIERS {
        return Err(Error::bad_input(format!(
            "priceTiers must list 1 to {MAX_TIERS} tiers"
        )));
    }
    let mut parsed = Vec::with_capacity(tiers.len());
    for t in tiers {
        let name = text(&t.name, "a tier's name", 64)?;
        let seat = |n: i32| {
            SeatNumber::new(n)
                .filter(|s| s.as_i32() <= seats)
                .ok_or_else(|| {
                    Error::bad_input(format!("tier {name:?} runs outside seats 1 to {seats}"))
                })
        };
        parsed.push(catalog::PriceTier {
            from_seat: seat(t.from_seat)?,
            to_seat: seat(t.to_seat)?,
            price: t.price.positive_within(cap)?,
            name,
        });
    }
    parsed.sort_by_key(|t| t.from_seat);
    let mut next = 1;
    for t in &parsed {
        if t.to_seat < t.from_seat {
            return Err(Error::bad_input(format!(
                "tier {:?}: toSeat {} is before fromSeat {}",
                t.name, t.to_seat, t.from_seat
            )));
        }
        let from = t.from_seat.as_i32();
        if from != next {
            let why = if from > next { "a gap" } else { "an overlap" };
            return Err(Error::bad_input(format!(
                "priceTiers leave {why} at seat {}: tiers must cover seats 1 to {seats} once each",
                next.min(from)
            )));
        }
        next = t.to_seat.as_i32() + 1;
    }
    if next != seats + 1 {
        return Err(Error::bad_input(format!(
            "priceTiers cover seats 1 to {}, but there are {seats} seats per date",
            next - 1
        )));
    }
    let mut names: Vec<&str> = parsed.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != parsed.len() {
        return Err(Error::bad_input("two priceTiers have the same name"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(name: &str, from: i32, to: i32) -> TierRequest {
        TierRequest {
            name: name.into(),
            from_seat: from,
            to_seat: to,
            price: "10.00".parse().expect("money"),
        }
    }

    fn request(tiers: Vec<TierRequest>) -> ConcertRequest {
        ConcertRequest {
            title: "T".into(),
            venue: "V".into(),
            description: None,
            dates: vec![NaiveDate::from_ymd_opt(2030, 1, 1).expect("date")],
            seats_per_date: 50,
            seats_per_row: None,
            max_tickets_per_fan: None,
            price: None,
            tiers: Some(tiers),
        }
    }

    #[test]
    fn rows_fit_the_seats_and_a_fair_share_is_at_least_one() {
        let with = |per_row: Option<i32>, share: Option<i32>| {
            let mut r = request(vec![tier("A", 1, 50)]);
            r.seats_per_row = per_row;
            r.max_tickets_per_fan = share;
            NewConcert::parse(r, 100)
        };
        let ok = with(Some(10), Some(4)).expect("valid");
        assert_eq!(
            (ok.seats_per_row, ok.max_tickets_per_fan),
            (Some(10), Some(4))
        );
        for (per_row, share) in [
            (Some(0), None),
            (Some(51), None),
            (None, Some(0)),
            (None, Some(1001)),
        ] {
            assert!(
                matches!(with(per_row, share), Err(Error::BadInput(_))),
                "{per_row:?} {share:?}"
            );
        }
    }

    #[test]
    fn tiers_must_cover_every_seat_once() {
        let ok = NewConcert::parse(request(vec![tier("B", 11, 50), tier("A", 1, 10)]), 100);
        assert_eq!(ok.expect("valid").tiers[0].name, "A");
        for bad in [
            vec![tier("A", 1, 10), tier("B", 12, 50)],
            vec![tier("A", 1, 10), tier("B", 10, 50)],
            vec![tier("A", 1, 49)],
            vec![tier("A", 2, 50)],
            vec![tier("A", 1, 60)],
            vec![tier("A", 1, 10), tier("A", 11, 50)],
            vec![tier("A", 10, 1)],
            vec![],
        ] {
            assert!(
                NewConcert::parse(request(bad.clone()), 100).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn seat_counts_are_bounded_and_a_price_is_required() {
        let mut r = request(vec![tier("A", 1, 50)]);
        assert!(NewConcert::parse(r.clone(), 49).is_err());
        r.seats_per_date = 0;
        assert!(NewConcert::parse(r.clone(), 100).is_err());
        let mut single = request(vec![]);
        single.tiers = None;
        assert!(NewConcert::parse(single.clone(), 100).is_err());
        single.price = Some("25.00".parse().expect("money"));
        // 60 dates of 2,000 seats is more than one request may write.
        let mut huge = single.clone();
        huge.seats_per_date = 2000;
        huge.dates = (1..=60)
            .map(|d| NaiveDate::from_ymd_opt(2030, 1, 1).expect("date") + chrono::Days::new(d))
            .collect();
        assert!(NewConcert::parse(huge, 2000).is_err());
        let one = NewConcert::parse(single, 100).expect("valid");
        assert_eq!(one.tiers.len(), 1);
        assert_eq!(one.tiers[0].to_seat.as_i32(), 50);
    }
}
