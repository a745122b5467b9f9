//! The tables classified lines are stored in (the store itself is the `octo-tables` crate):
//! the built-in schemas, the schemas imported into the data directory, and Octopussy's table
//! files read unchanged (`<octopussy_table name=>` with `<field title= type=>`).

use std::path::Path;

use octo_tables::{ColumnType, Filter, Query, TableSchema};
use quick_xml::events::Event;

use crate::services::ServiceError;
use crate::time::LogTime;

const BUILTIN: &[(&str, &str)] = &[
    ("auth.toml", include_str!("../tables/auth.toml")),
    ("network.toml", include_str!("../tables/network.toml")),
    ("web.toml", include_str!("../tables/web.toml")),
    ("mail.toml", include_str!("../tables/mail.toml")),
    ("dns.toml", include_str!("../tables/dns.toml")),
    ("message.toml", include_str!("../tables/message.toml")),
];

/// The schemas shipped with Octograph.
pub fn builtin() -> Vec<TableSchema> {
    BUILTIN
        .iter()
        .map(|(file, text)| match TableSchema::from_toml(text, file) {
            Ok(s) => s,
            // The built-in files are checked by a test; a broken one is a build defect.
            Err(e) => panic!("built-in table {e}"),
        })
        .collect()
}

/// The built-in schemas, then the user's `*.toml` in `dir` (one table per file; a user's
/// replaces a built-in one of the same name).
pub fn schemas(dir: Option<&Path>) -> Result<Vec<TableSchema>, ServiceError> {
    let mut out = builtin();
    let Some(dir) = dir else { return Ok(out) };
    let err =
        |source: &Path, reason: String| ServiceError { source: source.display().to_string(), message: None, reason };
    let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
        Ok(d) => d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(err(dir, e.to_string())),
    };
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| err(&f, e.to_string()))?;
        let s = TableSchema::from_toml(&text, &f.display().to_string()).map_err(|reason| ServiceError {
            source: String::new(),
            message: None,
            reason,
        })?;
        match out.iter_mut().find(|x| x.name == s.name) {
            Some(x) => *x = s,
            None => out.push(s),
        }
    }
    Ok(out)
}

/// Whether an XML document is an Octopussy table (rather than a service).
pub fn is_octopussy_table(xml: &str) -> bool {
    xml.contains("<octopussy_table")
}

