//! `coracle create configmap` and `coracle create secret generic|docker-registry|tls`: the
//! object built from values as kubectl builds it, then POSTed (or printed for a dry run).

use super::apply::{DryRun, Validation};
use super::create_data::{insert, read_sources};
use super::{with_type_meta, Context};
use crate::cli::{
    CreateConfigMapArgs, CreateDockerRegistryArgs, CreateGenericSecretArgs, CreateOutputArgs, CreateSecretKind,
    CreateTlsSecretArgs, DataSourceArgs,
};
use crate::error::CtlError;
use crate::printers::name::resource_name;
use crate::printers::OutputFormat;
use coracle_config::base64::{self, Base64Bytes};
use coracle_config::core::secret::types;
use coracle_config::core::{ConfigMap, Secret};
use coracle_config::{Object, Resource};
use serde_json::json;
use std::collections::BTreeMap;

/// Runs `create configmap`.
pub fn config_map(ctx: &Context, args: &CreateConfigMapArgs) -> Result<(), CtlError> {
    let data = read_sources(&args.sources, "ConfigMap", &args.name)?;
    send(ctx, Object::ConfigMap(build_config_map(&args.name, data)), &args.output)
}

/// Values that are UTF-8 go to `data`, others to `binaryData`, as kubectl sorts them.
pub fn build_config_map(name: &str, data: BTreeMap<String, Vec<u8>>) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.set_type_meta();
    cm.metadata.name = name.to_string();
    for (key, value) in data {
        match String::from_utf8(value) {
            Ok(text) => {
                cm.data.insert(key, text);
            }
            Err(e) => {
                cm.binary_data.insert(key, Base64Bytes(e.into_bytes()));
            }
        }
    }
    cm
}

/// Runs `create secret …`.
pub fn secret(ctx: &Context, kind: &CreateSecretKind) -> Result<(), CtlError> {
    let (secret, output) = match kind {
        CreateSecretKind::Generic(a) => (generic(a)?, &a.output),
        CreateSecretKind::DockerRegistry(a) => (docker_registry(a)?, &a.output),
        CreateSecretKind::Tls(a) => (tls(a)?, &a.output),
    };
    send(ctx, Object::Secret(secret), output)
}

fn new_secret(name: &str, type_: Option<&str>, data: BTreeMap<String, Vec<u8>>) -> Secret {
    let mut s = Secret::default();
    s.set_type_meta();
    s.metadata.name = name.to_string();
    s.type_ = type_.map(str::to_string);
    s.data = data.into_iter().map(|(k, v)| (k, Base64Bytes(v))).collect();
    s
}

pub fn generic(a: &CreateGenericSecretArgs) -> Result<Secret, CtlError> {
    let data = read_sources(&a.sources, "Secret", &a.name)?;
    Ok(new_secret(&a.name, a.type_.as_deref(), data))
}

/// A `kubernetes.io/dockerconfigjson` secret: `{"auths": {SERVER: {username, password,
/// email, auth}}}`, or the given files.
pub fn docker_registry(a: &CreateDockerRegistryArgs) -> Result<Secret, CtlError> {
    let data = if !a.from_file.is_empty() {
        let sources = DataSourceArgs { from_literal: vec![], from_file: a.from_file.clone(), from_env_file: vec![] };
        read_sources(&sources, "Secret", &a.name)?
    } else {
        let (Some(user), Some(password)) = (a.username.as_deref(), a.password.as_deref()) else {
            return Err(CtlError::client(
                "either --from-file or the combination of --docker-username, --docker-password and --docker-server is required",
            ));
        };
        let mut entry = serde_json::Map::new();
        entry.insert("username".into(), json!(user));
        entry.insert("password".into(), json!(password));
        if let Some(email) = a.email.as_deref().filter(|e| !e.is_empty()) {
            entry.insert("email".into(), json!(email));
        }
        entry.insert("auth".into(), json!(base64::encode(format!("{user}:{password}").as_bytes())));
        let config = json!({"auths": {a.server.clone(): entry}});
        let mut data = BTreeMap::new();
        insert(&mut data, types::DOCKER_CONFIG_JSON_KEY, config.to_string().into_bytes(), "Secret", &a.name)?;
        data
    };
    Ok(new_secret(&a.name, Some(types::DOCKER_CONFIG_JSON), data))
}

