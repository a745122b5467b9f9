//! Request inputs as Octopoes takes them: query parameters that may repeat (`types=A&types=B`),
//! times written the way Python prints them, and JSON bodies whose faults answer 422.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use octo_model::{Catalog, Reference};
use octo_store::{AsOf, Timestamp};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// The query string as name–value pairs, in order, repeats kept.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Params(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

impl Params {
    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A parameter that must be there (422 otherwise, as FastAPI answers).
    pub fn required(&self, name: &str) -> ApiResult<&str> {
        self.get(name).ok_or_else(|| ApiError::unprocessable(format!("query parameter '{name}' is required")))
    }

    /// A non-negative integer, or `default` when absent.
    pub fn usize_or(&self, name: &str, default: usize) -> ApiResult<usize> {
        Ok(self.opt_usize(name)?.unwrap_or(default))
    }

    /// A non-negative integer, if given.
    pub fn opt_usize(&self, name: &str) -> ApiResult<Option<usize>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::unprocessable(format!("query parameter '{name}' must be a non-negative integer, not '{v}'"))
            }),
        }
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, as pydantic reads them), if given.
    pub fn opt_bool(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" | "t" | "y" => Ok(Some(true)),
                "false" | "0" | "no" | "off" | "f" | "n" => Ok(Some(false)),
                _ => Err(ApiError::unprocessable(format!("query parameter '{name}' must be a boolean, not '{v}'"))),
            },
        }
    }

    /// A boolean, or `default` when absent.
    pub fn bool_or(&self, name: &str, default: bool) -> ApiResult<bool> {
        Ok(self.opt_bool(name)?.unwrap_or(default))
    }

    /// `valid_time` (now when absent).
    pub fn valid_time(&self) -> ApiResult<Timestamp> {
        match self.get("valid_time") {
            None => Ok(Timestamp::now()),
            Some(v) => parse_time(v).map_err(|m| ApiError::unprocessable(format!("query parameter 'valid_time': {m}"))),
        }
    }

    /// The coordinate a read is made at: `valid_time`, as known now.
    pub fn as_of(&self) -> ApiResult<AsOf> {
        Ok(AsOf::valid(self.valid_time()?))
    }

    /// A primary key, parsed and canonicalised (400 when it does not parse).
    pub fn reference(&self, name: &str, catalog: &Catalog) -> ApiResult<Reference> {
        parse_reference(self.required(name)?, catalog)
    }

    /// Scan levels 0–4 (every value of a repeated parameter; all levels when absent).
    pub fn scan_levels(&self, name: &str) -> ApiResult<BTreeSet<u8>> {
        self.all(name)
            .into_iter()
            .map(|v| match v.trim().parse::<u8>() {
                Ok(l) if l <= 4 => Ok(l),
                _ => Err(ApiError::unprocessable(format!("query parameter '{name}': '{v}' is not a scan level 0–4"))),
            })
            .collect()
    }
}

/// Parses a primary key against the catalogue; a bad one is the caller's fault (400).
pub fn parse_reference(key: &str, catalog: &Catalog) -> ApiResult<Reference> {
    Ok(Reference::parse(key, catalog)?.reference().clone())
}

/// Parses a time as Octopoes' clients send it: RFC 3339, or Python's `str(datetime)`
/// (`2026-11-23 10:00:00+00:00`), including the form a query string makes of it when the `+`
/// of the offset was not escaped and arrives as a space. A time without a zone is refused, as
/// Octopoes refuses it (it would be read in an unknown zone).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    if let Ok(ts) = t.parse() {
        return Ok(ts);
    }
    let mut s = t.replacen(' ', "T", 1);
    // `…:00 00:00` (an unescaped `+`): put the sign back.
    if let Some(i) = s.rfind(' ') {
        if s[i + 1..].len() == 5 && s[i + 1..].chars().nth(2) == Some(':') {
            s.replace_range(i..i + 1, "+");
        }
    }
    s.parse().map_err(|_| format!("'{text}' is not a date-time with a time zone (e.g. 2026-11-23T10:00:00+00:00)"))
}

/// A JSON body; a body that is not JSON or not of the expected shape answers 422 with the
/// parser's message. The content type is not checked (Octopoes' import takes raw bodies).
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e.status().as_u16() {
            413 => ApiError { status: e.status(), message: "request body too large".into() },
            _ => ApiError::bad_request(format!("cannot read the request body: {e}")),
        })?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| ApiError::unprocessable(format!("request body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_python_and_query_strings_write_them() {
        let want: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        for t in [
            "2026-11-23T10:00:00Z",
            "2026-11-23 10:00:00+00:00",
            "2026-11-23 10:00:00 00:00",
            "2026-11-23T11:00:00+01:00",
            "2026-11-23 11:00:00.000000+01:00",
        ] {
            assert_eq!(parse_time(t), Ok(want), "{t}");
        }
        assert!(parse_time("2026-11-23 10:00:00").is_err(), "no zone");
        assert!(parse_time("yesterday").is_err());
    }
}
