//! The `request-conversions` Lambda: `PostDiscovered` and `PostChanged` on the bus become
//! conversions.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::request::run().await
}
