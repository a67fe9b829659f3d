//! A zip of folders for download: written on a blocking thread into an
//! anonymous temporary file in the data directory (files stored, not
//! compressed: hand-ins are mostly compressed documents already), then
//! streamed to the client from there, so a class's hand-ins never sit in
//! memory. The file has no name and goes when the response ends.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use axum::body::Body;
use bytes::Bytes;
use tokio::io::AsyncReadExt;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Bytes read per piece of the response.
const PIECE: usize = 64 * 1024;

/// The response body: a zip with each of `folders` under `root` (a folder
/// that does not exist appears empty), built in `tmp_dir`.
pub async fn stream(root: PathBuf, folders: Vec<String>, tmp_dir: PathBuf) -> anyhow::Result<Body> {
    let file = tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
        std::fs::create_dir_all(&tmp_dir)?;
        let mut file = write_zip(&root, &folders, tempfile::tempfile_in(&tmp_dir)?)?;
        file.rewind()?;
        Ok(file)
    })
    .await??;
    let file = tokio::fs::File::from_std(file);
    Ok(Body::from_stream(futures_util::stream::unfold(
        Some(file),
        |file| async move {
            let mut file = file?;
            let mut buf = vec![0u8; PIECE];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        },
    )))
}

fn write_zip(root: &Path, folders: &[String], out: std::fs::File) -> anyhow::Result<std::fs::File> {
    let mut zip = ZipWriter::new(std::io::BufWriter::new(out));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(true);
    for folder in folders {
        zip.add_directory(format!("{folder}/"), options)?;
        add_tree(&mut zip, &root.join(folder), folder, options, 0)?;
    }
    let mut w = zip.finish()?;
    w.flush()?;
    Ok(w.into_inner().map_err(|e| e.into_error())?)
}

/// Adds every regular file under `dir` as `prefix/…`, in name order; links
/// are not followed (the server made every path itself anyway).
fn add_tree<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    dir: &Path,
    prefix: &str,
    options: SimpleFileOptions,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > lectern_policy::files::MAX_PATH_DEPTH {
        return Ok(());
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let path = format!("{prefix}/{name}");
        let kind = e.file_type()?;
        if kind.is_dir() {
            zip.add_directory(format!("{path}/"), options)?;
            add_tree(zip, &e.path(), &path, options, depth + 1)?;
        } else if kind.is_file() {
            zip.start_file(path, options)?;
            std::io::copy(&mut std::fs::File::open(e.path())?, zip)?;
        }
    }
    Ok(())
}
