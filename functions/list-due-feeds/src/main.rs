//! The `list-due-feeds` Lambda: the polling workflow's `ListDueFeeds` Task state.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::run_step::<lector_pipeline::poll::ListDueFeeds>().await
}
