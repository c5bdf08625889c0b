use clap::Parser;

/// mimalloc rather than the system allocator: a request makes many small short-lived allocations
/// across threads, where glibc's malloc spent ~15% of the server's CPU in an entry rush.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    encore::telemetry::init_tracing();
    encore::cli::run(encore::cli::Cli::parse()).await
}
