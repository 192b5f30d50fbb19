//! Label selectors in Kubernetes' string form (`app=web,tier!=db,env in (a,b),!canary,gpu>1`):
//! parsed with the grammar and error messages of apimachinery's `labels.Parse`, and matched
//! against label maps. The ctl checks `-l` with it; the API parses `?labelSelector=` with it;
//! structured selectors (`meta::LabelSelector`) match and print through its requirements.

use crate::validation::names::{label_value, qualified_name};
use crate::validation::{FieldError, Path};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A parsed label selector: every requirement must hold, so an empty one selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// The requirements in the order they were written.
    pub requirements: Vec<Requirement>,
}

/// One term of a selector: a key, the relation checked, and the values it compares with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Sorted and distinct when parsed, as Kubernetes keeps them (a structured selector's
    /// expressions keep theirs as written: see `meta::LabelSelector::requirements`); one
    /// value for `=`, `!=`, `>` and `<`, none for `Exists` and `DoesNotExist`.
    pub values: Vec<String>,
}

/// The relation a requirement checks (`=` and `==` are the same relation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// True when a label whose value is `got` (None: the label is missing) satisfies this
    /// relation to `values`. As in Kubernetes, `!=` and `notin` also hold for a missing label,
    /// and `>`/`<` never hold for a value that is not an integer. Borrowed parts, so that
    /// structured selectors match without building a `Requirement` first.
    pub fn holds(self, got: Option<&String>, values: &[String]) -> bool {
        match self {
            Operator::Equals | Operator::In => got.is_some_and(|v| values.contains(v)),
            Operator::NotEquals | Operator::NotIn => got.is_none_or(|v| !values.contains(v)),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let got = got.and_then(|v| v.parse::<i64>().ok());
                let want = values.first().and_then(|v| v.parse::<i64>().ok());
                match (got, want) {
                    (Some(got), Some(want)) if self == Operator::GreaterThan => got > want,
                    (Some(got), Some(want)) => got < want,
                    _ => false,
                }
            }
        }
    }
}

/// A selector that does not parse; `Display` is Kubernetes' message for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The selector as given.
    pub selector: String,
    /// What `labels.Parse` would say, e.g. `unable to parse requirement: found '', expected: ',' or ')'`.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

impl Selector {
    /// Parses `app=web,tier!=db,env in (a,b),!canary`; the empty string selects everything.
    pub fn parse(text: &str) -> Result<Selector, ParseError> {
        let mut parser = Parser { items: scan(text), pos: 0 };
        match parser.selector() {
            Ok(requirements) => Ok(Selector { requirements }),
            Err(message) => Err(ParseError { selector: text.to_string(), message }),
        }
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The canonical `labelSelector=` form, as `labels.Selector.String()` writes each term.
    pub fn to_query(&self) -> String {
        self.requirements.iter().map(Requirement::to_query).collect::<Vec<_>>().join(",")
    }

    /// True when the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl Requirement {
    /// True when `labels` satisfy this term. As in Kubernetes, `!=` and `notin` also hold for
    /// a missing label, and `>`/`<` never hold for a value that is not an integer.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.operator.holds(labels.get(&self.key), &self.values)
    }

    /// This term as `labels.Requirement.String()` writes it.
    pub fn to_query(&self) -> String {
        let values = self.values.join(",");
        match self.operator {
            Operator::Equals => format!("{}={values}", self.key),
            Operator::NotEquals => format!("{}!={values}", self.key),
            Operator::In => format!("{} in ({values})", self.key),
            Operator::NotIn => format!("{} notin ({values})", self.key),
            Operator::Exists => self.key.clone(),
            Operator::DoesNotExist => format!("!{}", self.key),
            Operator::GreaterThan => format!("{}>{values}", self.key),
            Operator::LessThan => format!("{}<{values}", self.key),
        }
    }
}

/// The lexer's tokens (`labels.Token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    End,
    Identifier,
    OpenPar,
    ClosePar,
    Comma,
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Greater,
    Less,
}

/// The token a literal spells, if any.
fn keyword(literal: &str) -> Option<Token> {
    Some(match literal {
        "(" => Token::OpenPar,
        ")" => Token::ClosePar,
        "," => Token::Comma,
        "!" => Token::Not,
        "=" => Token::Equals,
        "==" => Token::DoubleEquals,
        "!=" => Token::NotEquals,
        "in" => Token::In,
        "notin" => Token::NotIn,
        ">" => Token::Greater,
        "<" => Token::Less,
        _ => return None,
    })
}

