//! The `project-conversions` Lambda: the event log's stream into the list table.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::project::run().await
}