/// Reads an Octopussy table file. Its `datetime` and `device` fields are the fixed columns
/// every table has; number types become integers, `IP_ADDR` addresses, `PORT` ports.
pub fn parse_octopussy(xml: &str, source: &str) -> Result<TableSchema, ServiceError> {
    let bad = |reason: String| ServiceError { source: source.into(), message: None, reason };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut table: Option<TableSchema> = None;
    loop {
        let event = reader.read_event().map_err(|e| bad(format!("XML at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| bad(e.to_string()))?;
                    let v = a.unescape_value().map_err(|e| bad(e.to_string()))?;
                    attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), v.into_owned()));
                }
                let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                match e.name().as_ref() {
                    b"octopussy_table" => {
                        let name = get("name").ok_or_else(|| bad("octopussy_table has no name".into()))?;
                        octo_tables::schema::check_name(&name).map_err(bad)?;
                        let mut t = TableSchema::untyped(&name);
                        t.description = get("description").unwrap_or_default();
                        table = Some(t);
                    }
                    b"field" => {
                        let t = table.as_mut().ok_or_else(|| bad("a field outside octopussy_table".into()))?;
                        let title = get("title").ok_or_else(|| bad("a field has no title".into()))?;
                        if title == "datetime" || title == "device" {
                            continue;
                        }
                        octo_tables::schema::check_name(&title).map_err(|r| bad(format!("field {r}")))?;
                        if octo_tables::schema::is_fixed(&title) {
                            continue; // stored as `_title`, as text
                        }
                        let ty = match get("type").unwrap_or_default().as_str() {
                            "NUMBER" | "PID" | "SECONDS" => ColumnType::Int,
                            "BYTES" => ColumnType::Bytes,
                            "PORT" => ColumnType::Port,
                            "IP_ADDR" => ColumnType::Ip,
                            "USER" => ColumnType::User,
                            "WORD" => ColumnType::Word,
                            _ => ColumnType::Text,
                        };
                        t.columns.insert(title, ty);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    table.ok_or_else(|| bad("no octopussy_table element".into()))
}

/// The most rows one query returns.
pub const MAX_ROWS: usize = 10_000;
/// The most groups one query returns.
pub const MAX_GROUPS: usize = 100_000;

/// A span of time written `90s`, `15m`, `24h`, `7d` or `2w`, in microseconds.
pub fn parse_span(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("'{s}' is not a span of time (90s, 15m, 24h, 7d)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("'{s}' is not a span of time: the unit must be s, m, h, d or w")),
    };
    n.checked_mul(seconds * 1_000_000).filter(|&v| v > 0).ok_or_else(|| format!("'{s}' is out of range"))
}

/// A table query from name–value pairs, as the API's query string and the command line give
/// them: `from`, `to` (times), `last` (a span up to now, instead of `from`), `filter` (any
/// number, all must hold), `group` (columns, comma-separated), `bucket` (a span: counts per
/// time bucket), `limit`. Errors name the parameter.
pub fn query_from_params<'a>(
    table: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    now: LogTime,
) -> Result<Query, String> {
    let mut q = Query::new(table);
    let mut limit = None;
    let mut last = None;
    for (k, v) in params {
        match k {
            "from" => q.from = Some(v.parse::<LogTime>().map_err(|e| format!("from: {e}"))?.micros()),
            "to" => q.to = Some(v.parse::<LogTime>().map_err(|e| format!("to: {e}"))?.micros()),
            "last" => last = Some(parse_span(v).map_err(|e| format!("last: {e}"))?),
            "filter" => q.filters.push(v.parse::<Filter>()?),
            "group" => q.group_by.extend(v.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned)),
            "bucket" => q.bucket = Some(parse_span(v).map_err(|e| format!("bucket: {e}"))?),
            "limit" => limit = Some(v.trim().parse::<usize>().map_err(|_| format!("limit: '{v}' is not a number"))?),
            other => return Err(format!("unknown parameter '{other}' (from, to, last, filter, group, bucket, limit)")),
        }
    }
    if let Some(span) = last {
        if q.from.is_some() {
            return Err("give either from or last, not both".into());
        }
        q.from = Some(now.micros().saturating_sub(span));
    }
    let max = if q.counts() { MAX_GROUPS } else { MAX_ROWS };
    q.limit = limit.unwrap_or(100);
    if q.limit > max {
        return Err(format!("limit: at most {max}"));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schemas_cover_the_tables_of_the_builtin_services() {
        let tables: Vec<String> = builtin().into_iter().map(|t| t.name).collect();
        for s in crate::services::builtin() {
            for m in &s.messages {
                assert!(tables.contains(&m.table), "{}: table {} has no schema", m.id, m.table);
            }
        }
    }

    #[test]
    fn queries_come_from_parameters() {
        let now = LogTime(1_764_583_200_000_000);
        let q = query_from_params(
            "Auth",
            [("last", "24h"), ("filter", "taxonomy=Auth.Failure"), ("group", "src_ip, user"), ("limit", "20")],
            now,
        )
        .unwrap();
        assert_eq!(q.from, Some(now.micros() - 24 * 3_600_000_000));
        assert_eq!(q.group_by, ["src_ip", "user"]);
        assert_eq!(q.limit, 20);
        assert_eq!(parse_span("15m"), Ok(900_000_000));
        for (params, says) in [
            (vec![("last", "1y")], "last:"),
            (vec![("from", "yesterday")], "from:"),
            (vec![("from", "2026-01-01"), ("last", "1h")], "either"),
            (vec![("limit", "20000")], "at most"),
            (vec![("colour", "red")], "unknown parameter"),
            (vec![("filter", "nothing")], "filter"),
        ] {
            let e = query_from_params("Auth", params, now).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn octopussy_tables_import() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/octopussy/tables");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("{} is missing; skipped", dir.display());
            return;
        };
        let mut n = 0;
        for e in entries.flatten() {
            let xml = std::fs::read_to_string(e.path()).unwrap();
            assert!(is_octopussy_table(&xml));
            let t = parse_octopussy(&xml, &e.path().display().to_string()).unwrap();
            assert!(!t.columns.contains_key("datetime"));
            n += 1;
        }
        assert_eq!(n, 38);
        let fw = std::fs::read_to_string(dir.join("Firewall_Traffic.xml")).unwrap();
        let t = parse_octopussy(&fw, "Firewall_Traffic.xml").unwrap();
        assert_eq!(t.column_type("src_addr"), ColumnType::Ip, "{t:?}");
        assert_eq!(t.column_type("sent_bytes"), ColumnType::Bytes);
        assert!(parse_octopussy("<octopussy_table><field title='x'/></octopussy_table>", "x.xml").is_err());
    }
}
