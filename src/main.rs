use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    encore::telemetry::init_tracing();
    encore::cli::run(encore::cli::Cli::parse()).await
}
