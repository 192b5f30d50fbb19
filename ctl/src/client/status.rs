//! Turning non-2xx answers into `metav1.Status`, and `Warning:` headers into messages.

use super::Response;
use coracle_config::Status;

/// The server's `Status` from an error body, or one synthesised from the HTTP code the
/// way client-go does when the body is something else.
pub fn status_from_response(code: u16, body: &[u8]) -> Status {
    if let Ok(status) = serde_json::from_slice::<Status>(body) {
        if status.kind == "Status" || !status.message.is_empty() {
            return Status { code: if status.code == 0 { code } else { status.code }, ..status };
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    let (reason, message) = match code {
        400 => ("BadRequest", text.clone()),
        401 => ("Unauthorized", "the server has asked for the client to provide credentials".to_string()),
        403 => ("Forbidden", text.clone()),
        404 => ("NotFound", "the server could not find the requested resource".to_string()),
        405 => ("MethodNotAllowed", "the server does not allow this method on the requested resource".to_string()),
        409 => ("Conflict", text.clone()),
        410 => ("Expired", text.clone()),
        415 => ("UnsupportedMediaType", text.clone()),
        422 => ("Invalid", text.clone()),
        429 => {
            ("TooManyRequests", "the server has received too many requests and has asked us to try again later".into())
        }
        503 => ("ServiceUnavailable", "the server is currently unable to handle the request".to_string()),
        _ => ("InternalError", format!("an error on the server ({text:?}) has prevented the request from succeeding")),
    };
    let message = if message.is_empty() { format!("unknown (status {code})") } else { message };
    Status::failure(code, reason, message)
}

/// The texts of RFC 7234 `Warning` headers (`299 - "text"`), as kubectl prints them.
pub fn warnings<B>(response: &Response<B>) -> Vec<String> {
    response.header_values("warning").filter_map(warning_text).collect()
}

fn warning_text(header: &str) -> Option<String> {
    // code SP agent SP "quoted text" [SP "date"]
    let mut parts = header.trim().splitn(3, ' ');
    let _code = parts.next()?;
    let _agent = parts.next()?;
    let rest = parts.next()?.trim_start();
    let quoted = rest.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return Some(text),
            c => text.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_headers_yield_their_text() {
        let r = Response {
            status: 200,
            headers: vec![
                ("Warning".into(), r#"299 - "unknown field \"spec.replica\"""#.into()),
                ("warning".into(), r#"299 coracled "second" "Mon, 01 Jan 2024 00:00:00 GMT""#.into()),
                ("Warning".into(), "malformed".into()),
            ],
            body: (),
        };
        assert_eq!(warnings(&r), vec![r#"unknown field "spec.replica""#.to_string(), "second".to_string()]);
    }

    #[test]
    fn non_status_bodies_get_client_go_messages() {
        let s = status_from_response(404, b"404 page not found");
        assert_eq!(
            (s.reason.as_str(), s.message.as_str()),
            ("NotFound", "the server could not find the requested resource")
        );
        let s =
            status_from_response(409, br#"{"kind":"Status","message":"x exists","reason":"AlreadyExists","code":409}"#);
        assert_eq!(s.reason, "AlreadyExists");
        let s = status_from_response(500, b"boom");
        assert_eq!(s.message, "an error on the server (\"boom\") has prevented the request from succeeding");
    }
}
