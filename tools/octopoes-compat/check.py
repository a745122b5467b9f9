"""Drive OpenKAT's own OctopoesAPIConnector against a running Octograph (auth off, loopback)."""
import sys, uuid
from datetime import datetime, timezone, timedelta
from ipaddress import IPv4Address

from octopoes.api.models import Declaration, Observation, Affirmation
from octopoes.connector.octopoes import OctopoesAPIConnector
from octopoes.models import DeclaredScanProfile, Reference, ScanLevel, EmptyScanProfile
from octopoes.models.ooi.dns.zone import Hostname
from octopoes.models.ooi.network import IPAddressV4, IPPort, Network, Protocol, PortState
from octopoes.models.ooi.findings import Finding, KATFindingType, RiskLevelSeverity
from octopoes.models.origin import OriginType
from octopoes.models.exception import ObjectNotFoundException

base = sys.argv[1]
c = OctopoesAPIConnector(base, "compat")
now = datetime.now(timezone.utc)
done = []

def step(name):
    done.append(name)
    print("ok", name)

print(c.root_health()); step("root_health")
c.create_node(); step("create_node")
print(c.health()); step("health")

net = Network(name="internet")
host = Hostname(network=net.reference, name="example.com")
ip = IPAddressV4(network=net.reference, address=IPv4Address("192.0.2.10"))
c.save_declaration(Declaration(ooi=net, valid_time=now)); step("save_declaration")
c.save_many_declarations([Declaration(ooi=host, valid_time=now), Declaration(ooi=ip, valid_time=now)]); step("save_many_declarations")
got = c.get(host.reference, now); assert got.name == "example.com", got; step("get")
page = c.list_objects({Hostname, IPAddressV4}, now); assert page.count == 2, page; step("list_objects")

port = IPPort(address=ip.reference, protocol=Protocol.TCP, port=3306, state=PortState.OPEN)
c.save_scan_profile(DeclaredScanProfile(reference=ip.reference, level=ScanLevel.L2), now); step("save_scan_profile")
c.save_observation(Observation(method="kat_nmap_normalize", source=ip.reference, source_method="nmap", result=[port], valid_time=now, task_id=uuid.uuid4())); step("save_observation")
inh = c.get_scan_profile_inheritance(port.reference, now); assert inh[-1].scan_profile_type.value == "declared" and inh[-1].segment, inh; step("get_scan_profile_inheritance")
tree = c.get_tree(ip.reference, now, depth=2); assert str(port.reference) in tree.store, tree.store.keys(); step("get_tree")
origins = c.list_origins(now, source=ip.reference); assert any(o.origin_type == OriginType.OBSERVATION for o in origins), origins; step("list_origins")
inferred = c.list_origins(now, origin_type=OriginType.INFERENCE)
params = c.list_origin_parameters({o.id for o in inferred}, now); step(f"list_origin_parameters ({len(params)})")
findings = c.list_findings({RiskLevelSeverity.HIGH, RiskLevelSeverity.MEDIUM, RiskLevelSeverity.CRITICAL, RiskLevelSeverity.LOW, RiskLevelSeverity.PENDING, RiskLevelSeverity.RECOMMENDATION, RiskLevelSeverity.UNKNOWN}, now)
assert findings.count >= 1, findings; step(f"list_findings ({findings.count})")
counts = c.count_findings_by_severity(now); step(f"count_findings_by_severity {counts}")
bulk = c.load_objects_bulk({host.reference, ip.reference}, now); assert len(bulk) == 2, bulk; step("load_objects_bulk")
q = c.query("IPAddressV4.<address[is IPPort]", now, source=ip.reference); assert q and q[0].port == 3306, q; step("query")
qm = c.query_many("IPAddressV4.<address[is IPPort]", now, [ip.reference]); assert qm[0][0] == str(ip.reference), qm; step("query_many")
hist = c.get_history(host.reference, with_docs=True); assert hist and hist[0].document, hist; step("get_history")
c.save_affirmation(Affirmation(ooi=host, valid_time=now)); step("save_affirmation")
c.save_many_scan_profiles([DeclaredScanProfile(reference=host.reference, level=ScanLevel.L1), EmptyScanProfile(reference=net.reference)], now); step("save_many_scan_profiles")
n = c.recalculate_bits(); assert isinstance(n, int), n; step(f"recalculate_bits ({n})")
exported = c.export_all(); assert exported and "txOps" in exported[0]; step(f"export_all ({len(exported)} transactions)")

later = now + timedelta(seconds=1)
c.delete(host.reference, later); step("delete")
try:
    c.get(host.reference, later + timedelta(seconds=1)); raise AssertionError("still there")
except ObjectNotFoundException:
    step("get after delete raises ObjectNotFoundException")
c.delete_many([port.reference], later); step("delete_many")
obs = [o for o in c.list_origins(later + timedelta(seconds=1)) if o.origin_type == OriginType.DECLARATION]
c.delete_origin(obs[0].id, later + timedelta(seconds=2)); step("delete_origin")

other = OctopoesAPIConnector(base, "compat2")
other.create_node()
import json
print(other.import_new(json.dumps(exported))); step("import_new")
assert other.get(host.reference, now).name == "example.com"; step("imported object reads back")
other.delete_node(); c.delete_node(); step("delete_node")
print(f"{len(done)} connector calls worked")
