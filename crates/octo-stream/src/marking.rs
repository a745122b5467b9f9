//! TLP 2.0 markings: which consumers may see an object. Each object has one (its organisation's
//! default, TLP:CLEAR unless set), each token a clearance; a consumer receives an object only
//! when its clearance reaches the object's marking.

use serde::{Deserialize, Serialize};

/// A Traffic Light Protocol 2.0 level, least restricted first (the order is the clearance
/// order: a token cleared for AMBER sees CLEAR, GREEN and AMBER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum Tlp {
    /// Anyone.
    #[default]
    #[serde(rename = "TLP:CLEAR")]
    Clear,
    /// The community.
    #[serde(rename = "TLP:GREEN")]
    Green,
    /// The organisation and its clients.
    #[serde(rename = "TLP:AMBER")]
    Amber,
    /// The organisation only.
    #[serde(rename = "TLP:AMBER+STRICT")]
    AmberStrict,
    /// Named recipients only.
    #[serde(rename = "TLP:RED")]
    Red,
}

impl Tlp {
    /// Every level, least restricted first.
    pub const ALL: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

    /// The official STIX 2.1 marking-definition id of the level (TLP 2.0).
    pub fn stix_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// `TLP:AMBER+STRICT`.
    pub fn name(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }
}

impl std::str::FromStr for Tlp {
    type Err = String;

    /// `TLP:AMBER`, `amber`, `amber+strict` (any case; `TLP:WHITE`, TLP 1.0's name, is CLEAR).
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_uppercase();
        let t = t.strip_prefix("TLP:").unwrap_or(&t);
        match t {
            "CLEAR" | "WHITE" => Ok(Tlp::Clear),
            "GREEN" => Ok(Tlp::Green),
            "AMBER" => Ok(Tlp::Amber),
            "AMBER+STRICT" => Ok(Tlp::AmberStrict),
            "RED" => Ok(Tlp::Red),
            _ => Err(format!("'{s}' is not a TLP level (clear, green, amber, amber+strict, red)")),
        }
    }
}

impl std::fmt::Display for Tlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The organisation setting that holds an object's marking.
pub fn setting_name(primary_key: &str) -> String {
    format!("marking:{primary_key}")
}

/// The organisation setting that holds the default marking.
pub const DEFAULT_SETTING: &str = "marking-default";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_order_and_name_their_definitions() {
        assert_eq!("amber+strict".parse::<Tlp>(), Ok(Tlp::AmberStrict));
        assert_eq!("TLP:WHITE".parse::<Tlp>(), Ok(Tlp::Clear));
        assert!("TLP:PURPLE".parse::<Tlp>().is_err());
        assert!(Tlp::Clear < Tlp::Green && Tlp::Amber < Tlp::AmberStrict && Tlp::AmberStrict < Tlp::Red);
        assert_eq!(Tlp::Red.stix_id(), "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1");
        assert_eq!(serde_json::to_value(Tlp::AmberStrict).unwrap(), "TLP:AMBER+STRICT");
        for t in Tlp::ALL {
            assert_eq!(t.name().parse::<Tlp>(), Ok(t));
        }
    }
}
