//! Demo data for a fresh database: three concerts with four future dates each (50 seats a date),
//! a demo fan with a funded wallet and a demo operator. Runs only when there are no concerts yet.

use chrono::{Days, NaiveDate};
use diesel_async::RunQueryDsl;

use super::accounts::create_user;
use super::error::{Error, Result};
use super::inputs::{Email, IdempotencyKey, Password, Username};
use super::lineup::create_single_price_concert;
use super::money::Money;
use super::services::Services;
use super::wallet;
use crate::db::{Conn, concerts};

pub const DEMO_EMAIL: &str = "demo@encore.test";
pub const DEMO_PASSWORD: &str = "demo-password";
pub const OPERATOR_EMAIL: &str = "operator@encore.test";
pub const OPERATOR_PASSWORD: &str = "operator-password";

/// Seeds and returns true, or returns false when the database already has concerts.
pub async fn seed_if_empty(services: &Services) -> Result<bool> {
    let seeded = with_conn!(services.db, async |conn: &mut Conn| {
        if concerts::count(conn).await? > 0 {
            return Ok(false);
        }
        seed_concerts(conn).await?;
        Ok(true)
    })
    .await?;
    if !seeded {
        return Ok(false);
    }
    let user = create_user(
        services,
        &Username::parse("demo")?,
        &Email::parse(DEMO_EMAIL)?,
        &Password::parse(DEMO_PASSWORD)?,
    )
    .await?;
    // Through the ledger, like any top-up, so balance = sum of transactions holds for the demo too.
    let key = IdempotencyKey::required("demo-seed".into())?;
    let top_up: Money = "500000.00"
        .parse()
        .map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
    wallet::charge(services, &user.id, top_up, key).await?;
    create_user(
        services,
        &Username::parse("operator")?,
        &Email::parse(OPERATOR_EMAIL)?,
        &Password::parse(OPERATOR_PASSWORD)?,
    )
    .await?;
    crate::domain::accounts::grant_operator(services, OPERATOR_EMAIL).await?;
    Ok(true)
}

async fn seed_concerts(conn: &mut Conn) -> Result<()> {
    let today: NaiveDate =
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Date>("UTC_DATE()"))
            .get_result(conn)
            .await?;
    let dates = |offsets: &[u64]| -> Vec<NaiveDate> {
        offsets
            .iter()
            .filter_map(|&d| today.checked_add_days(Days::new(d)))
            .collect()
    };
    let demo = [
        (
            "Aurora Nights World Tour",
            "Olympic Stadium, Seoul",
            "150000.00",
            dates(&[7, 8, 14, 15]),
        ),
        (
            "The Midnight Strings",
            "Royal Albert Hall, London",
            "89000.00",
            dates(&[10, 11, 24, 25]),
        ),
        (
            "Neon Harbor Live",
            "Budokan, Tokyo",
            "120000.00",
            dates(&[30, 31, 45, 46]),
        ),
    ];
    for (title, venue, price, dates) in demo {
        let price: Money = price
            .parse()
            .map_err(|e| super::Error::Internal(anyhow::Error::new(e)))?;
        create_single_price_concert(conn, title, venue, &price, &dates).await?;
    }
    Ok(())
}
