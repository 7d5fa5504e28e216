//! The `api-preview` Lambda: `lector_api::preview_router` on `lambda_http`, with the AWS adapters.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::api::run_preview().await
}
