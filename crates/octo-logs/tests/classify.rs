//! Classification: the built-in library on loghub's labelled corpora, Octopussy's own service
//! files imported unchanged, and bad patterns refused with service, message and column.

use std::collections::{BTreeMap, BTreeSet};

use octo_logs::services::{builtin, native, octopussy, Service};
use octo_logs::{parse, Classifier, ParseContext, TimeZoneSpec};

const LOGHUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/loghub/");
const OCTOPUSSY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/octopussy/services/");

fn ctx() -> ParseContext {
    ParseContext { received: "2026-06-30T00:00:00Z".parse().unwrap(), timezone: TimeZoneSpec::Fixed(0) }
}

/// The EventId column of a loghub structured CSV (the one before the template).
fn event_ids(name: &str) -> Vec<String> {
    let csv = std::fs::read_to_string(format!("{LOGHUB}{name}.log_structured.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| {
            // The template may hold commas (quoted); the EventId is the last `,E<digits>,` field.
            let mut id = String::new();
            for f in l.split(',') {
                if f.len() > 1 && f.starts_with('E') && f[1..].bytes().all(|c| c.is_ascii_digit()) {
                    id = f.to_owned();
                }
            }
            id
        })
        .collect()
}

struct Coverage {
    lines: usize,
    classified: usize,
    /// EventId → the messages its lines went to.
    by_event: BTreeMap<String, BTreeSet<String>>,
    unknown: Vec<String>,
}

fn coverage(classifier: &Classifier, services: &[String], name: &str, canonical_prefix: bool) -> Coverage {
    let log = std::fs::read_to_string(format!("{LOGHUB}{name}.log")).unwrap();
    let ids = event_ids(name);
    let c = ctx();
    let mut cov = Coverage { lines: 0, classified: 0, by_event: BTreeMap::new(), unknown: Vec::new() };
    for (line, id) in log.lines().zip(ids) {
        let line = if canonical_prefix { format!("<38>{line}") } else { line.to_owned() };
        let m = parse(&line, &c);
        cov.lines += 1;
        match classifier.classify(services, &line, &m, "dev") {
            Some(hit) => {
                cov.classified += 1;
                cov.by_event.entry(id).or_default().insert(hit.message.id.clone());
            }
            None => cov.unknown.push(line.clone()),
        }
    }
    cov
}

#[test]
fn the_builtin_library_classifies_loghub_as_labelled() {
    let library = builtin();
    let names: Vec<String> = library.iter().map(|s| s.name.clone()).collect();
    let classifier = Classifier::new(&library).unwrap();
    // EventIds that loghub tells apart only by a value our patterns capture as a field (a user
    // name, a reason, a number, a zone): they share a message on purpose.
    let merged_on_purpose: &[&[&str]] = &[
        &["E15", "E16", "E17", "E18", "E19"], // pam_unix failure: user=guest|root|test or none, tty, rhost
        &["E20", "E21"],                      // BIOS-e820 (usable|reserved)
        &["E2", "E3"],                        // HIGHMEM|LOWMEM available
        &["E41", "E50", "E74"],               // DMA|HighMem|Normal zone
        &["E39", "E43", "E55", "E71", "E84"], // hash table entries
        &["E44", "E45"],                      // Enabling … done.
        &["E66", "E67"],                      // driver vN (c) author
        &["E110", "E111"],                    // usbcore: registered new driver X
        &["E101"],
        &["E102", "E103"],               // session opened by (uid) | LOGIN(uid)
        &["E23", "E54", "E104", "E105"], // init step:  succeeded
        &["E13", "E14"],                 // klogind failure reasons
        &["E37"],
        &["E38", "E49", "E58", "E65", "E85", "E92", "E93", "E94", "E106"], // X startup succeeded
    ];
    let merged_ssh: &[&[&str]] = &[
        &["E4", "E5"],   // too many failures for admin|root
        &["E6", "E7"],   // error: received disconnect, reason
        &["E24", "E25"], // received disconnect, reason
        &["E15", "E16"], // PAM N more authentication failure(s)
        &["E8", "E10"],  // failed none|password for invalid user
    ];
    let merged_apache: &[&[&str]] = &[];
    for (name, merges) in [("Linux_2k", merged_on_purpose), ("OpenSSH_2k", merged_ssh), ("Apache_2k", merged_apache)] {
        // Apache's error log is a file, not syslog: its lines are taken as they are.
        let cov = coverage(&classifier, &names, name, name != "Apache_2k");
        let share = cov.classified as f64 / cov.lines as f64;
        eprintln!(
            "{name}: {:.2} % classified ({} of {}), unknown: {:#?}",
            share * 100.0,
            cov.classified,
            cov.lines,
            cov.unknown
        );
        assert!(share >= 0.99, "{name}: {:.2} % classified", share * 100.0);
        // The same EventId always maps to the same message.
        for (id, messages) in &cov.by_event {
            assert_eq!(messages.len(), 1, "{name} {id} went to {messages:?}");
        }
        // Different EventIds go to different messages, except the merges named above.
        let mut by_message: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
        for (id, messages) in &cov.by_event {
            by_message.entry(messages.iter().next().unwrap()).or_default().push(id);
        }
        for (message, ids) in by_message.iter().filter(|(_, ids)| ids.len() > 1) {
            let allowed = merges.iter().any(|group| ids.iter().all(|id| group.contains(&id.as_str())));
            assert!(allowed, "{name}: {ids:?} all went to {message}");
        }
        let distinct = by_message.len();
        eprintln!("{name}: {} EventIds seen, {distinct} messages", cov.by_event.len());
    }
}

