//! The off-site copy in S3-compatible storage. It mirrors the local folder's layout under a
//! prefix: artifacts go up in parts and are read back and hashed before their manifest
//! follows, so a listed remote backup is a verified one.

use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::archive::Folder;
use super::config::S3Config;
use super::manifest::{MANIFEST_SUFFIX, Manifest};

pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    part_size: usize,
    description: String,
}

impl Remote {
    /// The configured store, or `None` when no bucket is set.
    pub fn from_config(s3: &S3Config) -> anyhow::Result<Option<Self>> {
        // compose passes unset settings as empty values.
        let set = |value: &Option<String>| value.clone().filter(|value| !value.trim().is_empty());
        let Some(bucket) = set(&s3.s3_bucket) else {
            return Ok(None);
        };
        crate::tls::install_crypto_provider();
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_region(&s3.s3_region)
            .with_allow_http(s3.s3_allow_http);
        if let Some(endpoint) = set(&s3.s3_endpoint) {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = set(&s3.s3_access_key_id) {
            builder = builder.with_access_key_id(key);
        }
        if let Some(file) = &s3.s3_secret_access_key_file {
            let secret = std::fs::read_to_string(file).with_context(|| {
                format!("read the S3 secret access key from {}", file.display())
            })?;
            // An empty file (as `cargo xtask docker secrets` writes it) leaves the key to
            // AWS_SECRET_ACCESS_KEY or the instance's role.
            if !secret.trim().is_empty() {
                builder = builder.with_secret_access_key(secret.trim());
            }
        }
        let store = builder.build().with_context(|| {
            format!("set up the S3 client for bucket {bucket:?} (check the APP_WEB_BACKUP_S3_* settings)")
        })?;
        let endpoint = set(&s3.s3_endpoint).unwrap_or_else(|| "AWS".to_owned());
        Ok(Some(Self {
            store: Arc::new(store),
            prefix: s3.s3_prefix.trim_matches('/').to_owned(),
            part_size: usize::try_from(s3.s3_part_size_mib << 20).unwrap_or(usize::MAX),
            description: format!("s3://{bucket}/{} at {endpoint}", s3.s3_prefix),
        }))
    }

    fn key(&self, file: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(file)
        } else {
            StorePath::from(format!("{}/{file}", self.prefix))
        }
    }

    /// Every complete off-site backup (manifest and artifact present), newest first.
    pub async fn list(&self) -> anyhow::Result<Vec<Manifest>> {
        let prefix = (!self.prefix.is_empty()).then(|| StorePath::from(self.prefix.as_str()));
        let mut objects = self.store.list(prefix.as_ref());
        let mut files = std::collections::BTreeSet::new();
        while let Some(object) = objects.next().await {
            let object = object.with_context(|| format!("list {}", self.description))?;
            if let Some(name) = object.location.filename() {
                files.insert(name.to_owned());
            }
        }
        let mut manifests = Vec::new();
        for file in &files {
            let Some(name) = file.strip_suffix(MANIFEST_SUFFIX) else {
                continue;
            };
            if !files.contains(&Manifest::artifact_file(name)) {
                continue;
            }
            let got = self.store.get(&self.key(file)).await;
            let bytes = match got {
                Ok(got) => got.bytes().await,
                Err(err) => Err(err),
            }
            .with_context(|| format!("read {file} from {}", self.description))?;
            manifests.push(Manifest::from_json(&bytes, &format!("{file} off-site"))?);
        }
        manifests.sort_by(Manifest::newest_first);
        Ok(manifests)
    }

    /// Uploads every local backup the store lacks, oldest first.
    pub async fn sync_from(&self, folder: &Folder) -> anyhow::Result<()> {
        let present: std::collections::BTreeSet<String> = self
            .list()
            .await?
            .into_iter()
            .map(|manifest| manifest.name)
            .collect();
        let mut local = folder.list()?;
        local.reverse();
        for manifest in local
            .iter()
            .filter(|manifest| !present.contains(&manifest.name))
        {
            self.upload(folder, manifest).await?;
        }
        Ok(())
    }

    /// Uploads one backup: the artifact in parts, read back and hashed, then its manifest.
    pub async fn upload(&self, folder: &Folder, manifest: &Manifest) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let key = self.key(&manifest.artifact);
        let path = folder.artifact_path(&manifest.name);
        let mut file = tokio::fs::File::open(&path)
            .await
            .with_context(|| format!("open {}", path.display()))?;
        let mut writer = object_store::buffered::BufWriter::with_capacity(
            Arc::clone(&self.store),
            key.clone(),
            self.part_size,
        );
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        let finished = match copied {
            Ok(_) => writer.shutdown().await,
            Err(err) => Err(err),
        };
        if let Err(err) = finished {
            let _ = writer.abort().await;
            return Err(err)
                .with_context(|| format!("upload {} to {}", manifest.artifact, self.description));
        }
        let (sha256, size) = self.hash_object(&key).await?;
        if sha256 != manifest.sha256 || size != manifest.sizes.artifact_bytes {
            let _ = self.store.delete(&key).await;
            anyhow::bail!(
                "the off-site copy of {} does not match: {size} bytes with SHA-256 {sha256}, \
                 expected {} bytes with {}",
                manifest.artifact,
                manifest.sizes.artifact_bytes,
                manifest.sha256
            );
        }
        self.store
            .put(
                &self.key(&Manifest::manifest_file(&manifest.name)),
                PutPayload::from(manifest.to_json()?),
            )
            .await
            .with_context(|| format!("upload the manifest of {}", manifest.name))?;
        tracing::info!(
            backup = %manifest.name,
            bytes = size,
            seconds = started.elapsed().as_secs_f64(),
            store = %self.description,
            "off-site copy uploaded and verified"
        );
        Ok(())
    }

    async fn hash_object(&self, key: &StorePath) -> anyhow::Result<(String, u64)> {
        let got = self
            .store
            .get(key)
            .await
            .with_context(|| format!("read back {key} from {}", self.description))?;
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("read back {key}"))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hex::encode(hasher.finalize()), size))
    }

    /// Deletes a backup off-site: its manifest first, so it stops being listed at once.
    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        for file in [Manifest::manifest_file(name), Manifest::artifact_file(name)] {
            match self.store.delete(&self.key(&file)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("delete {file} from {}", self.description));
                }
            }
        }
        Ok(())
    }

    /// Downloads a backup into the local folder, checking its hash before it is listed there.
    pub async fn download(&self, folder: &Folder, name: &str) -> anyhow::Result<Manifest> {
        let manifest = self
            .list()
            .await?
            .into_iter()
            .find(|manifest| manifest.name == name || name == "latest")
            .with_context(|| format!("no backup {name:?} in {}", self.description))?;
        let temporary = folder.temporary("download")?;
        let got = self
            .store
            .get(&self.key(&manifest.artifact))
            .await
            .with_context(|| format!("download {}", manifest.artifact))?;
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(temporary.as_file());
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.with_context(|| format!("download {}", manifest.artifact))?;
                hasher.update(&chunk);
                out.write_all(&chunk).context("write the download")?;
            }
            out.flush().context("write the download")?;
        }
        let sha256 = hex::encode(hasher.finalize());
        anyhow::ensure!(
            sha256 == manifest.sha256,
            "the off-site copy of {} has SHA-256 {sha256}, its manifest says {}",
            manifest.name,
            manifest.sha256
        );
        folder.persist(temporary, &manifest.artifact)?;
        folder.write_atomically(
            &Manifest::manifest_file(&manifest.name),
            &manifest.to_json()?,
        )?;
        Ok(manifest)
    }
}
