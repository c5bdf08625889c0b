//! Output types: the public shape of domain values, one file per aggregate. Conversions only;
//! no rules here.

mod accounts;
mod catalog;
mod orders;
mod queue;
mod waitlist;
mod wallet;

pub use accounts::{AuthPayload, Role, User};
pub use catalog::{Concert, PriceTier, Seat, SeatStatus};
pub use orders::{
    ConcertTicket, Order, OrderSeat, OrderStatus, Payment, Reservation, ReservationStatus,
    TicketAllowance,
};
pub use queue::{
    QueueChallenge, QueueChallengeAnswer, QueueControlChange, QueueControls, QueueStats,
    QueueStatus, QueueTicket, Sale,
};
pub use waitlist::{WaitlistEntry, WaitlistStatus};
pub use wallet::{Wallet, WalletTransaction, WalletTransactionKind};