#[test]
fn builtin_files_round_trip_through_the_native_format() {
    for s in builtin() {
        let again = native::parse(&native::to_toml(&s), &s.name).unwrap();
        assert_eq!(again, s);
    }
}

fn octopussy_services() -> Vec<Service> {
    let mut files: Vec<_> =
        std::fs::read_dir(OCTOPUSSY).expect("Octopussy's services in ../shared").flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .iter()
        .map(|p| octopussy::parse(&std::fs::read_to_string(p).unwrap(), &p.display().to_string()).unwrap())
        .collect()
}

#[test]
fn octopussy_service_files_import_compile_and_classify_like_octopussy() {
    let services = octopussy_services();
    assert_eq!(services.len(), 151);
    let messages: usize = services.iter().map(|s| s.messages.len()).sum();
    assert_eq!(messages, 4016);
    // Every message compiles (the seven with a literal `{` too: it is escaped as Perl reads it).
    let classifier = Classifier::new(&services).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(classifier.messages().count(), 4016);
    // Octopussy's own services, imported unchanged, classify loghub's lines at least as well as
    // Octopussy itself does on them (91.6 % of OpenSSH_2k, 95.5 % of Linux_2k; ../shared/octopussy.md).
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    for (name, baseline) in [("OpenSSH_2k", 0.916), ("Linux_2k", 0.955)] {
        let cov = coverage(&classifier, &names, name, true);
        let share = cov.classified as f64 / cov.lines as f64;
        eprintln!("{name} with Octopussy's services: {:.2} % (Octopussy: {:.1} %)", share * 100.0, baseline * 100.0);
        assert!(share >= baseline - 0.001, "{name}: {:.2} %", share * 100.0);
    }
}

