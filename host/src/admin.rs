//! The admin socket: a Unix socket in the data folder (`admin.sock`,
//! reachable only by users who can reach the folder) answering one-line
//! commands with JSON. `pbx plugins list` is its client.

use crate::plugins::Policy;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// The socket's path in `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

/// Serve admin commands until the task is dropped.
pub async fn serve(listener: UnixListener, policy: Arc<Policy>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let policy = policy.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read.take(1024));
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let reply = match line.trim() {
                "plugins list" => serde_json::to_string_pretty(&policy.status()).unwrap_or_default(),
                other => serde_json::json!({ "error": format!("unknown command {other:?}") }).to_string(),
            };
            let _ = write.write_all(reply.as_bytes()).await;
            let _ = write.shutdown().await;
        });
    }
}

/// Send `command` to the PBX running on `data_dir`; returns its reply.
pub async fn request(data_dir: &Path, command: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket_path(data_dir)).await?;
    stream.write_all(format!("{command}\n").as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    Ok(reply)
}
