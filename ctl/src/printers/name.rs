//! `-o name`: `deployment.apps/nginx`, `pod/web`.

use coracle_config::ResourceInfo;

/// `kind.group/name` as kubectl's name printer writes it (no group for the core group).
pub fn resource_name(info: &ResourceInfo, name: &str) -> String {
    format!("{}/{name}", kind_prefix(info))
}

/// `deployment.apps`, `pod`: the lower-cased kind qualified by its group.
pub fn kind_prefix(info: &ResourceInfo) -> String {
    let kind = info.kind.to_ascii_lowercase();
    if info.group.is_empty() {
        kind
    } else {
        format!("{kind}.{}", info.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_group() {
        let deploy = ResourceInfo::lookup("deploy").unwrap();
        assert_eq!(resource_name(deploy, "nginx"), "deployment.apps/nginx");
        assert_eq!(resource_name(ResourceInfo::lookup("po").unwrap(), "web"), "pod/web");
        assert_eq!(resource_name(ResourceInfo::lookup("hpa").unwrap(), "a"), "horizontalpodautoscaler.autoscaling/a");
    }
}