#[test]
fn fields_come_out_named() {
    let library = builtin();
    let names: Vec<String> = library.iter().map(|s| s.name.clone()).collect();
    let classifier = Classifier::new(&library).unwrap();
    let line = "<38>Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2";
    let m = parse(line, &ctx());
    let hit = classifier.classify(&names, line, &m, "LabSZ").unwrap();
    assert_eq!(hit.message.id, "Sshd:failed_invalid_user");
    assert_eq!(hit.service, "Sshd");
    assert_eq!(
        hit.fields,
        [
            ("method", "password".into()),
            ("user", "webmaster".into()),
            ("src_ip", "173.234.31.186".into()),
            ("src_port", "38926".into())
        ]
    );
    // A device's services decide: without Sshd the line is unknown.
    assert!(classifier.classify(&["Pam".into()], line, &m, "LabSZ").is_none());
    // Web logs, as files or forwarded by syslog.
    let line = r#"<134>Dec  4 10:00:00 web1 nginx: 203.0.113.9 - - [04/Dec/2025:10:00:00 +0100] "GET /admin.php?x=1 HTTP/1.1" 404 153 "-" "curl/8.5""#;
    let m = parse(line, &ctx());
    let hit = classifier.classify(&names, line, &m, "web1").unwrap();
    assert_eq!(hit.message.id, "Http_Access:combined");
    let f: std::collections::HashMap<_, _> = hit.fields.iter().cloned().collect();
    assert_eq!(
        (f["src_ip"].as_str(), f["method"].as_str(), f["path"].as_str(), f["status"].as_str()),
        ("203.0.113.9", "GET", "/admin.php?x=1", "404")
    );
    assert_eq!(f["user_agent"], "curl/8.5");
    let line = "[Tue Dec 02 10:00:00.123456 2025] [core:error] [pid 4242] [client 198.51.100.7:51234] AH00128: File does not exist: /var/www/html/wp-login.php";
    let m = parse(line, &ctx());
    let hit = classifier.classify(&names, line, &m, "web1").unwrap();
    assert_eq!(hit.message.id, "Apache_Error:client_error");
    assert!(hit.fields.contains(&("src_ip", "198.51.100.7".into())));
    // RFC 5424 lines classify the same.
    let line = "<38>1 2026-11-22T10:00:00Z LabSZ sshd 24200 - - Failed password for root from 203.0.113.9 port 22 ssh2";
    let m = parse(line, &ctx());
    assert_eq!(classifier.classify(&names, line, &m, "LabSZ").unwrap().message.id, "Sshd:failed");
}

#[test]
fn bad_services_are_refused_with_service_message_and_column() {
    let bad_token =
        "name = \"S\"\n[[message]]\nname = \"m\"\npattern = \"x <@NOPE:f@>\"\nlevel = \"info\"\ntaxonomy = \"T\"\n";
    let s = native::parse(bad_token, "s.toml").unwrap();
    let e = Classifier::new(&[s]).err().unwrap().to_string();
    assert!(e.contains("S") && e.contains("S:m") && e.contains("column 3") && e.contains("NOPE"), "{e}");
    let bad_regex = bad_token.replace("x <@NOPE:f@>", r#"ab<@REGEXP(\"(\"):f@>"#);
    let e = Classifier::new(&[native::parse(&bad_regex, "s.toml").unwrap()]).err().unwrap().to_string();
    assert!(e.contains("S:m") && e.contains("column 3"), "{e}");
    let bad_level = bad_token.replace("info", "loud");
    let e = native::parse(&bad_level, "s.toml").unwrap_err().to_string();
    assert!(e.contains("s.toml") && e.contains("S:m") && e.contains("loud"), "{e}");
    let e = native::parse("name = \"S\"\nbogus = 1\n", "s.toml").unwrap_err().to_string();
    assert!(e.contains("s.toml") && e.contains("bogus"), "{e}");
    let xml = r#"<octopussy_service name="X"><message msg_id="X:a" pattern="&lt;@WORD:a" loglevel="Information" taxonomy="T" table="Message" rank="001"/></octopussy_service>"#;
    let e = Classifier::new(&[octopussy::parse(xml, "x.xml").unwrap()]).err().unwrap().to_string();
    assert!(e.contains("X:a") && e.contains("column 1"), "{e}");
    assert!(octopussy::parse("<not-a-service/>", "y.xml").is_err());
    let e = octopussy::parse(
        r#"<octopussy_service name="X"><message msg_id="a" pattern="x"/></octopussy_service>"#,
        "z.xml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("X:name"), "{e}");
}

/// Without the Sshd service, sshd's lines are unknown: they are grouped by shape, and the
/// pattern proposed for each group matches every line of it — so a service made of the
/// suggestions classifies them all.
#[test]
fn unknown_lines_are_grouped_and_get_patterns_that_match_them() {
    use octo_logs::unknown::{suggested_service, UnknownGroups};
    let library = builtin();
    let classifier = Classifier::new(&library).unwrap();
    let plan = classifier.plan(&["Pam".to_owned()]);
    let log = std::fs::read_to_string(format!("{LOGHUB}OpenSSH_2k.log")).unwrap();
    let mut groups = UnknownGroups::default();
    let mut unknown = Vec::new();
    for line in log.lines() {
        let line = format!("<38>{line}");
        let m = parse(&line, &ctx());
        if groups.offer(&classifier, &plan, &line, &m, "LabSZ", "2026-06-30T00:00:00Z".parse().unwrap()) {
            unknown.push(line);
        }
    }
    let groups = groups.finish();
    assert!(unknown.len() > 1000, "{}", unknown.len());
    assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), unknown.len() as u64);
    assert!(groups.len() < 100, "{} groups for {} lines", groups.len(), unknown.len());
    let top = &groups[0];
    eprintln!("{} groups; largest: {} × {:?} -> {}", groups.len(), top.count, top.shape, top.pattern);
    for g in &groups {
        assert!(g.verified, "{g:?}");
    }
    // A service of the suggestions classifies every one of the unknown lines.
    let suggested = suggested_service("Suggested", &groups);
    let c = Classifier::new(std::slice::from_ref(&suggested)).unwrap();
    let plan = c.plan(&["Suggested".to_owned()]);
    let missed: Vec<&String> =
        unknown.iter().filter(|l| c.classify_with(&plan, l, &parse(l, &ctx()), "LabSZ").is_none()).collect();
    assert!(missed.is_empty(), "{} not matched, e.g. {:?}", missed.len(), &missed[..missed.len().min(3)]);
}

