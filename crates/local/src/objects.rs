//! The object store of the embedded default: a folder, one file per key.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::ObjectKey;
use lector_core::object::ObjectMeta;
use lector_core::ports::{ObjectError, ObjectStore};

/// Objects as files under a root folder. Keys are validated by [`ObjectKey`] (relative, no
/// `..`), so joining them to the root cannot escape it. Writes go to a temporary file that is
/// renamed into place, so a reader never sees half an object.
#[derive(Debug, Clone)]
pub struct FolderObjectStore {
    root: PathBuf,
}

impl FolderObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, ObjectError> + Send + 'static,
    ) -> Result<T, ObjectError> {
        tokio::task::spawn_blocking(f).await.map_err(|e| ObjectError::Failed(e.to_string()))?
    }
}

/// The content type of a key, from its extension (the folder keeps no metadata).
pub fn content_type_of(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("mp3") => "audio/mpeg",
        Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

fn io_error(key: &ObjectKey, e: std::io::Error) -> ObjectError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ObjectError::NotFound(key.clone())
    } else {
        ObjectError::Failed(format!("{key}: {e}"))
    }
}

#[async_trait]
impl ObjectStore for FolderObjectStore {
    async fn put(&self, key: &ObjectKey, body: Bytes, _content_type: &str) -> Result<(), ObjectError> {
        let path = self.path_of(key);
        let key = key.clone();
        Self::blocking(move || {
            let dir = path.parent().ok_or_else(|| ObjectError::Failed(format!("{key}: no parent folder")))?;
            std::fs::create_dir_all(dir).map_err(|e| io_error(&key, e))?;
            let tmp = dir.join(format!(
                ".{}.{}.tmp",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("object"),
                uuid_like()
            ));
            std::fs::write(&tmp, &body).map_err(|e| io_error(&key, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io_error(&key, e)
            })
        })
        .await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError> {
        let path = self.path_of(key);
        let key = key.clone();
        Self::blocking(move || std::fs::read(&path).map(Bytes::from).map_err(|e| io_error(&key, e))).await
    }

    async fn get_range(&self, key: &ObjectKey, start: u64, end: u64) -> Result<Bytes, ObjectError> {
        let path = self.path_of(key);
        let key = key.clone();
        Self::blocking(move || {
            let mut file = std::fs::File::open(&path).map_err(|e| io_error(&key, e))?;
            let size = file.metadata().map_err(|e| io_error(&key, e))?.len();
            let end = end.min(size);
            if start >= end {
                return Ok(Bytes::new());
            }
            file.seek(SeekFrom::Start(start)).map_err(|e| io_error(&key, e))?;
            let mut buf = vec![0; (end - start) as usize];
            file.read_exact(&mut buf).map_err(|e| io_error(&key, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectError> {
        let path = self.path_of(key);
        let key = key.clone();
        Self::blocking(move || match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta {
                size: meta.len(),
                content_type: Some(content_type_of(key.as_str()).to_owned()),
                key,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&key, e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        Self::blocking(move || {
            let mut found = Vec::new();
            walk(&root, &root, &prefix, &mut found)?;
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
    }
}

fn walk(root: &Path, dir: &Path, prefix: &str, found: &mut Vec<ObjectMeta>) -> Result<(), ObjectError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ObjectError::Failed(format!("{}: {e}", dir.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| ObjectError::Failed(e.to_string()))?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else { continue };
        let Some(rel) = relative.to_str().map(|s| s.replace(std::path::MAIN_SEPARATOR, "/")) else {
            continue;
        };
        let file_type = entry.file_type().map_err(|e| ObjectError::Failed(e.to_string()))?;
        if file_type.is_dir() {
            // Only descend where keys under the folder can still match the prefix.
            let as_dir = format!("{rel}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, found)?;
            }
        } else if file_type.is_file() && rel.starts_with(prefix) {
            // Temporary files of writes in progress are not objects.
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            if let Ok(key) = ObjectKey::new(rel) {
                let size = entry.metadata().map_err(|e| ObjectError::Failed(e.to_string()))?.len();
                let content_type = Some(content_type_of(key.as_str()).to_owned());
                found.push(ObjectMeta { key, size, content_type });
            }
        }
    }
    Ok(())
}

/// A name for a temporary file, unique enough among concurrent writers of one process and
/// across processes.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}
