//! default-findingtype-risk: a finding type nobody has rated is "pending" with score 0, so
//! reports can sort it.

use crate::definition::{BitDefinition, BitInput, BitResult, FnBit};
use octo_model::Ooi;

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![FnBit::new(BitDefinition::new("default-findingtype-risk", "FindingType").min_level(0), default_risk)]
}

fn default_risk(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let unset = |f: &str| i.source.get(f).is_none_or(|v| v.to_json().is_null());
    if !unset("risk_severity") && !unset("risk_score") {
        return Ok(vec![]);
    }
    let mut doc = i.source.to_json();
    if let serde_json::Value::Object(m) = &mut doc {
        m.shift_remove("scan_profile");
        m.shift_remove("primary_key");
        m.shift_remove("user_id");
        let object_type = m.shift_remove("object_type");
        if unset("risk_severity") {
            m.insert("risk_severity".into(), "pending".into());
        }
        if unset("risk_score") {
            m.insert("risk_score".into(), 0.0.into());
        }
        let t = object_type.as_ref().and_then(|t| t.as_str()).unwrap_or_default().to_owned();
        return Ok(vec![i.make(&t, doc)?]);
    }
    Ok(vec![])
}