/// One line as each kind of device writes it, and the message and a field it must give.
#[test]
fn builtin_services_classify_device_lines() {
    let library = builtin();
    let names: Vec<String> = library.iter().map(|s| s.name.clone()).collect();
    let classifier = Classifier::new(&library).unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("<22>Mar  1 10:00:00 mx1 postfix/smtpd[4242]: connect from unknown[203.0.113.9]", "Postfix:connect", "client_ip", "203.0.113.9"),
        ("<22>Mar  1 10:00:00 mx1 postfix/smtpd[4242]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 <x@example.org>: Relay access denied; from=<a@b.c> to=<x@example.org> proto=ESMTP helo=<h>", "Postfix:reject", "code", "554"),
        ("<22>Mar  1 10:00:00 mx1 postfix/smtpd[4242]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", "Postfix:sasl_authentication_failed", "mechanism", "LOGIN"),
        ("<22>Mar  1 10:00:00 mx1 postfix/smtp[4243]: 4F2A31C0D2: to=<bob@example.net>, relay=mx.example.net[198.51.100.25]:25, delay=0.52, delays=0.01/0/0.2/0.31, dsn=2.0.0, status=sent (250 2.0.0 OK)", "Postfix:delivery", "status", "sent"),
        ("<22>Mar  1 10:00:00 mx1 postfix/qmgr[900]: 4F2A31C0D2: from=<alice@example.org>, size=1234, nrcpt=1 (queue active)", "Postfix:queued", "from", "alice@example.org"),
        ("<22>Mar  1 10:00:00 mx1 dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip=198.51.100.4, lip=192.0.2.10, mpid=123, TLS, session=<abc>", "Dovecot:login", "user", "alice"),
        ("<22>Mar  1 10:00:00 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.10, TLS", "Dovecot:auth_failed", "src_ip", "203.0.113.9"),
        ("<30>Mar  1 10:00:00 ns1 named[77]: client @0x7f3a2c001a30 198.51.100.7#53211 (example.com): query: example.com IN A +E(0) (192.0.2.53)", "Bind:query", "type", "A"),
        ("<30>Mar  1 10:00:00 ns1 named[77]: client @0x7f3a2c001a30 203.0.113.9#4444 (example.com): query (cache) 'example.com/ANY/IN' denied", "Bind:query_denied", "query", "example.com/ANY/IN"),
        ("<30>Mar  1 10:00:00 ns1 named[77]: zone example.com/IN: loaded serial 2026030101", "Bind:zone_loaded", "serial", "2026030101"),
        ("1764000000.123    250 192.0.2.7 TCP_MISS/200 1234 GET http://example.com/ - HIER_DIRECT/93.184.216.34 text/html", "Squid:access", "result", "TCP_MISS"),
        ("<189>123: *Mar  1 00:01:02.345 UTC: %SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: admin] [Source: 203.0.113.9] [localport: 22] [Reason: Login Authentication Failed] at 00:01:02 UTC Mon Mar 1 2026", "Cisco:ios_login_failed", "user", "admin"),
        ("<189>45: router1: Mar  1 00:01:02 UTC: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up", "Cisco:ios_link_updown", "interface", "GigabitEthernet0/1"),
        ("<189>46: Mar  1 00:01:02 UTC: %OSPF-5-ADJCHG: Process 1, Nbr 10.0.0.2 on Gi0/1 from LOADING to FULL", "Cisco:ios_message", "mnemonic", "ADJCHG"),
        ("<166>Mar 01 2026 10:00:00: %ASA-6-302013: Built outbound TCP connection 123 for outside:198.51.100.7/443 (198.51.100.7/443) to inside:10.0.0.5/51234 (192.0.2.1/51234)", "Cisco:asa_built_connection", "dst_ip", "10.0.0.5"),
        ("<166>Mar 01 2026 10:00:00 fw01 : %ASA-4-106023: Deny tcp src outside:203.0.113.9/4711 dst inside:10.0.0.5/22 by access-group \"outside_in\" [0x0, 0x0]", "Cisco:asa_deny", "acl", "outside_in"),
        ("<166>Mar 01 2026 10:00:00: %ASA-6-605004: Login denied from 203.0.113.9/4711 to outside:10.0.0.1/ssh for user \"admin\"", "Cisco:asa_login_denied", "user", "admin"),
        (r#"<189>date=2026-03-01 time=10:00:00 devname="FG100" devid="FG100E" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=192.0.2.7 srcport=51234 srcintf="port1" dstip=198.51.100.7 dstport=443 dstintf="wan1" proto=6 action="accept""#, "Fortinet:traffic", "action", "accept"),
        (r#"<189>date=2026-03-01 time=10:00:00 devname="FG100" logid="0100032002" type="event" subtype="system" level="alert" logdesc="Admin login failed" sn="0" user="admin" ui="ssh(203.0.113.9)" method="ssh" srcip=203.0.113.9 dstip=192.0.2.1 action="login" status="failed""#, "Fortinet:admin_login_failed", "src_ip", "203.0.113.9"),
        ("<14>1 2026-03-01T10:00:00.123+01:00 srx1 RT_FLOW - RT_FLOW_SESSION_DENY - session denied 203.0.113.9/4711->192.0.2.10/22 junos-ssh 6(0) default-deny untrust trust", "Juniper:flow_session_deny", "dst_port", "22"),
        ("<14>Mar  1 10:00:00 srx1 sshd[3000]: SSHD_LOGIN_FAILED: Login failed for user 'root' from host '203.0.113.9'", "Juniper:sshd_login_failed", "user", "root"),
        ("<14>Mar  1 10:00:00 DC01 Microsoft-Windows-Security-Auditing[560]: An account failed to log on.  Subject: Security ID: S-1-0-0 Account Name: - Logon Type: 3 Account For Which Logon Failed: Security ID: S-1-0-0 Account Name: administrator Failure Information: ... Network Information: Workstation Name: X Source Network Address: 203.0.113.9 Source Port: 0", "Windows:logon_failed", "src_ip", "203.0.113.9"),
        ("<14>Mar  1 10:00:00 DC01 MSWinEventLog\t1\tSecurity\t42\tSun Mar 01 10:00:00 2026\t4625\tMicrosoft-Windows-Security-Auditing\tN/A", "Windows:snare_event", "event_id", "4625"),
        ("2026/03/01 10:00:00 [error] 1234#1234: *5 open() \"/usr/share/nginx/html/x\" failed (2: No such file or directory), client: 203.0.113.9, server: example.com, request: \"GET /x HTTP/1.1\", host: \"example.com\"", "Nginx_Error:client_error", "src_ip", "203.0.113.9"),
        ("<4>Mar  1 10:00:00 gw kernel: [123.456] DROP IN=eth0 OUT= MAC=00:11 SRC=203.0.113.9 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=4711 DPT=22 WINDOW=29200", "Linux_Kernel:iptables_packet", "src_ip", "203.0.113.9"),
        ("<86>Mar  1 10:00:00 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx", "Linux_System:sudo_command", "command", "/usr/bin/systemctl restart nginx"),
        ("<78>Mar  1 10:00:00 web1 CRON[2222]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)", "Linux_System:cron_command", "user", "root"),
    ];
    let mut failures = Vec::new();
    for (line, id, field, value) in cases {
        let m = parse(line, &ctx());
        match classifier.classify(&names, line, &m, "dev") {
            Some(hit) if hit.message.id == *id => {
                let got = hit.fields.iter().find(|(f, _)| f == field).map(|(_, v)| v.as_str());
                if got != Some(*value) {
                    failures.push(format!("{id}: {field} = {got:?}, not {value:?}"));
                }
            }
            Some(hit) => failures.push(format!("{line}\n  went to {} not {id}", hit.message.id)),
            None => failures.push(format!("{line}\n  unknown, not {id}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The prefilters (the literal a pattern starts with, its required literal searched directly
/// or, past the first few, by one scan for all) only ever skip messages that could not match.
#[test]
fn prefilters_skip_only_what_cannot_match() {
    let mut text = String::from("name = \"Pre\"\nprograms = [\"app\"]\n");
    // Twelve messages that start with a token and need a literal each: a line reaching the
    // last one has had the first eight literals searched one by one, the rest by the scan.
    for i in 0..12 {
        text.push_str(&format!(
            "[[message]]\nname = \"m{i}\"\npattern = '<@WORD:w@> marker{i:02} <@NUMBER:n@>'\nlevel = \"info\"\ntaxonomy = \"T\"\n"
        ));
    }
    text.push_str(concat!(
        "[[message]]\nname = \"optional\"\npattern = 'Connections? refused from <@IP:ip@>'\nlevel = \"info\"\ntaxonomy = \"T\"\n",
        "[[message]]\nname = \"dotted\"\npattern = 'a.b done'\nlevel = \"info\"\ntaxonomy = \"T\"\n",
    ));
    let s = native::parse(&text, "pre.toml").unwrap();
    let c = Classifier::new(&[s]).unwrap();
    let names = vec!["Pre".to_owned()];
    let id = |line: &str| {
        let m = parse(line, &ctx());
        c.classify(&names, line, &m, "d").map(|h| h.message.id.clone())
    };
    for i in [0, 7, 8, 11] {
        assert_eq!(id(&format!("<13>Mar  1 10:00:00 h app: x MARKER{i:02} 5")), Some(format!("Pre:m{i}")), "m{i}");
    }
    assert_eq!(id("<13>Mar  1 10:00:00 h app: x marker12 5"), None);
    // `s?` makes the `s` optional: the prefix is "Connection", in any case.
    assert_eq!(id("<13>Mar  1 10:00:00 h app: connection refused from 192.0.2.1"), Some("Pre:optional".into()));
    assert_eq!(id("<13>Mar  1 10:00:00 h app: CONNECTIONS refused from 192.0.2.1"), Some("Pre:optional".into()));
    // A `.` in literal text is Octopussy's wildcard: the prefix stops before it.
    assert_eq!(id("<13>Mar  1 10:00:00 h app: aXb done"), Some("Pre:dotted".into()));
    assert_eq!(id("<13>Mar  1 10:00:00 h app: b done"), None);
}
