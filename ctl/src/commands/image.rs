//! `coracle image load|import|ls|rm`: the daemon's image store through
//! `/apis/images.coracle.io/v1/images`, with podman's output words.

use super::{report, Context};
use crate::cli::{ImageArgs, ImageCommand, ImageImportArgs, ImageLoadArgs, ImageLsArgs, ImageRmArgs};
use crate::client::{encode, with_query, UploadLength};
use crate::error::CtlError;
use crate::printers::size::human_size;
use crate::printers::tabwriter::TabWriter;
use serde::Deserialize;
use serde_json::Value;
use std::fs::File;
use std::io::Read;

/// The images collection.
const IMAGES: &str = "/apis/images.coracle.io/v1/images";

/// podman's table writer (`tabwriter.NewWriter(out, 12, 2, 2, ' ', 0)`).
const PODMAN: TabWriter = TabWriter { min_width: 12, padding: 2 };

/// Runs an `image` subcommand.
pub fn run(ctx: &Context, args: &ImageArgs) -> Result<(), CtlError> {
    match &args.command {
        ImageCommand::Load(a) => load(ctx, a),
        ImageCommand::Import(a) => import(ctx, a),
        ImageCommand::Ls(a) => list(ctx, a),
        ImageCommand::Rm(a) => remove(ctx, a),
    }
}

fn load(ctx: &Context, args: &ImageLoadArgs) -> Result<(), CtlError> {
    let source = args.input.as_deref().or(args.file.as_deref()).unwrap_or("-");
    let answer = if source == "-" {
        let mut stdin = std::io::stdin().lock();
        ctx.client.upload("POST", IMAGES, "application/x-tar", &mut stdin, UploadLength::Chunked)?
    } else {
        let mut file =
            File::open(source).map_err(|e| CtlError::client(format!("opening the archive {source:?}: {e}")))?;
        let length =
            file.metadata().map_err(|e| CtlError::client(format!("reading the size of {source:?}: {e}")))?.len();
        ctx.client.upload(
            "POST",
            IMAGES,
            "application/x-tar",
            &mut file as &mut dyn Read,
            UploadLength::Known(length),
        )?
    };
    for reference in item_names(&answer) {
        outln!("Loaded image: {reference}");
    }
    Ok(())
}

fn import(ctx: &Context, args: &ImageImportArgs) -> Result<(), CtlError> {
    // The daemon reads the directory itself, so it needs the path as seen from the board.
    let dir = std::path::absolute(&args.dir)
        .map_err(|e| CtlError::client(format!("resolving {}: {e}", args.dir.display())))?;
    let dir = dir.to_str().ok_or_else(|| CtlError::client(format!("{} is not valid UTF-8", dir.display())))?;
    let path = with_query(IMAGES, &[("import", dir), ("name", &args.reference)]);
    let answer = ctx.client.json("POST", &path, None)?;
    for reference in item_names(&answer) {
        outln!("Imported image: {reference}");
    }
    Ok(())
}

/// `metadata.name` of each item of an `ImageList`.
fn item_names(list: &Value) -> Vec<String> {
    list.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// One row of the image list.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ImageRow {
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub size: u64,
}

fn list(ctx: &Context, args: &ImageLsArgs) -> Result<(), CtlError> {
    let answer = ctx.client.get(IMAGES)?;
    let rows: Vec<ImageRow> = serde_json::from_value(answer.get("items").cloned().unwrap_or(Value::Array(Vec::new())))
        .map_err(|e| CtlError::client(format!("decoding the image list from the server: {e}")))?;
    if args.quiet {
        for r in &rows {
            outln!("{}", if r.tag == "<none>" { r.digest.clone() } else { format!("{}:{}", r.repository, r.tag) });
        }
    } else {
        out!("{}", image_table(&rows));
    }
    Ok(())
}

/// `REPOSITORY TAG DIGEST SIZE`, podman-aligned.
pub fn image_table(rows: &[ImageRow]) -> String {
    let mut text = String::from("REPOSITORY\tTAG\tDIGEST\tSIZE\n");
    for r in rows {
        text.push_str(&format!("{}\t{}\t{}\t{}\n", r.repository, r.tag, r.digest, human_size(r.size)));
    }
    PODMAN.align(&text)
}

/// What DELETE answered.
#[derive(Debug, Default, Deserialize)]
struct Removal {
    #[serde(default)]
    untagged: Vec<String>,
    #[serde(default)]
    deleted: Option<String>,
}

fn remove(ctx: &Context, args: &ImageRmArgs) -> Result<(), CtlError> {
    let mut failed = false;
    for reference in &args.references {
        let result = ctx.client.json("DELETE", &format!("{IMAGES}/{}", encode(reference)), None).and_then(|answer| {
            serde_json::from_value::<Removal>(answer)
                .map_err(|e| CtlError::client(format!("decoding the removal of {reference:?}: {e}")))
        });
        match result {
            Ok(removal) => {
                for name in &removal.untagged {
                    outln!("Untagged: {name}");
                }
                if let Some(digest) = &removal.deleted {
                    outln!("Deleted: {digest}");
                }
            }
            Err(e) => report(&mut failed, e),
        }
    }
    if failed {
        Err(CtlError::Reported)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_list_prints_podman_columns() {
        let rows = vec![
            ImageRow {
                repository: "docker.io/library/busybox".into(),
                tag: "latest".into(),
                digest: "sha256:abc".into(),
                size: 1_234_567,
            },
            ImageRow { repository: "<none>".into(), tag: "<none>".into(), digest: "sha256:def".into(), size: 999 },
        ];
        assert_eq!(
            image_table(&rows),
            "REPOSITORY                 TAG         DIGEST      SIZE\n\
             docker.io/library/busybox  latest      sha256:abc  1.23 MB\n\
             <none>                     <none>      sha256:def  999 B\n"
        );
    }

    #[test]
    fn loaded_references_come_from_the_items() {
        let answer =
            json!({"kind": "ImageList", "items": [{"metadata": {"name": "docker.io/library/busybox:latest"}}]});
        assert_eq!(item_names(&answer), ["docker.io/library/busybox:latest"]);
        let removal: Removal =
            serde_json::from_value(json!({"kind": "Status", "untagged": ["a"], "deleted": null})).unwrap();
        assert_eq!((removal.untagged.len(), removal.deleted), (1, None));
    }
}
