//! The object store contract on moto's S3, each case in a fresh bucket, plus prefixes.

use std::sync::Arc;

use lector_aws::S3ObjectStore;
use lector_core::ObjectKey;
use lector_core::ports::{ObjectError, ObjectStore};
use lector_testkit::services::{s3_config, unique_name};

async fn fresh_bucket() -> (aws_sdk_s3::Client, String) {
    let client = aws_sdk_s3::Client::from_conf(s3_config().await);
    let bucket = unique_name("objects");
    client.create_bucket().bucket(&bucket).send().await.expect("the bucket is created");
    (client, bucket)
}

async fn fresh_store() -> Arc<dyn ObjectStore> {
    let (client, bucket) = fresh_bucket().await;
    Arc::new(S3ObjectStore::new(client, bucket))
}

lector_testkit::object_store_contract!(fresh_store);

#[tokio::test]
async fn stores_under_a_prefix_see_only_their_own_objects() {
    let (client, bucket) = fresh_bucket().await;
    let dev = S3ObjectStore::new(client.clone(), &bucket).with_prefix("dev/");
    let prod = S3ObjectStore::new(client, &bucket).with_prefix("prod/");
    let key = ObjectKey::new("audio/a.mp3").unwrap();
    dev.put(&key, "dev audio".into(), "audio/mpeg").await.unwrap();
    assert!(matches!(prod.get(&key).await, Err(ObjectError::NotFound(_))));
    let listed = dev.list("audio/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key, "keys come back without the prefix");
    assert!(prod.list("").await.unwrap().is_empty());
    let meta = dev.head(&key).await.unwrap().expect("the object is there");
    assert_eq!(meta.content_type.as_deref(), Some("audio/mpeg"));
}

#[tokio::test]
async fn listing_follows_every_page() {
    let (client, bucket) = fresh_bucket().await;
    let store = S3ObjectStore::new(client, bucket);
    // ListObjectsV2 gives 1,000 keys a page.
    let keys: Vec<ObjectKey> =
        (0..1_005).map(|i| ObjectKey::new(format!("work/c/chunks/{i:05}.mp3")).unwrap()).collect();
    for chunk in keys.chunks(50) {
        let puts = chunk.iter().map(|k| store.put(k, vec![1u8].into(), "audio/mpeg"));
        for put in futures_join(puts).await {
            put.unwrap();
        }
    }
    let listed: Vec<ObjectKey> = store.list("work/c/").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(listed, keys);
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

#[tokio::test]
async fn a_missing_bucket_is_a_named_failure_not_a_missing_object() {
    let client = aws_sdk_s3::Client::from_conf(s3_config().await);
    let store = S3ObjectStore::new(client, unique_name("no-bucket"));
    let key = ObjectKey::new("audio/x.mp3").unwrap();
    match store.put(&key, "x".into(), "audio/mpeg").await {
        Err(ObjectError::Failed(reason)) => assert!(reason.contains("no-bucket"), "{reason}"),
        other => panic!("expected a failure naming the bucket, got {other:?}"),
    }
}
