//! Password hashing as a bounded resource.
//!
//! argon2 is slow and memory-hard on purpose (19 MiB and two passes per hash, OWASP's baseline),
//! which makes it the cheapest way to exhaust an instance: 200 concurrent anonymous `signIn`s
//! once took 13 GB, 8 GB of it kept after the storm. Two things bound it:
//! - a fixed set of `PASSWORD_HASH_CONCURRENCY` worker threads does all hashing, each in one
//!   19 MiB block of memory it allocates once and reuses, so hashing memory is exactly that many
//!   blocks (argon2's own entry points allocate per call, and the freed blocks stayed in malloc's
//!   per-thread arenas: +528 MiB after one storm of 200 sign-ins on the blocking pool, +192 MiB
//!   on two threads);
//! - at most `PASSWORD_HASH_QUEUE` requests wait for a worker; past that a caller is answered
//!   `SERVICE_UNAVAILABLE` with a `retryAfter` at once, without queueing anything.
//!
//! A caller that hangs up while its job waits costs nothing: the worker skips a job nobody waits
//! for. The workers stop when the last handle on [`Passwords`] is dropped.
//!
//! A sign-in for an unknown email verifies against a dummy hash made with the same parameters,
//! so it costs what a known one costs: the time of an answer does not tell whether an account
//! exists.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{mpsc, oneshot};

use crate::domain::error::{Error, Result};
use crate::domain::inputs::Password;
use crate::domain::rules::HashingLimits;

/// argon2id with 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// What a hashing thread is asked to do.
enum Task {
    Hash(Password),
    Verify { password: String, stored: String },
}

/// What a hashing thread computed.
enum Outcome {
    Hashed(String),
    Verified(bool),
}

/// One task for a hashing thread, and where its answer goes.
struct Job {
    task: Task,
    reply: oneshot::Sender<Result<Outcome>>,
}

pub struct Passwords {
    jobs: mpsc::Sender<Job>,
    /// A hash of a password nobody has, verified when the email is unknown.
    dummy: String,
}

impl Passwords {
    pub fn new(limits: HashingLimits) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>(limits.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..limits.concurrency.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || work(&queue))
                .map_err(|e| Error::Internal(anyhow::anyhow!("starting a hashing thread: {e}")))?;
        }
        let mut memory = Memory::default();
        let dummy = memory.hash(&format!("{:x}", rand::random::<u128>()))?;
        Ok(Self { jobs, dummy })
    }

    /// A new salted hash of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        match self.run(Task::Hash(password.clone())).await? {
            Outcome::Hashed(hash) => Ok(hash),
            Outcome::Verified(_) => Err(Error::Internal(anyhow::anyhow!(
                "a hash came back as a verdict"
            ))),
        }
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown account) the same work
    /// is done against the dummy and the answer is false.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let task = Task::Verify {
            password: password.to_owned(),
            stored: stored.unwrap_or(&self.dummy).to_owned(),
        };
        let verdict = self.run(task).await?;
        Ok(stored.is_some() && matches!(verdict, Outcome::Verified(true)))
    }

    /// Queues `task` for a hashing thread and waits for its answer; refused at once when the
    /// queue is full.
    async fn run(&self, task: Task) -> Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        if self.jobs.try_send(Job { task, reply }).is_err() {
            metrics::counter!("password_hash_refused_total").increment(1);
            return Err(Error::Overloaded {
                what: "too many sign-ins and sign-ups at once; try again in a moment",
                retry_after: Duration::from_secs(1),
            });
        }
        answer
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("a hashing thread stopped")))?
    }
}

/// A hashing thread: takes jobs until every sender is gone, all in one reused block of memory.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    // The lowest normal priority: a storm of sign-ins yields the cores to every other request.
    // (Best effort; without it hashing still runs, at normal priority.)
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::debug!(error = ?e, "hashing thread keeps its priority");
    }
    let mut memory = Memory::default();
    loop {
        // One thread waits on the queue at a time; the others are hashing.
        let job = match queue.lock() {
            Ok(mut queue) => queue.blocking_recv(),
            Err(poisoned) => poisoned.into_inner().blocking_recv(),
        };
        let Some(job) = job else { return };
        // The caller hung up while the job waited: nobody needs the answer.
        if job.reply.is_closed() {
            continue;
        }
        let outcome = match job.task {
            Task::Hash(password) => memory.hash(password.expose()).map(Outcome::Hashed),
            Task::Verify { password, stored } => {
                memory.verify(&password, &stored).map(Outcome::Verified)
            }
        };
        let _ = job.reply.send(outcome);
    }
}

/// One thread's argon2 memory, allocated on first use and kept.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks = vec![Block::default(); count];
        }
        &mut self.blocks[..count]
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`.
    fn hash(&mut self, password: &str) -> Result<String> {
        let params = params()?;
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt
            .as_salt()
            .decode_b64(&mut salt_bytes)
            .map_err(internal("salt"))?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut out,
                self.blocks(params.block_count()),
            )
            .map_err(internal("hashing"))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(internal("parameters"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(internal("output"))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` hashes to the stored PHC string, with the parameters it names.
    fn verify(&mut self, password: &str, stored: &str) -> Result<bool> {
        let parsed = PasswordHash::new(stored).map_err(internal("stored hash"))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(Error::corrupt("a password hash without salt or output"));
        };
        let params = Params::try_from(&parsed).map_err(internal("stored parameters"))?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(internal("algorithm"))?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(internal("version"))?
            .unwrap_or_default();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(internal("salt"))?;
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut out,
                self.blocks(params.block_count()),
            )
            .map_err(internal("verifying"))?;
        // `Output` compares in constant time.
        Ok(Output::new(&out).map_err(internal("output"))? == expected)
    }
}

fn params() -> Result<Params> {
    Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(internal("argon2 parameters"))
}

fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Internal(anyhow::anyhow!("password {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash_and_unknown_accounts_never() {
        let passwords = Passwords::new(HashingLimits {
            concurrency: 2,
            queue: 8,
        })
        .expect("hasher");
        let password = Password::parse("correct horse").expect("valid");
        let hash = passwords.hash(&password).await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let verify = async |p: &str, h: Option<&str>| passwords.verify(p, h).await.expect("verify");
        assert!(verify("correct horse", Some(&hash)).await);
        assert!(!verify("wrong horse", Some(&hash)).await);
        assert!(!verify("correct horse", None).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_callers_are_refused_at_once() {
        let passwords = Arc::new(
            Passwords::new(HashingLimits {
                concurrency: 1,
                queue: 1,
            })
            .expect("hasher"),
        );
        let attempts = (0..6).map(|_| {
            let passwords = Arc::clone(&passwords);
            tokio::spawn(async move { passwords.verify("guess-guess", None).await })
        });
        let results = futures_util::future::join_all(attempts).await;
        let refused = results
            .iter()
            .filter(|r| matches!(r, Ok(Err(Error::Overloaded { .. }))))
            .count();
        // One hashing, one queued, the rest refused (give or take a finished hash).
        assert!(refused >= 2, "refused {refused} of six");
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(Ok(false) | Err(Error::Overloaded { .. }))))
        );
    }
}
