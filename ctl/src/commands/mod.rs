//! One file per verb. Each takes the shared `Context` and its own clap arguments; adding a
//! verb is a variant in `cli::Command`, a file here and a line in `run`.

pub mod apply;
pub mod autoscale;
pub mod create;
pub mod create_config;
pub mod create_data;
pub mod delete;
pub mod describe;
pub mod expose;
pub mod get;
pub mod get_watch;
pub mod image;
pub mod logs;
pub mod port_forward;
pub mod rollout;
pub mod run;
pub mod scale;
pub mod set_image;
pub mod target;
pub mod top;
pub mod version;
pub mod watch;

use crate::cli::{Cli, Command, CreateKind, GlobalArgs, SetCommand};
use crate::client::{with_query, Client, Endpoint};
use crate::error::CtlError;
use crate::selector::Selector;
use coracle_config::object::ALL;
use coracle_config::{Object, ResourceInfo};
use serde_json::Value;

/// What every command needs: the client and the namespace in effect.
pub struct Context {
    pub client: Client,
    /// `-n`, or `default`.
    pub namespace: String,
    /// True when `-n` was given, so a manifest naming another namespace is an error.
    pub namespace_explicit: bool,
}

impl Context {
    /// Builds the context from the global flags: `--server` wins over `--socket`.
    pub fn from_args(global: &GlobalArgs) -> Result<Context, CtlError> {
        let endpoint = match global.server.as_deref().filter(|s| !s.is_empty()) {
            Some(url) => Endpoint::from_url(url)?,
            None => Endpoint::Unix(global.socket.clone()),
        };
        let token = global.token.clone().filter(|t| !t.is_empty());
        Ok(Context {
            client: Client::new(endpoint, token),
            namespace: global.namespace.clone().unwrap_or_else(|| "default".into()),
            namespace_explicit: global.namespace.is_some(),
        })
    }

    /// The namespace a manifest's object goes to: its own, else `-n`/default; a manifest
    /// namespace that contradicts an explicit `-n` is refused, as kubectl does.
    pub fn namespace_for(&self, object: &Object) -> Result<String, CtlError> {
        let own = &object.metadata().namespace;
        if !object.info().namespaced {
            return Ok(String::new());
        }
        if own.is_empty() {
            return Ok(self.namespace.clone());
        }
        if self.namespace_explicit && *own != self.namespace {
            return Err(CtlError::client(format!(
                "the namespace from the provided object \"{own}\" does not match the namespace \"{}\". You must pass '--namespace={own}' to perform this operation.",
                self.namespace
            )));
        }
        Ok(own.clone())
    }

    /// The object's REST path in `namespace`.
    pub fn object_path(&self, info: &ResourceInfo, namespace: &str, name: &str) -> String {
        info.object_path(namespace, name)
    }

    /// Lists `info` in `namespace` (None: every namespace) filtered by `selector`; returns the
    /// items as the server sent them, with `apiVersion`/`kind` filled in.
    pub fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        selector: Option<&Selector>,
    ) -> Result<Vec<Value>, CtlError> {
        let query = selector.map(Selector::to_query).unwrap_or_default();
        let path = with_query(&info.collection_path(namespace), &[("labelSelector", &query)]);
        let list = self.client.get(&path)?;
        let items = match list.get("items") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(CtlError::client(format!("GET {path}: the answer's items is not a list"))),
        };
        let mut out = Vec::with_capacity(items.len());
        for mut item in items {
            with_type_meta(&mut item, info);
            // Filter here too, so a server that ignores labelSelector still gives the right answer.
            if let Some(sel) = selector {
                let labels = decode(info, &item)?.metadata().labels.clone();
                if !sel.matches(&labels) {
                    continue;
                }
            }
            out.push(item);
        }
        Ok(out)
    }

    /// GETs one object.
    pub fn get(&self, info: &ResourceInfo, namespace: &str, name: &str) -> Result<Value, CtlError> {
        let mut v = self.client.get(&info.object_path(namespace, name))?;
        with_type_meta(&mut v, info);
        Ok(v)
    }
}

/// Fills `apiVersion` and `kind`, which list items may leave out.
pub fn with_type_meta(value: &mut Value, info: &ResourceInfo) {
    if let Value::Object(map) = value {
        map.entry("apiVersion").or_insert_with(|| Value::String(info.api_version()));
        map.entry("kind").or_insert_with(|| Value::String(info.kind.to_string()));
    }
}

/// Decodes a server object into its typed form.
pub fn decode(info: &ResourceInfo, value: &Value) -> Result<Object, CtlError> {
    Object::from_json(info, value.clone()).map_err(|e| {
        let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
        CtlError::client(format!("decoding {} {name:?} from the server: {e}", info.kind))
    })
}

/// Resolves a type as the user typed it.
pub fn resolve_type(name: &str) -> Result<&'static ResourceInfo, CtlError> {
    ResourceInfo::lookup(name)
        .ok_or_else(|| CtlError::client(format!("the server doesn't have a resource type \"{name}\"")))
}