/// A `kubernetes.io/tls` secret of a PEM certificate and key.
pub fn tls(a: &CreateTlsSecretArgs) -> Result<Secret, CtlError> {
    let (Some(cert), Some(key)) = (a.cert.as_ref(), a.key.as_ref()) else {
        return Err(CtlError::client("key and cert must be specified"));
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| CtlError::client(format!("failed to load key pair open {}: {e}", path.display())))
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    // kubectl parses the pair; without a TLS stack in the ctl, at least both must be PEM.
    for (what, pem) in [("certificate", &cert_pem), ("private key", &key_pem)] {
        if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
            return Err(CtlError::client(format!(
                "failed to load key pair tls: failed to find any PEM data in {what} input"
            )));
        }
    }
    let data = [(types::TLS_CERT.to_string(), cert_pem), (types::TLS_KEY.to_string(), key_pem)].into();
    Ok(new_secret(&a.name, Some(types::TLS), data))
}

/// POSTs `object` in the ctl's namespace (or prints it for `--dry-run=client`), then prints
/// `KIND/NAME created` or the object in the asked format.
fn send(ctx: &Context, mut object: Object, output: &CreateOutputArgs) -> Result<(), CtlError> {
    let dry_run = DryRun::parse(&output.dry_run)?;
    let format = match output.output.as_deref() {
        None => None,
        Some(o @ ("json" | "yaml" | "name")) => Some(OutputFormat::parse(Some(o))?),
        Some(other) => return Err(CtlError::client(format!("unsupported output format {other:?} for create"))),
    };
    let info = object.info();
    object.metadata_mut().namespace = ctx.namespace.clone();
    let answer = if dry_run == DryRun::Client {
        object.to_json()
    } else {
        // Built here from flags, so every field is one the server knows: strict, as kubectl sends.
        let path = format!("{}{}", info.collection_path(Some(&ctx.namespace)), dry_run.query(Validation::Strict));
        let mut answer = ctx.client.json("POST", &path, Some(&object.to_json()))?;
        with_type_meta(&mut answer, info);
        answer
    };
    let name = resource_name(info, &object.metadata().name);
    match format {
        None => outln!("{name} created{}", dry_run.suffix()),
        Some(OutputFormat::Name) => outln!("{name}"),
        Some(f) => out!("{}", f.document(&answer)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, CreateArgs, CreateKind};
    use clap::Parser;

    fn secret_args(argv: &[&str]) -> CreateSecretKind {
        let mut full = vec!["coracle", "create", "secret"];
        full.extend_from_slice(argv);
        let Command::Create(CreateArgs { kind: Some(CreateKind::Secret(kind)), .. }) =
            Cli::try_parse_from(full).unwrap().command
        else {
            panic!("not create secret")
        };
        kind
    }

    #[test]
    fn docker_registry_secrets_carry_kubectls_config() {
        let CreateSecretKind::DockerRegistry(a) = secret_args(&[
            "docker-registry",
            "reg",
            "--docker-server=registry.local:5000",
            "--docker-username=u",
            "--docker-password=p",
            "--docker-email=e@x",
        ]) else {
            panic!()
        };
        let s = docker_registry(&a).unwrap();
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        let config: serde_json::Value = serde_json::from_slice(&s.data[".dockerconfigjson"].0).unwrap();
        assert_eq!(
            config,
            json!({"auths": {"registry.local:5000": {"username": "u", "password": "p", "email": "e@x", "auth": "dTpw"}}})
        );
        let CreateSecretKind::DockerRegistry(a) = secret_args(&["docker-registry", "reg", "--docker-username=u"])
        else {
            panic!()
        };
        assert!(docker_registry(&a).unwrap_err().to_string().contains("--docker-password"));
    }

    #[test]
    fn tls_secrets_need_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, junk) = (dir.path().join("c.pem"), dir.path().join("k.pem"), dir.path().join("j"));
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n").unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nMII=\n-----END PRIVATE KEY-----\n").unwrap();
        std::fs::write(&junk, "nope").unwrap();
        let args = |c: &std::path::Path, k: &std::path::Path| {
            let (c, k) = (format!("--cert={}", c.display()), format!("--key={}", k.display()));
            let CreateSecretKind::Tls(a) = secret_args(&["tls", "t", &c, &k]) else { panic!() };
            a
        };
        let s = tls(&args(&cert, &key)).unwrap();
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(s.data.keys().collect::<Vec<_>>(), ["tls.crt", "tls.key"]);
        assert!(tls(&args(&cert, &junk)).is_err());
    }

    #[test]
    fn config_maps_sort_binary_values_apart() {
        let data = [("text".to_string(), b"hi".to_vec()), ("bin".to_string(), vec![0xff, 0])].into();
        let cm = build_config_map("c", data);
        assert_eq!(cm.data.get("text").map(String::as_str), Some("hi"));
        assert_eq!(cm.binary_data["bin"].0, [0xff, 0]);
        assert_eq!(Object::ConfigMap(cm).to_json()["binaryData"], json!({"bin": "/wA="}));
    }
}
