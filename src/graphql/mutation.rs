//! Mutation root. A failed mutation changes nothing (a failed `signIn` is recorded for the
//! lockout): each one is a single domain call whose writes share one database transaction.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::context::{
    claimed_viewer, client_address, parse_concert_id, parse_entry_id, parse_order_id,
    parse_reservation_id, queue_token, required_queue_token, services,
};
use super::error::ApiResult;
use super::inputs::{CreateConcertInput, QueueControlsInput, UpdateConcertInput};
use super::scalars::{Date, Decimal};
use super::types::{
    AuthPayload, Concert, Order, Payment, QueueChallengeAnswer, QueueControls, QueueTicket,
    Reservation, Sale, WaitlistEntry, Wallet,
};
use crate::domain::inputs::{self, IdempotencyKey};
use crate::domain::orders::{best, hold, pay, refund, release, waitlist};
use crate::domain::queue::challenge::Answer;
use crate::domain::queue::controls::ControlsChange;
use crate::domain::{accounts, lineup, queue, wallet};

pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates an account and signs in.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        username: String,
        email: String,
        password: String,
    ) -> ApiResult<AuthPayload> {
        let address = client_address(ctx);
        Ok(
            accounts::sign_up(services(ctx)?, address, &username, &email, &password)
                .await?
                .into(),
        )
    }

    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> ApiResult<AuthPayload> {
        let address = client_address(ctx);
        Ok(
            accounts::sign_in(services(ctx)?, address, &email, &password)
                .await?
                .into(),
        )
    }

    /// Joins the concert's waiting room. Calling it again returns the same live ticket.
    /// Needs `Authorization`. When the room asks for a proof of work (`queueChallenge`), a new
    /// ticket needs its solved `challenge`.
    async fn enter_queue(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        challenge: Option<QueueChallengeAnswer>,
    ) -> ApiResult<QueueTicket> {
        // The use case locks or reads the user's row: UNAUTHENTICATED when it is gone.
        let user_id = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let answer = challenge
            .map(|c| Answer::parse(c.nonce, c.solution))
            .transpose()?;
        let address = client_address(ctx);
        Ok(queue::enter(
            services(ctx)?,
            address,
            user_id,
            &concert_id,
            answer.as_ref(),
        )
        .await?
        .into())
    }

    /// Holds a seat for `HOLD_TTL`. Needs `Authorization` and an ACTIVE `Queue-Token`.
    async fn hold_seat(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        date: Date,
        seat_number: i32,
    ) -> ApiResult<Reservation> {
        let services = services(ctx)?;
        // The use case locks or reads the user's row: UNAUTHENTICATED when it is gone.
        let user_id = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let seat = inputs::seat_number(seat_number)?;
        // An early, cheap check for a clear error; hold_seat checks again under lock.
        let token = queue_token(ctx)?;
        queue::require_active(services, token, &concert_id, Some(user_id)).await?;
        let token = required_queue_token(ctx, "a Queue-Token header is required; call enterQueue")?;
        Ok(
            hold::hold_seat(services, user_id, &concert_id, date.0, seat, token)
                .await?
                .into(),
        )
    }

    /// Holds every seat named of one date for `HOLD_TTL`, as one order, or none of them:
    /// `SEAT_UNAVAILABLE` with `extensions.seats` (those taken) changes nothing. Counts against
    /// the concert's `maxTicketsPerFan` (`TICKET_LIMIT_REACHED`). Needs `Authorization` and an
    /// ACTIVE `Queue-Token`. With an `idempotencyKey`, a repeat returns the first order.
    async fn hold_seats(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        date: Date,
        seat_numbers: Vec<i32>,
        idempotency_key: Option<String>,
    ) -> ApiResult<Order> {
        let services = services(ctx)?;
        let user_id = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let numbers = seat_numbers
            .into_iter()
            .map(inputs::seat_number)
            .collect::<Result<Vec<_>, _>>()?;
        let seats = hold::SeatSet::parse(numbers)?;
        let key = IdempotencyKey::parse(idempotency_key)?;
        let token = queue_token(ctx)?;
        queue::require_active(services, token, &concert_id, Some(user_id)).await?;
        let token = required_queue_token(ctx, "a Queue-Token header is required; call enterQueue")?;
        Ok(
            hold::hold_seats(services, user_id, &concert_id, date.0, &seats, token, key)
                .await?
                .into(),
        )
    }

    /// Holds the best `count` free seats of one date for `HOLD_TTL`, as one order: the lowest
    /// numbers (nearest the stage) in `tier` (any tier when left out), side by side in one row
    /// when `together`. None free that fit: `SEAT_UNAVAILABLE` with `extensions.largestBlock`.
    /// Needs `Authorization` and an ACTIVE `Queue-Token`.
    async fn hold_best_available(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        date: Date,
        count: i32,
        tier: Option<String>,
        #[graphql(default = true)] together: bool,
    ) -> ApiResult<Order> {
        let services = services(ctx)?;
        let user_id = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let request = best::BestRequest::parse(count, tier, together)?;
        let token = queue_token(ctx)?;
        queue::require_active(services, token, &concert_id, Some(user_id)).await?;
        let token = required_queue_token(ctx, "a Queue-Token header is required; call enterQueue")?;
        Ok(
            best::hold_best_available(services, user_id, &concert_id, date.0, &request, token)
                .await?
                .into(),
        )
    }

    /// Pays a whole order from your wallet in one transaction: one ledger entry for its total,
    /// every seat SOLD, or nothing. An order taken in a queue turn needs that turn's
    /// `Queue-Token`, and stays payable until its hold lapses even when the turn ends first; a
    /// waitlist offer needs none. The `idempotencyKey` makes a retry safe: a
    /// repeat returns the order as the first call left it.
    async fn pay_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        idempotency_key: String,
    ) -> ApiResult<Order> {
        let user_id = claimed_viewer(ctx)?;
        let order_id = parse_order_id(&order_id)?;
        let key = IdempotencyKey::required(idempotency_key)?;
        let token = queue_token(ctx)?;
        let paid = pay::pay_order(services(ctx)?, user_id, &order_id, token, key).await?;
        Ok(paid.order.into())
    }

    /// Gives every seat of your unpaid order back at once. A repeat returns the order.
    async fn release_order(&self, ctx: &Context<'_>, order_id: ID) -> ApiResult<Order> {
        let user_id = claimed_viewer(ctx)?;
        let order_id = parse_order_id(&order_id)?;
        Ok(release::release_order(services(ctx)?, user_id, &order_id)
            .await?
            .into())
    }

    /// Joins a sold-out date's waitlist for `count` seats (`SEATS_AVAILABLE` while it has free
    /// seats): freed seats are offered in join order, as an order held for you until
    /// `offerExpiresAt`. Needs `Authorization`, no queue turn. A second join returns your entry.
    async fn join_waitlist(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        date: Date,
        count: i32,
    ) -> ApiResult<WaitlistEntry> {
        let user_id = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        Ok(
            waitlist::join(services(ctx)?, user_id, &concert_id, date.0, count)
                .await?
                .into(),
        )
    }

    /// Leaves the waitlist; with an offer, declines it (its seats pass to the next fan).
    async fn leave_waitlist(&self, ctx: &Context<'_>, entry_id: ID) -> ApiResult<WaitlistEntry> {
        let user_id = claimed_viewer(ctx)?;
        let entry_id = parse_entry_id(&entry_id)?;
        Ok(waitlist::leave(services(ctx)?, user_id, &entry_id)
            .await?
            .into())
    }

    /// Gives back your unpaid hold: the order this reservation belongs to (for a `holdSeat`, that
    /// seat), as `pay` pays it; the seats are free again at once. A repeat returns the seat.
    async fn release_seat(&self, ctx: &Context<'_>, reservation_id: ID) -> ApiResult<Reservation> {
        // The use case locks the user's row: UNAUTHENTICATED when it is gone.
        let user_id = claimed_viewer(ctx)?;
        let reservation_id = parse_reservation_id(&reservation_id)?;
        Ok(
            release::release_seat(services(ctx)?, user_id, &reservation_id)
                .await?
                .into(),
        )
    }

    /// Tops up your wallet. The `idempotencyKey` (1 to 128 characters, yours to choose, e.g. a
    /// UUID per top-up) makes a retry safe: a repeat returns the first result. Send the same key
    /// again after any error whose outcome is unknown (`extensions.outcome: "UNKNOWN"`, or no
    /// answer at all).
    async fn charge(
        &self,
        ctx: &Context<'_>,
        amount: Decimal,
        idempotency_key: String,
    ) -> ApiResult<Wallet> {
        // The use case locks or reads the user's row: UNAUTHENTICATED when it is gone.
        let user_id = claimed_viewer(ctx)?;
        let key = IdempotencyKey::required(idempotency_key)?;
        Ok(Wallet(
            wallet::charge(services(ctx)?, user_id, amount.0, key).await?,
        ))
    }

    /// OPERATOR. Makes a concert with its dates, seats and price tiers. It is not on sale
    /// (`enterQueue` answers `SALE_NOT_OPEN`) until its sale is scheduled (`scheduleSale`).
    async fn create_concert(
        &self,
        ctx: &Context<'_>,
        input: CreateConcertInput,
    ) -> ApiResult<Concert> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        Ok(
            lineup::create_concert(services(ctx)?, operator, input.into())
                .await?
                .into(),
        )
    }

    /// OPERATOR. Changes a concert: its fair share (`maxTicketsPerFan`), which applies to seats
    /// taken from then on.
    async fn update_concert(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        input: UpdateConcertInput,
    ) -> ApiResult<Concert> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        Ok(
            lineup::update_concert(services(ctx)?, operator, &concert_id, input.into())
                .await?
                .into(),
        )
    }

    /// OPERATOR. Adds dates to a concert, each with the concert's seats and price tiers.
    async fn add_concert_dates(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        dates: Vec<Date>,
    ) -> ApiResult<Concert> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let dates: Vec<_> = dates.into_iter().map(|d| d.0).collect();
        Ok(
            lineup::add_dates(services(ctx)?, operator, &concert_id, &dates)
                .await?
                .into(),
        )
    }

    /// OPERATOR. Pauses or resumes a concert's waiting room, or sets its admission rate or
    /// active limit; fields left out keep their values. Every instance obeys within a tick; the
    /// change is recorded with who made it.
    async fn set_queue_controls(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        input: QueueControlsInput,
    ) -> ApiResult<QueueControls> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let change = ControlsChange {
            paused: input.paused,
            admit_per_sec: input.admit_per_second,
            active_limit: input.active_limit,
        };
        Ok(
            queue::controls::set_controls(services(ctx)?, operator, &concert_id, change)
                .await?
                .into(),
        )
    }

    /// OPERATOR. Schedules the concert's sale: `enterQueue` answers `SALE_NOT_OPEN` until
    /// `prequeueOpensAt` (default: `opensAt`); then entries join a pre-queue, drawn into a
    /// random order at `opensAt` from a seed committed to now (`seedCommitment`) and revealed
    /// then. Later entries queue behind. Only before anyone has entered.
    async fn schedule_sale(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        opens_at: DateTime<Utc>,
        prequeue_opens_at: Option<DateTime<Utc>>,
    ) -> ApiResult<Sale> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let sale = queue::sale::schedule(
            services(ctx)?,
            operator,
            &concert_id,
            opens_at,
            prequeue_opens_at,
        )
        .await?;
        Ok(Sale(sale))
    }

    /// Refunds a paid ticket: the price back to its owner's wallet (a REFUND ledger row), the
    /// seat back on sale. An OPERATOR may refund any ticket; a fan their own until
    /// `REFUND_CUTOFF` before the show (`REFUND_WINDOW_CLOSED` after). A second refund of a
    /// ticket returns it unchanged; an `idempotencyKey` replays the first answer.
    async fn refund(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        idempotency_key: Option<String>,
    ) -> ApiResult<Reservation> {
        // The refund locks the caller's row.
        let caller = claimed_viewer(ctx)?;
        let reservation_id = parse_reservation_id(&reservation_id)?;
        let key = IdempotencyKey::parse(idempotency_key)?;
        Ok(refund::refund(services(ctx)?, caller, &reservation_id, key)
            .await?
            .into())
    }

    /// Pays for a hold from your wallet: the whole order the reservation belongs to (for a
    /// `holdSeat`, that seat). Needs `Authorization` and the `Queue-Token` of the turn the hold
    /// was taken in (payable until the hold lapses, even when the turn ends first). With an
    /// `idempotencyKey`, a repeat returns the first payment.
    async fn pay(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        idempotency_key: Option<String>,
    ) -> ApiResult<Payment> {
        // The use case locks or reads the user's row: UNAUTHENTICATED when it is gone.
        let user_id = claimed_viewer(ctx)?;
        let reservation_id = parse_reservation_id(&reservation_id)?;
        let key = IdempotencyKey::parse(idempotency_key)?;
        let token = required_queue_token(ctx, "a Queue-Token header is required to pay")?;
        let paid = pay::pay(services(ctx)?, user_id, &reservation_id, token, key).await?;
        Ok(paid.into())
    }
}
