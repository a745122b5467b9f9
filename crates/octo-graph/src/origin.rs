//! Origins: why an object exists. Modelled, and identified, exactly as Octopoes does.

use octo_model::Reference;
use serde::{Deserialize, Serialize};

/// The kind of claim an origin makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginType {
    /// A user says so; the source is the object itself.
    Declaration,
    /// A parser saw it while looking at the source.
    Observation,
    /// A bit derived it from the source.
    Inference,
    /// Adds fields to an object but never keeps it alive.
    Affirmation,
}

impl OriginType {
    /// The lower-case name used in ids and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OriginType::Declaration => "declaration",
            OriginType::Observation => "observation",
            OriginType::Inference => "inference",
            OriginType::Affirmation => "affirmation",
        }
    }
}

/// One origin: who or what, looking at `source`, produced `result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The kind of claim.
    pub origin_type: OriginType,
    /// The user action, normalizer or bit (`manual`, `kat_nmap_normalize`, `port-common`).
    pub method: String,
    /// The object looked at.
    pub source: Reference,
    /// The boefje or other tool behind the method, when any.
    #[serde(default)]
    pub source_method: Option<String>,
    /// The objects this origin holds.
    #[serde(default)]
    pub result: Vec<Reference>,
    /// The task that ran it; not part of the id, so a re-run replaces the earlier origin.
    #[serde(default)]
    pub task_id: Option<String>,
}

impl Origin {
    /// `Origin|type|method|source_method|source`, without `source_method` when absent.
    pub fn id(&self) -> String {
        match &self.source_method {
            Some(sm) => format!("Origin|{}|{}|{}|{}", self.origin_type.as_str(), self.method, sm, self.source),
            None => format!("Origin|{}|{}|{}", self.origin_type.as_str(), self.method, self.source),
        }
    }

    /// Whether this origin keeps `object` alive: affirmations never do, nor an inference about
    /// its own source (a bit cannot keep alive what it looked at).
    pub fn supports(&self, object: &Reference) -> bool {
        self.result.contains(object)
            && match self.origin_type {
                OriginType::Affirmation => false,
                OriginType::Inference => &self.source != object,
                OriginType::Declaration | OriginType::Observation => true,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_octopoes() {
        let mut o = Origin {
            origin_type: OriginType::Observation,
            method: "kat_nmap_normalize".into(),
            source: Reference::from_trusted("IPAddressV4|internet|192.0.2.1"),
            source_method: Some("nmap".into()),
            result: vec![],
            task_id: Some("t1".into()),
        };
        assert_eq!(o.id(), "Origin|observation|kat_nmap_normalize|nmap|IPAddressV4|internet|192.0.2.1");
        o.source_method = None;
        o.task_id = Some("another task".into());
        assert_eq!(o.id(), "Origin|observation|kat_nmap_normalize|IPAddressV4|internet|192.0.2.1");
    }

    #[test]
    fn self_inference_and_affirmation_do_not_support() {
        let x = Reference::from_trusted("Network|internet");
        let y = Reference::from_trusted("Network|lan");
        let o = |t, source: &Reference| Origin {
            origin_type: t,
            method: "m".into(),
            source: source.clone(),
            source_method: None,
            result: vec![x.clone()],
            task_id: None,
        };
        assert!(o(OriginType::Declaration, &x).supports(&x));
        assert!(o(OriginType::Observation, &y).supports(&x));
        assert!(o(OriginType::Inference, &y).supports(&x));
        assert!(!o(OriginType::Inference, &x).supports(&x));
        assert!(!o(OriginType::Affirmation, &x).supports(&x));
        assert!(!o(OriginType::Observation, &y).supports(&y));
    }
}
