//! The parsers on lines as real devices send them, and on the loghub corpora.

use octo_logs::{parse, Format, LogTime, ParseContext, TimeZoneSpec};

fn ctx(received: &str) -> ParseContext {
    ParseContext { received: received.parse().unwrap(), timezone: TimeZoneSpec::Fixed(0) }
}

fn at(s: &str) -> Option<LogTime> {
    Some(s.parse().unwrap())
}

#[test]
fn rfc5424_examples_of_the_rfc() {
    let c = ctx("2003-10-12T00:00:00Z");
    let m = parse(
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
        &c,
    );
    assert_eq!(m.format, Format::Rfc5424);
    assert_eq!((m.priority.facility().name(), m.priority.severity().name()), ("auth", "crit"));
    assert_eq!(m.timestamp, at("2003-10-11T22:14:15.003Z"));
    assert_eq!(m.hostname, Some("mymachine.example.com"));
    assert_eq!(m.app_name, Some("su"));
    assert_eq!(m.proc_id, None);
    assert_eq!(m.msg_id, Some("ID47"));
    assert_eq!(m.msg, "'su root' failed for lonvick on /dev/pts/8", "the BOM is dropped");
    assert_eq!(m.issue, None);

    let m = parse(
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        &c,
    );
    assert_eq!(m.timestamp, at("2003-08-24T12:14:15.000003Z"));
    assert_eq!(m.utc_offset, Some(-7 * 3600));
    assert_eq!(m.proc_id, Some("8710"));
    assert_eq!(m.msg, "%% It's time to make the do-nuts.");

    let m = parse(
        r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event"#,
        &c,
    );
    let sd = m.structured_data();
    assert_eq!(sd.len(), 2);
    assert_eq!(sd[0].id, "exampleSDID@32473");
    assert_eq!(sd[0].params[1], ("eventSource", "Application".into()));
    assert_eq!(sd[1].params, [("class", "high".into())]);
    assert_eq!(m.msg, "An application event");

    // Only structured data, no MSG; escapes in values.
    let m = parse(r#"<165>1 2003-10-11T22:14:15.003Z host app - - [x@1 a="q\"uote\]d\\" b="c"]"#, &c);
    assert_eq!(m.structured_data()[0].params[0].1, r#"q"uote]d\"#);
    assert_eq!(m.msg, "");
}

#[test]
fn rfc5424_nil_values_and_damage() {
    let c = ctx("2026-12-01T00:00:00Z");
    let m = parse("<14>1 - - - - - -", &c);
    assert_eq!((m.timestamp, m.hostname, m.app_name, m.msg), (None, None, None, ""));
    assert_eq!(m.issue, None);
    // A bad timestamp is reported, and the rest is still read.
    let m = parse("<14>1 2026-13-01T00:00:00Z host app 12 ID - hello", &c);
    assert_eq!(m.timestamp, None);
    assert_eq!(m.hostname, Some("host"));
    assert_eq!(m.msg, "hello");
    assert_eq!(m.issue.unwrap().reason, "bad RFC 5424 timestamp");
    // Broken structured data: kept as message, with a reason.
    let m = parse(r#"<14>1 2026-11-01T00:00:00Z host app 12 ID [broken x="y hello"#, &c);
    assert_eq!(m.issue.unwrap().reason, "bad STRUCTURED-DATA");
    assert!(m.msg.starts_with("[broken"));
    let m = parse("<14>1 2026-11-01T00:00:00Z host", &c);
    assert_eq!(m.format, Format::Unparsed);
    assert!(m.issue.is_some());
    assert_eq!(m.msg, "<14>1 2026-11-01T00:00:00Z host", "the raw text is kept");
}

#[test]
fn rfc3164_with_and_without_parts() {
    let c = ctx("2026-11-22T12:00:00Z");
    let m = parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", &c);
    assert_eq!(m.format, Format::Rfc3164);
    assert_eq!(m.timestamp, at("2026-10-11T22:14:15Z"));
    assert_eq!((m.hostname, m.app_name, m.proc_id), (Some("mymachine"), Some("su"), None));
    assert_eq!(m.msg, "'su root' failed for lonvick on /dev/pts/8");

    let m = parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", &c);
    assert_eq!(m.timestamp, at("2026-02-05T17:32:18Z"));
    assert_eq!(m.hostname, Some("10.0.0.99"));
    assert_eq!(m.app_name, None);
    assert_eq!(m.msg, "Use the BFG!");

    // tag[pid]: with the hostname missing (what `logger` sends to a local socket).
    let m = parse("<38>Nov 22 10:15:02 sshd[4242]: Failed password for root from 203.0.113.9 port 4711 ssh2", &c);
    assert_eq!((m.hostname, m.app_name, m.proc_id), (None, Some("sshd"), Some("4242")));
    assert_eq!(m.msg, "Failed password for root from 203.0.113.9 port 4711 ssh2");

    // No PRI at all (files written by syslogd, as in loghub): user.notice is assumed.
    let m = parse("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=218.188.2.4 ", &c);
    assert!(!m.priority_given);
    assert_eq!(m.priority.0, 13);
    assert_eq!((m.hostname, m.app_name, m.proc_id), (Some("combo"), Some("sshd(pam_unix)"), Some("19939")));

    // ISO timestamps (rsyslog's RFC 3339 template), with fractions and an offset.
    let m = parse("<86>2026-11-22T10:15:02.123456+01:00 gw1 sshd[4242]: Accepted publickey for alice", &c);
    assert_eq!(m.timestamp, at("2026-11-22T09:15:02.123456Z"));
    assert_eq!(m.utc_offset, Some(3600));
    assert_eq!((m.hostname, m.app_name), (Some("gw1"), Some("sshd")));

    // A year, milliseconds.
    let m = parse("<14>Mar 01 2026 10:00:00.250 host app: x", &c);
    assert_eq!(m.timestamp, at("2026-03-01T10:00:00.250Z"));
    let m = parse("<14>Mar  1 10:00:00 2025 host app: x", &c);
    assert_eq!(m.timestamp, at("2025-03-01T10:00:00Z"));
    assert_eq!(m.hostname, Some("host"));

    // Only a PRI and text.
    let m = parse("<13>just some words", &c);
    assert_eq!((m.format, m.timestamp, m.hostname), (Format::Rfc3164, None, None));
    assert_eq!(m.msg, "just some words");
}

#[test]
fn network_devices() {
    let c = ctx("2026-03-02T00:00:00Z");
    // Cisco IOS: sequence number, unsynchronised clock, zone, mnemonic.
    let m = parse("<189>123: *Mar  1 00:01:02.345 UTC: %SYS-5-CONFIG_I: Configured from console by vty0", &c);
    assert_eq!(m.sequence, Some(123));
    assert_eq!(m.timestamp, at("2026-03-01T00:01:02.345Z"));
    assert_eq!(m.hostname, None);
    assert_eq!(m.msg, "%SYS-5-CONFIG_I: Configured from console by vty0");
    // IOS with `logging origin-id hostname`.
    let m = parse("<189>45: router1: Mar  1 00:01:02 UTC: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up", &c);
    assert_eq!((m.sequence, m.hostname), (Some(45), Some("router1")));
    assert_eq!(m.msg, "%LINK-3-UPDOWN: Interface Gi0/1, changed state to up");
    // Cisco ASA, with and without a hostname.
    let m = parse(
        "<166>Mar 01 2026 10:00:00: %ASA-6-302013: Built outbound TCP connection 1 for outside:198.51.100.7/443",
        &c,
    );
    assert_eq!(m.timestamp, at("2026-03-01T10:00:00Z"));
    assert_eq!(m.hostname, None);
    assert!(m.msg.starts_with("%ASA-6-302013: Built"));
    let m = parse("<166>Mar 01 2026 10:00:00 fw01 : %ASA-4-106023: Deny tcp src outside:203.0.113.9/4711", &c);
    assert_eq!(m.hostname, Some("fw01"));
    assert!(m.msg.starts_with("%ASA-4-106023"));
    // Juniper (RFC 5424 with structured data).
    let m = parse(
        r#"<165>1 2026-03-01T10:00:00.123+01:00 srx1 RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.26 source-address="10.0.0.1" destination-port="443"] session created"#,
        &c,
    );
    assert_eq!(m.msg_id, Some("RT_FLOW_SESSION_CREATE"));
    assert_eq!(m.structured_data()[0].params[0], ("source-address", "10.0.0.1".into()));
    // FortiGate: key=value without a tag.
    let m = parse(r#"<189>date=2026-03-01 time=10:00:00 devname="FG100" logid="0000000013" type="traffic""#, &c);
    assert_eq!(m.format, Format::Rfc3164);
    assert!(m.msg.starts_with("date=2026-03-01"));
    // Windows events forwarded by NXLog/Snare, tab-separated.
    let m = parse("<14>Mar  1 10:00:00 DC01 MSWinEventLog\t1\tSecurity\t42\tSun Mar 01 10:00:00 2026\t4625", &c);
    assert_eq!(m.hostname, Some("DC01"));
    assert!(m.msg.starts_with("MSWinEventLog"));
}

#[test]
fn years_roll_over_to_the_nearest_reading() {
    // A December line received just after New Year belongs to the year before …
    let m = parse("<13>Dec 31 23:59:58 host app: x", &ctx("2027-01-01T00:00:03Z"));
    assert_eq!(m.timestamp, at("2026-12-31T23:59:58Z"));
    // … and a January line from a clock slightly ahead, to the next.
    let m = parse("<13>Jan  1 00:00:01 host app: x", &ctx("2026-12-31T23:59:59Z"));
    assert_eq!(m.timestamp, at("2027-01-01T00:00:01Z"));
    // February 29th only in a leap year.
    let m = parse("<13>Feb 29 12:00:00 host app: x", &ctx("2028-03-01T00:00:00Z"));
    assert_eq!(m.timestamp, at("2028-02-29T12:00:00Z"));
}

#[test]
fn zones_apply_to_times_without_an_offset() {
    let ams = ParseContext {
        received: "2026-07-01T12:00:00Z".parse().unwrap(),
        timezone: "Europe/Amsterdam".parse().unwrap(),
    };
    let m = parse("<13>Jul  1 14:00:00 host app: x", &ams);
    assert_eq!(m.timestamp, at("2026-07-01T12:00:00Z"), "summer time, +02:00");
    let m = parse("<13>2026-01-01T14:00:00 host app: x", &ams);
    assert_eq!(m.timestamp, at("2026-01-01T13:00:00Z"), "winter time, +01:00");
    // An explicit offset wins over the zone.
    let m = parse("<13>2026-01-01T14:00:00Z host app: x", &ams);
    assert_eq!(m.timestamp, at("2026-01-01T14:00:00Z"));
}

#[test]
fn nothing_is_rejected() {
    let c = ctx("2026-11-22T12:00:00Z");
    for line in
        ["", "<", "<999>x", "<13", "<13>", "<13>1 ", "<13>1", "\u{feff}", "<13>Jan", "<13>Jan 99 99:99:99 x", "é<13>ü"]
    {
        let m = parse(line, &c);
        assert!(line.contains(m.msg), "{line:?} kept as {:?}", m.msg);
    }
    let m = parse("<999>Oct 11 22:14:15 host app: x", &c);
    assert_eq!(m.issue.unwrap().reason, "bad PRI part");
    assert_eq!(m.priority.0, 13);
    assert!(m.msg.contains("Oct 11"), "the raw text is kept: {:?}", m.msg);
    let m = parse("no header at all", &c);
    assert_eq!((m.format, m.msg), (Format::Unparsed, "no header at all"));
}

/// Every line of loghub's Linux and OpenSSH corpora (syslogd files, no PRI) yields its time,
/// host, tag and the message the labelled `_structured.csv` gives as Content.
#[test]
fn loghub_corpora_parse_as_labelled() {
    for (name, host) in [("Linux_2k", "combo"), ("OpenSSH_2k", "LabSZ")] {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/loghub/");
        let log = std::fs::read_to_string(format!("{dir}{name}.log")).expect("the loghub corpus in ../shared");
        let csv = std::fs::read_to_string(format!("{dir}{name}.log_structured.csv")).unwrap();
        let rows: Vec<Vec<String>> = csv.lines().skip(1).map(|l| columns(l, name)).collect();
        let c = ctx("2026-06-30T00:00:00Z");
        let mut n = 0;
        for (line, row) in log.lines().zip(&rows) {
            let m = parse(line, &c);
            let n_cols = row.len();
            let (pid, content) = (&row[n_cols - 4], &row[n_cols - 3]);
            assert_eq!(m.format, Format::Rfc3164, "{line}");
            assert!(m.timestamp.is_some(), "{line}");
            assert_eq!(m.hostname, Some(host), "{line}");
            if name == "Linux_2k" {
                assert_eq!(m.app_name, Some(row[n_cols - 5].as_str()), "{line}");
            } else {
                assert_eq!(m.app_name, Some("sshd"), "{line}");
            }
            assert_eq!(m.proc_id.unwrap_or(""), pid, "{line}");
            assert_eq!(m.msg.trim(), content.trim(), "{line}");
            n += 1;
        }
        assert_eq!(n, 2000, "{name}");
    }
}

/// The columns of a loghub structured CSV line (quoted when they hold commas); the last four are
/// PID, Content, EventId and EventTemplate.
fn columns(line: &str, name: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    assert!(fields.len() >= 7, "{name}: {line}");
    fields
}
