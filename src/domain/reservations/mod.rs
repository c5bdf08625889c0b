//! A reservation's life: a seat held for a fan (`booking`: hold, release, lapse), paid
//! (`payment`), refunded (`refund`). Each transition locks user, seat, reservation, room in
//! that order, in one transaction. The orders of several seats extend this aggregate.

pub mod booking;
pub mod payment;
pub mod refund;