fn is_symbol(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits a selector into tokens as `labels.Lexer` does; the last one is always `End`.
fn scan(text: &str) -> Vec<(Token, &str)> {
    let bytes = text.as_bytes();
    let mut items = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && is_space(bytes[pos]) {
            pos += 1;
        }
        let start = pos;
        if pos == bytes.len() {
            items.push((Token::End, ""));
            return items;
        }
        if is_symbol(bytes[pos]) {
            // The longest run of symbols that is still one operator: `!=` and `==`, but `=` `!`.
            let mut token = keyword(&text[pos..=pos]).unwrap_or(Token::Identifier);
            pos += 1;
            while let Some(longer) = bytes.get(pos).filter(|b| is_symbol(**b)).and_then(|_| keyword(&text[start..=pos]))
            {
                token = longer;
                pos += 1;
            }
            items.push((token, &text[start..pos]));
        } else {
            while pos < bytes.len() && !is_symbol(bytes[pos]) && !is_space(bytes[pos]) {
                pos += 1;
            }
            let word = &text[start..pos];
            items.push((keyword(word).unwrap_or(Token::Identifier), word));
        }
    }
}

/// `labels.Parser`: a recursive descent over the scanned tokens.
struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// The next token, unconsumed. Where a value may stand, `in` and `notin` are plain words.
    fn peek(&self) -> (Token, &'a str) {
        match self.items[self.pos] {
            (Token::In | Token::NotIn, word) => (Token::Identifier, word),
            item => item,
        }
    }

    /// The next token, consumed, read as `peek` reads it.
    fn next(&mut self) -> (Token, &'a str) {
        let item = self.peek();
        self.advance();
        item
    }

    /// The next token, consumed, with `in` and `notin` read as operators.
    fn next_operator(&mut self) -> (Token, &'a str) {
        let item = self.items[self.pos];
        self.advance();
        item
    }

    fn advance(&mut self) {
        // `End` is never consumed past, so a peek after it sees `End` again.
        if self.pos + 1 < self.items.len() {
            self.pos += 1;
        }
    }

    fn selector(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            match self.peek() {
                (Token::Identifier | Token::Not, _) => {
                    requirements.push(self.requirement().map_err(|e| format!("unable to parse requirement: {e}"))?);
                    match self.next() {
                        (Token::End, _) => return Ok(requirements),
                        (Token::Comma, _) => match self.peek() {
                            (Token::Identifier | Token::Not, _) => {}
                            (_, found) => return Err(format!("found '{found}', expected: identifier after ','")),
                        },
                        (_, found) => return Err(format!("found '{found}', expected: ',' or 'end of string'")),
                    }
                }
                (Token::End, _) => return Ok(requirements),
                (_, found) => return Err(format!("found '{found}', expected: !, identifier, or 'end of string'")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (mut token, mut key) = self.next();
        let negated = token == Token::Not;
        if negated {
            (token, key) = self.next();
        }
        if token != Token::Identifier {
            return Err(format!("found '{key}', expected: identifier"));
        }
        check_key(key)?;
        let unary = |operator| Ok(Requirement { key: key.to_string(), operator, values: Vec::new() });
        if negated {
            return unary(Operator::DoesNotExist);
        }
        if matches!(self.peek().0, Token::End | Token::Comma) {
            return unary(Operator::Exists);
        }
        let operator = match self.next_operator() {
            (Token::Equals | Token::DoubleEquals, _) => Operator::Equals,
            (Token::NotEquals, _) => Operator::NotEquals,
            (Token::In, _) => Operator::In,
            (Token::NotIn, _) => Operator::NotIn,
            (Token::Greater, _) => Operator::GreaterThan,
            (Token::Less, _) => Operator::LessThan,
            (_, found) => return Err(format!("found '{found}', expected: in, notin, =, ==, !=, gt, lt")),
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => self.exact_value()?,
        };
        let values: Vec<String> = values.into_iter().collect();
        check_values(key, operator, &values)?;
        Ok(Requirement { key: key.to_string(), operator, values })
    }

    /// `(a,b,c)`; an empty place is the empty value, so `()` is `{""}` as in Kubernetes.
    fn value_set(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, found) = self.next();
        if token != Token::OpenPar {
            return Err(format!("found '{found}' expected: '('"));
        }
        match self.peek() {
            (Token::Identifier | Token::Comma, found) => {
                let values = self.value_list()?;
                if self.next().0 != Token::ClosePar {
                    return Err(format!("found '{found}', expected: ')'"));
                }
                Ok(values)
            }
            (Token::ClosePar, _) => {
                self.next();
                Ok(BTreeSet::from([String::new()]))
            }
            (_, found) => Err(format!("found '{found}', expected: ',', ')' or identifier")),
        }
    }

    /// The values inside the parentheses, up to (not including) the closing one; follows
    /// `parseIdentifiersList` step by step, so `(a,,)` is refused just as there.
    fn value_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            match self.next() {
                (Token::Identifier, value) => {
                    values.insert(value.to_string());
                    match self.peek() {
                        (Token::Comma, _) => {}
                        (Token::ClosePar, _) => return Ok(values),
                        (_, found) => return Err(format!("found '{found}', expected: ',' or ')'")),
                    }
                }
                (Token::Comma, _) => {
                    // `(,a`, `a,)` and `a,,b` hold the empty value.
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    match self.peek().0 {
                        Token::ClosePar => {
                            values.insert(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.next();
                            values.insert(String::new());
                        }
                        _ => {}
                    }
                }
                (_, found) => return Err(format!("found '{found}', expected: ',', or identifier")),
            }
        }
    }

    /// The one value after `=`, `==`, `!=`, `>` or `<`; nothing there is the empty value.
    fn exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        if matches!(self.peek().0, Token::End | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        match self.next() {
            (Token::Identifier, value) => Ok(BTreeSet::from([value.to_string()])),
            (_, found) => Err(format!("found '{found}', expected: identifier")),
        }
    }
}

