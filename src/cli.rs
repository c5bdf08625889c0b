//! The command line: `serve`, `migrate`, `seed`, `print-schema`, `operator grant`. Each flag of
//! the service has an environment fallback (`operator grant --email` is given on the command
//! line); a missing or invalid value stops the process before it does anything.

use clap::{Parser, Subcommand};

use crate::config::{DatabaseConfig, Rules, ServeConfig};
use crate::domain::services::Services;
use crate::domain::{accounts, seed};
use crate::{db, graphql, startup};

#[derive(Debug, Parser)]
#[command(
    name = "encore",
    version,
    about = "Concert ticketing: fair queue, seat holds, wallet, over GraphQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database and serve the GraphQL API.
    Serve(Box<ServeConfig>),
    /// Apply pending migrations and exit.
    Migrate(DatabaseConfig),
    /// Load demo data if the database has no concerts.
    Seed(DatabaseConfig),
    /// Print the GraphQL SDL.
    PrintSchema,
    /// Operator accounts.
    #[command(subcommand)]
    Operator(Operator),
}

#[derive(Debug, Subcommand)]
pub enum Operator {
    /// Make the account registered with this email an operator.
    Grant {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => startup::serve(*config).await,
        Command::Migrate(database) => startup::migrate(&database.database_url).await,
        Command::Operator(Operator::Grant { email, database }) => {
            let services = offline_services(&database).await?;
            let user = accounts::grant_operator(&services, &email).await?;
            println!("{} ({}) is an operator", user.username, user.email);
            Ok(())
        }
        Command::Seed(database) => {
            let services = offline_services(&database).await?;
            if seed::seed_if_empty(&services).await? {
                println!(
                    "seeded demo data; sign in as {} / {} (operator: {} / {})",
                    seed::DEMO_EMAIL,
                    seed::DEMO_PASSWORD,
                    seed::OPERATOR_EMAIL,
                    seed::OPERATOR_PASSWORD
                );
            } else {
                println!("database already has concerts; nothing seeded");
            }
            Ok(())
        }
        Command::PrintSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
    }
}

/// Services for a one-off command: migrated database, two connections, no tokens issued (the
/// signer just needs some key).
async fn offline_services(database: &DatabaseConfig) -> anyhow::Result<Services> {
    startup::migrate(&database.database_url).await?;
    let pool = db::Database::connect(&database.database_url, &db::PoolConfig::with_size(2))?;
    Ok(Services::new(
        pool,
        Rules::default(),
        &rand::random::<[u8; 32]>(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
