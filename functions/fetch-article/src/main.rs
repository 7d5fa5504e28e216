//! The `fetch-article` Lambda: the workflow's `FetchArticle` Task state.

#[tokio::main]
async fn main() -> Result<(), lector_lambda::Error> {
    lector_lambda::run_step::<lector_pipeline::steps::FetchArticle>().await
}
