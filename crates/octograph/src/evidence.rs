//! Evidence from logs into the knowledge graph. Classified lines of active devices whose message
//! observes something (sshd's failed password: the address it came from) are gathered per device
//! and service, and written every few seconds as one observation: method `syslog/<service>`,
//! source the device's Hostname, result every object a line showed within the window. A flood
//! of lines is one origin update per interval, not a write per line; an object no line has
//! shown for the window leaves the result and, held by nothing else, the graph.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use octo_graph::{Observation, Organisations};
use octo_logs::pipeline::Evidence;
use serde_json::{json, Map, Value};

/// A device and a service: one observation each.
type Key = (Arc<str>, String);

/// The objects a device's lines of one service showed, by their JSON, with when last shown (µs).
type Shown = HashMap<String, (Map<String, Value>, i64)>;

/// Runs until the pipeline goes away.
pub async fn into_graph(
    mut rx: tokio::sync::mpsc::Receiver<Evidence>,
    organisations: Arc<Organisations>,
    organisation: String,
    every: Duration,
    window: Duration,
) {
    let mut seen: HashMap<Key, Shown> = HashMap::new();
    let mut dirty: HashSet<Key> = HashSet::new();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            e = rx.recv() => match e {
                Some(e) => {
                    let key = (e.device.clone(), e.service.clone());
                    let objects = seen.entry(key.clone()).or_default();
                    for o in e.objects {
                        let id = serde_json::to_string(&o).unwrap_or_default();
                        let t = e.received.micros();
                        let slot = objects.entry(id).or_insert((o, t));
                        slot.1 = slot.1.max(t);
                    }
                    dirty.insert(key);
                }
                None => return,
            },
            _ = tick.tick() => {
                if dirty.is_empty() {
                    continue;
                }
                let cutoff = octo_logs::LogTime::now().micros() - i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
                let mut writes = Vec::new();
                for key in dirty.drain() {
                    if let Some(objects) = seen.get_mut(&key) {
                        objects.retain(|_, (_, t)| *t >= cutoff);
                        writes.push((key.clone(), objects.values().map(|(o, _)| o.clone()).collect::<Vec<_>>()));
                    }
                }
                let (orgs, org) = (organisations.clone(), organisation.clone());
                let done = tokio::task::spawn_blocking(move || {
                    for ((device, service), objects) in writes {
                        if let Err(e) = observe(&orgs, &org, &device, &service, objects) {
                            tracing::warn!(device = %device, service = %service, error = %e, "log evidence could not be saved");
                        }
                    }
                });
                let _ = done.await;
            }
        }
    }
}

/// Saves one device's evidence of one service as an observation sourced on its Hostname.
fn observe(
    orgs: &Organisations,
    org: &str,
    device: &str,
    service: &str,
    objects: Vec<Map<String, Value>>,
) -> anyhow::Result<()> {
    let graph = if org == "default" { orgs.get_or_create(org)? } else { orgs.get(org)? };
    let catalog = graph.catalog();
    let network = catalog.ooi_from_json(&json!({"object_type": "Network", "name": "internet"}))?;
    let host =
        catalog.ooi_from_json(&json!({"object_type": "Hostname", "network": "Network|internet", "name": device}))?;
    let mut result = vec![network, host.clone()];
    for mut o in objects {
        // `IPAddress` is abstract: the address decides which, for objects and for references
        // (`IPAddress|internet|192.0.2.1`).
        if o.get("object_type").and_then(Value::as_str) == Some("IPAddress") {
            let v6 = o.get("address").and_then(Value::as_str).is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
            o.insert("object_type".into(), (if v6 { "IPAddressV6" } else { "IPAddressV4" }).into());
        }
        for v in o.values_mut() {
            if let Some(rest) = v.as_str().and_then(|s| s.strip_prefix("IPAddress|")) {
                let v6 = rest.rsplit('|').next().is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
                *v = format!("{}|{rest}", if v6 { "IPAddressV6" } else { "IPAddressV4" }).into();
            }
        }
        match catalog.ooi_from_json(&Value::Object(o)) {
            Ok(ooi) => result.push(ooi),
            Err(e) => tracing::debug!(device, service, error = %e, "evidence that is no valid object"),
        }
    }
    let outcome = graph.save_observation(Observation {
        method: format!("syslog/{}", service.to_ascii_lowercase()),
        source: host.primary_key().clone(),
        source_method: None,
        result,
        task_id: None,
        valid_time: None,
    })?;
    if !outcome.created.is_empty() || !outcome.deleted.is_empty() {
        tracing::info!(
            device,
            service,
            created = outcome.created.len(),
            deleted = outcome.deleted.len(),
            "log evidence saved"
        );
    }
    Ok(())
}
