//! The `pod-template-hash`: FNV-32a over the template's JSON (plus the collision count),
//! printed with Kubernetes' SafeEncodeString alphabet. Stable across restarts because the
//! JSON is (struct fields in declaration order, maps sorted); equality with Kubernetes'
//! own hash (which walks Go values) is not a goal.

use coracle_config::core::PodTemplateSpec;

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;
/// `rand.SafeEncodeString`'s alphabet: no vowels, no look-alikes.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a(mut hash: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The hash naming the ReplicaSet for `template`; a collision count moves it elsewhere.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).expect("pod templates serialize");
    let mut hash = fnv1a(FNV_OFFSET, &json);
    if let Some(n) = collision_count {
        hash = fnv1a(hash, &(n as u32).to_le_bytes());
    }
    hash.to_string().bytes().map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::template;

    #[test]
    fn hash_is_stable_safe_and_moved_by_collisions() {
        let t = template("web", "nginx:1.25");
        let h = pod_template_hash(&t, None);
        assert_eq!(h, pod_template_hash(&t.clone(), None));
        assert!(h.bytes().all(|b| ALPHABET.contains(&b)), "{h}");
        assert_ne!(h, pod_template_hash(&template("web", "nginx:1.26"), None));
        assert_ne!(h, pod_template_hash(&t, Some(1)));
        // FNV-32a of the empty input is the offset basis, 2166136261.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 2_166_136_261);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xe40c_292c);
    }
}
