//! The `prepare-speech` Lambda: the workflow's `PrepareSpeech` Task state.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::run_step::<lector_pipeline::steps::PrepareSpeech>().await
}
