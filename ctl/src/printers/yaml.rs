//! `-o yaml` as kubectl writes it. kubectl turns JSON into YAML with go-yaml v2, whose output
//! differs from other emitters in ways users see: keys in Go's "natural" order, strings that
//! would read back as another type double-quoted (`"3"`, `""`, `"2024-05-01T12:00:00Z"`),
//! indicator-led strings single-quoted, multi-line strings as `|` blocks, sequences flush
//! with their key, and long plain or single-quoted strings folded past column 80.

use serde_json::{Map, Value};
use std::cmp::Ordering;

/// go-yaml's line width.
const BEST_WIDTH: usize = 80;

/// The value as YAML text ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut e = Emitter::default();
    match value {
        Value::Object(m) if !m.is_empty() => e.map(m, 0, false),
        Value::Array(a) if !a.is_empty() => e.seq(a, 0, false),
        scalar => {
            e.value_scalar(scalar, 0);
            e.newline();
        }
    }
    e.out
}

#[derive(Default)]
struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn put(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.chars().count();
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn indent(&mut self, n: usize) {
        for _ in 0..n {
            self.out.push(' ');
        }
        self.column += n;
    }

    /// A block mapping at `indent`; `inline` when the first key follows a `- ` already written.
    fn map(&mut self, m: &Map<String, Value>, indent: usize, inline: bool) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| go_key_order(a, b));
        for (i, k) in keys.into_iter().enumerate() {
            if i > 0 || !inline {
                self.indent(indent);
            }
            self.scalar_text(k, indent, false);
            self.put(":");
            self.entry_value(&m[k], indent, true);
        }
    }

    /// A block sequence at `indent`.
    fn seq(&mut self, items: &[Value], indent: usize, inline: bool) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline {
                self.indent(indent);
            }
            self.put("-");
            self.entry_value(item, indent, false);
        }
    }

    /// What follows `key:` or `-`: a nested block, an empty flow collection, or a scalar.
    fn entry_value(&mut self, v: &Value, indent: usize, in_map: bool) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                if in_map {
                    self.newline();
                    self.map(m, indent + 2, false);
                } else {
                    self.put(" ");
                    self.map(m, indent + 2, true);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                if in_map {
                    // go-yaml writes a mapping's sequence flush with the key.
                    self.newline();
                    self.seq(a, indent, false);
                } else {
                    self.put(" ");
                    self.seq(a, indent + 2, true);
                }
            }
            Value::Object(_) => {
                self.put(" {}");
                self.newline();
            }
            Value::Array(_) => {
                self.put(" []");
                self.newline();
            }
            scalar => {
                self.put(" ");
                self.value_scalar(scalar, indent + 2);
                self.newline();
            }
        }
    }

    fn value_scalar(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null => self.put("null"),
            Value::Bool(b) => self.put(if *b { "true" } else { "false" }),
            Value::Number(n) => self.put(&n.to_string()),
            Value::String(s) => self.scalar_text(s, indent, true),
            Value::Object(_) | Value::Array(_) => unreachable!("collections are written as blocks"),
        }
    }

    /// A string in the style go-yaml picks; `allow_breaks` is false for keys.
    fn scalar_text(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let a = analyze(s);
        if !resolves_as_string(s) {
            self.double_quoted(s);
        } else if a.multiline && a.block_allowed && allow_breaks {
            self.literal(s, indent);
        } else if a.plain_allowed {
            self.folded_text(s, indent, allow_breaks, false);
        } else if a.single_allowed {
            self.put("'");
            self.folded_text(&s.replace('\'', "''"), indent, allow_breaks, true);
            self.put("'");
        } else {
            self.double_quoted(s);
        }
    }

    /// Plain or single-quoted text, breaking at a single space once past the line width.
    fn folded_text(&mut self, s: &str, indent: usize, allow_breaks: bool, quoted: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                let inner = !quoted || (i != 0 && i + 1 != chars.len());
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space && inner {
                    self.newline();
                    self.indent(indent);
                } else {
                    self.put(" ");
                }
                spaces = true;
            } else {
                let mut buf = [0u8; 4];
                self.put(c.encode_utf8(&mut buf));
                spaces = false;
            }
        }
    }

    fn double_quoted(&mut self, s: &str) {
        let mut q = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                '\r' => q.push_str("\\r"),
                '\0' => q.push_str("\\0"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => q.push_str(&format!("\\x{:02X}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        self.put(&q);
    }

    /// `|` block: `|-` without a final newline, `|+` with several; `2` when it opens with a space.
    fn literal(&mut self, s: &str, indent: usize) {
        let mut header = String::from("|");
        if s.starts_with(' ') || s.starts_with('\n') {
            header.push('2');
        }
        if !s.ends_with('\n') {
            header.push('-');
        } else if s.ends_with("\n\n") || s == "\n" {
            header.push('+');
        }
        self.put(&header);
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            self.newline();
            if !line.is_empty() {
                self.indent(indent);
                self.put(line);
            }
        }
        // The caller writes the newline that ends the last line.
    }
}

/// What libyaml's scalar analysis allows for a string (block context).
struct Analysis {
    multiline: bool,
    plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    let mut a = Analysis { multiline: false, plain_allowed: true, single_allowed: true, block_allowed: true };
    if chars.is_empty() {
        a.plain_allowed = false;
        return a;
    }
    if s.starts_with("---") || s.starts_with("...") {
        a.plain_allowed = false;
    }
    let blank = |c: Option<&char>| matches!(c, None | Some(' ' | '\t' | '\n' | '\r'));
    let (mut indicators, mut special) = (false, false);
    let (mut space_break, mut break_space, mut prev_space, mut prev_break) = (false, false, false, false);
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_blank = blank(chars.get(i + 1));
        let preceded_by_blank = i == 0 || blank(chars.get(i - 1));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    indicators = true
                }
                '?' | ':' | '-' if followed_by_blank => indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_blank => indicators = true,
                '#' if preceded_by_blank => indicators = true,
                _ => {}
            }
        }
        let printable = c == '\n' || (' '..='~').contains(&c) || (c as u32 >= 0xA0 && c != '\u{FEFF}');
        if !printable {
            special = true;
        }
        if c == '\n' {
            a.multiline = true;
            if prev_space {
                space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else if c == ' ' {
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
    }
    let leading_space = chars[0] == ' ';
    let trailing_space = *chars.last().expect("non-empty") == ' ';
    let leading_break = chars[0] == '\n';
    let trailing_break = *chars.last().expect("non-empty") == '\n';
    if leading_space || leading_break || trailing_space || trailing_break || a.multiline || indicators {
        a.plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.plain_allowed = false;
        a.single_allowed = false;
    }
    if space_break || special {
        a.plain_allowed = false;
        a.single_allowed = false;
        a.block_allowed = false;
    }
    a
}

/// False when go-yaml's resolver would read the plain text back as null, bool, number or
/// timestamp, so it must be quoted to stay a string.
fn resolves_as_string(s: &str) -> bool {
    const NON_STRINGS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True",
        "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".nan", ".NaN", ".NAN", ".inf",
        ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
    ];
    if NON_STRINGS.contains(&s) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return true;
    }
    let plain = s.replace('_', "");
    !(is_go_int(&plain) || is_go_float(&plain) || is_timestamp(s) || is_base60_float(s))
}

