//! Sign-up, sign-in and the signed-in user.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::Services;
use super::error::{Error, Result};
use super::inputs::{Email, MAX_PASSWORD_CHARS, Password, Username};
use super::money::Money;
use crate::db::ids::UserId;
use crate::db::models::UserRow;
use crate::db::{self, Conn, users};

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub balance: Money,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            email: row.email,
            balance: Money::from_stored(row.balance),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user: User,
}

pub async fn sign_up(
    services: &Services,
    username: &str,
    email: &str,
    password: &str,
) -> Result<Session> {
    let username = Username::parse(username)?;
    let email = Email::parse(email)?;
    let password = Password::parse(password)?;
    let user = create_user(services, &username, &email, &password).await?;
    let token = services.tokens.issue(&user.id)?;
    Ok(Session { token, user })
}

/// Inserts a user with a zero balance. A taken username or email is a `BAD_USER_INPUT` that does
/// not say which of the two was taken, so an anonymous caller cannot test whether an email has an
/// account by signing up with a fresh username (sign-ups are also rate limited per address).
/// Hiding it entirely would need a confirmation email, which this service does not send.
pub async fn create_user(
    services: &Services,
    username: &Username,
    email: &Email,
    password: &Password,
) -> Result<User> {
    let password_hash = services.passwords.hash(password).await?;
    let (row, inserted) = with_conn!(services.db, async |conn: &mut Conn| {
        let row = UserRow {
            id: UserId::new(),
            username: username.as_str().to_owned(),
            email: email.as_str().to_owned(),
            password_hash,
            balance: Money::zero().as_decimal().clone(),
            created_at: db::now(conn).await?,
        };
        let inserted = users::insert(conn, &row).await;
        Ok((row, inserted))
    })
    .await?;
    match inserted {
        Ok(_) => Ok(row.into()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(Error::bad_input(
                "that username or email cannot be registered; choose another, or sign in",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Signs in. A wrong password and an unknown email are refused alike, in about the same time
/// (an unknown email is verified against a dummy hash).
pub async fn sign_in(services: &Services, email: &str, password: &str) -> Result<Session> {
    let refused = || Error::Unauthenticated("wrong email or password".into());
    // Longer than any password one could have set: refused without hashing it.
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(refused());
    }
    let email = Email::parse(email).map_err(|_| refused())?;
    let row: Option<UserRow> = with_conn!(services.db, async |conn: &mut Conn| {
        Ok(users::find_by_email(conn, email.as_str()).await?)
    })
    .await?;
    let stored = row.as_ref().map(|r| r.password_hash.as_str());
    let matches = services.passwords.verify(password, stored).await?;
    let row = row.filter(|_| matches).ok_or_else(refused)?;
    let token = services.tokens.issue(&row.id)?;
    Ok(Session {
        token,
        user: row.into(),
    })
}

pub async fn user(services: &Services, user_id: &UserId) -> Result<User> {
    with_conn!(services.db, async |conn: &mut Conn| find_user(
        conn, user_id
    )
    .await)
    .await
}

pub(crate) async fn find_user(conn: &mut Conn, user_id: &UserId) -> Result<User> {
    users::find(conn, user_id)
        .await?
        .map(User::from)
        // A valid token for a user that no longer exists.
        .ok_or_else(|| Error::Unauthenticated("unknown user".into()))
}

/// Locks the user's row for the rest of the transaction. Taken first in every transaction that
/// touches a user's holds or money, so those transactions serialise per user and lock rows in one
/// global order (user, seat, reservation, queue ticket).
pub(crate) async fn lock_user(conn: &mut Conn, user_id: &UserId) -> Result<()> {
    if users::lock(conn, user_id).await? {
        Ok(())
    } else {
        Err(Error::Unauthenticated("unknown user".into()))
    }
}
