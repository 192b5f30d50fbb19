//! Kubernetes' `$(VAR)` expansion in env values, command and args: `$(NAME)` becomes the
//! variable's value, `$$` a literal `$`, and a reference to an unknown variable (or an
//! unclosed `$(`) stays as written, exactly as kubelet's `expansion.Expand` does.

/// Expands `$(NAME)` references in `input` through `lookup`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match lookup(name) {
                            Some(value) => out.push_str(&value),
                            None => out.push_str(&format!("$({name})")),
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` and the next character (whole, if it is multi-byte) stay literal.
                    let next = rest.chars().next().map_or(1, char::len_utf8);
                    out.push('$');
                    out.push_str(&rest[..next]);
                    next
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

/// Expands against `(name, value)` pairs; a later pair of the same name wins.
pub fn expand_with(input: &str, vars: &[(String, String)]) -> String {
    expand(input, |name| vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        [("VAR_A", "A"), ("VAR_B", "B"), ("EMPTY", ""), ("VAR_A", "A2")]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_expand_and_the_latest_definition_wins() {
        let v = vars();
        assert_eq!(expand_with("$(VAR_A)", &v), "A2");
        assert_eq!(expand_with("x-$(VAR_B)-$(EMPTY)-y", &v), "x-B--y");
        assert_eq!(expand_with("$(VAR_B)$(VAR_B)", &v), "BB");
        assert_eq!(expand_with("no refs", &v), "no refs");
        assert_eq!(expand_with("", &v), "");
    }

    /// Cases from kubelet's expansion tests.
    #[test]
    fn escapes_unknown_refs_and_malformed_input_stay_literal() {
        let v = vars();
        assert_eq!(expand_with("$$(VAR_A)", &v), "$(VAR_A)");
        assert_eq!(expand_with("$$$(VAR_A)", &v), "$A2");
        assert_eq!(expand_with("$$$$(VAR_A)", &v), "$$(VAR_A)");
        assert_eq!(expand_with("$(UNKNOWN)", &v), "$(UNKNOWN)");
        assert_eq!(expand_with("$(VAR_A", &v), "$(VAR_A");
        assert_eq!(expand_with("$VAR_A", &v), "$VAR_A");
        assert_eq!(expand_with("x$", &v), "x$");
        assert_eq!(expand_with("$()", &v), "$()");
        assert_eq!(expand_with("$é$(VAR_B)", &v), "$éB");
    }
}