/// `strconv.ParseInt(s, 0, 64)` (or ParseUint) would accept it, including `0x`, `0o`, `0b`.
fn is_go_int(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (radix, body) = match digits.get(..2) {
        Some("0x" | "0X") => (16, &digits[2..]),
        Some("0o" | "0O") => (8, &digits[2..]),
        Some("0b" | "0B") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => (10, digits),
    };
    !body.is_empty() && body.chars().all(|c| c.is_digit(radix))
}

/// `strconv.ParseFloat(s, 64)` would accept it (decimal forms, `inf`, `nan`).
fn is_go_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if ["inf", "infinity", "nan"].contains(&body.to_ascii_lowercase().as_str()) {
        return true;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    let digits_ok = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits_ok(whole) && digits_ok(frac) && !(whole.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits_ok(e)
    });
    mantissa_ok && exponent_ok
}

/// go-yaml's timestamp forms: `2006-1-2`, with `T`/`t`/space and a time, optional zone.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let num = |p: Option<&str>, max_len: usize| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= max_len && p.chars().all(|c| c.is_ascii_digit()))
    };
    if !(num(d.next(), 4) && num(d.next(), 2) && num(d.next(), 2) && d.next().is_none()) {
        return false;
    }
    let Some(time) = time else { return true };
    // 15:4:5[.fraction][Z|±hh:mm]
    let (clock, _zone) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut t = hms.split(':');
    num(t.next(), 2) && num(t.next(), 2) && num(t.next(), 2) && t.next().is_none() && num(Some(frac), 9)
}

