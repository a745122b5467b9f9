//! Property: for arbitrary valid values (with `|`, `%`, `/`, unicode), key → parse → key is exact
//! and the tokens give back the values.

use octo_model::{Catalog, Reference};
use proptest::prelude::*;
use serde_json::json;

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9|%/ ]{1,12}", "\\PC{1,10}", Just("%7C|%25".to_owned()), Just("a|b%c/d".to_owned()),]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn nested_keys_round_trip(
        network in text(),
        v4 in any::<[u8; 4]>(),
        v6 in any::<[u16; 8]>(),
        use_v6 in any::<bool>(),
        port in 1u16..,
        header_key in text(),
        path in text(),
        sw_name in text(),
        sw_version in proptest::option::of(text()),
        ft_id in "[A-Z]{1,4}-[0-9a-z|%]{1,6}",
    ) {
        let c = Catalog::builtin();
        let address = if use_v6 { std::net::Ipv6Addr::from(v6).to_string() } else { std::net::Ipv4Addr::from(v4).to_string() };
        let ip_type = if use_v6 { "IPAddressV6" } else { "IPAddressV4" };
        let net = c.ooi_from_json(&json!({"object_type": "Network", "name": network})).unwrap();
        let ip = c.ooi_from_json(&json!({"object_type": ip_type, "network": net.primary_key(), "address": address})).unwrap();
        let ipport = c.ooi_from_json(&json!({"object_type": "IPPort", "address": ip.primary_key(), "protocol": "tcp", "port": port})).unwrap();
        let svc = c.ooi_from_json(&json!({"object_type": "IPService", "ip_port": ipport.primary_key(), "service": "Service|http"})).unwrap();
        let host = c.ooi_from_json(&json!({"object_type": "Hostname", "network": net.primary_key(), "name": "www.example.com"})).unwrap();
        let site = c.ooi_from_json(&json!({"object_type": "Website", "ip_service": svc.primary_key(), "hostname": host.primary_key()})).unwrap();
        let url = c.ooi_from_json(&json!({"object_type": "IPAddressHTTPURL", "network": net.primary_key(), "scheme": "http", "netloc": ip.primary_key(), "port": port, "path": path})).unwrap();
        let res = c.ooi_from_json(&json!({"object_type": "HTTPResource", "website": site.primary_key(), "web_url": url.primary_key()})).unwrap();
        let header = c.ooi_from_json(&json!({"object_type": "HTTPHeader", "resource": res.primary_key(), "key": header_key, "value": "v"})).unwrap();
        let sw = c.ooi_from_json(&json!({"object_type": "Software", "name": sw_name, "version": sw_version})).unwrap();
        let inst = c.ooi_from_json(&json!({"object_type": "SoftwareInstance", "ooi": header.primary_key(), "software": sw.primary_key()})).unwrap();
        let ft = c.ooi_from_json(&json!({"object_type": "KATFindingType", "id": ft_id})).unwrap();
        let finding = c.ooi_from_json(&json!({"object_type": "Finding", "ooi": inst.primary_key(), "finding_type": ft.primary_key()})).unwrap();

        for o in [&net, &ip, &ipport, &svc, &site, &url, &res, &header, &sw, &inst, &ft, &finding] {
            let key = o.primary_key().as_str();
            let parsed = Reference::parse(key, &c).map_err(|e| TestCaseError::fail(format!("{key}: {e}")))?;
            prop_assert_eq!(parsed.reference().as_str(), key);
        }

        let t = Reference::parse(header.primary_key().as_str(), &c).unwrap();
        let t = t.tokens();
        prop_assert_eq!(t["key"].as_str(), Some(header_key.as_str()));
        prop_assert_eq!(t["resource"]["web_url"]["path"].as_str(), Some(path.as_str()));
        prop_assert_eq!(t["resource"]["web_url"]["netloc"]["network"]["name"].as_str(), Some(network.as_str()));
        prop_assert_eq!(&t["resource"]["website"]["ip_service"]["ip_port"]["address"].as_node().unwrap().type_name, ip_type);

        let f = Reference::parse(finding.primary_key().as_str(), &c).unwrap();
        let f = f.tokens();
        prop_assert_eq!(f["finding_type"]["id"].as_str(), Some(ft_id.as_str()));
        prop_assert_eq!(f["ooi"]["software"]["name"].as_str(), Some(sw_name.as_str()));
        prop_assert_eq!(f["ooi"]["software"]["version"].as_str(), Some(sw_version.as_deref().unwrap_or("")));
        prop_assert_eq!(f["ooi"]["ooi"]["key"].as_str(), Some(header_key.as_str()));
    }
}