/// A key must be a qualified name (`[prefix/]name`).
fn check_key(key: &str) -> Result<(), String> {
    let problems = qualified_name(key);
    if problems.is_empty() {
        return Ok(());
    }
    // `labels.Parse` checks keys under a nil field path, which Go prints as `<nil>`.
    Err(FieldError::invalid(&Path::new("<nil>"), format!("{key:?}"), &problems.join("; ")).to_string())
}

/// Values must be label values, and integers for `>` and `<`; all problems are reported,
/// as `NewRequirement`'s aggregate does.
fn check_values(key: &str, operator: Operator, values: &[String]) -> Result<(), String> {
    let path = Path::new("values");
    let mut problems = Vec::new();
    if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
        for (i, value) in values.iter().enumerate().filter(|(_, v)| v.parse::<i64>().is_err()) {
            let detail = "for 'Gt', 'Lt' operators, the value must be an integer";
            problems.push(FieldError::invalid(&path.index(i), format!("{value:?}"), detail).to_string());
        }
    }
    for (i, value) in values.iter().enumerate() {
        let wrong = label_value(value);
        if !wrong.is_empty() {
            let error = FieldError::invalid(&path.index(i).key(key), format!("{value:?}"), &wrong.join("; "));
            problems.push(error.to_string());
        }
    }
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        _ => Err(format!("[{}]", problems.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn error(text: &str) -> String {
        Selector::parse(text).expect_err(text).to_string()
    }

    #[test]
    fn parses_every_operator() {
        let s = Selector::parse("app=web, tier!=db,env in (prod, staging),zone notin (a),legacy,!canary,x==y,n>1,m<2")
            .unwrap();
        let ops: Vec<Operator> = s.requirements.iter().map(|r| r.operator).collect();
        use Operator::*;
        assert_eq!(ops, [Equals, NotEquals, In, NotIn, Exists, DoesNotExist, Equals, GreaterThan, LessThan]);
        assert_eq!(s.requirements[2].values, ["prod", "staging"]);
        assert_eq!(s.to_query(), "app=web,tier!=db,env in (prod,staging),zone notin (a),legacy,!canary,x=y,n>1,m<2");
    }

    #[test]
    fn set_values_are_sorted_distinct_and_may_be_empty() {
        let values = |text: &str| Selector::parse(text).unwrap().requirements[0].values.clone();
        assert_eq!(values("env in (b,a,b)"), ["a", "b"]);
        assert_eq!(values("env in (a,,b)"), ["", "a", "b"]);
        assert_eq!(values("env in (a,)"), ["", "a"]);
        assert_eq!(values("env in (,a)"), ["", "a"]);
        assert_eq!(values("env in (,)"), [""]);
        // Kubernetes reads `()` as the one empty value, not as an empty set.
        assert_eq!(values("env notin ()"), [""]);
        assert_eq!(values("env in (in,notin)"), ["in", "notin"]);
        assert_eq!(values("env="), [""]);
    }

    #[test]
    fn matches_labels() {
        let s = Selector::parse("app=web,env in (prod,staging),!canary").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("canary", "1")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
        assert!(Selector::parse("tier!=db").unwrap().matches(&labels(&[])));
        assert!(Selector::parse("example.com/team").unwrap().matches(&labels(&[("example.com/team", "x")])));
    }

    #[test]
    fn every_operator_matches_as_in_kubernetes() {
        let q = Selector::parse("app=web,tier==front,env!=prod,zone in (a, b),rack notin (r1),gpu,!canary").unwrap();
        assert_eq!(q.requirements.len(), 7);
        assert!(q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("gpu", "")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "c"), ("gpu", "")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("gpu", ""), ("canary", "1")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("gpu", ""), ("env", "prod")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "b"), ("gpu", ""), ("rack", "r1")])));
    }

    #[test]
    fn negative_requirements_match_absent_labels() {
        assert!(Selector::parse("env!=prod,rack notin (r1)").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn greater_and_less_compare_integers() {
        let s = Selector::parse("gen>2,gen<10").unwrap();
        assert!(s.matches(&labels(&[("gen", "3")])));
        assert!(!s.matches(&labels(&[("gen", "2")])));
        assert!(!s.matches(&labels(&[("gen", "10")])));
        assert!(!s.matches(&labels(&[("gen", "three")])));
        assert!(!s.matches(&labels(&[])));
        assert_eq!(
            error("gen>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in ["app=we b", "env in (a", "env within (a)", "=x", "-x=1", "app in a,b", "a b=c", "app=web,", ",app"]
        {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        assert!(Selector::parse("").unwrap().is_empty());
        assert!(Selector::parse(" \t").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_are_worded_as_kubernetes_words_them() {
        assert_eq!(error("app=web,env in (a"), "unable to parse requirement: found '', expected: ',' or ')'");
        assert_eq!(error("app=we b"), "found 'b', expected: ',' or 'end of string'");
        assert_eq!(error("app in a,b"), "unable to parse requirement: found 'a' expected: '('");
        assert_eq!(
            error("env within (a)"),
            "unable to parse requirement: found 'within', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(error("=x"), "found '=', expected: !, identifier, or 'end of string'");
        assert_eq!(error("app=web,"), "found '', expected: identifier after ','");
        assert_eq!(error("!"), "unable to parse requirement: found '', expected: identifier");
        assert_eq!(error("a=(b)"), "unable to parse requirement: found '(', expected: identifier");
        assert_eq!(error("a in (b=c)"), "unable to parse requirement: found '=', expected: ',' or ')'");
        assert_eq!(error("a in (=)"), "unable to parse requirement: found '=', expected: ',', ')' or identifier");
        assert_eq!(error("a in (b,=)"), "unable to parse requirement: found '=', expected: ',', or identifier");
        assert_eq!(error("a in (b,,)"), "unable to parse requirement: found ')', expected: ',', or identifier");
        assert_eq!(error("!a=b"), "found '=', expected: ',' or 'end of string'");
    }

    #[test]
    fn keys_and_values_are_checked_as_labels_are() {
        assert_eq!(
            error("-x=1"),
            "unable to parse requirement: <nil>: Invalid value: \"-x\": name part must consist of alphanumeric \
             characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  \
             or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            error("app=we$b"),
            "unable to parse requirement: values[0][app]: Invalid value: \"we$b\": a valid label must be an empty \
             string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert!(error("/x").contains("prefix part must be non-empty"));
        assert!(error("example.com/").contains("name part must be non-empty"));
        assert!(error("a/b/c").contains("a qualified name must consist of"));
        assert!(error("Example.com/x").contains("prefix part a lowercase RFC 1123 subdomain"));
        let long = "a".repeat(64);
        assert!(error(&long).contains("name part must be no more than 63 characters"));
        assert!(error(&format!("app={long}")).contains("must be no more than 63 characters"));
        assert!(Selector::parse(&format!("app={}", &long[1..])).is_ok());
        let both = error("app in (-a,b_)");
        assert!(
            both.starts_with("unable to parse requirement: [values[0][app]: ") && both.contains(", values[1][app]: ")
        );
    }
}
