//! The `start-conversion` Lambda: `ConversionRequested` on the bus starts the workflow.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::start::run().await
}
