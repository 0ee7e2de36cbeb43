//! The `pbx` command line.
//!
//! ```text
//! pbx [run] [--data DIR]                          start the PBX (default data folder: ./data)
//! pbx plugins check FILE.wasm [--config F.json]   validate a plugin offline
//! pbx plugins list [--data DIR]                   show the running PBX's plugins
//! ```

use anyhow::{Context, bail};
use pbx::config::Config;
use pbx::plugins::{Limits, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  pbx [run] [--data DIR]                          start the PBX (data folder default: ./data)
  pbx plugins check FILE.wasm [--config F.json]   validate a plugin offline (exit 0 = accepted)
  pbx plugins list [--data DIR]                   show each hook's plugin in the running PBX";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PBX_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pbx: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pbx: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(args: Vec<String>) -> anyhow::Result<ExitCode> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["-h" | "--help" | "help", ..] => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        ["plugins", "check", rest @ ..] => plugins_check(rest).await,
        ["plugins", "list", rest @ ..] => {
            let data = data_dir(rest)?;
            let reply = pbx::admin::request(&data, "plugins list")
                .await
                .with_context(|| {
                    format!(
                        "no PBX answering on {}",
                        pbx::admin::socket_path(&data).display()
                    )
                })?;
            println!("{reply}");
            Ok(ExitCode::SUCCESS)
        }
        ["run", rest @ ..] => run(rest).await,
        rest if rest.is_empty() || rest[0].starts_with("--") => run(rest).await,
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn run(args: &[&str]) -> anyhow::Result<ExitCode> {
    let data = data_dir(args)?;
    let config = Config::load_or_init(&data).map_err(anyhow::Error::msg)?;
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    pbx::app::run(config, ctrl_c).await?;
    Ok(ExitCode::SUCCESS)
}

async fn plugins_check(args: &[&str]) -> anyhow::Result<ExitCode> {
    let (file, config) = match args {
        [file] => (*file, None),
        [file, "--config", cfg] => (*file, Some(*cfg)),
        _ => bail!("{USAGE}"),
    };
    let wasm = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let config = match config {
        Some(c) => std::fs::read_to_string(c).with_context(|| format!("reading {c}"))?,
        None => "{}".to_string(),
    };
    let runtime = Runtime::new(Limits::default())?;
    match pbx::plugins::check_file(&runtime, wasm, config).await {
        Ok(p) => {
            let hooks: Vec<&str> = p.info.hooks.iter().map(|h| h.name()).collect();
            println!(
                "OK: {} {} serves [{}] (sha256 {}, {} bytes)",
                p.info.name,
                p.info.version,
                hooks.join(", "),
                p.sha256,
                p.size
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("REFUSED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn data_dir(args: &[&str]) -> anyhow::Result<PathBuf> {
    match args {
        [] => Ok(PathBuf::from("data")),
        ["--data", dir] => Ok(PathBuf::from(dir)),
        _ => bail!("{USAGE}"),
    }
}
