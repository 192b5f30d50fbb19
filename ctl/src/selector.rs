//! Label selectors as `-l` takes them (`app=web,tier!=db,env in (a,b),!legacy`): the shared
//! parser, so a bad selector is refused before it reaches the server and lists are matched
//! locally as well; a refusal here is a ctl error naming the selector.

use crate::error::CtlError;
use coracle_config::label_selector::ParseError;
pub use coracle_config::label_selector::Selector;

impl From<ParseError> for CtlError {
    fn from(e: ParseError) -> CtlError {
        CtlError::client(format!("invalid selector {:?}: {}", e.selector, e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Selector, CtlError> {
        Ok(Selector::parse(text)?)
    }

    #[test]
    fn refusals_are_client_errors_naming_the_selector() {
        for bad in ["app=we b", "env in (a", "env within (a)", "=x", "-x=1"] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("error: "), "{err}");
        }
        let err = parse("app=web,env in (a").unwrap_err().to_string();
        assert_eq!(
            err,
            "error: invalid selector \"app=web,env in (a\": unable to parse requirement: found '', expected: ',' or ')'"
        );
    }
}
