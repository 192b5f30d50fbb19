//! `coracle version`: this binary's version and, unless `--client`, the server's (GET /version).

use super::Context;
use crate::cli::VersionArgs;
use crate::error::CtlError;
use crate::printers::OutputFormat;
use serde_json::{json, Value};

/// This client's version document, shaped like the server's `/version`.
pub fn client_version() -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "major": parts.next().unwrap_or("0"),
        "minor": parts.next().unwrap_or("0"),
        "gitVersion": format!("v{version}"),
        "platform": format!("{}/{arch}", std::env::consts::OS),
    })
}

/// Runs `version`; `ctx` is None with `--client`.
pub fn run(ctx: Option<&Context>, args: &VersionArgs) -> Result<(), CtlError> {
    let format = match args.output.as_deref() {
        None => None,
        Some(o @ ("json" | "yaml")) => Some(OutputFormat::parse(Some(o))?),
        Some(other) => return Err(CtlError::client(format!("--output must be 'yaml' or 'json', not {other:?}"))),
    };
    let client = client_version();
    let server = ctx.map(|ctx| ctx.client.get("/version")).transpose();
    // The client version prints even when the server cannot be reached, as kubectl does.
    let (server, failure) = match server {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e)),
    };
    match format {
        Some(f) => {
            let mut doc = json!({"clientVersion": client});
            if let Some(s) = &server {
                doc["serverVersion"] = s.clone();
            }
            out!("{}", f.document(&doc));
        }
        None => {
            outln!("Client Version: {}", client["gitVersion"].as_str().unwrap_or_default());
            if let Some(s) = &server {
                let v = s.get("gitVersion").and_then(Value::as_str).unwrap_or("<unknown>");
                outln!("Server Version: {v}");
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_version_carries_the_crate_version() {
        let v = client_version();
        assert_eq!(v["gitVersion"], format!("v{}", env!("CARGO_PKG_VERSION")));
        assert!(v["platform"].as_str().unwrap().starts_with("linux/"));
    }
}
