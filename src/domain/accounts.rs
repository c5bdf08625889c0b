//! Sign-up, sign-in and the signed-in user.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use std::net::IpAddr;

use super::Services;
use super::error::{Error, Result};
use super::inputs::{Email, MAX_PASSWORD_CHARS, Password, Username};
use super::money::Money;
use super::throttle::Action;
use crate::db::ids::UserId;
use crate::db::models::UserRow;
pub use crate::db::states::Role;
use crate::db::{self, Conn, users};

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub balance: Money,
    pub role: Role,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            email: row.email,
            balance: Money::from_stored(row.balance),
            role: row.role,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user: User,
}

/// Creates an account and signs in. Counted against the caller's address (`RATE_LIMITED` past
/// `RATE_LIMIT_SIGN_UPS_PER_HOUR`).
pub async fn sign_up(
    services: &Services,
    address: Option<IpAddr>,
    username: &str,
    email: &str,
    password: &str,
) -> Result<Session> {
    services.throttle.check(Action::SignUp, address)?;
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
            role: Role::Fan,
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
/// (an unknown email is verified against a dummy hash). Counted against the caller's address and
/// the email; wrong passwords in a row lock the account's sign-in for a doubling time (in the
/// database, so on every instance), during which even the right password is refused with
/// `RATE_LIMITED`.
pub async fn sign_in(
    services: &Services,
    address: Option<IpAddr>,
    email: &str,
    password: &str,
) -> Result<Session> {
    services.throttle.check(Action::SignIn, address)?;
    services.throttle.check_sign_in_account(email)?;
    let refused = || Error::Unauthenticated("wrong email or password".into());
    // Longer than any password one could have set: refused without hashing it.
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(refused());
    }
    let email = Email::parse(email).map_err(|_| refused())?;
    let found = with_conn!(services.db, async |conn: &mut Conn| {
        let Some(row) = users::find_by_email(conn, email.as_str()).await? else {
            return Ok(None);
        };
        let (locked_until, now) = users::sign_in_lock(conn, &row.id).await?;
        let locked_for = locked_until
            .filter(|until| *until > now)
            .and_then(|until| (until - now).to_std().ok());
        Ok(Some((row, locked_for)))
    })
    .await?;
    let (row, locked_for) = found.map_or((None, None), |(row, locked)| (Some(row), locked));
    // Hashed whatever happens next, so the answer's time tells nothing.
    let stored = row.as_ref().map(|r| r.password_hash.as_str());
    let matches = services.passwords.verify(password, stored).await?;
    if let Some(retry_after) = locked_for {
        return Err(Error::RateLimited {
            message: "too many wrong passwords for this account; try again later".into(),
            retry_after,
        });
    }
    let Some(row) = row else {
        return Err(refused());
    };
    let quotas = services.throttle.quotas();
    with_conn!(services.db, async |conn: &mut Conn| {
        if matches {
            users::reset_failed_sign_ins(conn, &row.id).await?;
        } else {
            users::record_failed_sign_in(
                conn,
                &row.id,
                quotas.sign_in_lockout_after,
                1,
                quotas.sign_in_lockout_max.as_secs().max(1),
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    if !matches {
        return Err(refused());
    }
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

/// Whether `user_id` names an account (a valid token may outlive its user).
pub(crate) async fn exists(services: &Services, user_id: &UserId) -> Result<bool> {
    with_conn!(services.db, async |conn: &mut Conn| Ok(users::exists(
        conn, user_id
    )
    .await?))
    .await
}

pub(crate) async fn find_user(conn: &mut Conn, user_id: &UserId) -> Result<User> {
    users::find(conn, user_id)
        .await?
        .map(User::from)
        // A valid token for a user that no longer exists.
        .ok_or_else(|| Error::Unauthenticated("unknown user".into()))
}

/// Makes the account registered with `email` an operator (`encore operator grant`); granting
/// twice changes nothing.
pub async fn grant_operator(services: &Services, email: &str) -> Result<User> {
    let email = Email::parse(email)?;
    with_conn!(services.db, async |conn: &mut Conn| {
        users::set_role(conn, email.as_str(), Role::Operator).await?;
        let row = users::find_by_email(conn, email.as_str())
            .await?
            .ok_or(Error::NotFound("account with this email"))?;
        Ok(User::from(row))
    })
    .await
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

/// [`lock_user`], with the database clock as the statement began (before any wait for the lock):
/// one round trip fewer where an earlier clock errs on the safe side (a hold's deadline).
pub(crate) async fn lock_user_at_now(
    conn: &mut Conn,
    user_id: &UserId,
) -> Result<chrono::NaiveDateTime> {
    users::lock_at_now(conn, user_id)
        .await?
        .ok_or_else(|| Error::Unauthenticated("unknown user".into()))
}

/// Refuses a caller who is not an operator (`FORBIDDEN`). Read in the caller's own unit of work,
/// so a role taken away takes effect at the next operation.
pub(crate) async fn require_operator(conn: &mut Conn, user_id: &UserId) -> Result<()> {
    match users::role(conn, user_id).await? {
        Some(Role::Operator) => Ok(()),
        Some(Role::Fan) => Err(Error::Forbidden(
            "this operation is for operators; ask one to run `encore operator grant`".into(),
        )),
        None => Err(Error::Unauthenticated("unknown user".into())),
    }
}