/// The resource types `get all` covers: those in the `all` category.
pub fn all_category() -> Vec<&'static ResourceInfo> {
    ALL.iter().copied().filter(|i| i.categories.contains(&"all")).collect()
}

/// A resource type and the names asked for (empty: all of them).
#[derive(Debug, PartialEq)]
pub struct ResourceGroup {
    pub info: &'static ResourceInfo,
    pub names: Vec<String>,
}

/// Parses `TYPE[,TYPE] [NAME…]` or `TYPE/NAME…`, expanding `all`.
pub fn resource_groups(args: &[String]) -> Result<Vec<ResourceGroup>, CtlError> {
    let Some(first) = args.first() else {
        return Err(CtlError::client("you must specify the type of resource to get"));
    };
    if first.contains('/') {
        let mut groups: Vec<ResourceGroup> = Vec::new();
        for arg in args {
            let (type_, name) = arg.split_once('/').filter(|(t, n)| !t.is_empty() && !n.is_empty()).ok_or_else(|| {
                CtlError::client(format!("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'coracle get resource/<resource_name>' instead of 'coracle get resource resource/<resource_name>'): {arg:?}"))
            })?;
            let info = resolve_type(type_)?;
            match groups.iter_mut().find(|g| std::ptr::eq(g.info, info)) {
                Some(g) => g.names.push(name.to_string()),
                None => groups.push(ResourceGroup { info, names: vec![name.to_string()] }),
            }
        }
        return Ok(groups);
    }
    let names: Vec<String> = args[1..].to_vec();
    if let Some(arg) = names.iter().find(|n| n.contains('/')) {
        return Err(CtlError::client(format!(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form: {arg:?}"
        )));
    }
    let mut groups = Vec::new();
    for type_ in first.split(',').filter(|t| !t.is_empty()) {
        if type_.eq_ignore_ascii_case("all") {
            groups.extend(all_category().into_iter().map(|info| ResourceGroup { info, names: names.clone() }));
        } else {
            groups.push(ResourceGroup { info: resolve_type(type_)?, names: names.clone() });
        }
    }
    Ok(groups)
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), CtlError> {
    if let Command::Version(args) = &cli.command {
        if args.client {
            return version::run(None, args);
        }
    }
    let ctx = Context::from_args(&cli.global)?;
    match &cli.command {
        Command::Apply(args) => apply::run(&ctx, args),
        Command::Create(args) => match &args.kind {
            None => create::run(&ctx, &args.manifests),
            Some(CreateKind::Configmap(a)) => create_config::config_map(&ctx, a),
            Some(CreateKind::Secret(kind)) => create_config::secret(&ctx, kind),
        },
        Command::Get(args) => get::run(&ctx, args),
        Command::Describe(args) => describe::run(&ctx, args),
        Command::Delete(args) => delete::run(&ctx, args),
        Command::Version(args) => version::run(Some(&ctx), args),
        Command::Scale(args) => scale::run(&ctx, args),
        Command::Autoscale(args) => autoscale::run(&ctx, args),
        Command::Expose(args) => expose::run(&ctx, args),
        Command::Run(args) => run::run(&ctx, args),
        Command::Set(args) => match &args.command {
            SetCommand::Image(a) => set_image::run(&ctx, a),
        },
        Command::Rollout(args) => rollout::run(&ctx, args),
        Command::Logs(args) => logs::run(&ctx, args),
        Command::PortForward(args) => port_forward::run(&ctx, args),
        Command::Top(args) => top::run(&ctx, args),
        Command::Image(args) => image::run(&ctx, args),
    }
}

/// Prints an error the way kubectl does and remembers that something failed.
pub fn report(failed: &mut bool, err: CtlError) {
    if !matches!(err, CtlError::Reported) {
        errln!("{err}");
    }
    *failed = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resource_arguments_take_every_kubectl_form() {
        let g = resource_groups(&args(&["deploy", "a", "b"])).unwrap();
        assert_eq!((g.len(), g[0].info.kind, g[0].names.len()), (1, "Deployment", 2));
        let g = resource_groups(&args(&["po,svc"])).unwrap();
        assert_eq!(g.iter().map(|g| g.info.kind).collect::<Vec<_>>(), ["Pod", "Service"]);
        let g = resource_groups(&args(&["po/a", "svc/b", "pods/c"])).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].names, ["a", "c"]);
        let g = resource_groups(&args(&["all"])).unwrap();
        assert_eq!(
            g.iter().map(|g| g.info.kind).collect::<Vec<_>>(),
            ["Pod", "Service", "Deployment", "ReplicaSet", "HorizontalPodAutoscaler"]
        );
        let err = resource_groups(&args(&["widgets"])).unwrap_err();
        assert_eq!(err.to_string(), "error: the server doesn't have a resource type \"widgets\"");
        assert!(resource_groups(&args(&["po", "svc/x"])).is_err());
    }
}