/// YAML 1.1 sexagesimal floats (`1:20`, `-3:25:45.5`), which go-yaml quotes.
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (head, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut parts = head.split(':');
    let first = parts.next().unwrap_or("");
    if first.is_empty()
        || !first.starts_with(|c: char| c.is_ascii_digit())
        || !first.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    // Every later part is `[0-5]?[0-9]`.
    let sexagesimal = |p: &&str| match p.as_bytes() {
        [d] => d.is_ascii_digit(),
        [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
        _ => false,
    };
    !rest.is_empty() && rest.iter().all(sexagesimal) && frac.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// go-yaml's key order: letters by code point, non-letters before letters, digit runs by value.
fn go_key_order(a: &str, b: &str) -> Ordering {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Ordering::Less } else { Ordering::Greater };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.saturating_mul(10).saturating_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.saturating_mul(10).saturating_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_a_deployment_like_kubectl() {
        let v = json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "nginx", "labels": {"app": "nginx"}, "resourceVersion": "3",
                "creationTimestamp": "2024-05-01T12:00:00Z", "annotations": {"last": "{\"a\":1}\n"}},
            "spec": {"replicas": 3, "paused": false, "selector": {}, "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.14.2", "args": ["-g", "daemon off;", "*"], "ports": [{"containerPort": 80}]}]}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}}}
        });
        assert_eq!(
            to_yaml(&v),
            "\
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    last: |
      {\"a\":1}
  creationTimestamp: \"2024-05-01T12:00:00Z\"
  labels:
    app: nginx
  name: nginx
  resourceVersion: \"3\"
spec:
  paused: false
  replicas: 3
  selector: {}
  strategy:
    rollingUpdate:
      maxSurge: 25%
  template:
    spec:
      containers:
      - args:
        - -g
        - daemon off;
        - '*'
        image: nginx:1.14.2
        name: nginx
        ports:
        - containerPort: 80
"
        );
    }

    #[test]
    fn quotes_what_would_read_back_as_another_type() {
        for s in ["", "3", "0x1F", "1e3", "1.5", "true", "no", "On", "~", "null", "2024-05-01", "1:20", "-.inf", "007"]
        {
            assert!(!resolves_as_string(s), "{s:?} must be quoted");
        }
        for s in ["nginx", "1.14.2", "25%", "10.96.0.1", "v1", "-g", "1Gi", "100m", "2024-05", "0xZ"] {
            assert!(resolves_as_string(s), "{s:?} is a plain string");
        }
        assert_eq!(
            to_yaml(&json!({"a": "", "b": "it's: x", "c": " lead", "d": "tab\there"})),
            "a: \"\"\nb: 'it''s: x'\nc: ' lead'\nd: \"tab\\there\"\n"
        );
        assert_eq!(to_yaml(&json!({"m": "no newline\nat end"})), "m: |-\n  no newline\n  at end\n");
        assert_eq!(to_yaml(&json!([[1, 2], {"a": []}])), "- - 1\n  - 2\n- a: []\n");
    }

    #[test]
    fn long_strings_fold_past_column_eighty() {
        let msg = "Back-off pulling image \"registry.example.com/team/app:1.2.3\": ErrImagePull: rpc error: code = Unknown desc = not found";
        let out = to_yaml(&json!({"status": {"message": msg}}));
        assert_eq!(
            out,
            "status:\n  message: 'Back-off pulling image \"registry.example.com/team/app:1.2.3\": ErrImagePull:\n    rpc error: code = Unknown desc = not found'\n"
        );
    }

    #[test]
    fn keys_sort_the_go_way() {
        let mut keys = vec!["b", "a10", "a2", "A", "a_b", "ab", "app.kubernetes.io/name", "app"];
        keys.sort_by(|a, b| go_key_order(a, b));
        assert_eq!(keys, ["A", "a_b", "a2", "a10", "ab", "app", "app.kubernetes.io/name", "b"]);
    }
}
