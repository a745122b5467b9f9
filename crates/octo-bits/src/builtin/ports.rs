//! Port bits: which open ports should not be open. (port-common is a rule file:
//! rules/port_common.toml.)

use crate::definition::{int, text, BitDefinition, BitError, BitInput, BitResult, FnBit};
use octo_model::Ooi;

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![FnBit::new(
        BitDefinition::new("port-classification-ip", "IPAddress")
            .param("IPPort", "address")
            .config_path("IPAddress.network"),
        port_classification_ip,
    )]
}

/// Ports a public server commonly offers.
const COMMON_TCP_PORTS: &[i64] = &[25, 53, 80, 110, 143, 443, 465, 587, 993, 995];
const COMMON_UDP_PORTS: &[i64] = &[53];
/// Remote administration: FTP, SSH, Telnet, VNC.
const SA_TCP_PORTS: &[i64] = &[21, 22, 23, 5900];
/// MS SQL Server, Interbase/Firebird, MySQL, PostgreSQL.
const DB_TCP_PORTS: &[i64] = &[1433, 1434, 3050, 3306, 5432];
const MICROSOFT_RDP_PORTS: &[i64] = &[3389];

/// A comma-separated port list from the config, or the default when the key is absent.
fn ports(i: &BitInput<'_>, key: &str, default: &[i64]) -> BitResult<Vec<i64>> {
    match i.config.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default.to_vec()),
        Some(serde_json::Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().map_err(|_| BitError::Invalid(format!("config {key}: '{p}' is not a port"))))
            .collect(),
        Some(other) => Err(BitError::Invalid(format!("config {key} must be a comma-separated string, not {other}"))),
    }
}

fn port_classification_ip(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let aggregate = match i.config.get("aggregate_findings") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let common_tcp = ports(i, "common_tcp_ports", COMMON_TCP_PORTS)?;
    let common_udp = ports(i, "common_udp_ports", COMMON_UDP_PORTS)?;
    let sa_tcp = ports(i, "sa_tcp_ports", SA_TCP_PORTS)?;
    let db_tcp = ports(i, "db_tcp_ports", DB_TCP_PORTS)?;
    let rdp = ports(i, "microsoft_rdp_ports", MICROSOFT_RDP_PORTS)?;
    let mut out: Vec<Ooi> = Vec::new();
    let mut aggregated = Vec::new();
    let mut emitted_types: Vec<String> = Vec::new();
    for ip_port in i.params_of("IPPort") {
        let Some(port) = int(ip_port, "port") else { continue };
        let protocol = text(ip_port, "protocol");
        let tcp = protocol == "tcp";
        let (id, description) = if tcp && sa_tcp.contains(&port) {
            (
                "KAT-OPEN-SYSADMIN-PORT",
                format!("Port {port}/{protocol} is a system administrator port and should possibly not be open."),
            )
        } else if tcp && db_tcp.contains(&port) {
            ("KAT-OPEN-DATABASE-PORT", format!("Port {port}/{protocol} is a database port and should not be open."))
        } else if rdp.contains(&port) {
            (
                "KAT-REMOTE-DESKTOP-PORT",
                format!("Port {port}/{protocol} is a Microsoft Remote Desktop port and should possibly not be open."),
            )
        } else if (tcp && !common_tcp.contains(&port)) || (protocol == "udp" && !common_udp.contains(&port)) {
            (
                "KAT-UNCOMMON-OPEN-PORT",
                format!("Port {port}/{protocol} is not a common port and should possibly not be open."),
            )
        } else {
            continue;
        };
        if aggregate {
            aggregated.push(port.to_string());
            continue;
        }
        let mut f = i.kat_finding(id, ip_port.primary_key(), &description)?;
        if emitted_types.iter().any(|t| t == id) {
            f.remove(0);
        } else {
            emitted_types.push(id.to_owned());
        }
        out.extend(f);
    }
    if aggregate && !aggregated.is_empty() {
        out.extend(i.kat_finding(
            "KAT-UNCOMMON-OPEN-PORT",
            i.source.primary_key(),
            &format!("Ports {} are not common ports and should possibly not be open.", aggregated.join(", ")),
        )?);
    }
    Ok(out)
}
