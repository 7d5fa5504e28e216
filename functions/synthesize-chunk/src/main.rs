//! The `synthesize-chunk` Lambda: the workflow's `SynthesizeChunk` Task state.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::run_step::<lector_pipeline::steps::SynthesizeChunk>().await
}
