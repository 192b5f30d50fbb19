//! `describe configmap`, `describe secret` and `describe serviceaccount`, as kubectl's
//! describers print them. A Secret's values are never printed, only their sizes.

use super::events::write_events;
use super::Describer;
use coracle_config::core::{ConfigMap, Event, Secret, ServiceAccount};
use coracle_config::meta::ObjectMeta;
use std::time::SystemTime;

fn header(w: &mut Describer, meta: &ObjectMeta) {
    w.field(0, "Name", &meta.name);
    w.field(0, "Namespace", &meta.namespace);
    w.labels(0, "Labels", &meta.labels);
    w.annotations(0, &meta.annotations);
}

/// Name, labels, every `data` value in full, `binaryData` sizes, events.
pub fn config_map(cm: &ConfigMap, events: &[Event], now: SystemTime) -> String {
    let mut w = Describer::default();
    header(&mut w, &cm.metadata);
    w.line(0, "");
    w.line(0, "Data");
    w.line(0, "====");
    for (key, value) in &cm.data {
        w.line(0, &format!("{key}:"));
        w.line(0, "----");
        // Tabs in a value are the value's, not columns.
        for line in value.split('\n') {
            w.line(0, &line.replace('\t', " "));
        }
        w.line(0, "");
    }
    w.line(0, "");
    w.line(0, "BinaryData");
    w.line(0, "====");
    for (key, value) in &cm.binary_data {
        w.line(0, &format!("{key}: {} bytes", value.0.len()));
    }
    w.line(0, "");
    write_events(&mut w, events, now);
    w.finish()
}

/// Name, labels, type, and each key with its size in bytes.
pub fn secret(s: &Secret) -> String {
    let mut w = Describer::default();
    header(&mut w, &s.metadata);
    w.line(0, "");
    w.field(0, "Type", s.secret_type());
    w.line(0, "");
    w.line(0, "Data");
    w.line(0, "====");
    for (key, value) in &s.data {
        w.field(0, key, format!("{} bytes", value.0.len()));
    }
    w.finish()
}

/// Name, labels, the secrets it names (Coracle issues no tokens), events.
pub fn service_account(sa: &ServiceAccount, events: &[Event], now: SystemTime) -> String {
    let mut w = Describer::default();
    header(&mut w, &sa.metadata);
    let names = |names: Vec<&str>| if names.is_empty() { "<none>".to_string() } else { names.join(", ") };
    w.field(0, "Image pull secrets", names(sa.image_pull_secrets.iter().map(|r| r.name.as_str()).collect()));
    w.field(0, "Mountable secrets", names(sa.secrets.iter().map(|r| r.name.as_str()).collect()));
    w.field(0, "Tokens", "<none>");
    write_events(&mut w, events, now);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::base64::Base64Bytes;

    #[test]
    fn secrets_show_sizes_never_values() {
        let mut s = Secret::default();
        s.metadata.name = "db".into();
        s.metadata.namespace = "default".into();
        s.data.insert("password".into(), Base64Bytes(b"s3cr3t!!".to_vec()));
        s.data.insert("username".into(), Base64Bytes(b"admin".to_vec()));
        let text = secret(&s);
        assert_eq!(
            text,
            "Name:         db\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\n\n\
             Type:  Opaque\n\nData\n====\npassword:  8 bytes\nusername:  5 bytes\n"
        );
        assert!(!text.contains("s3cr3t") && !text.contains("admin"));
    }

    #[test]
    fn config_maps_show_values_and_binary_sizes() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = "game".into();
        cm.metadata.namespace = "default".into();
        cm.data.insert("lives".into(), "3".into());
        cm.binary_data.insert("blob".into(), Base64Bytes(vec![0; 4]));
        assert_eq!(
            config_map(&cm, &[], SystemTime::now()),
            "Name:         game\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\n\n\
             Data\n====\nlives:\n----\n3\n\n\nBinaryData\n====\nblob: 4 bytes\n\nEvents:  <none>\n"
        );
    }
}
