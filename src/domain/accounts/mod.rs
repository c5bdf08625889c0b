//! Sign-up, sign-in and the signed-in user.

pub mod auth;
pub mod passwords;
pub mod tokens;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use std::net::IpAddr;

use super::error::{Error, Result};
use super::inputs::{Email, MAX_PASSWORD_CHARS, Password, Username};
use super::money::Money;
use super::services::Services;
use super::throttle::Action;
use crate::db::ids::UserId;
use crate::db::models::UserRow;
pub use crate::db::states::Role;
use crate::db::{self, Conn, sign_in_failures, users};

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

/// Signs in.
///
/// A wrong password and an unknown e-mail are refused alike, in the same time, with the same
/// lock schedule: nothing in the answer tells whether an account exists. Both are verified
/// against a hash (a dummy for an unknown e-mail), and both count as a failure of the
/// *subject*: the normalised e-mail together with the client address (IPv6 by /64). After
/// `SIGN_IN_LOCKOUT_AFTER` failures in a row, the subject's sign-in is refused with
/// `RATE_LIMITED` for 1 s, doubling with each further failure up to `SIGN_IN_LOCKOUT_MAX`, even
/// for the right password; a right password clears the run.
///
/// Why by e-mail *and* address: locked by account alone, anyone could lock the owner out of
/// their account from anywhere, and an unknown e-mail never locked, which told the accounts
/// apart. Keyed by both, an attacker only locks themself out. A guesser spread over many
/// addresses gets `SIGN_IN_LOCKOUT_AFTER` tries per address per lock, all of them bounded by the
/// per-e-mail budget (`RATE_LIMIT_SIGN_INS_PER_ACCOUNT_PER_MIN`, per instance); the price is
/// that exhausting that budget also makes the owner wait, seconds at a time, while it lasts.
pub async fn sign_in(
    services: &Services,
    address: Option<IpAddr>,
    email: &str,
    password: &str,
) -> Result<Session> {
    services.throttle.check(Action::SignIn, address)?;
    let refused = || Error::Unauthenticated("wrong email or password".into());
    let email = Email::parse(email).map_err(|_| refused())?;
    services.throttle.check_sign_in_account(&email)?;
    // Longer than any password one could have set: refused without hashing it.
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(refused());
    }
    let subject = sign_in_subject(&email, address);
    let (row, locked_for) = with_conn!(services.db, async |conn: &mut Conn| {
        let row = users::find_by_email(conn, email.as_str()).await?;
        let (locked_until, now) = sign_in_failures::lock_and_now(conn, &subject).await?;
        let locked_for = locked_until
            .filter(|until| *until > now)
            .and_then(|until| (until - now).to_std().ok());
        Ok((row, locked_for))
    })
    .await?;
    // Hashed whatever happens next, so the answer's time tells nothing.
    let stored = row.as_ref().map(|r| r.password_hash.as_str());
    let matches = services.passwords.verify(password, stored).await?;
    if let Some(retry_after) = locked_for {
        return Err(Error::RateLimited {
            message: "too many failed sign-ins for this email from here; try again later".into(),
            retry_after,
        });
    }
    let quotas = services.throttle.quotas();
    let signed_in = match row {
        Some(row) if matches => Some(row),
        _ => None,
    };
    with_conn!(services.db, async |conn: &mut Conn| {
        if signed_in.is_some() {
            sign_in_failures::clear(conn, &subject).await?;
        } else {
            sign_in_failures::record(
                conn,
                &subject,
                quotas.sign_in_lockout_after,
                1,
                quotas.sign_in_lockout_max.as_secs().max(1),
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    let Some(row) = signed_in else {
        return Err(refused());
    };
    let token = services.tokens.issue(&row.id)?;
    Ok(Session {
        token,
        user: row.into(),
    })
}

/// Who a run of failed sign-ins belongs to: the normalised e-mail and the client address (its
/// rate-limit bucket), hashed, so the table holds neither.
fn sign_in_subject(email: &Email, address: Option<IpAddr>) -> String {
    use sha2::{Digest, Sha256};
    let address = address
        .map(|a| super::throttle::bucket(a).to_string())
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{:x}",
        Sha256::digest(format!("{}\n{address}", email.as_str()).as_bytes())
    )
}

/// Forgets failed sign-ins untouched for a day whose lock has lapsed (the hold sweeper runs it
/// every `HOLD_SWEEP_INTERVAL`): a run of failures older than that starts over.
pub async fn forget_idle_sign_in_failures(services: &Services) -> Result<usize> {
    with_conn!(services.db, async |conn: &mut Conn| {
        Ok(sign_in_failures::forget_idle(conn, 24 * 3600, 10_000).await?)
    })
    .await
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

/// What [`normalise_stored_emails`] did.
#[derive(Debug, Default)]
pub struct EmailReport {
    /// Rows rewritten in their normalised form.
    pub normalised: usize,
    /// Rows left as stored: their normalised form is another account's.
    pub collisions: Vec<UserId>,
    /// Rows left as stored: the address has invisible characters (it cannot be normalised).
    pub invalid: Vec<UserId>,
}

/// Rewrites every stored e-mail in its normalised form (`Email::parse`), for rows stored before
/// normalisation existed. A row whose normalised form another account already has, or whose
/// address cannot be normalised, is left alone and reported: two accounts are never merged.
/// Such an account cannot sign in (sign-in normalises what is typed) until an operator resolves
/// it. Pages through the table by id.
pub async fn normalise_stored_emails(conn: &mut Conn) -> Result<EmailReport> {
    let mut report = EmailReport::default();
    let mut after: Option<UserId> = None;
    loop {
        let page = users::emails_after(conn, after.as_ref(), 1000).await?;
        let Some((last, _)) = page.last() else {
            return Ok(report);
        };
        after = Some(last.clone());
        for (id, stored) in page {
            let normal = match Email::parse(&stored) {
                Ok(normal) if normal.as_str() == stored => continue,
                Ok(normal) => normal,
                Err(_) => {
                    report.invalid.push(id);
                    continue;
                }
            };
            match users::set_email(conn, &id, normal.as_str()).await {
                Ok(()) => report.normalised += 1,
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    report.collisions.push(id);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
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
