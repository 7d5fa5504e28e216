//! The `poll-feed` Lambda: the polling workflow's `PollFeed` Task state.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::run_step::<lector_pipeline::poll::PollFeed>().await
}
