//! The run defaults an image carries, and Kubernetes' rule for combining them with a pod's
//! `command` and `args`.

use super::error::ImageError;
use super::spec::ConfigFile;

/// What the image says to run and how (from its config's `config` section).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`: replaced by a container's `command`.
    pub entrypoint: Vec<String>,
    /// `Cmd`: replaced by a container's `args`.
    pub cmd: Vec<String>,
    /// `Env` as `NAME=value`; the container's env is layered on top.
    pub env: Vec<String>,
    /// `WorkingDir`, when the image sets one.
    pub working_dir: Option<String>,
    /// `User` (`uid`, `uid:gid`, `name` or `name:group`), when the image sets one.
    pub user: Option<String>,
    /// `ExposedPorts` keys, e.g. `80/tcp`.
    pub exposed_ports: Vec<String>,
}

impl ImageConfig {
    /// Extracts the run defaults from a parsed config blob; empty strings count as unset.
    pub(crate) fn from_config_file(file: &ConfigFile) -> ImageConfig {
        let Some(c) = &file.config else { return ImageConfig::default() };
        ImageConfig {
            entrypoint: c.entrypoint.clone().unwrap_or_default(),
            cmd: c.cmd.clone().unwrap_or_default(),
            env: c.env.clone().unwrap_or_default(),
            working_dir: c.working_dir.clone().filter(|s| !s.is_empty()),
            user: c.user.clone().filter(|s| !s.is_empty()),
            exposed_ports: c.exposed_ports.as_ref().map(|m| m.keys().cloned().collect()).unwrap_or_default(),
        }
    }
}

/// The argv a container runs: `command` replaces ENTRYPOINT, `args` replaces CMD; only
/// `args` runs ENTRYPOINT + args; only `command` runs it alone (CMD is dropped); neither
/// runs ENTRYPOINT + CMD. An empty result is an error, as in Kubernetes.
pub fn effective_command(
    image: &ImageConfig,
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> Result<Vec<String>, ImageError> {
    // Kubernetes treats an empty list like an absent one.
    let command = command.filter(|c| !c.is_empty());
    let args = args.filter(|a| !a.is_empty());
    let argv: Vec<String> = match (command, args) {
        (Some(c), Some(a)) => c.iter().chain(a).cloned().collect(),
        (Some(c), None) => c.to_vec(),
        (None, Some(a)) => image.entrypoint.iter().chain(a).cloned().collect(),
        (None, None) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
    };
    if argv.is_empty() {
        return Err(ImageError::NoCommand);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_and_args_combine_with_the_image_as_kubernetes_does() {
        let image = ImageConfig { entrypoint: v(&["/ep"]), cmd: v(&["cmd-arg"]), ..Default::default() };
        let bare = ImageConfig { cmd: v(&["sh"]), ..Default::default() };
        let empty = ImageConfig::default();
        let (c, a) = (v(&["/bin/cmd"]), v(&["x", "y"]));
        let none: Option<&[String]> = None;
        // (image, command, args, expected argv)
        type Case<'a> = (&'a ImageConfig, Option<&'a [String]>, Option<&'a [String]>, Vec<String>);
        let table: Vec<Case> = vec![
            (&image, none, none, v(&["/ep", "cmd-arg"])),
            (&image, Some(&c), none, v(&["/bin/cmd"])),
            (&image, none, Some(&a), v(&["/ep", "x", "y"])),
            (&image, Some(&c), Some(&a), v(&["/bin/cmd", "x", "y"])),
            (&image, Some(&[]), none, v(&["/ep", "cmd-arg"])),
            (&bare, none, none, v(&["sh"])),
            (&bare, none, Some(&a), v(&["x", "y"])),
            (&empty, Some(&c), none, v(&["/bin/cmd"])),
        ];
        for (img, cmd, args, want) in table {
            assert_eq!(effective_command(img, cmd, args).unwrap(), want, "{cmd:?} {args:?} on {img:?}");
        }
        let err = effective_command(&empty, None, None).unwrap_err();
        assert_eq!(err.to_string(), "no command specified");
        assert!(effective_command(&empty, Some(&[]), Some(&[])).is_err());
    }

    #[test]
    fn config_blob_fields_map_and_empty_strings_are_unset() {
        let file: ConfigFile = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":null,"Cmd":["sh"],
               "Env":["PATH=/bin"],"WorkingDir":"","User":"65534","ExposedPorts":{"80/tcp":{}}},
               "rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        let c = ImageConfig::from_config_file(&file);
        assert_eq!(c.entrypoint, Vec::<String>::new());
        assert_eq!(c.cmd, v(&["sh"]));
        assert_eq!(c.env, v(&["PATH=/bin"]));
        assert_eq!(c.working_dir, None);
        assert_eq!(c.user.as_deref(), Some("65534"));
        assert_eq!(c.exposed_ports, v(&["80/tcp"]));
    }
}
