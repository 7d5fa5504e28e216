//! The `stitch-audio` Lambda: the workflow's `StitchAudio` Task state.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::run_step::<lector_pipeline::steps::StitchAudio>().await
}
