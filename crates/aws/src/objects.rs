//! Objects (texts, chunks, audio) in an S3 bucket, keyed by Lector's object keys.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use lector_core::ObjectKey;
use lector_core::object::ObjectMeta;
use lector_core::ports::{ObjectError, ObjectStore};

use crate::sdk::Failure;

/// [`ObjectStore`] on one S3 bucket, optionally under a key prefix (so that several
/// deployments or tests can share a bucket).
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3ObjectStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into(), prefix: String::new() }
    }

    /// Keys are stored under `prefix` (for example `"dev/"`), which is removed again on listing.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn s3_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    fn error<E>(
        &self,
        op: &str,
        key: &str,
        err: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> ObjectError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let failure = Failure::of(err);
        let reason = format!("{op} s3://{}/{key}: {}", self.bucket, failure.message);
        if failure.transient { ObjectError::Unavailable(reason) } else { ObjectError::Failed(reason) }
    }

    async fn body(&self, key: &str, body: ByteStream) -> Result<Bytes, ObjectError> {
        body.collect().await.map(|b| b.into_bytes()).map_err(|e| {
            ObjectError::Unavailable(format!("reading s3://{}/{key} was cut short: {e}", self.bucket))
        })
    }
}

fn is_no_such_key(
    err: &SdkError<GetObjectError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool {
    matches!(err, SdkError::ServiceError(ctx) if matches!(ctx.err(), GetObjectError::NoSuchKey(_)))
        || matches!(err, SdkError::ServiceError(ctx) if ctx.raw().status().as_u16() == 404)
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str) -> Result<(), ObjectError> {
        let s3_key = self.s3_key(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("PutObject", &s3_key, &e))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError> {
        let s3_key = self.s3_key(key);
        match self.client.get_object().bucket(&self.bucket).key(&s3_key).send().await {
            Ok(out) => self.body(&s3_key, out.body).await,
            Err(e) if is_no_such_key(&e) => Err(ObjectError::NotFound(key.clone())),
            Err(e) => Err(self.error("GetObject", &s3_key, &e)),
        }
    }

    async fn get_range(&self, key: &ObjectKey, start: u64, end: u64) -> Result<Bytes, ObjectError> {
        let s3_key = self.s3_key(key);
        if end <= start {
            // An empty range still tells a missing object apart.
            return match self.head(key).await? {
                Some(_) => Ok(Bytes::new()),
                None => Err(ObjectError::NotFound(key.clone())),
            };
        }
        let range = format!("bytes={start}-{}", end - 1);
        match self.client.get_object().bucket(&self.bucket).key(&s3_key).range(range).send().await {
            Ok(out) => self.body(&s3_key, out.body).await,
            Err(e) if is_no_such_key(&e) => Err(ObjectError::NotFound(key.clone())),
            // 416: the range starts past the end; clamped, that is nothing.
            Err(SdkError::ServiceError(ctx)) if ctx.raw().status().as_u16() == 416 => Ok(Bytes::new()),
            Err(e) => Err(self.error("GetObject", &s3_key, &e)),
        }
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectError> {
        let s3_key = self.s3_key(key);
        match self.client.head_object().bucket(&self.bucket).key(&s3_key).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.clone(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_owned),
            })),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), HeadObjectError::NotFound(_))
                    || ctx.raw().status().as_u16() == 404 =>
            {
                Ok(None)
            }
            Err(e) => Err(self.error("HeadObject", &s3_key, &e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut found = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(&full_prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", &full_prefix, &e))?;
            for object in page.contents() {
                let Some(s3_key) = object.key() else { continue };
                let Some(relative) = s3_key.strip_prefix(&self.prefix) else { continue };
                let key = ObjectKey::new(relative).map_err(|e| {
                    ObjectError::Failed(format!(
                        "s3://{}/{s3_key} is not a Lector object key: {e}",
                        self.bucket
                    ))
                })?;
                found.push(ObjectMeta {
                    key,
                    size: object.size().unwrap_or(0).max(0) as u64,
                    content_type: None,
                });
            }
        }
        // S3 lists in UTF-8 byte order already; sorting keeps the port's promise whatever the
        // store behind the endpoint does.
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    /// A SigV4 presigned `GetObject` address, signed locally with the function's credentials
    /// (no request is sent): players download and seek the audio from S3 directly.
    async fn presigned_get(
        &self,
        key: &ObjectKey,
        valid_for: std::time::Duration,
    ) -> Result<Option<url::Url>, ObjectError> {
        let s3_key = self.s3_key(key);
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(valid_for)
            .map_err(|e| ObjectError::Failed(format!("presigning s3://{}/{s3_key}: {e}", self.bucket)))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&s3_key)
            .presigned(config)
            .await
            .map_err(|e| self.error("presigning GetObject", &s3_key, &e))?;
        url::Url::parse(presigned.uri()).map(Some).map_err(|e| {
            ObjectError::Failed(format!("presigned address of s3://{}/{s3_key}: {e}", self.bucket))
        })
    }
}
