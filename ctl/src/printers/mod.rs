//! Output formats: kubectl's tables, `-o yaml|json|name`.

pub mod json;
pub mod name;
pub mod pod_status;
pub mod size;
pub mod table;
pub mod tabwriter;
pub mod top;
pub mod yaml;

use crate::error::CtlError;
use serde_json::{json, Value};

/// The `-o` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

impl OutputFormat {
    /// Parses `-o`; None means the default table.
    pub fn parse(flag: Option<&str>) -> Result<OutputFormat, CtlError> {
        Ok(match flag {
            None | Some("") => OutputFormat::Table,
            Some("wide") => OutputFormat::Wide,
            Some("json") => OutputFormat::Json,
            Some("yaml") => OutputFormat::Yaml,
            Some("name") => OutputFormat::Name,
            Some(other) => {
                return Err(CtlError::client(format!(
                    "unable to match a printer suitable for the output format {other:?}, allowed formats are: json,name,wide,yaml"
                )))
            }
        })
    }

    /// Prints one document (an object or a `List`) as JSON or YAML.
    pub fn document(&self, value: &Value) -> String {
        match self {
            OutputFormat::Json => json::to_json(value),
            _ => yaml::to_yaml(value),
        }
    }
}

/// Wraps objects into the `kind: List` kubectl prints for several objects.
pub fn list_document(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_lists_wrap() {
        assert_eq!(OutputFormat::parse(Some("yaml")).unwrap(), OutputFormat::Yaml);
        assert!(OutputFormat::parse(Some("xml")).is_err());
        let text = OutputFormat::Yaml.document(&list_document(vec![]));
        assert_eq!(text, "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n");
    }
}
