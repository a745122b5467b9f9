//! The ask-* bits: each puts a Question on every network, whose answer (a Config) tunes a bit.

use serde_json::json;

use crate::definition::{BitDefinition, BitInput, BitResult, FnBit};
use octo_model::Ooi;

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![
        FnBit::new(BitDefinition::new("ask-disallowed-domains", "Network").min_level(0), |i| {
            ask(i, DISALLOWED_DOMAINS)
        }),
        FnBit::new(BitDefinition::new("ask-port-specification", "Network").min_level(0), |i| {
            ask(i, PORT_SPECIFICATION)
        }),
        FnBit::new(BitDefinition::new("ask_url_params_to_ignore", "Network").min_level(0), |i| {
            ask(i, URL_PARAMS_TO_IGNORE)
        }),
    ]
}

/// A JSON Schema for the answer; its `$id` names the bit the answer configures.
const DISALLOWED_DOMAINS: &str = r#"{
  "$schema": "https://json-schema.org/draft/2019-09/schema",
  "$id": "/bit/disallowed-csp-hostnames",
  "type": "object",
  "default": {},
  "required": [],
  "properties": {
    "disallowed_hostnames": {
      "description": "Host names that must not appear in a Content-Security-Policy, comma separated",
      "type": "string",
      "pattern": "^(\\s*(,*)[^,]+,?\\s*)*$",
      "default": "githubpages.com,github.io,jsdelivr.com,cdn.skypack.dev,unpkg.com"
    },
    "disallow_url_shorteners": {
      "description": "Whether link shorteners count as disallowed host names",
      "type": "boolean",
      "default": true
    }
  }
}"#;

const PORT_SPECIFICATION: &str = r#"{
  "$schema": "https://json-schema.org/draft/2019-09/schema",
  "$id": "/bit/port-classification-ip",
  "type": "object",
  "default": {},
  "required": [],
  "properties": {
    "common_udp_ports": { "description": "UDP ports that may be open, comma separated", "type": "string", "pattern": "^(\\s*(,*)[0-9]+,?\\s*)*$", "default": "53" },
    "common_tcp_ports": { "description": "TCP ports that may be open, comma separated", "type": "string", "pattern": "^(\\s*(,*)[0-9]+,?\\s*)*$", "default": "25,53,80,110,143,443,465,587,993,995" },
    "sa_tcp_ports": { "description": "System administration TCP ports, comma separated", "type": "string", "pattern": "^(\\s*(,*)[0-9]+,?\\s*)*$", "default": "21,22,23,5900" },
    "db_tcp_ports": { "description": "Database TCP ports, comma separated", "type": "string", "pattern": "^(\\s*(,*)[0-9]+,?\\s*)*$", "default": "1433,1434,3050,3306,5432" },
    "microsoft_rdp_ports": { "description": "Remote desktop ports, comma separated", "type": "string", "pattern": "^(\\s*(,*)[0-9]+,?\\s*)*$", "default": "3389" },
    "aggregate_findings": { "description": "One finding per address instead of one per port: true or false", "type": "string", "pattern": "^(true|false)$", "default": "false" }
  }
}"#;

const URL_PARAMS_TO_IGNORE: &str = r#"{
  "$schema": "https://json-schema.org/draft/2019-09/schema",
  "$id": "/bit/oois-in-headers",
  "type": "object",
  "default": {},
  "required": ["ignored_url_parameters"],
  "properties": {
    "ignored_url_parameters": {
      "description": "URL query parameters to drop when following Location headers, comma separated",
      "type": "string",
      "pattern": "^(\\s*(,*)[^,]+,?\\s*)*$",
      "default": "session_id, phpsessid, jsessionid, cifd, cftoken, asp.net_sessionid"
    }
  }
}"#;

fn ask(i: &BitInput<'_>, schema: &str) -> BitResult<Vec<Ooi>> {
    let parsed: serde_json::Value = serde_json::from_str(schema)
        .map_err(|e| crate::definition::BitError::Invalid(format!("built-in question schema: {e}")))?;
    let id = parsed.get("$id").and_then(|v| v.as_str()).unwrap_or_default();
    Ok(vec![
        i.make("Question", json!({ "ooi": i.source.primary_key().as_str(), "schema_id": id, "json_schema": schema }))?
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_json() {
        for s in [DISALLOWED_DOMAINS, PORT_SPECIFICATION, URL_PARAMS_TO_IGNORE] {
            let v: serde_json::Value = serde_json::from_str(s).expect("valid JSON");
            assert!(v["$id"].as_str().is_some_and(|id| id.starts_with("/bit/")));
        }
    }
}
