//! Query root. Resolvers translate arguments, call one domain function and convert the result.

use async_graphql::{Context, ID, Object};

use super::context::{
    admitted_concert, claimed_viewer, optional_viewer, parse_concert_id, parse_order_id,
    required_queue_token, services, viewer,
};
use super::error::ApiResult;
use super::paging::connection;
use super::scalars::Date;
use super::types::{
    Concert, ConcertTicket, Order, QueueChallenge, QueueControlChange, QueueStats, QueueTicket,
    Reservation, Sale, Seat, TicketAllowance, User, WaitlistEntry, Wallet,
};
use crate::domain::orders::{self, search, views, waitlist};
use crate::domain::paging::PageRequest;
use crate::domain::{accounts, catalog, live, queue, wallet};
use async_graphql::connection::Connection;

pub struct Query;

#[Object]
impl Query {
    /// The signed-in user. Needs `Authorization`.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<User> {
        // Reads the account, UNAUTHENTICATED when it is gone.
        let user_id = claimed_viewer(ctx)?;
        Ok(accounts::user(services(ctx)?, user_id).await?.into())
    }

    /// The ISO 4217 code every amount of this service is in (prices, balances, the ledger).
    /// Public.
    async fn currency(&self, ctx: &Context<'_>) -> ApiResult<String> {
        Ok(services(ctx)?.rules.currency.clone())
    }

    /// Every concert with its dates. Public.
    async fn concerts(&self, ctx: &Context<'_>) -> ApiResult<Vec<Concert>> {
        Ok(catalog::concerts(services(ctx)?)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One concert. Public.
    async fn concert(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Concert> {
        let id = parse_concert_id(&id)?;
        Ok(catalog::concert(services(ctx)?, &id).await?.into())
    }

    /// Dates from today on with at least one seat free. Needs an ACTIVE `Queue-Token` for the
    /// concert.
    async fn available_dates(&self, ctx: &Context<'_>, concert_id: ID) -> ApiResult<Vec<Date>> {
        let concert_id = admitted_concert(ctx, &concert_id).await?;
        let services = services(ctx)?;
        Ok(catalog::available_dates(services, &concert_id)
            .await?
            .into_iter()
            .map(Date)
            .collect())
    }

    /// The seat map of one date, by seat number. Needs an ACTIVE `Queue-Token` for the concert.
    async fn seats(&self, ctx: &Context<'_>, concert_id: ID, date: Date) -> ApiResult<Vec<Seat>> {
        let concert_id = admitted_concert(ctx, &concert_id).await?;
        let services = services(ctx)?;
        Ok(live::seat_map(services, &concert_id, date.0)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Your place in line, for polling. Needs `Queue-Token`; each poll counts as presence.
    async fn queue_ticket(&self, ctx: &Context<'_>) -> ApiResult<QueueTicket> {
        let services = services(ctx)?;
        let token = required_queue_token(ctx, "a Queue-Token header is required")?;
        let user_id = optional_viewer(ctx)?;
        Ok(live::poll(services, token, user_id).await?.into())
    }

    /// A proof of work for entering the concert's waiting room, when it asks for one
    /// (`difficulty` 0: it does not). Needs `Authorization`.
    async fn queue_challenge(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
    ) -> ApiResult<QueueChallenge> {
        let user_id = viewer(ctx).await?;
        let concert_id = parse_concert_id(&concert_id)?;
        Ok(queue::issue_challenge(services(ctx)?, user_id, &concert_id)
            .await?
            .into())
    }

    /// The concert's scheduled sale, or null when none is scheduled (see `Concert.onSale`).
    /// Public: anyone can check the draw.
    async fn sale(&self, ctx: &Context<'_>, concert_id: ID) -> ApiResult<Option<Sale>> {
        let concert_id = parse_concert_id(&concert_id)?;
        Ok(queue::sale::sale(services(ctx)?, &concert_id)
            .await?
            .map(Sale))
    }

    /// OPERATOR. The concert's waiting room now: the line, the turns, admissions, the seats, the
    /// controls. `subscription { queueStats }` pushes it every tick.
    async fn queue_stats(&self, ctx: &Context<'_>, concert_id: ID) -> ApiResult<QueueStats> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let stats = queue::stats::queue_stats(services(ctx)?, operator, &concert_id).await?;
        Ok((&stats).into())
    }

    /// OPERATOR. Every change of the concert's queue controls, oldest first.
    async fn queue_control_changes(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
    ) -> ApiResult<Vec<QueueControlChange>> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let changes = queue::controls::changes(services(ctx)?, operator, &concert_id).await?;
        Ok(changes.into_iter().map(Into::into).collect())
    }

    /// OPERATOR. The concert's tickets (its reservations of every date, in any status) that match
    /// every filter given, at least one of: `email`, part of the fan's e-mail in any case (1 to
    /// 254 characters, trimmed; `%` and `_` match themselves); `seatNumber` (from 1), that seat
    /// on any date; `orderId`, the seats of that order. Newest first (by when each was taken),
    /// at most `first` (1 to 100). For finding the `reservationId` a `refund` takes.
    /// `NOT_FOUND` for a concert that does not exist.
    async fn ticket_search(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
        email: Option<String>,
        seat_number: Option<i32>,
        order_id: Option<ID>,
        #[graphql(default = 50)] first: i32,
    ) -> ApiResult<Vec<ConcertTicket>> {
        // The operator's role is read in the use case's own unit of work.
        let operator = claimed_viewer(ctx)?;
        let concert_id = parse_concert_id(&concert_id)?;
        let order_id = order_id.as_ref().map(parse_order_id).transpose()?;
        let query = search::TicketSearch {
            email,
            seat_number,
            order_id,
            first,
        };
        Ok(search::search(services(ctx)?, operator, &concert_id, query)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Your orders, newest first, a page at a time: `first` (1 to 100) `after` a cursor from a
    /// previous page's `pageInfo.endCursor`. Needs `Authorization`.
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Order>> {
        let user_id = viewer(ctx).await?;
        let request = PageRequest::parse(first, after.as_deref())?;
        let page = views::orders_page(services(ctx)?, user_id, &request).await?;
        Ok(connection(page, after.is_some(), Order::from))
    }

    /// Your waitlist entries, newest first (the 50 most recent). Needs `Authorization`.
    async fn my_waitlist(&self, ctx: &Context<'_>) -> ApiResult<Vec<WaitlistEntry>> {
        let user_id = viewer(ctx).await?;
        Ok(waitlist::my_waitlist(services(ctx)?, user_id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One of your orders (`NOT_FOUND` for anyone else's). Needs `Authorization`.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Order> {
        let user_id = viewer(ctx).await?;
        let order_id = parse_order_id(&id)?;
        Ok(views::my_order(services(ctx)?, user_id, &order_id)
            .await?
            .into())
    }

    /// Your fair share of a concert: its `maxTicketsPerFan`, the seats you hold and own (every
    /// date), and how many more you may take. Needs `Authorization`.
    async fn ticket_allowance(
        &self,
        ctx: &Context<'_>,
        concert_id: ID,
    ) -> ApiResult<TicketAllowance> {
        let user_id = viewer(ctx).await?;
        let concert_id = parse_concert_id(&concert_id)?;
        Ok(orders::allowance(services(ctx)?, user_id, &concert_id)
            .await?
            .into())
    }

    /// Your holds and purchases, newest first, a page at a time: `first` (1 to 100) `after` a
    /// cursor from a previous page's `pageInfo.endCursor`. Needs `Authorization`.
    async fn my_reservations_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Reservation>> {
        let user_id = viewer(ctx).await?;
        let request = PageRequest::parse(first, after.as_deref())?;
        let page = views::reservations_page(services(ctx)?, user_id, &request).await?;
        Ok(connection(page, after.is_some(), Reservation::from))
    }

    /// Your holds and purchases, newest first. Needs `Authorization`.
    async fn my_reservations(&self, ctx: &Context<'_>) -> ApiResult<Vec<Reservation>> {
        let user_id = viewer(ctx).await?;
        Ok(views::my_reservations(services(ctx)?, user_id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Your balance and ledger. Needs `Authorization`.
    async fn wallet(&self, ctx: &Context<'_>) -> ApiResult<Wallet> {
        let user_id = viewer(ctx).await?;
        Ok(Wallet(wallet::wallet(services(ctx)?, user_id).await?))
    }
}
