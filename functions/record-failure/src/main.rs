//! The `record-failure` Lambda: the workflow's `RecordFailure` Task state.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::run_step::<lector_pipeline::steps::RecordFailure>().await
}
